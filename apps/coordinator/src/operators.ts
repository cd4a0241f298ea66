import { open as openFile, readFile, rename } from 'node:fs/promises';
import { formatKey, parseKey } from '@nokv/config';
import { decodeRegionMeta, encodeRegionMeta, type RegionMeta, type RegionPeer } from '@nokv/proto';
import { CoordinatorError, OperatorError } from './errors.js';
import { isPermanentRpcFailure, isUnimplemented, type StoreAdmin, type StoreRef } from './store-admin.js';
import type { ClusterView } from './view.js';

// The operator queue: region changes the coordinator carries out itself by calling the stores'
// RaftAdmin RPCs (add/remove peer, transfer leader, split, merge, and replace-replica = add on a
// healthy store, then remove the old peer). Operators add them over tRPC; the scheduler adds them
// from what it detects.
//
// Each operation is a list of steps. A step is idempotent: it first checks whether its effect is
// already there (the catalog, fed by heartbeats and by the stores' answers), so a retry after a
// lost answer, or the same step again after a coordinator restart, does not repeat the change.
// Ids for new peers and regions come from the coordinator's allocator and are kept in the
// operation once allocated, so every retry asks for the same peer or region.
//
// At most one started operation per region (merges hold both regions) and `maxRunning` overall.
// A failing step is retried with exponential backoff up to `maxAttempts`; some failures are final
// at once (the store does not implement the RPC, the region is gone, the request is invalid).
// Operations survive restarts in `operations.json` (written atomically on every state change),
// with the last `historyLimit` finished, failed or cancelled ones.

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

const TERMINAL: ReadonlySet<OperationState> = new Set(['finished', 'failed', 'cancelled']);

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

const PLANS: Record<OperationKind, readonly StepName[]> = {
  'add-peer': ['add-peer', 'wait-replica'],
  'remove-peer': ['leave-leadership', 'remove-peer'],
  'transfer-leader': ['transfer-leader'],
  'split-region': ['split-region'],
  'merge-regions': ['prepare-merge', 'wait-merge-applied', 'commit-merge'],
  'replace-replica': ['choose-target', 'add-peer', 'wait-replica', 'leave-leadership', 'remove-peer'],
};

