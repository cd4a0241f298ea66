import type { RegionMeta } from '@nokv/proto';
import { CoordinatorError, OperatorError } from '../errors.js';
import { isPermanentRpcFailure } from '../store-admin.js';
import {
  type Operation,
  type OperationFilter,
  type OperationSource,
  type OperationSpec,
  type OperationState,
  type OperatorEnv,
  type OperatorQueueOptions,
  PLANS,
  regionsOf,
  type StepName,
  storesOf,
  TERMINAL,
} from './model.js';
import { readOperationsFile, writeOperationsFile } from './persist.js';
import { pickTargetStore, runStep, type StepContext, StepError, type StepOutcome } from './steps/index.js';
import { validateSpec } from './validate.js';

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
  private readonly stepCtx: StepContext;
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
    this.stepCtx = {
      env,
      transferRetryMs: this.transferRetryMs,
      now: () => this.now(),
      changed: () => this.changed(),
    };
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
    const file = await readOperationsFile(path, () => this.now());
    if (!file) return;
    for (const op of file.operations) {
      if (TERMINAL.has(op.state)) this.history.push(op);
      else this.activeOps.set(op.id, op);
      this.nextId = Math.max(this.nextId, op.id + 1);
    }
    this.nextId = Math.max(this.nextId, file.nextId);
    this.history.sort((a, b) => a.id - b.id);
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
    validateSpec(this.env.view, spec);
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
        outcome = await runStep(this.stepCtx, step, op);
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

  /** A store to add the region's replica to: up, no replica of it, fewest replicas, then lowest id. */
  pickTargetStore(region: RegionMeta): bigint | undefined {
    return pickTargetStore(this.env.view, region);
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
        await writeOperationsFile(path, this.nextId, [...this.history, ...this.activeOps.values()]);
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
