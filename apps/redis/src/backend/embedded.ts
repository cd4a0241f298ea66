/**
 * The embedded backend: the engine in this process.
 *
 * Transactions run one at a time under an async mutex, so each one sees a stable state and
 * never conflicts. Reads go to the engine; writes are buffered in the transaction and applied as
 * ONE engine WriteBatch when its function returns (all or nothing, also across crashes).
 *
 * Group commit without giving up serial order: the mutex is released as soon as the batch is
 * handed to the engine, not when the engine acknowledges it. Until then its writes sit in an
 * in-flight overlay that later transactions read through, so they observe it as committed. The
 * engine applies batches in submission order, so the overlay never disagrees with the final
 * state, and the engine's write pipeline gets many concurrent batches to write (and fsync) as
 * one group. `transact` still resolves only after the engine acknowledged the batch.
 *
 * Durability contract: `transact` resolves after the batch is in the engine's WAL in the OS
 * (it survives a crash of the gateway process). With `syncWrites` the WAL is also fsynced first
 * (it survives an OS crash or power loss), at the cost of one fsync per commit group. If the
 * engine fails a write (disk error) it stops taking writes until reopened; the failed
 * transaction and every later write transaction report an error, and nothing acknowledged is lost.
 */

import { type Database, isNoKVError, MAX_KEY_BYTES, MAX_VALUE_BYTES, open } from '@nokv/engine';
import { BackendError, type BackendTxn, type KvBackend } from './backend.js';
import { Mutex } from './mutex.js';

export interface EmbeddedBackendOptions {
  /** The engine workdir (created if missing). */
  workdir: string;
  /** fsync every commit group before acknowledging it (default false, see the module comment). */
  syncWrites?: boolean;
}

/** The engine's own cap on one scan call. */
const MAX_ENGINE_SCAN = 100_000;

interface InflightWrite {
  value: Buffer | undefined;
  /** The commit that wrote it: only that commit's completion may remove the entry. */
  seq: number;
}

/** Byte strings as Map keys: latin1 maps every byte to one UTF-16 unit, so it is bijective. */
const mapKey = (key: Buffer): string => key.toString('latin1');

export class EmbeddedBackend implements KvBackend {
  readonly kind = 'embedded' as const;
  private readonly mutex = new Mutex();
  private readonly inflight = new Map<string, InflightWrite>();
  private readonly commits = new Set<Promise<unknown>>();
  private readonly ownsDb: boolean;
  private readonly sync: boolean;
  private seq = 0;
  private closed = false;
  private group: CommitGroup | undefined;

  constructor(
    readonly db: Database,
    opts: { ownsDb?: boolean; syncWrites?: boolean } = {},
  ) {
    this.ownsDb = opts.ownsDb ?? false;
    this.sync = opts.syncWrites ?? false;
  }

  static async open(opts: EmbeddedBackendOptions): Promise<EmbeddedBackend> {
    let db: Database;
    try {
      db = await open({ dir: opts.workdir, syncWrites: opts.syncWrites ?? false });
    } catch (err) {
      throw toBackendError(err);
    }
    return new EmbeddedBackend(db, { ownsDb: true, syncWrites: opts.syncWrites ?? false });
  }

  async transact<T>(
    fn: (tx: BackendTxn) => Promise<T>,
    _opts?: { maxAttempts?: number; abortOnConflict?: boolean },
  ): Promise<T> {
    if (this.closed) throw new BackendError('Unavailable', 'the embedded backend is closed');
    await this.mutex.acquire();
    let result: T;
    let group: CommitGroup | undefined;
    try {
      if (this.closed) throw new BackendError('Unavailable', 'the embedded backend is closed');
      const tx = new EmbeddedTxn(this.db, this.inflight);
      try {
        result = await fn(tx);
      } catch (err) {
        throw isNoKVError(err) ? toBackendError(err) : err;
      }
      if (tx.writes.size > 0) {
        // Checked here so one bad transaction cannot fail the others of its commit group.
        const bytes = checkWrites(tx.writes);
        group = this.groupFor(bytes);
        for (const [k, w] of tx.writes) {
          group.writes.set(k, w);
          this.inflight.set(k, { value: w.value, seq: group.seq });
        }
      }
    } finally {
      this.mutex.release();
    }
    if (group === undefined) return result;
    try {
      await group.done;
    } catch (err) {
      throw toBackendError(err);
    }
    return result;
  }

  /**
   * The open commit group, flushed at the end of this event-loop turn (setImmediate): every
   * transaction committed in the same turn (all the commands that arrived together, across
   * connections) reaches the engine as one atomic batch and one WAL write. Transactions are
   * never split across groups; a group that would grow past GROUP_BYTES is flushed first.
   */
  private groupFor(bytes: number): CommitGroup {
    if (this.group !== undefined && this.group.bytes + bytes > GROUP_BYTES) this.flushGroup();
    if (this.group === undefined) {
      let resolve!: () => void;
      let reject!: (err: unknown) => void;
      const done = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      // A group nobody awaits yet must not count as an unhandled rejection.
      done.catch(() => {});
      this.group = { seq: ++this.seq, writes: new Map(), bytes: 0, done, resolve, reject };
      setImmediate(() => this.flushGroup());
    }
    this.group.bytes += bytes;
    return this.group;
  }

