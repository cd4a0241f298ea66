/**
 * The embedded database: `open()` a workdir, then get / set / delete / deleteRange / write batches /
 * iterate / snapshot, and `close()`. See the package README for formats and the durability
 * contract.
 */

import { ClosedError, InvalidArgumentError } from '../errors.js';
import { UserIterator, type UserIteratorOptions } from '../iterator/db-iterator.js';
import type { InternalIterator } from '../iterator/internal-iterator.js';
import { LevelIterator } from '../iterator/level-iterator.js';
import { MergingIterator } from '../iterator/merging-iterator.js';
import { META_VALUE_POINTER } from '../keys/entry.js';
import {
  CF_DEFAULT,
  INTERNAL_KEY_OVERHEAD,
  internalKeyUserKey,
  MAX_VERSION,
  VERSION_SUFFIX_BYTES,
} from '../keys/internal-key.js';
import { bloomHash } from '../sstable/bloom.js';
import { compareBytes, copyOut, prefixSuccessor } from '../util/bytes.js';
import { BackgroundWork } from './background-work.js';
import type { EngineCore, RecoveryReport } from './engine-core.js';
import { InternalApi } from './internal-api.js';
import { MAX_KEY_BYTES, type OpenOptions, resolveOptions } from './options.js';
import { isVisible, lookupNewestAt, type ReadView, tombstoneIndexes } from './read-view.js';
import { recover } from './recovery.js';
import { Snapshot } from './snapshots.js';
import { collectStats, type EngineStats } from './stats.js';
import { ValueLogGc, type ValueLogGcResult } from './value-log-gc.js';
import {
  type BytesInput,
  checkKey,
  checkValue,
  deleteWrite,
  expiryFromTtl,
  type PutOptions,
  putWrite,
  rangeDeleteWrite,
  WriteBatch,
  type WriteOp,
} from './write-batch.js';
import { WritePipeline } from './write-pipeline.js';

/** Most entries one `scan` call returns. */
export const MAX_SCAN_LIMIT = 100_000;

/** Strings up to this many UTF-16 units fit the seek buffer in UTF-8 (3 bytes each at most). */
const SHORT_STRING_KEY = Math.floor(MAX_KEY_BYTES / 3);

export interface WriteOptions {
  /** fsync before resolving, even when the database was opened without `syncWrites`. */
  sync?: boolean;
}

export interface ReadOptions {
  /** Read as of this snapshot instead of the latest state. */
  snapshot?: Snapshot;
}

export interface IterateOptions extends ReadOptions {
  gte?: BytesInput;
  gt?: BytesInput;
  lte?: BytesInput;
  lt?: BytesInput;
  /** Only keys starting with these bytes (combined with the bounds above). */
  prefix?: BytesInput;
  /** Descending key order. */
  reverse?: boolean;
  /** Stop after this many entries. */
  limit?: number;
}

/** Builds the merged internal iterator over a read view, in one direction. */
export function mergedIterator(view: ReadView, reverse: boolean): InternalIterator {
  const children: InternalIterator[] = view.memtables.map((m) => m.iterator());
  const levels = view.version.levels;
  for (const f of levels[0]!) children.push(view.tables.table(f.number).iterator());
  for (let level = 1; level < levels.length; level++) {
    if (levels[level]!.length > 0)
      children.push(new LevelIterator(levels[level]!, (n) => view.tables.table(n)));
  }
  return new MergingIterator(children, reverse);
}

interface Bounds {
  lower: Buffer | undefined;
  upper: Buffer | undefined;
  empty: boolean;
}

