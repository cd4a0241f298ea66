/**
 * The cluster backend: Redis commands as Percolator transactions through the coordinator
 * (`TxnClient` over `connectCluster`): snapshot reads at a TSO timestamp that resolve the locks in
 * their way (a lock is never read as a value), buffered writes committed with two-phase commit.
 *
 * One transaction per command would cost two timestamps, a read and two Raft round trips each, and
 * on a hot key (50 clients INCRing one counter) nearly every transaction would lose its race. So
 * concurrent `transact` calls are run in groups ("batches") as ONE Percolator transaction:
 *
 * 1. The batch takes one start timestamp, after every member was called.
 * 2. Every member's function runs at once against that snapshot, with its own write buffer; point
 *    reads of all members are coalesced into one KvBatchGet per region.
 * 3. In arrival order, a member that read a key an earlier member wrote is run again, now reading
 *    the earlier members' writes. The outcome is exactly that of running the members one after the
 *    other in arrival order (later writes of a key win).
 * 4. The merged writes commit in one two-phase commit. Every member takes effect at its commit
 *    timestamp, between its call and its reply. A lost race (another gateway, another client)
 *    runs the batch again, counting an attempt against each member.
 *
 * While a batch commits, the next one gathers what arrives; a second one runs beside it only once
 * it has taken long (a big SCAN, a lock to wait out). A batch commits only after every earlier
 * batch whose writes it touches has committed (it is run again if it read them too early), so a
 * batch can never overtake an earlier one on a key. Members that only read, from the snapshot,
 * answer before the commit. `abortOnConflict` transactions (EXEC after WATCH) run in a batch of
 * their own, so only their own keys can make them lose; they keep their place in the order all
 * the same. A transaction's function must not call `transact` on the same backend (it would wait
 * for its own batch).
 */

import {
  ClientError,
  type CoordinatorClient,
  connectCluster,
  type RawClient,
  type Transaction,
  TxnClient,
  type TxnMutation,
} from '@nokv/raftstore';
import { BackendError, type BackendErrorCode, type BackendTxn, type KvBackend } from './backend.js';

export interface GroupCommitOptions {
  /**
   * Batches in flight at most (default 2). A second one starts only while the first has run for
   * `stallMs`: one batch at a time gathers the most requests, but a slow one (a long SCAN, a lock
   * to wait out) must not hold everyone up.
   */
  maxInFlight?: number;
  /** See `maxInFlight` (default 25 ms). */
  stallMs?: number;
  /**
   * With no batch in flight and fewer requests queued than the recent concurrency, wait this long
   * for the rest (the clients of the batch that just finished are sending their next requests) so
   * they join the next batch instead of forming the one after (default 2 ms; 0 = never).
   */
  lingerMs?: number;
  /** Transactions in one batch at most. Default 256. */
  maxRequests?: number;
  /** Bytes of keys and values one batch writes at most (a larger transaction commits alone). Default 4 MiB. */
  maxBytes?: number;
}

export interface ClusterBackendOptions {
  /** The coordinator (`host:port`): timestamps, routes and store addresses. */
  coordinatorAddr: string;
  /** Deadline of one storage operation, retries and lock resolution included (default 5000 ms). */
  timeoutMs?: number;
  /** How long `connect` keeps trying to reach the coordinator before it fails (default 10 000 ms). */
  connectTimeoutMs?: number;
  /** TTL of this gateway's transaction locks: how long a crashed gateway can hold a key (default 3000 ms). */
  lockTtlMs?: number;
  /** Group commit (default on); `false` runs every transaction alone. */
  groupCommit?: boolean | GroupCommitOptions;
  /**
   * A transaction called without `maxAttempts` retries lost write-write races for this long (and
   * at least 8 times) before it fails with Conflict (default 5000 ms).
   */
  conflictRetryMs?: number;
}

/** Counters since the backend was opened (exported as metrics by the gateway). */
export interface ClusterBackendStats {
  /** `transact` calls that returned. */
  transactions: number;
  /** Transactions (or batches) run again after losing a write-write race. */
  conflictRetries: number;
  /** `transact` calls that failed with Conflict (attempts used up, or abortOnConflict). */
  conflicts: number;
  /** Batches committed (or finished read-only), and the transactions they carried. */
  batches: number;
  batchedTransactions: number;
  /** Members run a second time within a batch because they read an earlier member's write. */
  reruns: number;
  /** Transactions waiting for a batch right now. */
  queued: number;
}

const DEFAULT_MAX_ATTEMPTS = 8;

