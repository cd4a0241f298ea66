import { keyInRegion, NoKVService, type nokv, uint64FromWire, uint64ToWire } from '@nokv/proto';
import { tsPhysicalMs } from '../txn/timestamp.js';
import { ClientError, type RawClient } from './raw-client.js';

// A Percolator transaction client over a RawClient's routing. Snapshot reads at a timestamp that
// resolve the locks in their way; buffered writes committed with two-phase commit across regions
// (prewrite the primary's region first, then the others; commit the primary — the commit point —
// together with the other keys of its region, then the remaining secondaries, which readers roll
// forward if this client never gets to them).
//
// Failure rules: before the primary's commit nothing is committed, so a failure there is a
// definite one ('Conflict' for write conflicts and rollbacks by others, 'Aborted' for anything else
// — the caller may run the whole transaction again), and the locks written so far are rolled back
// on a best-effort basis. A failure of the primary's commit after the request may have reached the
// store is 'Unknown' and must not be retried blindly: the transaction either happened whole or
// not at all, and only a later read tells which.

type KeyErrorWire = nokv.kv.v1.KeyError.$Properties;
type LockWire = nokv.kv.v1.LockInfo.$Properties;

export interface TxnClientOptions {
  /** Routing and region-error handling (its per-operation deadline applies to every RPC). */
  raw: RawClient;
  /** The timestamp oracle (the coordinator's Tso). A failure → ClientError `TsoUnavailable`. */
  tso: () => Promise<bigint>;
  /** Lock TTL of a transaction's locks, in milliseconds (default 3000). */
  lockTtlMs?: number;
  /** How long a read keeps resolving the locks in its way before it fails with `Timeout` (default 10 s). */
  resolveTimeoutMs?: number;
}

/** A lock found in the way of a read or a prewrite. */
export interface LockInfo {
  key: Buffer;
  primary: Buffer;
  lockTs: bigint;
  ttlMs: number;
  minCommitTs: bigint;
}

/** What a lock resolution did: cleaned it up, learned it commits after the reader, or found it alive. */
export type ResolveOutcome = 'resolved' | 'pushed' | 'alive';

/** The status of a transaction as its primary key's region knows it. */
export interface TxnStatus {
  state: 'alive' | 'committed' | 'rolledBack';
  commitTs: bigint;
  lockTtlMs: number;
  action: nokv.kv.v1.CheckTxnStatusAction;
}

class Regroup extends Error {}

/** Keys per KvBatchGet (the store refuses batches above 4096). */
const MAX_BATCH_GET_KEYS = 4096;
/** Bytes of keys and values per KvPrewrite (the store refuses more than 8 MiB of values). */
const PREWRITE_REQUEST_BYTES = 4 * 1024 * 1024;
/** Pairs per KvScan (the store refuses limits above 10 000). */
const MAX_SCAN_PAGE = 10_000;

export class TxnClient {
  readonly raw: RawClient;
  readonly lockTtlMs: number;
  private readonly tsoFn: () => Promise<bigint>;
  private readonly resolveTimeoutMs: number;

  constructor(options: TxnClientOptions) {
    this.raw = options.raw;
    this.tsoFn = options.tso;
    this.lockTtlMs = options.lockTtlMs ?? 3000;
    this.resolveTimeoutMs = options.resolveTimeoutMs ?? 10_000;
  }