function resolveBounds(o: IterateOptions): Bounds {
  if (o.gte !== undefined && o.gt !== undefined)
    throw new InvalidArgumentError('InvalidArgument', 'give gte or gt, not both');
  if (o.lte !== undefined && o.lt !== undefined)
    throw new InvalidArgumentError('InvalidArgument', 'give lte or lt, not both');
  const successor = (k: Buffer): Buffer => Buffer.concat([k, Buffer.from([0])]);
  let lower =
    o.gte !== undefined
      ? checkKey(o.gte, 'gte')
      : o.gt !== undefined
        ? successor(checkKey(o.gt, 'gt'))
        : undefined;
  let upper =
    o.lt !== undefined
      ? checkKey(o.lt, 'lt')
      : o.lte !== undefined
        ? successor(checkKey(o.lte, 'lte'))
        : undefined;
  if (o.prefix !== undefined) {
    const prefix = checkKey(o.prefix, 'prefix');
    if (lower === undefined || compareBytes(prefix, lower) > 0) lower = prefix;
    const end = prefixSuccessor(prefix);
    if (end !== undefined && (upper === undefined || compareBytes(end, upper) < 0)) upper = end;
  }
  const empty = lower !== undefined && upper !== undefined && compareBytes(lower, upper) >= 0;
  return { lower, upper, empty };
}

export class Database {
  private readonly core: EngineCore;
  private readonly writes: WritePipeline;
  private readonly background: BackgroundWork;
  private readonly gc: ValueLogGc;
  private closePromise: Promise<void> | undefined;
  private readonly seekScratch = Buffer.allocUnsafe(MAX_KEY_BYTES + INTERNAL_KEY_OVERHEAD);
  /** Versioned access for the transaction layer (column families, explicit versions). */
  readonly internal: InternalApi;

  private constructor(core: EngineCore) {
    this.core = core;
    this.writes = new WritePipeline(core);
    this.background = new BackgroundWork(core);
    this.writes.onFrozen = () => this.background.scheduleFlush();
    this.internal = new InternalApi(core, this.writes, (view, reverse) => mergedIterator(view, reverse));
    this.gc = new ValueLogGc(core, this.writes);
  }

  /**
   * Opens (creating if needed) the database in `options.dir`. Throws `LockedError` when another
   * process has it open, `ModeError` when a migration or cluster owns it, `CorruptionError` when a
   * file is damaged, `InvalidArgumentError` for bad options.
   */
  static async open(options: OpenOptions): Promise<Database> {
    const core = await recover(resolveOptions(options));
    const db = new Database(core);
    if (!core.options.readOnly) {
      db.background.scheduleFlush();
      db.background.maybeScheduleCompaction();
      db.gc.start();
    }
    return db;
  }

  get dir(): string {
    return this.core.dir;
  }

  get isClosed(): boolean {
    return this.core.closed;
  }

  /** What the open found and repaired. */
  get recovery(): RecoveryReport {
    return this.core.recovery;
  }