/**
 * When a transaction that lost a race may not run again. An explicit `maxAttempts` is a hard
 * limit. Without one, lost races are retried for `conflictRetryMs` (and at least 8 times): several
 * gateways updating one hot key can lose eight races in a row, and Redis clients expect an INCR to
 * succeed, not a conflict error.
 */
interface RetryLimit {
  maxAttempts: number;
  /** Epoch ms until which lost races are retried whatever the count (0 = none). */
  until: number;
}

function exhausted(limit: RetryLimit, attempts: number): boolean {
  return attempts >= limit.maxAttempts && Date.now() >= limit.until;
}

export class ClusterBackend implements KvBackend {
  readonly kind = 'cluster' as const;
  private readonly batcher: Batcher | undefined;
  private readonly counters = { transactions: 0, conflictRetries: 0, conflicts: 0 };
  private closed = false;

  private constructor(
    private readonly txns: TxnClient,
    private readonly closeConnection: () => void,
    groupCommit: boolean | GroupCommitOptions,
    private readonly conflictRetryMs: number,
  ) {
    this.batcher =
      groupCommit === false
        ? undefined
        : new Batcher(txns, this.counters, groupCommit === true ? {} : groupCommit);
  }

  /**
   * Connects to the coordinator (retrying until `connectTimeoutMs`: it may still be starting).
   * @throws BackendError `Unavailable` when it cannot be reached in time.
   */
  static async connect(opts: ClusterBackendOptions): Promise<ClusterBackend> {
    const timeoutMs = positive(opts.timeoutMs ?? 5000, 'timeoutMs');
    const connectTimeoutMs = positive(opts.connectTimeoutMs ?? 10_000, 'connectTimeoutMs');
    const lockTtlMs = positive(opts.lockTtlMs ?? 3000, 'lockTtlMs');
    const deadline = Date.now() + connectTimeoutMs;
    let conn: { client: RawClient; coordinator: CoordinatorClient; close(): void };
    for (let attempt = 0; ; attempt++) {
      try {
        conn = await connectCluster({ coordinatorAddr: opts.coordinatorAddr, timeoutMs });
        break;
      } catch (err) {
        if (Date.now() >= deadline) {
          throw new BackendError(
            'Unavailable',
            `cannot reach the coordinator at ${opts.coordinatorAddr}: ${(err as Error).message}`,
            { cause: err },
          );
        }
        await sleep(Math.min(50 * 2 ** attempt, 500));
      }
    }
    const coordinator = conn.coordinator;
    const txns = new TxnClient({
      raw: conn.client,
      tso: () => coordinator.tso(),
      lockTtlMs,
      resolveTimeoutMs: timeoutMs,
    });
    const conflictRetryMs = opts.conflictRetryMs ?? 5000;
    if (!Number.isFinite(conflictRetryMs) || conflictRetryMs < 0) {
      conn.close();
      throw new BackendError('Internal', `conflictRetryMs must be >= 0; got ${conflictRetryMs}`);
    }
    return new ClusterBackend(txns, () => conn.close(), opts.groupCommit ?? true, conflictRetryMs);
  }

  stats(): ClusterBackendStats {
    return {
      ...this.counters,
      batches: this.batcher?.batches ?? 0,
      batchedTransactions: this.batcher?.batched ?? 0,
      reruns: this.batcher?.reruns ?? 0,
      queued: this.batcher?.queued ?? 0,
    };
  }

  async transact<T>(
    fn: (tx: BackendTxn) => Promise<T>,
    opts: { maxAttempts?: number; abortOnConflict?: boolean } = {},
  ): Promise<T> {
    if (this.closed) throw new BackendError('Unavailable', 'the cluster backend is closed');
    const limit: RetryLimit =
      opts.maxAttempts !== undefined
        ? { maxAttempts: Math.max(1, opts.maxAttempts), until: 0 }
        : { maxAttempts: DEFAULT_MAX_ATTEMPTS, until: Date.now() + this.conflictRetryMs };
    if (this.batcher) {
      const value = await this.batcher.submit(fn, limit, opts.abortOnConflict === true);
      this.counters.transactions++;
      return value as T;
    }
    return this.alone(fn, limit, opts.abortOnConflict === true);
  }