/** What steps resolved or allocated; kept so retries and restarts reuse them. */
interface OperationVars {
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

/** An operation as the tRPC API and the view show it (ids as strings). */
export interface OperationJson {
  id: number;
  kind: OperationKind;
  regionId: string;
  /** The spec's other fields (ids as strings, keys in the topology-file syntax). */
  params: Record<string, string | boolean | null>;
  /** Resolved along the way: the new peer id, the chosen store, the new region... */
  resolved: Record<string, string | string[]>;
  state: OperationState;
  source: OperationSource;
  reason: string;
  createdAtMs: number;
  startedAtMs: number | null;
  finishedAtMs: number | null;
  steps: StepName[];
  stepsDone: number;
  currentStep: StepName | null;
  attempts: number;
  retries: number;
  /** Running and waiting (poll or backoff): when the next try is due. */
  nextAttemptAtMs: number | null;
  lastError: string | null;
  error: string | null;
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

/** A step failure; `permanent` fails the operation without retrying. */
class StepError extends Error {
  constructor(
    message: string,
    readonly permanent = false,
  ) {
    super(message);
  }
}

type StepOutcome = 'done' | 'wait';

function regionsOf(spec: OperationSpec): bigint[] {
  return spec.kind === 'merge-regions' ? [spec.regionId, spec.sourceRegionId] : [spec.regionId];
}

/** The stores an operation names (for filtering). */
function storesOf(op: Operation): bigint[] {
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

function paramsOf(spec: OperationSpec): Record<string, string | boolean | null> {
  switch (spec.kind) {
    case 'add-peer':
      return { storeId: spec.storeId.toString(), learner: spec.learner };
    case 'remove-peer':
      return { peerId: spec.peerId.toString() };
    case 'transfer-leader':
      return { toPeerId: spec.toPeerId.toString() };
    case 'split-region':
      return { splitKey: formatKey(spec.splitKey) };
    case 'merge-regions':
      return { sourceRegionId: spec.sourceRegionId.toString() };
    case 'replace-replica':
      return { fromStoreId: spec.fromStoreId.toString(), toStoreId: spec.toStoreId?.toString() ?? null };
  }
}

function specFromParams(
  kind: OperationKind,
  regionId: bigint,
  p: Record<string, string | boolean | null>,
): OperationSpec {
  const big = (k: string): bigint => {
    const v = p[k];
    if (typeof v !== 'string' || !/^\d+$/.test(v)) throw new Error(`param ${k} is not an id`);
    return BigInt(v);
  };
  switch (kind) {
    case 'add-peer':
      return { kind, regionId, storeId: big('storeId'), learner: p.learner === true };
    case 'remove-peer':
      return { kind, regionId, peerId: big('peerId') };
    case 'transfer-leader':
      return { kind, regionId, toPeerId: big('toPeerId') };
    case 'split-region':
      return { kind, regionId, splitKey: parseKey(String(p.splitKey)) };
    case 'merge-regions':
      return { kind, regionId, sourceRegionId: big('sourceRegionId') };
    case 'replace-replica':
      return {
        kind,
        regionId,
        fromStoreId: big('fromStoreId'),
        ...(p.toStoreId != null ? { toStoreId: big('toStoreId') } : {}),
      };
  }
}

function resolvedOf(v: OperationVars): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  if (v.peerId !== undefined) out.peerId = v.peerId.toString();
  if (v.toStoreId !== undefined) out.toStoreId = v.toStoreId.toString();
  if (v.newRegionId !== undefined) out.newRegionId = v.newRegionId.toString();
  if (v.newPeerIds) out.newPeerIds = v.newPeerIds.map(String);
  if (v.prepareIndex !== undefined) out.prepareIndex = v.prepareIndex.toString();
  return out;
}

export function operationJson(op: Operation): OperationJson {
  const active = op.state === 'running' || op.state === 'pending';
  return {
    id: op.id,
    kind: op.spec.kind,
    regionId: op.spec.regionId.toString(),
    params: paramsOf(op.spec),
    resolved: resolvedOf(op.vars),
    state: op.state,
    source: op.source,
    reason: op.reason,
    createdAtMs: op.createdAtMs,
    startedAtMs: op.startedAtMs ?? null,
    finishedAtMs: op.finishedAtMs ?? null,
    steps: [...op.steps],
    stepsDone: op.stepsDone,
    currentStep: TERMINAL.has(op.state) ? null : (op.steps[op.stepsDone] ?? null),
    attempts: op.attempts,
    retries: op.retries,
    nextAttemptAtMs: active && op.state === 'running' ? op.nextAttemptAtMs : null,
    lastError: op.lastError ?? null,
    error: op.error ?? null,
  };
}

// ---- persistence ----

interface OperationRecord extends Omit<OperationJson, 'resolved' | 'currentStep' | 'nextAttemptAtMs'> {
  vars: {
    peerId?: string;
    toStoreId?: string;
    newRegionId?: string;
    newPeerIds?: string[];
    prepareIndex?: string;
    /** base64 of nokv.meta.v1.RegionMeta */
    mergeSource?: string;
  };
}

interface OperationsFile {
  version: 1;
  nextId: number;
  operations: OperationRecord[];
}

function toRecord(op: Operation): OperationRecord {
  const { resolved: _r, currentStep: _c, nextAttemptAtMs: _n, ...rest } = operationJson(op);
  const v = op.vars;
  return {
    ...rest,
    vars: {
      ...(v.peerId !== undefined ? { peerId: v.peerId.toString() } : {}),
      ...(v.toStoreId !== undefined ? { toStoreId: v.toStoreId.toString() } : {}),
      ...(v.newRegionId !== undefined ? { newRegionId: v.newRegionId.toString() } : {}),
      ...(v.newPeerIds ? { newPeerIds: v.newPeerIds.map(String) } : {}),
      ...(v.prepareIndex !== undefined ? { prepareIndex: v.prepareIndex.toString() } : {}),
      ...(v.mergeSource
        ? { mergeSource: Buffer.from(encodeRegionMeta(v.mergeSource)).toString('base64') }
        : {}),
    },
  };
}

function fromRecord(r: OperationRecord, now: number): Operation {
  if (!OPERATION_KINDS.includes(r.kind)) throw new Error(`unknown kind ${String(r.kind)}`);
  if (!OPERATION_STATES.includes(r.state)) throw new Error(`unknown state ${String(r.state)}`);
  const v = r.vars ?? {};
  const steps = PLANS[r.kind];
  return {
    id: r.id,
    spec: specFromParams(r.kind, BigInt(r.regionId), r.params),
    source: r.source,
    reason: r.reason,
    state: r.state,
    createdAtMs: r.createdAtMs,
    startedAtMs: r.startedAtMs ?? undefined,
    finishedAtMs: r.finishedAtMs ?? undefined,
    steps,
    stepsDone: Math.min(r.stepsDone, steps.length),
    attempts: r.attempts,
    retries: r.retries,
    nextAttemptAtMs: now,
    lastError: r.lastError ?? undefined,
    error: r.error ?? undefined,
    vars: {
      ...(v.peerId !== undefined ? { peerId: BigInt(v.peerId) } : {}),
      ...(v.toStoreId !== undefined ? { toStoreId: BigInt(v.toStoreId) } : {}),
      ...(v.newRegionId !== undefined ? { newRegionId: BigInt(v.newRegionId) } : {}),
      ...(v.newPeerIds ? { newPeerIds: v.newPeerIds.map((x) => BigInt(x)) } : {}),
      ...(v.prepareIndex !== undefined ? { prepareIndex: BigInt(v.prepareIndex) } : {}),
      ...(v.mergeSource ? { mergeSource: decodeRegionMeta(Buffer.from(v.mergeSource, 'base64')) } : {}),
    },
  };
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp`;
  const fh = await openFile(tmp, 'w');
  try {
    await fh.writeFile(text);
    await fh.datasync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

// ---- the queue ----

export class OperatorQueue {
  readonly maxRunning: number;
  readonly maxActive: number;
  readonly historyLimit: number;
  readonly pollMs: number;
  readonly stepTimeoutMs: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  readonly maxAttempts: number;
  readonly transferRetryMs: number;
  readonly now: () => number;
  /** Not finished yet, by id (insertion order = id order). */
  private readonly activeOps = new Map<number, Operation>();
  /** Finished, failed, cancelled; oldest first. */
  private readonly history: Operation[] = [];
  private readonly inflight = new Map<number, Promise<void>>();
  private nextId = 1;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private dirty = false;
  private saving: Promise<void> | undefined;
  /** The last failed write of operations.json (the queue keeps working in memory). */
  persistError: string | undefined;
  /** Operations that ended, by final state, since start. */
  readonly ended: Record<'finished' | 'failed' | 'cancelled', number> = {
    finished: 0,
    failed: 0,
    cancelled: 0,
  };

  private constructor(
    private readonly env: OperatorEnv,
    private readonly opts: OperatorQueueOptions,
  ) {
    this.maxRunning = opts.maxRunning ?? 8;
    this.maxActive = opts.maxActive ?? 10_000;
    this.historyLimit = opts.historyLimit ?? 200;
    this.pollMs = opts.pollMs ?? 500;
    this.stepTimeoutMs = opts.stepTimeoutMs ?? 60_000;
    this.retryBaseMs = opts.retryBaseMs ?? 500;
    this.retryMaxMs = opts.retryMaxMs ?? 30_000;
    this.maxAttempts = opts.maxAttempts ?? 8;
    this.transferRetryMs = opts.transferRetryMs ?? 5_000;
    this.now = opts.now ?? Date.now;
  }

  /** Loads `persistPath` (if it exists) and starts the timer. */
  static async open(env: OperatorEnv, opts: OperatorQueueOptions = {}): Promise<OperatorQueue> {
    const q = new OperatorQueue(env, opts);
    if (opts.persistPath) await q.load(opts.persistPath);
    const tickMs = opts.tickMs ?? 200;
    if (tickMs > 0) {
      q.timer = setInterval(() => {
        void q.tick();
      }, tickMs);
      q.timer.unref();
    }
    return q;
  }

  private async load(path: string): Promise<void> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw err;
    }
    try {
      const file = JSON.parse(text) as OperationsFile;
      if (file.version !== 1 || !Array.isArray(file.operations)) throw new Error('not a version 1 file');
      const now = this.now();
      for (const r of file.operations) {
        const op = fromRecord(r, now);
        if (TERMINAL.has(op.state)) this.history.push(op);
        else this.activeOps.set(op.id, op);
        this.nextId = Math.max(this.nextId, op.id + 1);
      }
      this.nextId = Math.max(this.nextId, file.nextId);
      this.history.sort((a, b) => a.id - b.id);
    } catch (err) {
      throw new CoordinatorError('Corruption', `${path}: ${(err as Error).message}`, {
        file: path,
        offset: 0,
        cause: err,
      });
    }
  }

  // ---- reading ----

  get(id: number): Operation | undefined {
    return this.activeOps.get(id) ?? this.history.find((o) => o.id === id);
  }

  /** Operations not finished yet, oldest first. */
  active(): Operation[] {
    return [...this.activeOps.values()];
  }

  /** The unfinished operation touching `regionId` (the oldest), if any. */
  activeFor(regionId: bigint): Operation | undefined {
    for (const op of this.activeOps.values()) if (regionsOf(op.spec).includes(regionId)) return op;
    return undefined;
  }

  list(filter: OperationFilter = {}): Operation[] {
    const states = filter.states ? new Set(filter.states) : undefined;
    const kinds = filter.kinds ? new Set(filter.kinds) : undefined;
    const limit = filter.limit ?? 200;
    const out: Operation[] = [];
    const all = [...this.activeOps.values(), ...this.history].sort((a, b) => b.id - a.id);
    for (const op of all) {
      if (out.length >= limit) break;
      if (states && !states.has(op.state)) continue;
      if (kinds && !kinds.has(op.spec.kind)) continue;
      if (filter.source && op.source !== filter.source) continue;
      if (filter.regionId !== undefined && !regionsOf(op.spec).includes(filter.regionId)) continue;
      if (filter.storeId !== undefined && !storesOf(op).includes(filter.storeId)) continue;
      out.push(op);
    }
    return out;
  }

  counts(): Record<OperationState, number> {
    const c: Record<OperationState, number> = {
      pending: 0,
      running: 0,
      paused: 0,
      finished: 0,
      failed: 0,
      cancelled: 0,
    };
    for (const op of this.activeOps.values()) c[op.state]++;
    for (const op of this.history) c[op.state]++;
    return c;
  }

  // ---- changing ----

  /**
   * Validates and queues an operation. Throws OperatorError: RegionNotFound, StoreNotFound,
   * PeerNotFound, InvalidOperation, StoreNotUp, QueueFull.
   */
  add(
    spec: OperationSpec,
    opts: { source?: OperationSource; reason?: string; paused?: boolean } = {},
  ): Operation {
    if (this.closed) throw new CoordinatorError('Closed', 'the coordinator is stopping');
    this.validate(spec);
    if (this.activeOps.size >= this.maxActive) {
      throw new OperatorError('QueueFull', `${this.activeOps.size} operations are waiting already`);
    }
    const now = this.now();
    const op: Operation = {
      id: this.nextId++,
      spec,
      source: opts.source ?? 'operator',
      reason: opts.reason ?? (opts.source === 'scheduler' ? 'scheduler' : 'operator'),
      state: opts.paused ? 'paused' : 'pending',
      createdAtMs: now,
      startedAtMs: undefined,
      finishedAtMs: undefined,
      steps: PLANS[spec.kind],
      stepsDone: 0,
      attempts: 0,
      retries: 0,
      nextAttemptAtMs: now,
      lastError: undefined,
      error: undefined,
      vars: {},
    };
    this.activeOps.set(op.id, op);
    this.changed();
    this.opts.onChange?.(op, 'added');
    return op;
  }

  private must(id: number): Operation {
    const op = this.get(id);
    if (!op) throw new OperatorError('OperationNotFound', `operation ${id} is not known`);
    return op;
  }

  /**
   * Pending or running → paused. A step in flight completes (its effect stays); nothing more runs
   * until `resume`. A started operation keeps its regions meanwhile, so nothing interleaves with a
   * half-done change. Pausing a paused operation is a no-op; a finished one is `InvalidState`.
   */
  pause(id: number): Operation {
    const op = this.must(id);
    if (TERMINAL.has(op.state)) throw new OperatorError('InvalidState', `operation ${id} is ${op.state}`);
    if (op.state !== 'paused') {
      op.state = 'paused';
      this.changed();
    }
    return op;
  }

  /** Paused → running (started before) or pending. No-op when not paused; `InvalidState` when ended. */
  resume(id: number): Operation {
    const op = this.must(id);
    if (TERMINAL.has(op.state)) throw new OperatorError('InvalidState', `operation ${id} is ${op.state}`);
    if (op.state === 'paused') {
      op.state = op.startedAtMs === undefined ? 'pending' : 'running';
      op.nextAttemptAtMs = this.now();
      op.vars.stepStartedAtMs = undefined;
      this.changed();
    }
    return op;
  }

  /**
   * Ends an operation that has not ended: nothing more runs (a step in flight completes; the steps
   * done stay done, e.g. a replace-replica cancelled after its add-peer leaves the extra replica).
   * Cancelling a cancelled one is a no-op; a finished or failed one is `InvalidState`.
   */
  cancel(id: number): Operation {
    const op = this.must(id);
    if (op.state === 'cancelled') return op;
    if (TERMINAL.has(op.state)) throw new OperatorError('InvalidState', `operation ${id} is ${op.state}`);
    this.end(op, 'cancelled');
    return op;
  }

  private validate(spec: OperationSpec): void {
    const { view } = this.env;
    const catalog = view.catalog;
    const region = catalog.regions.get(spec.regionId);
    if (!region) throw new OperatorError('RegionNotFound', `region ${spec.regionId} is not known`);
    const store = (id: bigint, what: string) => {
      const s = catalog.stores.get(id);
      if (!s) throw new OperatorError('StoreNotFound', `${what} store ${id} is not known`);
      return s;
    };
    const up = (id: bigint, what: string) => {
      const st = view.storeState(id);
      if (st !== 'up') throw new OperatorError('StoreNotUp', `${what} store ${id} is ${st}`);
    };
    const voters = region.peers.filter((p) => !p.learner);
    switch (spec.kind) {
      case 'add-peer':
        store(spec.storeId, 'target');
        if (region.peers.some((p) => p.storeId === spec.storeId)) {
          throw new OperatorError(
            'InvalidOperation',
            `region ${region.id} has a peer on store ${spec.storeId} already`,
          );
        }
        up(spec.storeId, 'target');
        return;
      case 'remove-peer': {
        const p = region.peers.find((x) => x.peerId === spec.peerId);
        if (!p)
          throw new OperatorError('PeerNotFound', `peer ${spec.peerId} is not a peer of region ${region.id}`);
        if (!p.learner && voters.length <= 1) {
          throw new OperatorError(
            'InvalidOperation',
            `peer ${p.peerId} is the last voter of region ${region.id}`,
          );
        }
        return;
      }
      case 'transfer-leader': {
        const p = region.peers.find((x) => x.peerId === spec.toPeerId);
        if (!p) {
          throw new OperatorError(
            'PeerNotFound',
            `peer ${spec.toPeerId} is not a peer of region ${region.id}`,
          );
        }
        if (p.learner) {
          throw new OperatorError('InvalidOperation', `peer ${p.peerId} of region ${region.id} is a learner`);
        }
        return;
      }
      case 'split-region': {
        const k = spec.splitKey;
        const inside =
          k.length > 0 &&
          Buffer.compare(k, region.startKey) > 0 &&
          (region.endKey.length === 0 || Buffer.compare(k, region.endKey) < 0);
        if (!inside) {
          throw new OperatorError(
            'InvalidOperation',
            `split key ${formatKey(k)} is not strictly inside region ${region.id} [${formatKey(region.startKey)}, ${formatKey(region.endKey)})`,
          );
        }
        return;
      }
      case 'merge-regions': {
        const source = catalog.regions.get(spec.sourceRegionId);
        if (!source) throw new OperatorError('RegionNotFound', `region ${spec.sourceRegionId} is not known`);
        if (source.id === region.id)
          throw new OperatorError('InvalidOperation', 'a region cannot merge into itself');
        // The stores merge a region into its left neighbour.
        const adjacent = region.endKey.length > 0 && Buffer.compare(region.endKey, source.startKey) === 0;
        if (!adjacent) {
          throw new OperatorError(
            'InvalidOperation',
            `region ${source.id} is not the right neighbour of region ${region.id} (a region merges into its left neighbour)`,
          );
        }
        const stores = (r: RegionMeta) =>
          r.peers
            .map((p) => p.storeId)
            .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
            .join(',');
        if (stores(source) !== stores(region)) {
          throw new OperatorError(
            'InvalidOperation',
            `regions ${source.id} and ${region.id} have replicas on different stores (${stores(source)} vs ${stores(region)})`,
          );
        }
        return;
      }
      case 'replace-replica': {
        store(spec.fromStoreId, 'source');
        const p = region.peers.find((x) => x.storeId === spec.fromStoreId);
        if (!p) {
          throw new OperatorError(
            'PeerNotFound',
            `region ${region.id} has no replica on store ${spec.fromStoreId}`,
          );
        }
        if (spec.toStoreId !== undefined) {
          store(spec.toStoreId, 'target');
          if (region.peers.some((x) => x.storeId === spec.toStoreId)) {
            throw new OperatorError(
              'InvalidOperation',
              `region ${region.id} has a peer on store ${spec.toStoreId} already`,
            );
          }
          up(spec.toStoreId, 'target');
        }
        return;
      }
    }
  }

  // ---- running ----

  /** Whether the operation holds its regions (started, not ended). */
  private holds(op: Operation): boolean {
    return op.state === 'running' || (op.state === 'paused' && op.startedAtMs !== undefined);
  }

  /**
   * Starts pending operations that may start and runs the due step of each running one. Resolves
   * once the steps it started have settled (the timer does not wait; tests await it).
   */
  tick(): Promise<void> {
    if (this.closed) return Promise.resolve();
    const now = this.now();
    const locked = new Set<bigint>();
    let running = 0;
    for (const op of this.activeOps.values()) {
      if (!this.holds(op)) continue;
      for (const r of regionsOf(op.spec)) locked.add(r);
      if (op.state === 'running') running++;
    }
    const started: Promise<void>[] = [];
    for (const op of this.activeOps.values()) {
      if (op.state === 'pending') {
        if (running >= this.maxRunning || regionsOf(op.spec).some((r) => locked.has(r))) continue;
        op.state = 'running';
        op.startedAtMs = now;
        op.nextAttemptAtMs = now;
        running++;
        for (const r of regionsOf(op.spec)) locked.add(r);
        this.changed();
      }
      if (op.state === 'running' && !this.inflight.has(op.id) && op.nextAttemptAtMs <= now) {
        const p = this.run(op).finally(() => this.inflight.delete(op.id));
        this.inflight.set(op.id, p);
        started.push(p);
      }
    }
    return Promise.all(started).then(() => {});
  }

  /** Resolves once no step is in flight. */
  async idle(): Promise<void> {
    while (this.inflight.size > 0) await Promise.all([...this.inflight.values()]);
  }

  private async run(op: Operation): Promise<void> {
    for (;;) {
      if (op.state !== 'running' || this.closed) return;
      const step = op.steps[op.stepsDone];
      if (step === undefined) {
        this.end(op, 'finished');
        return;
      }
      op.vars.stepStartedAtMs ??= this.now();
      let outcome: StepOutcome;
      try {
        outcome = await this.step(step, op);
      } catch (err) {
        this.failedStep(op, step, err);
        return;
      }
      if (outcome === 'wait') {
        if (this.now() - op.vars.stepStartedAtMs > this.stepTimeoutMs) {
          this.failedStep(op, step, new StepError(`step ${step} timed out after ${this.stepTimeoutMs} ms`));
        } else {
          op.nextAttemptAtMs = this.now() + this.pollMs;
        }
        return;
      }
      op.stepsDone++;
      op.attempts = 0;
      op.lastError = undefined;
      op.vars.stepStartedAtMs = undefined;
      op.vars.issuedAtMs = undefined;
      this.changed();
    }
  }

  private failedStep(op: Operation, step: StepName, err: unknown): void {
    // Cancelled by the shutdown: not the step's fault; it runs again after the restart.
    if (this.closed || (err instanceof CoordinatorError && err.code === 'Closed')) return;
    const permanent = (err instanceof StepError && err.permanent) || isPermanentRpcFailure(err);
    const message = `${step}: ${(err as Error).message}`;
    op.lastError = message;
    op.retries++;
    op.attempts++;
    op.vars.stepStartedAtMs = undefined;
    op.vars.issuedAtMs = undefined;
    if (op.state === 'running' && (permanent || op.attempts >= this.maxAttempts)) {
      this.end(op, 'failed', permanent ? message : `${message} (after ${op.attempts} attempts)`);
      return;
    }
    op.nextAttemptAtMs = this.now() + Math.min(this.retryMaxMs, this.retryBaseMs * 2 ** (op.attempts - 1));
    this.changed();
  }

  private end(op: Operation, state: 'finished' | 'failed' | 'cancelled', error?: string): void {
    op.state = state;
    op.finishedAtMs = this.now();
    if (error !== undefined) op.error = error;
    this.activeOps.delete(op.id);
    this.history.push(op);
    if (this.history.length > this.historyLimit)
      this.history.splice(0, this.history.length - this.historyLimit);
    this.ended[state]++;
    this.changed();
    this.opts.onChange?.(op, 'ended');
  }

  // ---- steps ----

  private step(name: StepName, op: Operation): Promise<StepOutcome> {
    switch (name) {
      case 'choose-target':
        return this.chooseTarget(op);
      case 'add-peer':
        return this.addPeer(op);
      case 'wait-replica':
        return this.waitReplica(op);
      case 'leave-leadership':
        return this.leaveLeadership(op);
      case 'remove-peer':
        return this.removePeer(op);
      case 'transfer-leader':
        return this.transferLeader(op);
      case 'split-region':
        return this.splitRegion(op);
      case 'prepare-merge':
        return this.prepareMerge(op);
      case 'wait-merge-applied':
        return this.waitMergeApplied(op);
      case 'commit-merge':
        return this.commitMerge(op);
    }
  }

  private region(id: bigint): RegionMeta {
    const r = this.env.view.catalog.regions.get(id);
    if (!r) throw new StepError(`region ${id} no longer exists`, true);
    return r;
  }

  private storeRef(id: bigint): StoreRef {
    const s = this.env.view.catalog.stores.get(id);
    if (!s) throw new StepError(`store ${id} is not known`, true);
    return { id, addr: s.addr };
  }

  /** The region's leader when it is known and its store alive (else the step waits for one). */
  private leader(regionId: bigint): { peer: RegionPeer; store: StoreRef } | undefined {
    const peer = this.env.view.leaderOf(regionId);
    if (!peer || !this.env.view.isAlive(peer.storeId)) return undefined;
    return { peer, store: this.storeRef(peer.storeId) };
  }

  private checkRegionError(what: string, res: { regionError?: { kind: string; message: string } }): void {
    if (res.regionError) throw new StepError(`${what}: ${res.regionError.kind}: ${res.regionError.message}`);
  }

  /** A store to add the region's replica to: up, no replica of it, fewest replicas, then lowest id. */
  pickTargetStore(region: RegionMeta): bigint | undefined {
    const { view } = this.env;
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

  private async chooseTarget(op: Operation): Promise<StepOutcome> {
    const spec = op.spec;
    if (spec.kind !== 'replace-replica') return 'done';
    const region = this.region(spec.regionId);
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
    const target = this.pickTargetStore(region);
    if (target === undefined) {
      throw new StepError(`no up store without a replica of region ${region.id}`);
    }
    op.vars.toStoreId = target;
    return 'done';
  }

  private targetOf(op: Operation): { storeId: bigint; learner: boolean } {
    const spec = op.spec;
    if (spec.kind === 'add-peer') return { storeId: spec.storeId, learner: spec.learner };
    if (op.vars.toStoreId === undefined) throw new StepError('no target store chosen', true);
    return { storeId: op.vars.toStoreId, learner: false };
  }

  private async addPeer(op: Operation): Promise<StepOutcome> {
    const region = this.region(op.spec.regionId);
    const { storeId, learner } = this.targetOf(op);
    const there = region.peers.find((p) => p.storeId === storeId);
    if (there) {
      if (op.vars.peerId === undefined || op.vars.peerId === there.peerId) {
        op.vars.peerId = there.peerId;
        return 'done';
      }
      throw new StepError(
        `store ${storeId} holds peer ${there.peerId} of region ${region.id}, not ours`,
        true,
      );
    }
    const target = this.storeRef(storeId);
    if (this.env.view.storeState(storeId) !== 'up') throw new StepError(`target store ${storeId} is not up`);
    const leader = this.leader(region.id);
    if (!leader) return 'wait';
    if (op.vars.peerId === undefined) {
      op.vars.peerId = await this.env.allocIds(1);
      this.changed();
    }
    const res = await this.env.admin.addPeer(leader.store, {
      regionId: region.id,
      storeId,
      peerId: op.vars.peerId,
      targetAddr: target.addr,
      learner,
    });
    this.checkRegionError('AddPeer', res);
    if (res.region) await this.env.observeRegion(res.region);
    return 'done';
  }

  private async waitReplica(op: Operation): Promise<StepOutcome> {
    const region = this.region(op.spec.regionId);
    const { storeId } = this.targetOf(op);
    const peerId = op.vars.peerId;
    if (!region.peers.some((p) => p.storeId === storeId && (peerId === undefined || p.peerId === peerId))) {
      return 'wait';
    }
    try {
      const st = await this.env.admin.regionRuntimeStatus(this.storeRef(storeId), { regionId: region.id });
      if (st.tombstone) throw new StepError(`the new peer on store ${storeId} was removed`, true);
      return st.hosted && st.member ? 'done' : 'wait';
    } catch (err) {
      // A store without RegionRuntimeStatus: the membership in the region's metadata is all we know.
      if (isUnimplemented(err)) return 'done';
      throw err;
    }
  }

  /** The peer a remove step takes out (undefined: it is gone already). */
  private peerToRemove(op: Operation, region: RegionMeta): RegionPeer | undefined {
    const spec = op.spec;
    if (spec.kind === 'remove-peer') return region.peers.find((p) => p.peerId === spec.peerId);
    if (spec.kind === 'replace-replica') {
      return region.peers.find((p) => p.storeId === spec.fromStoreId && p.peerId !== op.vars.peerId);
    }
    return undefined;
  }

  /** Sends TransferLeader unless one was sent less than `transferRetryMs` ago. */
  private async issueTransfer(
    op: Operation,
    leader: { store: StoreRef },
    regionId: bigint,
    toPeerId: bigint,
  ): Promise<void> {
    const now = this.now();
    if (op.vars.issuedAtMs !== undefined && now - op.vars.issuedAtMs < this.transferRetryMs) return;
    op.vars.issuedAtMs = now;
    const res = await this.env.admin.transferLeader(leader.store, { regionId, toPeerId });
    this.checkRegionError('TransferLeader', res);
  }

  private async leaveLeadership(op: Operation): Promise<StepOutcome> {
    const region = this.region(op.spec.regionId);
    const victim = this.peerToRemove(op, region);
    if (!victim) return 'done';
    const { view } = this.env;
    const current = view.leaderOf(region.id);
    if (!current || current.peerId !== victim.peerId) return 'done';
    // The leader's store is down: a new leader is being elected among the others.
    if (!view.isAlive(current.storeId)) return 'wait';
    const live = view.regionLiveOf(region.id);
    const unhealthy = new Set(
      [...(live?.pendingPeers ?? []), ...(live?.downPeers ?? [])].map((p) => p.peerId),
    );
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
    await this.issueTransfer(op, { store: this.storeRef(current.storeId) }, region.id, to.peerId);
    return 'wait';
  }

  private async removePeer(op: Operation): Promise<StepOutcome> {
    const region = this.region(op.spec.regionId);
    const victim = this.peerToRemove(op, region);
    if (!victim) return 'done';
    const leader = this.leader(region.id);
    if (!leader) return 'wait';
    if (leader.peer.peerId === victim.peerId) {
      // It became the leader again since leave-leadership: go through that step once more.
      op.stepsDone = Math.max(0, op.steps.indexOf('leave-leadership'));
      return 'wait';
    }
    const res = await this.env.admin.removePeer(leader.store, { regionId: region.id, peerId: victim.peerId });
    this.checkRegionError('RemovePeer', res);
    if (res.region) await this.env.observeRegion(res.region);
    return 'done';
  }

  private async transferLeader(op: Operation): Promise<StepOutcome> {
    const spec = op.spec;
    if (spec.kind !== 'transfer-leader') return 'done';
    const region = this.region(spec.regionId);
    const to = region.peers.find((p) => p.peerId === spec.toPeerId);
    if (!to || to.learner)
      throw new StepError(`peer ${spec.toPeerId} is no voter of region ${region.id}`, true);
    const leader = this.leader(region.id);
    if (leader?.peer.peerId === to.peerId) return 'done';
    if (!leader) return 'wait';
    await this.issueTransfer(op, leader, region.id, to.peerId);
    return 'wait';
  }

  private async splitRegion(op: Operation): Promise<StepOutcome> {
    const spec = op.spec;
    if (spec.kind !== 'split-region') return 'done';
    const catalog = this.env.view.catalog;
    if (op.vars.newRegionId !== undefined && catalog.regions.has(op.vars.newRegionId)) return 'done';
    const region = this.region(spec.regionId);
    const k = spec.splitKey;
    if (
      Buffer.compare(k, region.startKey) <= 0 ||
      (region.endKey.length > 0 && Buffer.compare(k, region.endKey) >= 0)
    ) {
      throw new StepError(`split key ${formatKey(k)} is no longer inside region ${region.id}`, true);
    }
    const leader = this.leader(region.id);
    if (!leader) return 'wait';
    if (op.vars.newRegionId === undefined || op.vars.newPeerIds?.length !== region.peers.length) {
      const first = await this.env.allocIds(1 + region.peers.length);
      op.vars.newRegionId = first;
      op.vars.newPeerIds = region.peers.map((_, i) => first + 1n + BigInt(i));
      this.changed();
    }
    const res = await this.env.admin.splitRegion(leader.store, {
      regionId: region.id,
      splitKey: k,
      newRegionId: op.vars.newRegionId,
      newPeerIds: op.vars.newPeerIds,
    });
    this.checkRegionError('SplitRegion', res);
    if (res.left) await this.env.observeRegion(res.left);
    if (res.right) await this.env.observeRegion(res.right);
    return 'done';
  }

  /** The merge happened already: the source is gone and the target covers its range. */
  private merged(targetId: bigint, sourceId: bigint, source: RegionMeta | undefined): boolean {
    const catalog = this.env.view.catalog;
    const target = catalog.regions.get(targetId);
    if (!target || catalog.regions.has(sourceId) || !source) return false;
    const startsBefore = Buffer.compare(target.startKey, source.startKey) <= 0;
    const endsAfter =
      target.endKey.length === 0 ||
      (source.endKey.length > 0 && Buffer.compare(target.endKey, source.endKey) >= 0);
    return startsBefore && endsAfter;
  }

  private async prepareMerge(op: Operation): Promise<StepOutcome> {
    const spec = op.spec;
    if (spec.kind !== 'merge-regions') return 'done';
    if (op.vars.mergeSource && op.vars.prepareIndex !== undefined) return 'done';
    this.region(spec.regionId);
    const source = this.region(spec.sourceRegionId);
    const leader = this.leader(source.id);
    if (!leader) return 'wait';
    const res = await this.env.admin.prepareMerge(leader.store, {
      sourceRegionId: source.id,
      targetRegionId: spec.regionId,
    });
    this.checkRegionError('PrepareMerge', res);
    op.vars.mergeSource = res.source ?? source;
    op.vars.prepareIndex = res.prepareIndex;
    this.changed();
    return 'done';
  }

  /**
   * Every replica of the source must have applied PrepareMerge before CommitMerge: the target's
   * replica on each store takes over the source's data as that store holds it.
   */
  private async waitMergeApplied(op: Operation): Promise<StepOutcome> {
    const spec = op.spec;
    if (spec.kind !== 'merge-regions') return 'done';
    const source = op.vars.mergeSource;
    const prepareIndex = op.vars.prepareIndex;
    if (!source || prepareIndex === undefined) throw new StepError('the merge was not prepared', true);
    if (this.merged(spec.regionId, spec.sourceRegionId, source)) return 'done';
    for (const p of source.peers) {
      try {
        const st = await this.env.admin.regionRuntimeStatus(this.storeRef(p.storeId), {
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

  private async commitMerge(op: Operation): Promise<StepOutcome> {
    const spec = op.spec;
    if (spec.kind !== 'merge-regions') return 'done';
    const source = op.vars.mergeSource;
    if (this.merged(spec.regionId, spec.sourceRegionId, source)) return 'done';
    const prepareIndex = op.vars.prepareIndex;
    if (!source || prepareIndex === undefined) throw new StepError('the merge was not prepared', true);
    const target = this.region(spec.regionId);
    const leader = this.leader(target.id);
    if (!leader) return 'wait';
    const res = await this.env.admin.commitMerge(leader.store, {
      targetRegionId: target.id,
      source,
      sourcePrepareIndex: prepareIndex,
    });
    this.checkRegionError('CommitMerge', res);
    if (res.region) await this.env.observeRegion(res.region);
    return 'done';
  }

  // ---- persistence and shutdown ----

  private changed(): void {
    if (!this.opts.persistPath) return;
    this.dirty = true;
    this.saving ??= this.flush(this.opts.persistPath);
  }

  private async flush(path: string): Promise<void> {
    try {
      while (this.dirty) {
        this.dirty = false;
        const file: OperationsFile = {
          version: 1,
          nextId: this.nextId,
          operations: [...this.history, ...this.activeOps.values()].map(toRecord),
        };
        await writeAtomic(path, `${JSON.stringify(file)}\n`);
        this.persistError = undefined;
      }
    } catch (err) {
      this.persistError = (err as Error).message;
    } finally {
      this.saving = undefined;
    }
  }

  /** Starts nothing more (steps in flight go on until they settle). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.closed = true;
  }

  /** Stops, waits for steps in flight and the last write. */
  async close(): Promise<void> {
    this.stop();
    await this.idle();
    while (this.saving) await this.saving;
  }
}
