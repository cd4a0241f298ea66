import { formatKey } from '@nokv/config';
import type { Operation } from '../model.js';
import {
  checkRegionError,
  liveLeader,
  mustRegion,
  type StepContext,
  StepError,
  type StepOutcome,
} from './context.js';

export async function splitRegion(ctx: StepContext, op: Operation): Promise<StepOutcome> {
  const spec = op.spec;
  if (spec.kind !== 'split-region') return 'done';
  const catalog = ctx.env.view.catalog;
  if (op.vars.newRegionId !== undefined && catalog.regions.has(op.vars.newRegionId)) return 'done';
  const region = mustRegion(ctx, spec.regionId);
  const k = spec.splitKey;
  if (
    Buffer.compare(k, region.startKey) <= 0 ||
    (region.endKey.length > 0 && Buffer.compare(k, region.endKey) >= 0)
  ) {
    throw new StepError(`split key ${formatKey(k)} is no longer inside region ${region.id}`, true);
  }
  const leader = liveLeader(ctx, region.id);
  if (!leader) return 'wait';
  if (op.vars.newRegionId === undefined || op.vars.newPeerIds?.length !== region.peers.length) {
    const first = await ctx.env.allocIds(1 + region.peers.length);
    op.vars.newRegionId = first;
    op.vars.newPeerIds = region.peers.map((_, i) => first + 1n + BigInt(i));
    ctx.changed();
  }
  const res = await ctx.env.admin.splitRegion(leader.store, {
    regionId: region.id,
    splitKey: k,
    newRegionId: op.vars.newRegionId,
    newPeerIds: op.vars.newPeerIds,
  });
  checkRegionError('SplitRegion', res);
  if (res.left) await ctx.env.observeRegion(res.left);
  if (res.right) await ctx.env.observeRegion(res.right);
  return 'done';
}