  /**
   * Without group commit: one NoKV transaction of its own, begun at the first read (a write-only
   * one needs no snapshot).
   */
  private async alone<T>(
    fn: (tx: BackendTxn) => Promise<T>,
    limit: RetryLimit,
    abortOnConflict: boolean,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const tx = new LazyTxn(this.txns);
      let result: T;
      try {
        result = await fn(tx);
      } catch (err) {
        // The command layer's own errors (WRONGTYPE …) pass through; storage failures are typed.
        throw err instanceof ClientError ? toBackendError(err) : err;
      }
      try {
        await tx.commit();
        this.counters.transactions++;
        return result;
      } catch (err) {
        const e = toBackendError(err);
        if (e.code !== 'Conflict') throw e;
        if (abortOnConflict || exhausted(limit, attempt)) {
          this.counters.conflicts++;
          throw new BackendError(
            'Conflict',
            abortOnConflict
              ? `transaction aborted: ${e.message}`
              : `transaction lost ${attempt} write-write races in a row: ${e.message}`,
            { cause: err },
          );
        }
        this.counters.conflictRetries++;
        await sleep(backoffMs(attempt, e));
      }
    }
  }

  /** Lets the batches in flight finish, then closes the connections. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.batcher?.close();
    this.closeConnection();
  }
}

// --- a transaction of its own ---------------------------------------------------------------------

/**
 * Writes are buffered here until the first read or guard begins the NoKV transaction (they move
 * into it then), so a transaction that never reads takes its start timestamp at commit.
 */
class LazyTxn implements BackendTxn {
  private txn: Transaction | undefined;
  private starting: Promise<Transaction> | undefined;
  private readonly early = new Map<string, TxnMutation>();

  constructor(private readonly client: TxnClient) {}

  private begin(): Promise<Transaction> {
    this.starting ??= this.client.begin().then((t) => {
      for (const m of this.early.values()) apply(t, m);
      this.early.clear();
      this.txn = t;
      return t;
    });
    return this.starting;
  }

  async get(key: Buffer): Promise<Buffer | undefined> {
    return storage(async () => (await this.begin()).get(key));
  }

  async getMany(keys: readonly Buffer[]): Promise<(Buffer | undefined)[]> {
    if (keys.length === 0) return [];
    return storage(async () => (await this.begin()).getMany(keys));
  }

  async scan(start: Buffer, end: Buffer, limit: number): Promise<{ key: Buffer; value: Buffer }[]> {
    if (limit <= 0) return [];
    return storage(async () => (await this.begin()).scan(start, end, limit));
  }

  put(key: Buffer, value: Buffer): void {
    this.write({ op: 'put', key: Buffer.from(key), value: Buffer.from(value) });
  }

  delete(key: Buffer): void {
    this.write({ op: 'delete', key: Buffer.from(key), value: undefined });
  }

  guard(key: Buffer): void {
    if (this.txn) {
      this.txn.lock(key);
      return;
    }
    const id = key.toString('latin1');
    if (!this.early.has(id)) this.early.set(id, { op: 'lock', key: Buffer.from(key), value: undefined });
    // A guard needs a snapshot no later than what the caller read: take it now. A failure
    // resurfaces at commit (the promise is kept).
    this.begin().catch(() => {});
  }

  private write(m: TxnMutation): void {
    if (this.txn) apply(this.txn, m);
    else this.early.set(m.key.toString('latin1'), m);
  }

  async commit(): Promise<void> {
    if (this.starting === undefined && this.early.size === 0) return; // nothing read, nothing written
    const t = await this.begin();
    await t.commit();
  }
}

function apply(t: Transaction, m: TxnMutation): void {
  if (m.op === 'put') t.put(m.key, m.value!);
  else if (m.op === 'delete') t.delete(m.key);
  else t.lock(m.key);
}

// --- batches ----------------------------------------------------------------------------------------

type Fn = (tx: BackendTxn) => Promise<unknown>;

interface Member {
  fn: Fn;
  attempts: number;
  limit: RetryLimit;
  /** Fail with Conflict on the first lost race instead of running again (runs alone). */
  abortOnConflict: boolean;
  /**
   * Run in a batch of its own: `abortOnConflict`, or a batch it was in was refused for a reason
   * that may be its own.
   */
  alone: boolean;
  done: boolean;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

/** What one run of a member's function did. */
interface Run {
  ok: boolean;
  value?: unknown;
  error?: unknown;
  /** Its writes (and guards, as `lock`), by key. */
  writes: Map<string, TxnMutation>;
  bytes: number;
  /** Keys it read from outside its own writes, and the ranges it scanned. */
  readKeys: Set<string>;
  ranges: { start: Buffer; end: Buffer }[];
  /** It read a write of an earlier member (not committed yet). */
  sawBatch: boolean;
}

/** The writes of a batch being committed, for the batches after it to check against. */
interface Committing {
  keys: Map<string, TxnMutation>;
  done: Promise<void>;
}

class Batcher {
  private queue: Member[] = [];
  private inFlight = 0;
  /** Members of the batches in flight, and when the oldest of them started. */
  private activeMembers = 0;
  private readonly starts = new Set<number>();
  /** Recent concurrency (members in flight + queued), decaying: the linger's target. */
  private concurrency = 0;
  private timer: NodeJS.Timeout | undefined;
  private lingering = false;
  private scheduled = false;
  /** Settles once the latest batch has registered its writes (or given up): the order of commits. */
  private turn: Promise<void> = Promise.resolve();
  private readonly committing = new Set<Committing>();
  private readonly idle: (() => void)[] = [];
  private readonly maxInFlight: number;
  private readonly maxRequests: number;
  private readonly maxBytes: number;
  private readonly stallMs: number;
  private readonly lingerMs: number;
  batches = 0;
  batched = 0;
  reruns = 0;

