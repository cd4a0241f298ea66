import type { StoreRef } from '../../store-admin.js';
import type { Operation } from '../model.js';
import {
  checkRegionError,
  liveLeader,
  mustRegion,
  type StepContext,
  StepError,
  type StepOutcome,
} from './context.js';

/** Sends TransferLeader unless one was sent less than `transferRetryMs` ago. */
export async function issueTransfer(
  ctx: StepContext,
  op: Operation,
  leader: { store: StoreRef },
  regionId: bigint,
  toPeerId: bigint,
): Promise<void> {
  const now = ctx.now();
  if (op.vars.issuedAtMs !== undefined && now - op.vars.issuedAtMs < ctx.transferRetryMs) return;
  op.vars.issuedAtMs = now;
  const res = await ctx.env.admin.transferLeader(leader.store, { regionId, toPeerId });
  checkRegionError('TransferLeader', res);
}

export async function transferLeader(ctx: StepContext, op: Operation): Promise<StepOutcome> {
  const spec = op.spec;
  if (spec.kind !== 'transfer-leader') return 'done';
  const region = mustRegion(ctx, spec.regionId);
  const to = region.peers.find((p) => p.peerId === spec.toPeerId);
  if (!to || to.learner)
    throw new StepError(`peer ${spec.toPeerId} is no voter of region ${region.id}`, true);
  const leader = liveLeader(ctx, region.id);
  if (leader?.peer.peerId === to.peerId) return 'done';
  if (!leader) return 'wait';
  await issueTransfer(ctx, op, leader, region.id, to.peerId);
  return 'wait';
}