  /** Sets `key` to `value`. Resolves once durable per the contract (see `WriteOptions.sync`). */
  set(key: BytesInput, value: BytesInput, options?: PutOptions & WriteOptions): Promise<void> {
    try {
      this.core.checkWritable();
      const k = checkKey(key);
      const w = putWrite(
        CF_DEFAULT,
        k,
        checkValue(value, k),
        expiryFromTtl(options?.ttlMs, this.core.options.clock()),
      );
      return this.writes.write([w], options?.sync ?? false);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** The value of `key`, or undefined when it is absent, deleted or expired. */
  get(key: BytesInput, options?: ReadOptions): Promise<Buffer | undefined> {
    try {
      const value = this.getSync(key, options);
      if (this.core.shouldYield()) return this.core.yieldTurn().then(() => value);
      return Promise.resolve(value);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private getSync(key: BytesInput, options?: ReadOptions): Buffer | undefined {
    const core = this.core;
    core.checkOpen();
    let readVersion = MAX_VERSION;
    if (options?.snapshot !== undefined) {
      readVersion = Snapshot.checkArgument(options.snapshot, core.snapshots).version;
    }
    const seekKey = this.seekKey(key, readVersion);
    const baseLength = seekKey.length - VERSION_SUFFIX_BYTES;
    const hash = bloomHash(seekKey, 0, baseLength);
    const nowMs = core.options.clock();
    const rows = readVersion === MAX_VERSION && core.rowCache.enabled ? core.rowCache : undefined;
    if (rows !== undefined) {
      const row = rows.get(seekKey, baseLength, hash, nowMs);
      if (row !== undefined) return copyOut(row.value);
    }
    const view = core.view();
    const found = lookupNewestAt(view, seekKey, readVersion, hash);
    if (found === undefined) return undefined;
    const userKey = internalKeyUserKey(seekKey);
    if (!isVisible(found, CF_DEFAULT, userKey, readVersion, nowMs, tombstoneIndexes(view))) return undefined;
    if (found.meta & META_VALUE_POINTER) {
      const value = core.resolveValue(found.key, found.meta, found.value);
      rows?.set(seekKey, baseLength, hash, value, found.expiresAt);
      return value;
    }
    rows?.set(seekKey, baseLength, hash, found.value, found.expiresAt);
    return copyOut(found.value);
  }

  /**
   * The default-CF seek key for `key` at `readVersion`, built in a reused buffer: a point read
   * allocates nothing for its key. Short strings are encoded straight into it.
   */
  private seekKey(key: BytesInput, readVersion: bigint): Buffer {
    const scratch = this.seekScratch;
    let n: number;
    if (typeof key === 'string' && key.length > 0 && key.length <= SHORT_STRING_KEY) {
      n = scratch.write(key, 1, 'utf8');
    } else {
      const bytes = checkKey(key);
      scratch.set(bytes, 1);
      n = bytes.length;
    }
    scratch[0] = CF_DEFAULT;
    scratch.writeBigUInt64BE(MAX_VERSION - readVersion, n + 1);
    return scratch.subarray(0, n + INTERNAL_KEY_OVERHEAD);
  }

  /** Deletes `key` (absent keys are fine). */
  delete(key: BytesInput, options?: WriteOptions): Promise<void> {
    try {
      this.core.checkWritable();
      return this.writes.write([deleteWrite(CF_DEFAULT, checkKey(key))], options?.sync ?? false);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Deletes every key in [start, end). One record, whatever the range holds. */
  deleteRange(start: BytesInput, end: BytesInput, options?: WriteOptions): Promise<void> {
    try {
      this.core.checkWritable();
      const w = rangeDeleteWrite(CF_DEFAULT, checkKey(start, 'range start'), checkKey(end, 'range end'));
      return this.writes.write([w], options?.sync ?? false);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** A new, empty batch for `write`. */
  batch(): WriteBatch {
    return new WriteBatch(this.core.options.clock);
  }

  /**
   * Applies a batch atomically: all of it or none of it, also across crashes. Accepts a
   * `WriteBatch` or an array of operations (validated before anything is written).
   */
  write(batch: WriteBatch | readonly WriteOp[], options?: WriteOptions): Promise<void> {
    try {
      this.core.checkWritable();
      let b: WriteBatch;
      if (batch instanceof WriteBatch) {
        b = batch;
      } else if (Array.isArray(batch)) {
        b = this.batch();
        for (const op of batch) b.add(op);
      } else {
        throw new InvalidArgumentError(
          'InvalidArgument',
          'write() takes a WriteBatch or an array of operations',
        );
      }
      // Encoding copies the batch's bytes, so the same batch may be written again.
      return this.writes.write(b.writes, options?.sync ?? false);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Iterates live keys in order (or reverse order) within the bounds, as `[key, value]` pairs. The
   * view is consistent: writes made after iteration starts are not seen. Breaking out of the loop
   * releases it.
   */
  iterate(options: IterateOptions = {}): AsyncIterable<[Buffer, Buffer]> {
    this.core.checkOpen();
    if (options === null || typeof options !== 'object') {
      throw new InvalidArgumentError('InvalidArgument', 'iterate() options must be an object');
    }
    const bounds = resolveBounds(options);
    const limit = options.limit;
    if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 0)) {
      throw new InvalidArgumentError('InvalidArgument', `limit must be a non-negative integer; got ${limit}`);
    }
    const snapshot =
      options.snapshot === undefined
        ? undefined
        : Snapshot.checkArgument(options.snapshot, this.core.snapshots);
    const reverse = options.reverse === true;
    const self = this;
    return {
      [Symbol.asyncIterator](): AsyncIterator<[Buffer, Buffer]> {
        return self.userEntries(bounds, reverse, limit, snapshot);
      },
    };
  }

  /**
   * Reads up to `options.limit` live entries of a range in one call, as `[key, value]` pairs:
   * for short scans, where a promise per entry would cost more than reading the entry. Same
   * bounds, order and snapshot rules as `iterate`; `limit` is required (at most
   * `MAX_SCAN_LIMIT`). Use `iterate` to walk a range of unknown size.
   */
  scan(options: IterateOptions & { limit: number }): Promise<[Buffer, Buffer][]> {
    try {
      const core = this.core;
      core.checkOpen();
      if (options === null || typeof options !== 'object') {
        throw new InvalidArgumentError('InvalidArgument', 'scan() options must be an object');
      }
      const limit = options.limit;
      if (!Number.isSafeInteger(limit) || limit < 0 || limit > MAX_SCAN_LIMIT) {
        throw new InvalidArgumentError(
          'InvalidArgument',
          `scan() needs a limit from 0 to ${MAX_SCAN_LIMIT}; got ${String(limit)} (use iterate() for larger ranges)`,
        );
      }
      const bounds = resolveBounds(options);
      const snapshot =
        options.snapshot === undefined ? undefined : Snapshot.checkArgument(options.snapshot, core.snapshots);
      const out: [Buffer, Buffer][] = [];
      if (!bounds.empty && limit > 0) {
        // Synchronous from start to end: nothing can change the view meanwhile, so no pin.
        const view = core.view();
        const reverse = options.reverse === true;
        const it = new UserIterator(mergedIterator(view, reverse), {
          cf: CF_DEFAULT,
          lower: bounds.lower,
          upper: bounds.upper,
          reverse,
          readVersion: snapshot?.version ?? core.visibleVersion,
          nowMs: core.options.clock(),
          tombstones: tombstoneIndexes(view),
          resolvePointer: (key, pointer) => core.resolveValue(key, META_VALUE_POINTER, pointer),
        });
        for (let item = it.next(); item !== undefined; item = it.next()) {
          out.push(item);
          if (out.length >= limit) break;
        }
      }
      if (core.shouldYield()) return core.yieldTurn().then(() => out);
      return Promise.resolve(out);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private async *userEntries(
    bounds: Bounds,
    reverse: boolean,
    limit: number | undefined,
    snapshot: Snapshot | undefined,
  ): AsyncGenerator<[Buffer, Buffer]> {
    const core = this.core;
    core.checkOpen();
    if (bounds.empty || limit === 0) return;
    const readVersion = snapshot?.version ?? core.visibleVersion;
    core.snapshots.add(readVersion);
    const view = core.view();
    view.version.ref();
    const epoch = core.pinView();
    try {
      const options: UserIteratorOptions = {
        cf: CF_DEFAULT,
        lower: bounds.lower,
        upper: bounds.upper,
        reverse,
        readVersion,
        nowMs: core.options.clock(),
        tombstones: tombstoneIndexes(view),
        resolvePointer: (key, pointer) => core.resolveValue(key, META_VALUE_POINTER, pointer),
      };
      const it = new UserIterator(mergedIterator(view, reverse), options);
      let n = 0;
      for (;;) {
        if (core.closing) throw new ClosedError('the database was closed during iteration');
        const item = it.next();
        if (item === undefined) return;
        if (core.shouldYield()) await core.yieldTurn();
        yield item;
        if (limit !== undefined && ++n >= limit) return;
      }
    } finally {
      view.version.unref();
      core.unpinView(epoch);
      core.snapshots.remove(readVersion);
    }
  }

  /** A consistent read view at the current state; `release()` it when done. */
  snapshot(): Snapshot {
    this.core.checkOpen();
    const snap = new Snapshot(this.core.visibleVersion, this.core.snapshots);
    this.core.snapshots.add(snap.version);
    return snap;
  }

  /** A JSON-safe stats snapshot. */
  stats(): EngineStats {
    return collectStats(this.core, this.writes, this.background, this.gc);
  }

  /**
   * One value log GC round: rewrites the live values of a segment and deletes it. Picks the
   * segment with the most garbage (at least `discardRatio`, default the configured ratio), or
   * collects `segment`. Resolves with what it did; rejects if a round is already running.
   */
  runValueLogGc(options: { segment?: number; discardRatio?: number } = {}): Promise<ValueLogGcResult> {
    try {
      this.core.checkWritable();
      if (options.discardRatio !== undefined && !(options.discardRatio >= 0 && options.discardRatio <= 1)) {
        throw new InvalidArgumentError(
          'InvalidArgument',
          `discardRatio must be between 0 and 1; got ${options.discardRatio}`,
        );
      }
      return this.gc.run(options);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Freezes the memtable and waits until every frozen memtable is in a table. */
  async flush(): Promise<void> {
    this.core.checkWritable();
    await this.writes.rotate();
    await this.background.waitForFlushes();
    if (this.core.backgroundError !== undefined) this.core.checkWritable();
  }

  /** Flushes, then compacts every level down to the last one. */
  async compact(): Promise<void> {
    await this.flush();
    await this.background.compactAll();
  }

  /** Reads every block of every table, checking checksums and order. */
  async verify(): Promise<{ tables: number; blocks: number; entries: number }> {
    const core = this.core;
    core.checkOpen();
    const version = core.versions.current;
    version.ref();
    try {
      let tables = 0;
      let blocks = 0;
      let entries = 0;
      for (const { file } of version.allFiles()) {
        const r = core.tableSource.table(file.number).verify();
        tables++;
        blocks += r.blocks;
        entries += r.entries;
        await Promise.resolve();
      }
      return { tables, blocks, entries };
    } finally {
      version.unref();
    }
  }

  /**
   * Closes the database: finishes queued writes and the running flush, stops compaction, syncs
   * and closes the WAL, releases the lock. The memtable is not flushed (the WAL replays it).
   * Idempotent: later calls return the first call's promise.
   */
  close(): Promise<void> {
    if (this.closePromise === undefined) this.closePromise = this.doClose();
    return this.closePromise;
  }

  private async doClose(): Promise<void> {
    const core = this.core;
    const errors: unknown[] = [];
    // New calls are refused from here on; writes already queued still complete.
    core.closing = true;
    core.wakeStalls();
    await this.gc.stop();
    await this.writes.drain();
    await this.background.stop();
    try {
      await core.vlog.close();
    } catch (err) {
      errors.push(err);
    }
    if (core.wal !== undefined) {
      try {
        if (core.backgroundError === undefined) await core.wal.sync();
      } catch (err) {
        errors.push(err);
      }
      await core.wal.close().catch((err: unknown) => errors.push(err));
    }
    await core.versions.close().catch((err: unknown) => errors.push(err));
    for (const t of core.tables.values()) await t.close().catch((err: unknown) => errors.push(err));
    core.tables.clear();
    core.lock?.release();
    core.closed = true;
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1)
      throw new AggregateError(errors, `closing '${core.dir}' failed in ${errors.length} places`);
  }

  /**
   * @internal Test support: forget the database as if its process died at this instant. Pair it
   * with `FaultVfs.crash()` so that nothing it still runs can touch the files.
   */
  abandonForCrashTest(): Promise<void> {
    const core = this.core;
    core.crashed = true;
    core.closing = true;
    core.lock?.abandon();
    core.wakeStalls();
    this.closePromise ??= (async () => {
      await this.writes.drain().catch(() => undefined);
      await this.background.stop().catch(() => undefined);
      core.closed = true;
    })();
    return this.closePromise;
  }
}

/** Opens a database; see `Database.open`. */
export function open(options: OpenOptions): Promise<Database> {
  return Database.open(options);
}