  constructor(
    private readonly client: TxnClient,
    private readonly counters: { conflictRetries: number; conflicts: number },
    opts: GroupCommitOptions,
  ) {
    this.maxInFlight = positive(opts.maxInFlight ?? 2, 'groupCommit.maxInFlight');
    this.maxRequests = positive(opts.maxRequests ?? 256, 'groupCommit.maxRequests');
    this.maxBytes = positive(opts.maxBytes ?? 4 * 1024 * 1024, 'groupCommit.maxBytes');
    this.stallMs = nonNegative(opts.stallMs ?? 25, 'groupCommit.stallMs');
    this.lingerMs = nonNegative(opts.lingerMs ?? 2, 'groupCommit.lingerMs');
  }

  get queued(): number {
    return this.queue.length;
  }

  submit(fn: Fn, limit: RetryLimit, abortOnConflict: boolean): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.queue.push({
        fn,
        attempts: 0,
        limit,
        abortOnConflict,
        alone: abortOnConflict,
        done: false,
        resolve,
        reject,
      });
      this.concurrency = Math.max(this.concurrency, this.activeMembers + this.queue.length);
      if (this.lingering && this.queue.length >= this.lingerTarget()) this.fire();
      else this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.maxInFlight) return;
    this.scheduled = true;
    // Let the calls of this turn of the event loop (a burst of pipelined commands) join.
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private lingerTarget(): number {
    return Math.min(this.maxRequests, Math.floor(this.concurrency * 0.75));
  }

  private arm(ms: number, linger: boolean): void {
    this.lingering = linger;
    this.timer = setTimeout(() => this.fire(), ms);
  }

  private fire(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.pump();
  }

