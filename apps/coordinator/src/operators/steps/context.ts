import type { RegionMeta, RegionPeer } from '@nokv/proto';
import type { StoreRef } from '../../store-admin.js';
import type { OperatorEnv } from '../model.js';

/** A step failure; `permanent` fails the operation without retrying. */
export class StepError extends Error {
  constructor(
    message: string,
    readonly permanent = false,
  ) {
    super(message);
  }
}

export type StepOutcome = 'done' | 'wait';

/** What a step needs from the queue. */
export interface StepContext {
  readonly env: OperatorEnv;
  /** A TransferLeader not followed by a leader change is sent again after this long. */
  readonly transferRetryMs: number;
  now(): number;
  /** Schedules a write of operations.json, so ids a step allocated are reused after a restart. */
  changed(): void;
}

export function mustRegion(ctx: StepContext, id: bigint): RegionMeta {
  const r = ctx.env.view.catalog.regions.get(id);
  if (!r) throw new StepError(`region ${id} no longer exists`, true);
  return r;
}

export function storeRef(ctx: StepContext, id: bigint): StoreRef {
  const s = ctx.env.view.catalog.stores.get(id);
  if (!s) throw new StepError(`store ${id} is not known`, true);
  return { id, addr: s.addr };
}

/** The region's leader when it is known and its store alive (else the step waits for one). */
export function liveLeader(
  ctx: StepContext,
  regionId: bigint,
): { peer: RegionPeer; store: StoreRef } | undefined {
  const peer = ctx.env.view.leaderOf(regionId);
  if (!peer || !ctx.env.view.isAlive(peer.storeId)) return undefined;
  return { peer, store: storeRef(ctx, peer.storeId) };
}

export function checkRegionError(
  what: string,
  res: { regionError?: { kind: string; message: string } },
): void {
  if (res.regionError) throw new StepError(`${what}: ${res.regionError.kind}: ${res.regionError.message}`);
}