  private flushGroup(): void {
    const g = this.group;
    if (g === undefined) return;
    this.group = undefined;
    let commit: Promise<void>;
    try {
      const batch = this.db.batch();
      for (const w of g.writes.values()) {
        if (w.value === undefined) batch.delete(w.key);
        else batch.put(w.key, w.value);
      }
      commit = this.db.write(batch, { sync: this.sync });
    } catch (err) {
      commit = Promise.reject(err);
    }
    const tracked = commit.then(g.resolve, g.reject).finally(() => {
      for (const k of g.writes.keys()) {
        if (this.inflight.get(k)?.seq === g.seq) this.inflight.delete(k);
      }
      this.commits.delete(tracked);
    });
    this.commits.add(tracked);
  }

  /** Waits for running transactions and unacknowledged commits; closes the engine if it owns it. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.mutex.acquire();
    this.closed = true;
    this.mutex.release();
    this.flushGroup();
    await Promise.allSettled([...this.commits]);
    if (this.ownsDb) await this.db.close();
  }
}

interface CommitGroup {
  seq: number;
  writes: Map<string, TxnWrite>;
  bytes: number;
  done: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** A commit group is flushed early once its writes reach this size. */
const GROUP_BYTES = 4 * 1024 * 1024;

/** The engine's key and value rules, checked per transaction; returns the bytes written. */
function checkWrites(writes: Map<string, TxnWrite>): number {
  let bytes = 0;
  for (const w of writes.values()) {
    if (w.key.length === 0 || w.key.length > MAX_KEY_BYTES) {
      throw new BackendError(
        'Internal',
        `key of ${w.key.length} bytes (the engine takes 1 to ${MAX_KEY_BYTES})`,
      );
    }
    const v = w.value?.length ?? 0;
    if (v > MAX_VALUE_BYTES) {
      throw new BackendError('Internal', `value of ${v} bytes (the engine takes at most ${MAX_VALUE_BYTES})`);
    }
    bytes += w.key.length + v + 16;
  }
  return bytes;
}

interface TxnWrite {
  key: Buffer;
  value: Buffer | undefined;
}

class EmbeddedTxn implements BackendTxn {
  /** This transaction's own writes (read back by its own reads). */
  readonly writes = new Map<string, TxnWrite>();

  constructor(
    private readonly db: Database,
    private readonly inflight: Map<string, InflightWrite>,
  ) {}

  async get(key: Buffer): Promise<Buffer | undefined> {
    const k = mapKey(key);
    const own = this.writes.get(k);
    if (own !== undefined) return own.value;
    const pending = this.inflight.get(k);
    if (pending !== undefined) return pending.value;
    return this.db.get(key);
  }

  async getMany(keys: readonly Buffer[]): Promise<(Buffer | undefined)[]> {
    const out: (Buffer | undefined)[] = [];
    for (const key of keys) out.push(await this.get(key));
    return out;
  }

  async scan(start: Buffer, end: Buffer, limit: number): Promise<{ key: Buffer; value: Buffer }[]> {
    if (limit <= 0) return [];
    if (end.length > 0 && Buffer.compare(start, end) >= 0) return [];
    const inRange = (key: Buffer): boolean =>
      Buffer.compare(key, start) >= 0 && (end.length === 0 || Buffer.compare(key, end) < 0);
    // The overlay (own writes over in-flight ones) within the range, in key order.
    const overlay = new Map<string, TxnWrite>();
    for (const [k, w] of this.inflight) {
      const key = Buffer.from(k, 'latin1');
      if (inRange(key)) overlay.set(k, { key, value: w.value });
    }
    for (const [k, w] of this.writes) if (inRange(w.key)) overlay.set(k, w);
    const over = [...overlay.values()].sort((a, b) => Buffer.compare(a.key, b.key));
    const out: { key: Buffer; value: Buffer }[] = [];
    let j = 0;
    const emit = (key: Buffer, value: Buffer | undefined): boolean => {
      if (value !== undefined) out.push({ key, value });
      return out.length >= limit;
    };
    // Pages of engine rows merged with the overlay; the mutex keeps the state still meanwhile.
    let from = start;
    for (;;) {
      const page = Math.min(MAX_ENGINE_SCAN, limit - out.length + (over.length - j));
      const rows = await this.db.scan({
        ...(from.length > 0 ? { gte: from } : {}),
        ...(end.length > 0 ? { lt: end } : {}),
        limit: page,
      });
      for (const [key, value] of rows) {
        while (j < over.length && Buffer.compare(over[j]!.key, key) < 0) {
          if (emit(over[j]!.key, over[j]!.value)) return out;
          j++;
        }
        if (j < over.length && Buffer.compare(over[j]!.key, key) === 0) {
          if (emit(key, over[j]!.value)) return out;
          j++;
        } else if (emit(key, value)) {
          return out;
        }
      }
      if (rows.length < page) break;
      from = Buffer.concat([rows[rows.length - 1]![0], Buffer.from([0])]);
    }
    while (j < over.length) {
      if (emit(over[j]!.key, over[j]!.value)) return out;
      j++;
    }
    return out;
  }

  put(key: Buffer, value: Buffer): void {
    this.writes.set(mapKey(key), { key: Buffer.from(key), value: Buffer.from(value) });
  }

  delete(key: Buffer): void {
    this.writes.set(mapKey(key), { key: Buffer.from(key), value: undefined });
  }

  /** Embedded transactions are serial: nothing can race a watched key. */
  guard(_key: Buffer): void {}
}

function toBackendError(err: unknown): BackendError {
  if (err instanceof BackendError) return err;
  const message = err instanceof Error ? err.message : String(err);
  const code = isNoKVError(err) ? err.code : undefined;
  if (code === 'Closed' || code === 'BackgroundError' || code === 'IoError' || code === 'ReadOnly') {
    return new BackendError('Unavailable', `engine: ${message}`, { cause: err });
  }
  return new BackendError('Internal', `engine: ${message}`, { cause: err });
}