  private pump(): void {
    if (this.timer !== undefined) return; // a linger or stall timer pumps
    while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
      if (this.inFlight > 0) {
        const wait = Math.min(...this.starts) + this.stallMs - performance.now();
        if (wait > 0) {
          this.arm(wait, false);
          return;
        }
      } else if (this.lingerMs > 0 && !this.lingering && this.queue.length < this.lingerTarget()) {
        this.arm(this.lingerMs, true);
        return;
      }
      this.lingering = false;
      const n = this.queue[0]!.alone ? 1 : this.queue.findIndex((m, i) => i > 0 && m.alone);
      const batch = this.queue.splice(0, Math.min(n <= 0 ? this.queue.length : n, this.maxRequests));
      const started = performance.now();
      this.inFlight++;
      this.starts.add(started);
      this.activeMembers += batch.length;
      void this.run(batch).finally(() => {
        this.inFlight--;
        this.starts.delete(started);
        this.activeMembers -= batch.length;
        this.concurrency *= 0.95;
        if (this.timer !== undefined && !this.lingering)
          this.fire(); // a slot is free: no need to wait
        else if (this.queue.length > 0) this.pump();
        else if (this.inFlight === 0) for (const wake of this.idle.splice(0)) wake();
      });
    }
  }

  /** Up to `n` queued members from the front, stopping at one that must run alone. */
  private takeQueued(n: number): Member[] {
    let k = 0;
    while (k < n && k < this.queue.length && !this.queue[k]!.alone) k++;
    return this.queue.splice(0, k);
  }

  private async run(members: Member[]): Promise<void> {
    const myTurn = this.turn;
    let passTurn!: () => void;
    this.turn = new Promise((r) => {
      passTurn = r;
    });
    try {
      await this.runInTurn(members, myTurn, passTurn);
    } catch (err) {
      // Not expected (every failure is handled per member): fail whoever is still waiting.
      for (const m of members) if (!m.done) settle(m, toBackendError(err));
    } finally {
      passTurn();
    }
  }

  private async runInTurn(members: Member[], myTurn: Promise<void>, passTurn: () => void): Promise<void> {
    let exec: Executed | undefined;
    for (;;) {
      exec = await this.execute(members);
      if (exec === undefined) return;
      // Commit after every earlier batch that writes what this one touches (run again if it did).
      await myTurn;
      const blockers = [...this.committing].filter((c) => touches(exec!.runs, c.keys));
      if (blockers.length === 0) break;
      await Promise.all(blockers.map((b) => b.done));
      // It runs again anyway: take along whatever queued up meanwhile (later arrivals, so the
      // order holds). On a hot key this is what makes batches large: one commits while the next
      // gathers every request that arrives.
      members = [...exec.members, ...this.takeQueued(this.maxRequests - exec.members.length)];
    }
    let finished!: () => void;
    const mine: Committing = {
      keys: new Map(exec.merged),
      done: new Promise((r) => {
        finished = r;
      }),
    };
    this.committing.add(mine);
    passTurn();
    try {
      for (;;) {
        // Members that saw only the snapshot and failed or wrote nothing are done already: their
        // outcome does not depend on this commit.
        const pending: Member[] = [];
        const pendingRuns: Run[] = [];
        for (let i = 0; i < exec.runs.length; i++) {
          const r = exec.runs[i]!;
          if (!r.sawBatch && (!r.ok || r.writes.size === 0)) finish(exec.members[i]!, r);
          else {
            pending.push(exec.members[i]!);
            pendingRuns.push(r);
          }
        }
        this.batches++;
        this.batched += exec.members.length;
        if (pending.length === 0) return;
        const again: Member[] = [];
        let lost: BackendError | undefined;
        for (const part of await this.commitParts(exec, pending, pendingRuns)) {
          if (part.err === undefined) {
            for (let i = 0; i < part.members.length; i++) finish(part.members[i]!, part.runs[i]!);
          } else {
            again.push(...this.failed(part.members, part.err));
            lost = part.err;
          }
        }
        if (again.length === 0) return;
        this.counters.conflictRetries++;
        await sleep(backoffMs(Math.max(...again.map((m) => m.attempts)), lost!));
        // Run again in place, still holding this batch's keys (plus any new ones), so a later
        // batch on them cannot commit before these transactions do.
        exec = await this.execute(again);
        if (exec === undefined) return;
        for (const [k, m] of exec.merged) mine.keys.set(k, m);
      }
    } finally {
      this.committing.delete(mine);
      finished();
    }
  }

  /**
   * Begins the batch's transaction and runs the members: all at once against the snapshot, then,
   * in arrival order, again on top of the earlier members' writes if they read any. Members past
   * the byte limit go back to the queue. Undefined: no timestamp (every member has failed).
   */
  private async execute(members: Member[]): Promise<Executed | undefined> {
    let txn: Transaction;
    try {
      txn = await this.client.begin();
    } catch (err) {
      for (const m of members) settle(m, toBackendError(err));
      return undefined;
    }
    const reader = new SnapshotReader(this.client, txn.startTs);
    const first = await Promise.all(members.map((m) => runMember(m.fn, reader, undefined)));

    const merged = new Map<string, TxnMutation>();
    const runs: Run[] = [];
    let bytes = 0;
    for (let i = 0; i < members.length; i++) {
      let r = first[i]!;
      if (readsAny(r, merged)) {
        this.reruns++;
        r = await runMember(members[i]!.fn, reader, merged);
      }
      if (i > 0 && r.ok && bytes + r.bytes > this.maxBytes) {
        // Too much for one commit: the rest go into the next batch.
        this.queue.unshift(...members.slice(i));
        this.schedule();
        break;
      }
      runs.push(r);
      if (r.ok) {
        bytes += r.bytes;
        mergeInto(merged, r.writes);
      }
    }
    return { txn, members: members.slice(0, runs.length), runs, merged };
  }

  /**
   * Commits the members' writes: as one transaction, or, when every member only writes and each
   * within one region, as one transaction per region committing in parallel (members of different
   * regions share no key, so nothing orders them; a transaction within one region needs one
   * prewrite and one commit round trip where one across two needs four). The first part reuses the
   * batch's timestamp, the others take their own: a timestamp names one transaction.
   */
  private async commitParts(
    exec: Executed,
    members: Member[],
    runs: Run[],
  ): Promise<{ members: Member[]; runs: Run[]; err: BackendError | undefined }[]> {
    const parts = await this.regionParts(runs);
    if (parts === undefined) return [{ members, runs, err: await commit(exec.txn, exec.merged) }];
    return Promise.all(
      parts.map(async (idx, n) => {
        const part = { members: idx.map((i) => members[i]!), runs: idx.map((i) => runs[i]!) };
        const merged = new Map<string, TxnMutation>();
        for (const r of part.runs) if (r.ok) mergeInto(merged, r.writes);
        let txn = exec.txn;
        if (n > 0) {
          try {
            txn = await this.client.begin();
          } catch (err) {
            return { ...part, err: toBackendError(err) };
          }
        }
        return { ...part, err: await commit(txn, merged) };
      }),
    );
  }

  /** Indexes of `runs` by region, if every run only writes, within one region, and there are several regions. */
  private async regionParts(runs: readonly Run[]): Promise<number[][] | undefined> {
    if (runs.some((r) => r.readKeys.size > 0 || r.ranges.length > 0)) return undefined;
    const parts = new Map<bigint, number[]>();
    try {
      for (let i = 0; i < runs.length; i++) {
        let region: bigint | undefined;
        for (const m of runs[i]!.writes.values()) {
          const id = (await this.client.raw.locateAsync(m.key)).id;
          if (region !== undefined && id !== region) return undefined;
          region = id;
        }
        if (region === undefined) return undefined;
        const part = parts.get(region);
        if (part) part.push(i);
        else parts.set(region, [i]);
      }
    } catch {
      return undefined; // no route yet: the single commit reports it
    }
    return parts.size > 1 ? [...parts.values()] : undefined;
  }

  /**
   * A batch's commit failed. A lost race: the members with attempts left are returned to run
   * again, the others fail with Conflict. Refused as a whole for another reason
   * (too large for one request, a bad key …): each member goes back to the queue to run alone, so
   * only the culprit fails. Anything else fails every member.
   */
  private failed(members: Member[], e: BackendError): Member[] {
    if (e.code === 'Conflict') {
      const again: Member[] = [];
      for (const m of members) {
        m.attempts++;
        if (m.abortOnConflict) {
          this.counters.conflicts++;
          settle(m, new BackendError('Conflict', `transaction aborted: ${e.message}`, { cause: e }));
        } else if (exhausted(m.limit, m.attempts)) {
          this.counters.conflicts++;
          settle(
            m,
            new BackendError(
              'Conflict',
              `transaction lost ${m.attempts} write-write races in a row: ${e.message}`,
              {
                cause: e,
              },
            ),
          );
        } else again.push(m);
      }
      return again;
    }
    if (e.code === 'Internal' && members.length > 1) {
      for (const m of members) m.alone = true;
      this.queue.unshift(...members);
      this.schedule();
      return [];
    }
    for (const m of members) settle(m, e);
    return [];
  }

  /** Resolves once no batch is queued or in flight. */
  close(): Promise<void> {
    if (this.inFlight === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }
}