  /** A fresh timestamp. @throws ClientError `TsoUnavailable` */
  async timestamp(): Promise<bigint> {
    try {
      return await this.tsoFn();
    } catch (err) {
      if (err instanceof ClientError && err.code === 'TsoUnavailable') throw err;
      throw new ClientError('TsoUnavailable', `cannot get a timestamp: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  /** The committed value of `key` at a fresh timestamp. */
  async get(key: Uint8Array | string): Promise<Buffer | undefined> {
    return this.getAt(bytes(key), await this.timestamp());
  }

  /** Committed pairs in [start, end) (empty end = +inf) at a fresh timestamp, across regions. */
  async scan(
    start: Uint8Array | string,
    end: Uint8Array | string,
    limit = 256,
  ): Promise<{ key: Buffer; value: Buffer }[]> {
    return this.scanAt(bytes(start), bytes(end), limit, await this.timestamp());
  }

  /** A single-key transaction writing `value`. */
  async put(key: Uint8Array | string, value: Uint8Array | string): Promise<void> {
    await this.transaction(async (txn) => txn.put(key, value));
  }

  /** A single-key transaction deleting `key`. */
  async delete(key: Uint8Array | string): Promise<void> {
    await this.transaction(async (txn) => txn.delete(key));
  }

  /** Starts a transaction at a fresh timestamp (commit it with `commit()`). */
  async begin(): Promise<Transaction> {
    return new Transaction(this, await this.timestamp());
  }

  /**
   * Runs `fn` in a transaction and commits what it wrote. If `fn` throws, nothing is written.
   * Never retried automatically: on `Conflict`/`Aborted` the caller may run it again; on
   * `Unknown` it either committed whole or not at all.
   */
  async transaction<T>(fn: (txn: Transaction) => Promise<T>): Promise<T> {
    const txn = await this.begin();
    const result = await fn(txn);
    await txn.commit();
    return result;
  }

  // --- snapshot reads ---------------------------------------------------------------------------

  /** The committed value of `key` at `ts`, resolving locks in the way. */
  async getAt(key: Uint8Array, ts: bigint): Promise<Buffer | undefined> {
    return this.resolvingReads<Buffer | undefined>(ts, async (resolved) => {
      const res = await this.raw.regionCall(key, 'read', (client, ctx, ms) =>
        client.call(
          NoKVService.KvGet,
          { context: ctx, key, version: u64(ts), resolvedLocks: resolved.map(u64) },
          { deadlineMs: ms },
        ),
      );
      if (res.error) return { error: res.error };
      return { value: res.notFound ? undefined : Buffer.from(res.value ?? new Uint8Array(0)) };
    });
  }

  /**
   * The committed values of `keys` at `ts` (aligned with `keys`; duplicates allowed), one KvBatchGet
   * per region sent in parallel, each resolving the locks in its way like `getAt`.
   */
  async batchGetAt(keys: readonly Uint8Array[], ts: bigint): Promise<(Buffer | undefined)[]> {
    const unique = new Map<string, Buffer>();
    for (const k of keys) {
      const b = Buffer.from(k);
      unique.set(b.toString('latin1'), b);
    }
    const found = new Map<string, Buffer>();
    const groups = await this.groupByRegion([...unique.values()]);
    const chunks = groups.flatMap((g) => chunk(g, MAX_BATCH_GET_KEYS));
    await Promise.all(chunks.map((g) => this.batchGetGroup(g, ts, found)));
    return keys.map((k) => found.get(Buffer.from(k).toString('latin1')));
  }

  private async batchGetGroup(keys: Buffer[], ts: bigint, found: Map<string, Buffer>): Promise<void> {
    let pairs: { key: Buffer; value: Buffer }[];
    try {
      pairs = await this.resolvingReads<{ key: Buffer; value: Buffer }[]>(ts, async (resolved) => {
        const res = await this.raw.regionCall(keys[0]!, 'read', async (client, ctx, ms) => {
          // The cache may have learned of a split since the keys were grouped.
          const region = await this.raw.locateAsync(keys[0]!);
          if (!keys.every((k) => keyInRegion(k, region))) throw new Regroup();
          return client.call(
            NoKVService.KvBatchGet,
            { context: ctx, keys, version: u64(ts), resolvedLocks: resolved.map(u64) },
            { deadlineMs: ms },
          );
        });
        // With a lock in the way the pairs are partial: resolve it and read the whole group again.
        if (res.error) return { error: res.error };
        return {
          value: (res.pairs ?? []).map((p) => ({
            key: Buffer.from(p.key ?? []),
            value: Buffer.from(p.value ?? []),
          })),
        };
      });
    } catch (err) {
      if (!(err instanceof Regroup)) throw err;
      const groups = await this.groupByRegion(keys);
      await Promise.all(groups.map((g) => this.batchGetGroup(g, ts, found)));
      return;
    }
    for (const p of pairs) found.set(p.key.toString('latin1'), p.value);
  }

  /** Committed pairs in [start, end) at `ts`, across regions, resolving locks in the way. */
  async scanAt(
    start: Uint8Array,
    end: Uint8Array,
    limit: number,
    ts: bigint,
  ): Promise<{ key: Buffer; value: Buffer }[]> {
    const out: { key: Buffer; value: Buffer }[] = [];
    let from = Buffer.from(start);
    const to = Buffer.from(end);
    while (out.length < limit) {
      // The store answers at most MAX_SCAN_PAGE pairs per call: larger scans take several pages.
      const want = Math.min(limit - out.length, MAX_SCAN_PAGE);
      const page = await this.resolvingReads<{ key: Buffer; value: Buffer }[]>(ts, async (resolved) => {
        const res = await this.raw.regionCall(from, 'read', (client, ctx, ms) =>
          client.call(
            NoKVService.KvScan,
            {
              context: ctx,
              startKey: from,
              endKey: to,
              limit: want,
              version: u64(ts),
              resolvedLocks: resolved.map(u64),
            },
            { deadlineMs: ms },
          ),
        );
        if (res.error) return { error: res.error };
        return {
          value: (res.kvs ?? []).map((kv) => ({
            key: Buffer.from(kv.key ?? []),
            value: Buffer.from(kv.value ?? []),
          })),
        };
      });
      out.push(...page);
      if (out.length >= limit) break;
      if (page.length >= want) {
        // A full page: the region may hold more right after its last key.
        from = Buffer.concat([page[page.length - 1]!.key, Buffer.from([0])]);
        if (to.length > 0 && Buffer.compare(from, to) >= 0) break;
        continue;
      }
      // This region is exhausted in the range: continue in the next one.
      const regionEnd = Buffer.from((await this.raw.locateAsync(from)).endKey);
      if (regionEnd.length === 0 || (to.length > 0 && Buffer.compare(regionEnd, to) >= 0)) break;
      from = regionEnd;
    }
    return out.slice(0, limit);
  }

  /**
   * Runs a read until it meets no lock: each lock in the way is resolved (its owner's status is
   * checked on its primary: committed → rolled forward, rolled back or expired → cleaned up,
   * alive → its commit is pushed past `ts` so the read may pass it), within the resolve deadline.
   */
  private async resolvingReads<T>(
    ts: bigint,
    attempt: (resolved: bigint[]) => Promise<{ value: T } | { error: KeyErrorWire }>,
  ): Promise<T> {
    const deadline = Date.now() + this.resolveTimeoutMs;
    const resolved = new Set<bigint>();
    let backoff = 10;
    for (;;) {
      const r = await attempt([...resolved]);
      if ('value' in r) return r.value;
      const lock = r.error.locked;
      if (!lock) throw keyErrorToClient(r.error, 'read');
      const info = lockFromWire(lock);
      if (Date.now() > deadline) {
        throw new ClientError(
          'Timeout',
          `read at ${ts} still blocked after ${this.resolveTimeoutMs} ms by the lock of transaction ${info.lockTs} on ${show(info.key)}`,
        );
      }
      let outcome: ResolveOutcome;
      try {
        outcome = await this.resolveLock(info, ts);
      } catch (err) {
        if (!(err instanceof ClientError) || err.code === 'InvalidArgument') throw err;
        outcome = 'alive'; // could not reach the primary's region this time: back off and retry
      }
      if (outcome === 'pushed') resolved.add(info.lockTs);
      if (outcome === 'alive') {
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 200);
      }
    }
  }

  /**
   * Resolves one lock: checks its transaction on the primary (rolling it back if its TTL ran out,
   * and with `callerStartTs` > 0 pushing its commit past that reader), then commits or rolls back
   * the lock on its own key accordingly.
   */
  async resolveLock(lock: LockInfo, callerStartTs: bigint): Promise<ResolveOutcome> {
    const status = await this.checkTxnStatus(lock.primary, lock.lockTs, callerStartTs, true);
    if (status.state === 'alive') return callerStartTs > 0n ? 'pushed' : 'alive';
    await this.resolveLocks(lock.lockTs, status.state === 'committed' ? status.commitTs : 0n, [lock.key]);
    return 'resolved';
  }

  /** CheckTxnStatus on the transaction's primary key at a fresh timestamp. */
  async checkTxnStatus(
    primary: Uint8Array,
    lockTs: bigint,
    callerStartTs: bigint,
    rollbackIfNotExist: boolean,
  ): Promise<TxnStatus> {
    const currentTs = await this.timestamp();
    const res = await this.raw.regionCall(primary, 'write', (client, ctx, ms) =>
      client.call(
        NoKVService.KvCheckTxnStatus,
        {
          context: ctx,
          primaryKey: primary,
          lockTs: u64(lockTs),
          currentTs: u64(currentTs),
          callerStartTs: u64(callerStartTs),
          rollbackIfNotExist,
        },
        { deadlineMs: ms },
      ),
    );
    if (res.error) throw keyErrorToClient(res.error, 'check of a transaction');
    const commitTs = uint64FromWire(res.commitVersion);
    const lockTtlMs = Number(uint64FromWire(res.lockTtl));
    const state = commitTs > 0n ? 'committed' : lockTtlMs > 0 ? 'alive' : 'rolledBack';
    return { state, commitTs, lockTtlMs, action: res.action ?? 0 };
  }

  /** Commits (commitTs > 0) or rolls back the locks of transaction `startTs` on `keys`, region by region. */
  async resolveLocks(startTs: bigint, commitTs: bigint, keys: readonly Uint8Array[]): Promise<void> {
    for (const group of await this.groupByRegion(keys)) {
      await this.raw.regionCall(group[0]!, 'write', (client, ctx, ms) =>
        client.call(
          NoKVService.KvResolveLock,
          { context: ctx, startVersion: u64(startTs), commitVersion: u64(commitTs), keys: group },
          { deadlineMs: ms },
        ),
      );
    }
  }

  /** Keys grouped by the region the cache places them in, in key order. */
  async groupByRegion<K extends Uint8Array>(keys: readonly K[]): Promise<K[][]> {
    const groups = new Map<bigint, K[]>();
    const sorted = [...keys].sort((a, b) => Buffer.compare(a, b));
    for (const k of sorted) {
      const region = await this.raw.locateAsync(k);
      const g = groups.get(region.id);
      if (g) g.push(k);
      else groups.set(region.id, [k]);
    }
    return [...groups.values()];
  }

  /**
   * One region-addressed write for a group of keys: the group must still lie in one region when
   * the request is sent (else it is split by the current routes and each part sent on its own).
   */
  async groupCall<
    K extends Uint8Array,
    R extends { regionError?: nokv.errors.v1.RegionError.$Properties | null },
  >(
    keys: readonly K[],
    call: (
      client: Parameters<Parameters<RawClient['regionCall']>[2]>[0],
      ctx: nokv.kv.v1.Context.$Properties,
      ms: number,
      keys: readonly K[],
    ) => Promise<R>,
  ): Promise<R[]> {
    try {
      const res = await this.raw.regionCall(keys[0]!, 'write', async (client, ctx, ms) => {
        const region = await this.raw.locateAsync(keys[0]!);
        if (!keys.every((k) => keyInRegion(k, region))) throw new Regroup();
        return call(client, ctx, ms, keys);
      });
      return [res];
    } catch (err) {
      if (!(err instanceof Regroup)) throw err;
      const out: R[] = [];
      for (const g of await this.groupByRegion(keys)) out.push(...(await this.groupCall(g, call)));
      return out;
    }
  }
}

/** A buffered mutation: a put, a delete, or a lock that writes nothing (see `Transaction.lock`). */
export interface TxnMutation {
  op: 'put' | 'delete' | 'lock';
  key: Buffer;
  /** The value of a put; undefined otherwise. */
  value: Buffer | undefined;
}

/** Percolator's Mutation.Op on the wire. */
const WIRE_OP = { put: 0, delete: 1, lock: 2 } as const;

/**
 * One transaction: reads at its start timestamp see its own buffered writes; `commit()` runs
 * two-phase commit. The steps (`prewrite`, `commitPrimary`, `commitSecondaries`) are public so
 * tests can stop a transaction between them, as a client that dies there would.
 */
export class Transaction {
  private readonly buffer = new Map<string, TxnMutation>();
  private state: 'active' | 'prewritten' | 'committed' | 'failed' = 'active';
  private primaryKey: Buffer | undefined;
  /**
   * Some prewrite request may have locked keys: one succeeded, or one failed without a definite
   * answer. Until then a failed prewrite has nothing to roll back (a request answered with key
   * errors writes nothing).
   */
  private mayHoldLocks = false;
  /** The keys the primary's commit request carried (see `commitPrimary`). */
  private committedWithPrimary: Buffer[] = [];
  /** Set once the primary is committed. */
  commitTs: bigint | undefined;

  constructor(
    private readonly client: TxnClient,
    readonly startTs: bigint,
  ) {}

  get primary(): Buffer | undefined {
    return this.primaryKey;
  }

  async get(key: Uint8Array | string): Promise<Buffer | undefined> {
    const k = Buffer.from(bytes(key));
    const buffered = this.buffer.get(k.toString('latin1'));
    if (buffered && buffered.op !== 'lock') return buffered.value;
    return this.client.getAt(k, this.startTs);
  }

  /** Several keys at the start timestamp (one round trip per region), with this transaction's writes applied. */
  async getMany(keys: readonly (Uint8Array | string)[]): Promise<(Buffer | undefined)[]> {
    const ks = keys.map((k) => Buffer.from(bytes(k)));
    const own = ks.map((k) => this.buffer.get(k.toString('latin1')));
    const missing = ks.filter((_, i) => own[i] === undefined || own[i]!.op === 'lock');
    const fetched = missing.length > 0 ? await this.client.batchGetAt(missing, this.startTs) : [];
    let next = 0;
    return ks.map((_, i) => {
      const m = own[i];
      return m !== undefined && m.op !== 'lock' ? m.value : fetched[next++];
    });
  }

  /** Pairs in [start, end) at the start timestamp, with this transaction's writes applied. */
  async scan(
    start: Uint8Array | string,
    end: Uint8Array | string,
    limit = 256,
  ): Promise<{ key: Buffer; value: Buffer }[]> {
    const s = Buffer.from(bytes(start));
    const e = Buffer.from(bytes(end));
    const inRange = [...this.buffer.values()].filter(
      (m) =>
        m.op !== 'lock' && Buffer.compare(m.key, s) >= 0 && (e.length === 0 || Buffer.compare(m.key, e) < 0),
    );
    // Buffered deletes can hide at most that many snapshot pairs: fetch that many more.
    const deletes = inRange.filter((m) => m.op === 'delete').length;
    const rows = await this.client.scanAt(s, e, limit + deletes, this.startTs);
    const merged = new Map<string, { key: Buffer; value: Buffer }>();
    for (const r of rows) merged.set(r.key.toString('latin1'), r);
    for (const m of inRange) {
      if (m.op === 'delete') merged.delete(m.key.toString('latin1'));
      else merged.set(m.key.toString('latin1'), { key: m.key, value: m.value! });
    }
    return [...merged.values()].sort((a, b) => Buffer.compare(a.key, b.key)).slice(0, limit);
  }

  put(key: Uint8Array | string, value: Uint8Array | string): void {
    this.write('put', bytes(key), Buffer.from(bytes(value)));
  }

  delete(key: Uint8Array | string): void {
    this.write('delete', bytes(key), undefined);
  }

  /**
   * Adds `key` to the write set without changing it (Percolator's LOCK mutation): a concurrent
   * transaction that writes `key` and commits after this one started makes this one fail with
   * `Conflict`, and the other way round, as if both had written it (optimistic WATCH). Readers are
   * never blocked by it. A put or delete of the same key in this transaction supersedes it.
   */
  lock(key: Uint8Array | string): void {
    const k = bytes(key);
    if (this.buffer.has(Buffer.from(k).toString('latin1'))) {
      this.checkActive();
      return;
    }
    this.write('lock', k, undefined);
  }

  private checkActive(): void {
    if (this.state !== 'active') throw new ClientError('InvalidArgument', `transaction is ${this.state}`);
  }

  private write(op: TxnMutation['op'], key: Uint8Array, value: Buffer | undefined): void {
    this.checkActive();
    if (key.length === 0) throw new ClientError('InvalidArgument', 'empty key');
    const k = Buffer.from(key);
    this.buffer.set(k.toString('latin1'), { op, key: k, value });
  }

  /** The buffered mutations (locks included) in key order. */
  mutations(): TxnMutation[] {
    return [...this.buffer.values()].sort((a, b) => Buffer.compare(a.key, b.key));
  }

  /** Two-phase commit of the buffered writes (nothing to do for a read-only transaction). */
  async commit(): Promise<void> {
    if (this.buffer.size === 0) {
      this.state = 'committed';
      return;
    }
    await this.prewrite();
    await this.commitPrimary({ withRegion: true });
    await this.commitSecondaries();
  }

  /**
   * Phase one: locks every key (the primary's region first, then the others in parallel). A lock
   * of another transaction in the way is resolved if that transaction is over, else the
   * transaction fails with `Conflict`; on any failure the locks written so far are rolled back.
   */
  async prewrite(): Promise<void> {
    if (this.state !== 'active') throw new ClientError('InvalidArgument', `transaction is ${this.state}`);
    const muts = this.mutations();
    if (muts.length === 0) throw new ClientError('InvalidArgument', 'nothing to prewrite');
    this.primaryKey = muts[0]!.key;
    this.state = 'failed'; // until it succeeds
    try {
      const groups = (await this.client.groupByRegion(muts.map((m) => m.key))).flatMap((g) => this.bySize(g));
      const [first, ...rest] = groups;
      await this.prewriteGroup(first!);
      const settled = await Promise.allSettled(rest.map((g) => this.prewriteGroup(g)));
      const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (failed) throw failed.reason;
    } catch (err) {
      if (this.mayHoldLocks) await this.rollback();
      throw definite(err, `prewrite of transaction ${this.startTs}`);
    }
    this.state = 'prewritten';
  }

  /**
   * A region's keys in requests of at most PREWRITE_REQUEST_BYTES of keys and values: a store
   * takes at most 8 MiB of values per request (one Raft entry), so a large transaction is locked
   * in several. The first part holds the group's first key (the primary, in the first group).
   */
  private bySize(keys: Buffer[]): Buffer[][] {
    const out: Buffer[][] = [];
    let part: Buffer[] = [];
    let bytes = 0;
    for (const k of keys) {
      const size = k.length + (this.buffer.get(k.toString('latin1'))?.value?.length ?? 0);
      if (part.length > 0 && bytes + size > PREWRITE_REQUEST_BYTES) {
        out.push(part);
        part = [];
        bytes = 0;
      }
      part.push(k);
      bytes += size;
    }
    if (part.length > 0) out.push(part);
    return out;
  }

  private async prewriteGroup(keys: Buffer[]): Promise<void> {
    const primary = this.primaryKey!;
    for (let attempt = 0; ; attempt++) {
      const responses = await this.client.groupCall(keys, async (client, ctx, ms, ks) => {
        let res: nokv.kv.v1.KvPrewriteResponse;
        try {
          res = await client.call(
            NoKVService.KvPrewrite,
            {
              context: ctx,
              mutations: ks.map((k) => {
                const m = this.buffer.get(k.toString('latin1'))!;
                return m.op === 'put'
                  ? { op: WIRE_OP.put, key: m.key, value: m.value! }
                  : { op: WIRE_OP[m.op], key: m.key };
              }),
              primaryLock: primary,
              startVersion: u64(this.startTs),
              lockTtl: u64(BigInt(this.client.lockTtlMs)),
            },
            { deadlineMs: ms },
          );
        } catch (err) {
          this.mayHoldLocks = true; // it may have reached the store
          throw err;
        }
        // A region error means the store refused it before it took effect.
        if (!res.regionError && (res.errors ?? []).length === 0) this.mayHoldLocks = true;
        return res;
      });
      const errors = responses.flatMap((r) => r.errors ?? []);
      if (errors.length === 0) return;
      const other = errors.find((e) => !e.locked);
      if (other) throw keyErrorToClient(other, `prewrite of transaction ${this.startTs}`);
      if (attempt >= 3) {
        throw new ClientError(
          'Conflict',
          `transaction ${this.startTs}: keys stay locked by other transactions`,
        );
      }
      for (const e of errors) {
        const lock = lockFromWire(e.locked!);
        // A primary lock is deleted exactly when its transaction commits or rolls back: while it
        // is there and its TTL has not run out (by this transaction's clock) its owner is alive,
        // and asking its region (a Raft write) would only say so.
        const alive =
          lock.key.equals(lock.primary) &&
          tsPhysicalMs(this.startTs) < tsPhysicalMs(lock.lockTs) + lock.ttlMs;
        // No push for a writer: it must wait for the lock's owner, which it does not; it fails.
        const outcome = alive ? 'alive' : await this.client.resolveLock(lock, 0n);
        if (outcome !== 'resolved') {
          throw new ClientError(
            'Conflict',
            `transaction ${this.startTs}: ${show(lock.key)} is locked by the live transaction ${lock.lockTs}`,
          );
        }
      }
    }
  }

  /**
   * Phase two, the commit point: commits the primary at a fresh commit timestamp (a new one if a
   * reader pushed the transaction's min commit ts). Success = the transaction is committed.
   *
   * `withRegion`: the other keys in the primary's region commit in the same request. The store
   * applies a commit all or nothing, so they commit exactly when the primary does, and a
   * transaction within one region takes one commit round trip instead of two.
   */
  async commitPrimary(opts: { withRegion?: boolean } = {}): Promise<bigint> {
    if (this.state !== 'prewritten') throw new ClientError('InvalidArgument', `transaction is ${this.state}`);
    const primary = this.primaryKey!;
    const others = opts.withRegion
      ? this.mutations()
          .map((m) => m.key)
          .filter((k) => !k.equals(primary))
      : [];
    this.state = 'failed';
    let commitTs: bigint;
    try {
      commitTs = await this.client.timestamp();
    } catch (err) {
      await this.rollback();
      throw err;
    }
    for (let attempt = 0; ; attempt++) {
      let res: nokv.kv.v1.KvCommitResponse;
      try {
        res = await this.client.raw.regionCall(primary, 'write', async (client, ctx, ms) => {
          // By the routes of this attempt (a split may have moved some keys out since prewrite).
          const region = others.length > 0 ? await this.client.raw.locateAsync(primary) : undefined;
          const keys = [primary, ...others.filter((k) => region !== undefined && keyInRegion(k, region))];
          this.committedWithPrimary = keys;
          return client.call(
            NoKVService.KvCommit,
            { context: ctx, keys, startVersion: u64(this.startTs), commitVersion: u64(commitTs) },
            { deadlineMs: ms },
          );
        });
      } catch (err) {
        if (err instanceof ClientError && err.code === 'InvalidArgument') throw err;
        throw new ClientError(
          'Unknown',
          `commit of transaction ${this.startTs} has an unknown outcome: ${(err as Error).message}`,
          { cause: err },
        );
      }
      if (!res.error) {
        this.commitTs = commitTs;
        this.state = 'committed';
        return commitTs;
      }
      const expired = res.error.commitTsExpired;
      if (expired && attempt < 5) {
        // A reader pushed the transaction past its read timestamp: commit later.
        const min = uint64FromWire(expired.minCommitTs);
        try {
          commitTs = await this.client.timestamp();
          while (commitTs < min) commitTs = await this.client.timestamp();
        } catch (err) {
          await this.rollback();
          throw err;
        }
        continue;
      }
      // Rolled back by someone else (its lock expired), or the lock is gone: not committed.
      throw keyErrorToClient(res.error, `commit of transaction ${this.startTs}`);
    }
  }

  /** Commits the other keys (best effort: a reader that meets a leftover lock rolls it forward). */
  async commitSecondaries(): Promise<void> {
    if (this.state !== 'committed' || this.commitTs === undefined) {
      throw new ClientError('InvalidArgument', `transaction is ${this.state}`);
    }
    const commitTs = this.commitTs;
    const done = new Set(this.committedWithPrimary.map((k) => k.toString('latin1')));
    const rest = this.mutations()
      .map((m) => m.key)
      .filter((k) => !k.equals(this.primaryKey!) && !done.has(k.toString('latin1')));
    if (rest.length === 0) return;
    const groups = await this.client.groupByRegion(rest).catch(() => [] as Buffer[][]);
    await Promise.allSettled(
      groups.map((g) =>
        this.client.groupCall(g, (client, ctx, ms, ks) =>
          client.call(
            NoKVService.KvCommit,
            { context: ctx, keys: [...ks], startVersion: u64(this.startTs), commitVersion: u64(commitTs) },
            { deadlineMs: ms },
          ),
        ),
      ),
    );
  }

  /** Best-effort rollback of every key of the transaction (before its primary committed). */
  private async rollback(): Promise<void> {
    const keys = this.mutations().map((m) => m.key);
    const groups = await this.client.groupByRegion(keys).catch(() => [] as Buffer[][]);
    await Promise.allSettled(
      groups.map((g) =>
        this.client.groupCall(g, (client, ctx, ms, ks) =>
          client.call(
            NoKVService.KvBatchRollback,
            { context: ctx, keys: [...ks], startVersion: u64(this.startTs) },
            { deadlineMs: ms },
          ),
        ),
      ),
    );
  }
}

function lockFromWire(l: LockWire): LockInfo {
  return {
    key: Buffer.from(l.key ?? []),
    primary: Buffer.from(l.primaryLock ?? []),
    lockTs: uint64FromWire(l.lockVersion),
    ttlMs: Number(uint64FromWire(l.lockTtl)),
    minCommitTs: uint64FromWire(l.minCommitTs),
  };
}

/** A key error as a ClientError: conflicts and rollbacks by others → `Conflict`, the rest → `Aborted`. */
function keyErrorToClient(e: KeyErrorWire, what: string): ClientError {
  if (e.writeConflict) {
    const w = e.writeConflict;
    return new ClientError(
      'Conflict',
      `${what}: write conflict on ${show(w.key ?? new Uint8Array(0))} with the transaction committed at ${uint64FromWire(w.conflictTs)}`,
    );
  }
  if (e.locked)
    return new ClientError('Conflict', `${what}: ${show(e.locked.key ?? new Uint8Array(0))} is locked`);
  if (e.alreadyExists)
    return new ClientError(
      'Conflict',
      `${what}: ${show(e.alreadyExists.key ?? new Uint8Array(0))} already exists`,
    );
  if (e.abort) return new ClientError('Conflict', `${what}: ${e.abort}`);
  if (e.commitTsExpired) return new ClientError('Aborted', `${what}: commit timestamp expired`);
  if (e.txnNotFound) return new ClientError('Aborted', `${what}: transaction not found`);
  if (e.committed) return new ClientError('Aborted', `${what}: already committed`);
  return new ClientError('Aborted', `${what}: ${e.retryable ?? 'failed'}`);
}

/** A failure before the commit point: nothing is committed, so an `Unknown`/`Timeout` becomes `Aborted`. */
function definite(err: unknown, what: string): unknown {
  if (!(err instanceof ClientError)) return err;
  if (err.code === 'Unknown' || err.code === 'Timeout') {
    return new ClientError('Aborted', `${what} failed (nothing committed): ${err.message}`, { cause: err });
  }
  return err;
}

function u64(v: bigint) {
  return uint64ToWire(v, 'timestamp');
}

function bytes(v: Uint8Array | string): Uint8Array {
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
}

function show(key: Uint8Array): string {
  return JSON.stringify(Buffer.from(key).toString('latin1'));
}

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
