import type { RegionMeta } from '@nokv/proto';
import { isUnimplemented } from '../../store-admin.js';
import type { ClusterView } from '../../view.js';
import type { Operation } from '../model.js';
import {
  checkRegionError,
  liveLeader,
  mustRegion,
  type StepContext,
  StepError,
  type StepOutcome,
  storeRef,
} from './context.js';

/** The merge happened already: the source is gone and the target covers its range. */
function merged(
  view: ClusterView,
  targetId: bigint,
  sourceId: bigint,
  source: RegionMeta | undefined,
): boolean {
  const catalog = view.catalog;
  const target = catalog.regions.get(targetId);
  if (!target || catalog.regions.has(sourceId) || !source) return false;
  const startsBefore = Buffer.compare(target.startKey, source.startKey) <= 0;
  const endsAfter =
    target.endKey.length === 0 ||
    (source.endKey.length > 0 && Buffer.compare(target.endKey, source.endKey) >= 0);
  return startsBefore && endsAfter;
}

export async function prepareMerge(ctx: StepContext, op: Operation): Promise<StepOutcome> {
  const spec = op.spec;
  if (spec.kind !== 'merge-regions') return 'done';
  if (op.vars.mergeSource && op.vars.prepareIndex !== undefined) return 'done';
  mustRegion(ctx, spec.regionId);
  const source = mustRegion(ctx, spec.sourceRegionId);
  const leader = liveLeader(ctx, source.id);
  if (!leader) return 'wait';
  const res = await ctx.env.admin.prepareMerge(leader.store, {
    sourceRegionId: source.id,
    targetRegionId: spec.regionId,
  });
  checkRegionError('PrepareMerge', res);
  op.vars.mergeSource = res.source ?? source;
  op.vars.prepareIndex = res.prepareIndex;
  ctx.changed();
  return 'done';
}

/**
 * Every replica of the source must have applied PrepareMerge before CommitMerge: the target's
 * replica on each store takes over the source's data as that store holds it.
 */
export async function waitMergeApplied(ctx: StepContext, op: Operation): Promise<StepOutcome> {
  const spec = op.spec;
  if (spec.kind !== 'merge-regions') return 'done';
  const source = op.vars.mergeSource;
  const prepareIndex = op.vars.prepareIndex;
  if (!source || prepareIndex === undefined) throw new StepError('the merge was not prepared', true);
  if (merged(ctx.env.view, spec.regionId, spec.sourceRegionId, source)) return 'done';
  for (const p of source.peers) {
    try {
      const st = await ctx.env.admin.regionRuntimeStatus(storeRef(ctx, p.storeId), {
        regionId: source.id,
      });
      // Not hosted any more: merged there already (an earlier CommitMerge got that far).
      if (st.hosted && st.appliedIndex < prepareIndex) return 'wait';
    } catch (err) {
      if (isUnimplemented(err)) return 'done';
      throw err;
    }
  }
  return 'done';
}

export async function commitMerge(ctx: StepContext, op: Operation): Promise<StepOutcome> {
  const spec = op.spec;
  if (spec.kind !== 'merge-regions') return 'done';
  const source = op.vars.mergeSource;
  if (merged(ctx.env.view, spec.regionId, spec.sourceRegionId, source)) return 'done';
  const prepareIndex = op.vars.prepareIndex;
  if (!source || prepareIndex === undefined) throw new StepError('the merge was not prepared', true);
  const target = mustRegion(ctx, spec.regionId);
  const leader = liveLeader(ctx, target.id);
  if (!leader) return 'wait';
  const res = await ctx.env.admin.commitMerge(leader.store, {
    targetRegionId: target.id,
    source,
    sourcePrepareIndex: prepareIndex,
  });
  checkRegionError('CommitMerge', res);
  if (res.region) await ctx.env.observeRegion(res.region);
  return 'done';
}