/** A batch's transaction after its members ran: what to commit. */
interface Executed {
  txn: Transaction;
  members: Member[];
  runs: Run[];
  merged: Map<string, TxnMutation>;
}

/** Two-phase commit of a batch's merged writes; undefined = committed (or nothing to write). */
async function commit(txn: Transaction, merged: Map<string, TxnMutation>): Promise<BackendError | undefined> {
  if (merged.size === 0) return undefined;
  try {
    for (const m of merged.values()) apply(txn, m);
    await txn.commit();
    return undefined;
  } catch (err) {
    return toBackendError(err);
  }
}

function finish(m: Member, r: Run): void {
  if (r.ok) {
    m.done = true;
    m.resolve(r.value);
  } else settle(m, r.error instanceof ClientError ? toBackendError(r.error) : r.error);
}

function settle(m: Member, err: unknown): void {
  if (m.done) return;
  m.done = true;
  m.reject(err);
}

/** Whether `r` read a key `merged` writes (a guard is not a write). */
function readsAny(r: Run, merged: Map<string, TxnMutation>): boolean {
  if (merged.size === 0) return false;
  for (const k of r.readKeys) {
    const m = merged.get(k);
    if (m !== undefined && m.op !== 'lock') return true;
  }
  if (r.ranges.length === 0) return false;
  for (const m of merged.values()) if (m.op !== 'lock' && inRanges(m.key, r.ranges)) return true;
  return false;
}

/** Whether any run reads or writes a key `keys` writes or guards. */
function touches(runs: readonly Run[], keys: Map<string, TxnMutation>): boolean {
  if (keys.size === 0) return false;
  for (const r of runs) {
    for (const k of r.readKeys) if (keys.has(k)) return true;
    for (const k of r.writes.keys()) if (keys.has(k)) return true;
    if (r.ranges.length > 0) for (const m of keys.values()) if (inRanges(m.key, r.ranges)) return true;
  }
  return false;
}

function inRanges(key: Buffer, ranges: readonly { start: Buffer; end: Buffer }[]): boolean {
  return ranges.some((g) => inRange(key, g.start, g.end));
}

