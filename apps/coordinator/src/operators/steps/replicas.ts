import type { RegionMeta, RegionPeer } from '@nokv/proto';
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
import { issueTransfer } from './leader.js';

/** A store to add the region's replica to: up, no replica of it, fewest replicas, then lowest id. */
export function pickTargetStore(view: ClusterView, region: RegionMeta): bigint | undefined {
  const has = new Set(region.peers.map((p) => p.storeId));
  const load = new Map<bigint, number>();
  for (const r of view.catalog.regions.values())
    for (const p of r.peers) load.set(p.storeId, (load.get(p.storeId) ?? 0) + 1);
  let best: { id: bigint; n: number } | undefined;
  for (const s of view.catalog.stores.values()) {
    if (has.has(s.id) || view.storeState(s.id) !== 'up') continue;
    const n = load.get(s.id) ?? 0;
    if (!best || n < best.n || (n === best.n && s.id < best.id)) best = { id: s.id, n };
  }
  return best?.id;
}

export async function chooseTarget(ctx: StepContext, op: Operation): Promise<StepOutcome> {
  const spec = op.spec;
  if (spec.kind !== 'replace-replica') return 'done';
  const region = mustRegion(ctx, spec.regionId);
  if (op.vars.toStoreId !== undefined) return 'done';
  if (!region.peers.some((p) => p.storeId === spec.fromStoreId)) {
    // The replica left already: nothing to replace.
    op.stepsDone = op.steps.length - 1;
    return 'done';
  }
  if (spec.toStoreId !== undefined) {
    op.vars.toStoreId = spec.toStoreId;
    return 'done';
  }
  const target = pickTargetStore(ctx.env.view, region);
  if (target === undefined) {
    throw new StepError(`no up store without a replica of region ${region.id}`);
  }
  op.vars.toStoreId = target;
  return 'done';
}

function targetOf(op: Operation): { storeId: bigint; learner: boolean } {
  const spec = op.spec;
  if (spec.kind === 'add-peer') return { storeId: spec.storeId, learner: spec.learner };
  if (op.vars.toStoreId === undefined) throw new StepError('no target store chosen', true);
  return { storeId: op.vars.toStoreId, learner: false };
}

export async function addPeer(ctx: StepContext, op: Operation): Promise<StepOutcome> {
  const region = mustRegion(ctx, op.spec.regionId);
  const { storeId, learner } = targetOf(op);
  const there = region.peers.find((p) => p.storeId === storeId);
  if (there) {
    if (op.vars.peerId === undefined || op.vars.peerId === there.peerId) {
      op.vars.peerId = there.peerId;
      return 'done';
    }
    throw new StepError(`store ${storeId} holds peer ${there.peerId} of region ${region.id}, not ours`, true);
  }
  const target = storeRef(ctx, storeId);
  if (ctx.env.view.storeState(storeId) !== 'up') throw new StepError(`target store ${storeId} is not up`);
  const leader = liveLeader(ctx, region.id);
  if (!leader) return 'wait';
  if (op.vars.peerId === undefined) {
    op.vars.peerId = await ctx.env.allocIds(1);
    ctx.changed();
  }
  const res = await ctx.env.admin.addPeer(leader.store, {
    regionId: region.id,
    storeId,
    peerId: op.vars.peerId,
    targetAddr: target.addr,
    learner,
  });
  checkRegionError('AddPeer', res);
  if (res.region) await ctx.env.observeRegion(res.region);
  return 'done';
}

export async function waitReplica(ctx: StepContext, op: Operation): Promise<StepOutcome> {
  const region = mustRegion(ctx, op.spec.regionId);
  const { storeId } = targetOf(op);
  const peerId = op.vars.peerId;
  if (!region.peers.some((p) => p.storeId === storeId && (peerId === undefined || p.peerId === peerId))) {
    return 'wait';
  }
  try {
    const st = await ctx.env.admin.regionRuntimeStatus(storeRef(ctx, storeId), { regionId: region.id });
    if (st.tombstone) throw new StepError(`the new peer on store ${storeId} was removed`, true);
    return st.hosted && st.member ? 'done' : 'wait';
  } catch (err) {
    // A store without RegionRuntimeStatus: the membership in the region's metadata is all we know.
    if (isUnimplemented(err)) return 'done';
    throw err;
  }
}

/** The peer a remove step takes out (undefined: it is gone already). */
function peerToRemove(op: Operation, region: RegionMeta): RegionPeer | undefined {
  const spec = op.spec;
  if (spec.kind === 'remove-peer') return region.peers.find((p) => p.peerId === spec.peerId);
  if (spec.kind === 'replace-replica') {
    return region.peers.find((p) => p.storeId === spec.fromStoreId && p.peerId !== op.vars.peerId);
  }
  return undefined;
}

export async function leaveLeadership(ctx: StepContext, op: Operation): Promise<StepOutcome> {
  const region = mustRegion(ctx, op.spec.regionId);
  const victim = peerToRemove(op, region);
  if (!victim) return 'done';
  const { view } = ctx.env;
  const current = view.leaderOf(region.id);
  if (!current || current.peerId !== victim.peerId) return 'done';
  // The leader's store is down: a new leader is being elected among the others.
  if (!view.isAlive(current.storeId)) return 'wait';
  const live = view.regionLiveOf(region.id);
  const unhealthy = new Set([...(live?.pendingPeers ?? []), ...(live?.downPeers ?? [])].map((p) => p.peerId));
  const to = region.peers
    .filter(
      (p) =>
        !p.learner &&
        p.peerId !== victim.peerId &&
        !unhealthy.has(p.peerId) &&
        view.storeState(p.storeId) === 'up',
    )
    .sort((a, b) => (a.storeId < b.storeId ? -1 : 1))[0];
  if (!to) throw new StepError(`no other healthy voter of region ${region.id} to take the leadership`);
  await issueTransfer(ctx, op, { store: storeRef(ctx, current.storeId) }, region.id, to.peerId);
  return 'wait';
}

export async function removePeer(ctx: StepContext, op: Operation): Promise<StepOutcome> {
  const region = mustRegion(ctx, op.spec.regionId);
  const victim = peerToRemove(op, region);
  if (!victim) return 'done';
  const leader = liveLeader(ctx, region.id);
  if (!leader) return 'wait';
  if (leader.peer.peerId === victim.peerId) {
    // It became the leader again since leave-leadership: go through that step once more.
    op.stepsDone = Math.max(0, op.steps.indexOf('leave-leadership'));
    return 'wait';
  }
  const res = await ctx.env.admin.removePeer(leader.store, { regionId: region.id, peerId: victim.peerId });
  checkRegionError('RemovePeer', res);
  if (res.region) await ctx.env.observeRegion(res.region);
  return 'done';
}
