import type { RegionMeta } from '@nokv/proto';
import type { StoreAdmin } from '../store-admin.js';
import type { ClusterView } from '../view.js';

export const OPERATION_KINDS = [
  'add-peer',
  'remove-peer',
  'transfer-leader',
  'split-region',
  'merge-regions',
  'replace-replica',
] as const;
export type OperationKind = (typeof OPERATION_KINDS)[number];

export const OPERATION_STATES = ['pending', 'running', 'paused', 'finished', 'failed', 'cancelled'] as const;
export type OperationState = (typeof OPERATION_STATES)[number];
export type OperationSource = 'operator' | 'scheduler';

export const TERMINAL: ReadonlySet<OperationState> = new Set(['finished', 'failed', 'cancelled']);

/**
 * What to do. For `merge-regions`, `regionId` is the target (it survives) and the source, its right
 * neighbour on the same stores, is merged into it.
 */
export type OperationSpec =
  | { kind: 'add-peer'; regionId: bigint; storeId: bigint; learner: boolean }
  | { kind: 'remove-peer'; regionId: bigint; peerId: bigint }
  | { kind: 'transfer-leader'; regionId: bigint; toPeerId: bigint }
  | { kind: 'split-region'; regionId: bigint; splitKey: Uint8Array }
  | { kind: 'merge-regions'; regionId: bigint; sourceRegionId: bigint }
  | { kind: 'replace-replica'; regionId: bigint; fromStoreId: bigint; toStoreId?: bigint };

export type StepName =
  | 'choose-target'
  | 'add-peer'
  | 'wait-replica'
  | 'leave-leadership'
  | 'remove-peer'
  | 'transfer-leader'
  | 'split-region'
  | 'prepare-merge'
  | 'wait-merge-applied'
  | 'commit-merge';

export const PLANS: Record<OperationKind, readonly StepName[]> = {
  'add-peer': ['add-peer', 'wait-replica'],
  'remove-peer': ['leave-leadership', 'remove-peer'],
  'transfer-leader': ['transfer-leader'],
  'split-region': ['split-region'],
  'merge-regions': ['prepare-merge', 'wait-merge-applied', 'commit-merge'],
  'replace-replica': ['choose-target', 'add-peer', 'wait-replica', 'leave-leadership', 'remove-peer'],
};

/** What steps resolved or allocated; kept so retries and restarts reuse them. */
export interface OperationVars {
  /** The new peer (add-peer, replace-replica). */
  peerId?: bigint;
  /** Where the new peer goes (replace-replica). */
  toStoreId?: bigint;
  newRegionId?: bigint;
  newPeerIds?: bigint[];
  mergeSource?: RegionMeta;
  prepareIndex?: bigint;
  /** When the current step started (its timeout) and last sent a TransferLeader. Not persisted. */
  stepStartedAtMs?: number;
  issuedAtMs?: number;
}

export interface Operation {
  readonly id: number;
  readonly spec: OperationSpec;
  readonly source: OperationSource;
  /** Why it exists: `operator`, or the scheduler rule and what it saw. */
  readonly reason: string;
  state: OperationState;
  readonly createdAtMs: number;
  startedAtMs: number | undefined;
  finishedAtMs: number | undefined;
  readonly steps: readonly StepName[];
  stepsDone: number;
  /** Failures of the current step (reset when a step completes). */
  attempts: number;
  /** Failures over the whole operation. */
  retries: number;
  nextAttemptAtMs: number;
  lastError: string | undefined;
  /** Why it failed (state `failed`). */
  error: string | undefined;
  vars: OperationVars;
}

export interface OperationFilter {
  states?: readonly OperationState[];
  kinds?: readonly OperationKind[];
  source?: OperationSource;
  regionId?: bigint;
  /** Operations naming this store (a peer to add or move, the store a replica leaves). */
  storeId?: bigint;
  /** Newest first, at most this many (default 200). */
  limit?: number;
}

/** What the queue needs from the coordinator. */
export interface OperatorEnv {
  view: ClusterView;
  admin: StoreAdmin;
  /** Allocates `count` contiguous ids (persisted fence); resolves with the first. */
  allocIds(count: number): Promise<bigint>;
  /** Takes a region a store reported in an answer into the catalog (as a heartbeat would). */
  observeRegion(region: RegionMeta): Promise<void>;
}

export interface OperatorQueueOptions {
  /** Started operations at once (default 8). */
  maxRunning?: number;
  /** Operations not finished yet (default 10 000); more → `QueueFull`. */
  maxActive?: number;
  /** Finished, failed and cancelled operations kept (default 200). */
  historyLimit?: number;
  /** How often the queue starts and advances operations (default 200 ms; 0 = only `tick()`). */
  tickMs?: number;
  /** Waiting steps look again after this long (default 500 ms). */
  pollMs?: number;
  /** A waiting step gives up (one failed attempt) after this long (default 60 s). */
  stepTimeoutMs?: number;
  /** Backoff after the n-th failure: min(retryMaxMs, retryBaseMs · 2^(n-1)) (defaults 500 ms, 30 s). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Failures of one step before the operation fails (default 8). */
  maxAttempts?: number;
  /** A TransferLeader not followed by a leader change is sent again after this long (default 5 s). */
  transferRetryMs?: number;
  /** Where operations are persisted; in memory only when absent. */
  persistPath?: string;
  now?: () => number;
  /** Called when an operation is added and when it ends. */
  onChange?: (op: Operation, what: 'added' | 'ended') => void;
}

export function regionsOf(spec: OperationSpec): bigint[] {
  return spec.kind === 'merge-regions' ? [spec.regionId, spec.sourceRegionId] : [spec.regionId];
}

/** The stores an operation names (for filtering). */
export function storesOf(op: Operation): bigint[] {
  const s = op.spec;
  const out: bigint[] = [];
  if (s.kind === 'add-peer') out.push(s.storeId);
  if (s.kind === 'replace-replica') {
    out.push(s.fromStoreId);
    if (s.toStoreId !== undefined) out.push(s.toStoreId);
  }
  if (op.vars.toStoreId !== undefined && !out.includes(op.vars.toStoreId)) out.push(op.vars.toStoreId);
  return out;
}