function inRange(key: Buffer, start: Buffer, end: Buffer): boolean {
  return Buffer.compare(key, start) >= 0 && (end.length === 0 || Buffer.compare(key, end) < 0);
}

function mergeInto(merged: Map<string, TxnMutation>, writes: Map<string, TxnMutation>): void {
  for (const [k, m] of writes) {
    // A guard does not replace a write of the key.
    if (m.op === 'lock' && merged.has(k)) continue;
    merged.set(k, m);
  }
}

/** One run of a member's function, recording what it read and wrote. */
async function runMember(
  fn: Fn,
  reader: SnapshotReader,
  merged: Map<string, TxnMutation> | undefined,
): Promise<Run> {
  const run: Run = {
    ok: false,
    writes: new Map(),
    bytes: 0,
    readKeys: new Set(),
    ranges: [],
    sawBatch: false,
  };
  const tx = new MemberTxn(reader, merged, run);
  try {
    run.value = await fn(tx);
    run.ok = true;
  } catch (err) {
    run.error = err;
  }
  tx.closed = true;
  return run;
}

/**
 * A member's view: its own writes over (on a second run) the earlier members' writes over the
 * batch's snapshot. Records what it read, for the checks against other members and batches.
 */
class MemberTxn implements BackendTxn {
  closed = false;

  constructor(
    private readonly reader: SnapshotReader,
    private readonly merged: Map<string, TxnMutation> | undefined,
    private readonly run: Run,
  ) {}

  /** The key's value without a snapshot read, or `miss`. */
  private local(id: string): Buffer | undefined | typeof MISS {
    const own = this.run.writes.get(id);
    if (own !== undefined && own.op !== 'lock') return own.value;
    this.run.readKeys.add(id);
    const m = this.merged?.get(id);
    if (m !== undefined && m.op !== 'lock') {
      this.run.sawBatch = true;
      return m.value;
    }
    return MISS;
  }

  async get(key: Buffer): Promise<Buffer | undefined> {
    const v = this.local(key.toString('latin1'));
    return v === MISS ? this.reader.get(key) : v;
  }

  async getMany(keys: readonly Buffer[]): Promise<(Buffer | undefined)[]> {
    const out = keys.map((k) => this.local(k.toString('latin1')));
    const missing = keys.filter((_, i) => out[i] === MISS);
    if (missing.length === 0) return out as (Buffer | undefined)[];
    const got = await this.reader.getMany(missing);
    let next = 0;
    return out.map((v) => (v === MISS ? got[next++] : v));
  }

  async scan(start: Buffer, end: Buffer, limit: number): Promise<{ key: Buffer; value: Buffer }[]> {
    if (limit <= 0) return [];
    this.run.ranges.push({ start: Buffer.from(start), end: Buffer.from(end) });
    // Overlays, later over earlier: the batch's earlier writes, then this member's.
    const overlay = new Map<string, TxnMutation>();
    for (const m of this.merged?.values() ?? []) {
      if (m.op !== 'lock' && inRange(m.key, start, end)) {
        overlay.set(m.key.toString('latin1'), m);
        this.run.sawBatch = true;
      }
    }
    for (const m of this.run.writes.values()) {
      if (m.op !== 'lock' && inRange(m.key, start, end)) overlay.set(m.key.toString('latin1'), m);
    }
    // Deletes can hide at most that many snapshot pairs: fetch that many more.
    let deletes = 0;
    for (const m of overlay.values()) if (m.op === 'delete') deletes++;
    const rows = await this.reader.scan(start, end, limit + deletes);
    const out = new Map<string, { key: Buffer; value: Buffer }>();
    for (const r of rows) out.set(r.key.toString('latin1'), r);
    for (const [id, m] of overlay) {
      if (m.op === 'delete') out.delete(id);
      else out.set(id, { key: m.key, value: m.value! });
    }
    return [...out.values()].sort((a, b) => Buffer.compare(a.key, b.key)).slice(0, limit);
  }

  put(key: Buffer, value: Buffer): void {
    this.write({ op: 'put', key: Buffer.from(key), value: Buffer.from(value) });
  }

  delete(key: Buffer): void {
    this.write({ op: 'delete', key: Buffer.from(key), value: undefined });
  }

  guard(key: Buffer): void {
    const id = key.toString('latin1');
    this.run.readKeys.add(id);
    if (!this.run.writes.has(id))
      this.run.writes.set(id, { op: 'lock', key: Buffer.from(key), value: undefined });
  }

  private write(m: TxnMutation): void {
    if (this.closed) throw new BackendError('Internal', 'write after the transaction function returned');
    this.run.writes.set(m.key.toString('latin1'), m);
    this.run.bytes += m.key.length + (m.value?.length ?? 0);
  }
}

const MISS = Symbol('miss');

/**
 * Reads at a batch's start timestamp. Point reads issued in the same turn of the event loop go out
 * together (one KvBatchGet per region); values at a fixed timestamp never change, so each key is
 * read once per batch.
 */
class SnapshotReader {
  private readonly values = new Map<string, Promise<Buffer | undefined>>();
  private pending: { key: Buffer; resolve(v: Buffer | undefined): void; reject(err: unknown): void }[] = [];

  constructor(
    private readonly client: TxnClient,
    readonly ts: bigint,
  ) {}

  get(key: Buffer): Promise<Buffer | undefined> {
    const id = key.toString('latin1');
    let p = this.values.get(id);
    if (!p) {
      p = new Promise((resolve, reject) => {
        if (this.pending.length === 0) setImmediate(() => this.flush());
        this.pending.push({ key: Buffer.from(key), resolve, reject });
      });
      this.values.set(id, p);
    }
    return p;
  }

  getMany(keys: readonly Buffer[]): Promise<(Buffer | undefined)[]> {
    return Promise.all(keys.map((k) => this.get(k)));
  }

  scan(start: Buffer, end: Buffer, limit: number): Promise<{ key: Buffer; value: Buffer }[]> {
    return storage(() => this.client.scanAt(start, end, limit, this.ts));
  }

  private flush(): void {
    const batch = this.pending;
    this.pending = [];
    this.client
      .batchGetAt(
        batch.map((b) => b.key),
        this.ts,
      )
      .then(
        (values) => {
          for (let i = 0; i < batch.length; i++) batch[i]!.resolve(values[i]);
        },
        (err: unknown) => {
          const e = toBackendError(err);
          // A failed read is not cached: a later run of the batch may read again.
          for (const b of batch) this.values.delete(b.key.toString('latin1'));
          for (const b of batch) b.reject(e);
        },
      );
  }
}

// --- errors -----------------------------------------------------------------------------------------

/** Runs a storage call, typing its failures. */
async function storage<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw err instanceof ClientError ? toBackendError(err) : err;
  }
}

/**
 * A client failure as the command layer sees it: lost races → `Conflict`; no timestamp or no
 * route (coordinator or leader unavailable) → `Unavailable` (the client is told to try again);
 * deadlines and commits of unknown outcome → `Timeout`; the rest → `Internal`.
 */
export function toBackendError(err: unknown): BackendError {
  if (err instanceof BackendError) return err;
  if (!(err instanceof ClientError)) {
    return new BackendError('Internal', err instanceof Error ? err.message : String(err), { cause: err });
  }
  const message =
    err.code === 'Unknown'
      ? `commit outcome unknown (it happened whole or not at all): ${err.message}`
      : err.message;
  return new BackendError(backendCode(err), message, { cause: err });
}

function backendCode(err: ClientError): BackendErrorCode {
  switch (err.code) {
    case 'Conflict':
      return 'Conflict';
    case 'Aborted': {
      // Nothing was committed. Caused by a deadline → report that; otherwise (a reader pushed the
      // commit past its timestamp, another transaction rolled this one back) run it again.
      const cause = err.cause;
      if (cause instanceof ClientError) return backendCode(cause) === 'Conflict' ? 'Conflict' : 'Timeout';
      return 'Conflict';
    }
    case 'Timeout':
    case 'Unknown':
      return 'Timeout';
    case 'TsoUnavailable':
    case 'RouteUnavailable':
    case 'NoRoute':
    case 'StoreNotMatch':
      return 'Unavailable';
    default:
      return 'Internal';
  }
}

/**
 * The pause before running a transaction again after it lost a race. The winner already committed
 * (a write conflict): the next snapshot sees it, so go again at once, jittered only so racing
 * gateways do not move in lockstep. The winner still holds its locks: give it the few milliseconds
 * a commit takes, longer with each loss.
 */
function backoffMs(attempt: number, err: BackendError): number {
  if (/write conflict/.test(err.message)) return Math.random() * 2;
  const cap = Math.min(2 * 2 ** attempt, 50);
  return 1 + Math.random() * cap;
}

function nonNegative(n: number, what: string): number {
  if (!Number.isFinite(n) || n < 0) throw new BackendError('Internal', `${what} must be >= 0; got ${n}`);
  return n;
}

function positive(n: number, what: string): number {
  if (!Number.isFinite(n) || n <= 0) throw new BackendError('Internal', `${what} must be positive; got ${n}`);
  return n;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
