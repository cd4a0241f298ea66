/**
 * State shared by the parts of an open database: the memtables and WAL (owned by the write
 * pipeline), the version set and open tables (changed by flush and compaction), version counters
 * and snapshots, and the sticky background error. The parts coordinate only through this object;
 * everything runs on the event loop, so a synchronous section never sees a half-made change.
 */

import { join } from 'node:path';
import { BlockCache } from '../cache/block-cache.js';
import { RowCache } from '../cache/row-cache.js';
import { BackgroundError, ClosedError, ReadOnlyError } from '../errors.js';
import { META_VALUE_POINTER } from '../keys/entry.js';
import { CF_DEFAULT } from '../keys/internal-key.js';
import type { VersionSet } from '../manifest/version-set.js';
import type { Memtable } from '../memtable/memtable.js';
import type { TornTail } from '../record/log-format.js';
import type { TableReader } from '../sstable/table-reader.js';
import { tableFileName } from '../util/filenames.js';
import { AssertionError } from '../util/invariants.js';
import type { ValueLog } from '../vlog/value-log.js';
import { readPointer } from '../vlog/vlog-format.js';
import type { WalWriter } from '../wal/wal.js';
import type { DirLock } from './dir-lock.js';
import type { ResolvedOptions } from './options.js';
import type { ReadView, TableSource } from './read-view.js';
import { SnapshotRegistry } from './snapshots.js';

/** Longest stretch of microtask-only work before the engine lets the event loop turn. */
const YIELD_AFTER_MS = 2;

export interface RecoveryReport {
  /** WAL segments replayed into memtables. */
  walSegments: number;
  walRecords: number;
  walEntries: number;
  /** Torn tails cut off (or, read-only, ignored) while replaying. */
  tornTails: TornTail[];
  manifestEdits: number;
  /** Files removed because nothing references them (leftovers of interrupted work). */
  obsoleteFilesRemoved: string[];
  durationMs: number;
}

export class EngineCore {
  readonly options: ResolvedOptions;
  readonly cache: BlockCache;
  readonly rowCache: RowCache;
  readonly tables = new Map<number, TableReader>();
  readonly snapshots = new SnapshotRegistry();
  /** Per column family (other than default), the version below which history may be dropped. */
  readonly gcWatermarks = new Map<number, bigint>();
  /** Frozen memtables waiting for flush, oldest first. */
  readonly immutables: Memtable[] = [];
  readonly stallWaiters: (() => void)[] = [];

  versions!: VersionSet;
  vlog!: ValueLog;
  memtable!: Memtable;
  wal: WalWriter | undefined;
  lock: DirLock | undefined;
  /** Last default-CF version handed out. */
  lastVersion = 0n;
  /** Last default-CF version whose write is applied and readable. */
  visibleVersion = 0n;
  backgroundError: unknown;
  closing = false;
  closed = false;
  crashed = false;
  recovery: RecoveryReport = {
    walSegments: 0,
    walRecords: 0,
    walEntries: 0,
    tornTails: [],
    manifestEdits: 0,
    obsoleteFilesRemoved: [],
    durationMs: 0,
  };
  obsoleteTablesDeleted = 0;

  readonly tableSource: TableSource = {
    table: (n) => {
      const t = this.tables.get(n);
      if (t === undefined) throw new AssertionError(`table ${n} is listed by a live version but not open`);
      return t;
    },
  };

  /** Value-log epoch: GC bumps it once its rewrites are in; see `pinView`. */
  private viewEpoch = 0;
  private readonly viewPins = new Map<number, number>();
  private opsSinceCheck = 0;
  private lastTurnAt = performance.now();

  constructor(options: ResolvedOptions) {
    this.options = options;
    this.cache = new BlockCache(options.blockCacheBytes);
    this.rowCache = new RowCache(options.rowCacheBytes);
  }

  /**
   * Whether the caller should let the event loop turn before going on. Reads and writes that
   * never wait on I/O resolve as microtasks, so callers awaiting them in a loop would otherwise
   * hold the thread for as long as they like: background completions (a finished flush), timers
   * and sockets would starve. Checked cheaply (the clock is read every 64 operations).
   */
  shouldYield(): boolean {
    if ((++this.opsSinceCheck & 63) !== 0) return false;
    return performance.now() - this.lastTurnAt > YIELD_AFTER_MS;
  }

  /** Resolves on a later event-loop turn (after I/O and messages are handled). */
  yieldTurn(): Promise<void> {
    this.lastTurnAt = performance.now();
    return new Promise((resolve) => setImmediate(resolve));
  }

  get dir(): string {
    return this.options.dir;
  }

  /** The current read view (not pinned: pin `version` if the read spans an await). */
  view(): ReadView {
    const memtables: Memtable[] = [this.memtable];
    for (let i = this.immutables.length - 1; i >= 0; i--) memtables.push(this.immutables[i]!);
    return { memtables, version: this.versions.current, tables: this.tableSource };
  }

  /**
   * The value an entry stands for: its own bytes, or for a value-log pointer the value read from
   * the log (a fresh buffer). `key` is the entry's internal key, which the log record must match.
   */
  resolveValue(key: Buffer, meta: number, value: Buffer): Buffer {
    if ((meta & META_VALUE_POINTER) === 0) return value;
    return this.vlog.read(readPointer(value, this.dir), key);
  }

  /**
   * Pins the current value-log epoch for a reader that spans awaits (an iterator): value-log
   * segments GC rewrote after this moment are not deleted while the pin is held, since the
   * reader's view may still point into them. Returns the epoch to pass to `unpinView`.
   */
  pinView(): number {
    const epoch = this.viewEpoch;
    this.viewPins.set(epoch, (this.viewPins.get(epoch) ?? 0) + 1);
    return epoch;
  }

  unpinView(epoch: number): void {
    const n = (this.viewPins.get(epoch) ?? 0) - 1;
    if (n <= 0) this.viewPins.delete(epoch);
    else this.viewPins.set(epoch, n);
  }

  /** Starts a new epoch; returns it. Views pinned before it may still see older pointers. */
  nextViewEpoch(): number {
    return ++this.viewEpoch;
  }

  /** True when no view pinned before `epoch` is still held. */
  viewsReleasedBefore(epoch: number): boolean {
    for (const e of this.viewPins.keys()) if (e < epoch) return false;
    return true;
  }

  /** Oldest version any reader of `cf` may still read; compaction keeps what it can see. */
  watermark(cf: number): bigint {
    if (cf === CF_DEFAULT) {
      const oldest = this.snapshots.oldest();
      return oldest !== undefined && oldest < this.visibleVersion ? oldest : this.visibleVersion;
    }
    return this.gcWatermarks.get(cf) ?? 0n;
  }

  /** Throws unless writes are currently accepted. */
  checkWritable(): void {
    if (this.closing) throw new ClosedError();
    if (this.options.readOnly) throw new ReadOnlyError('writing');
    if (this.backgroundError !== undefined) throw new BackgroundError(this.backgroundError);
  }

  checkOpen(): void {
    if (this.closing) throw new ClosedError();
  }

  /** Records the first unrecoverable write-path failure; writes stop until reopen. */
  setBackgroundError(err: unknown): void {
    if (this.backgroundError !== undefined || this.crashed) return;
    this.backgroundError = err;
    this.options.logger.warn(
      { dir: this.dir, err: err instanceof Error ? err.message : String(err) },
      'writes stopped after a write-path failure; reopen the database to recover',
    );
    this.wakeStalls();
  }

  wakeStalls(): void {
    const waiters = this.stallWaiters.splice(0);
    for (const wake of waiters) wake();
  }

  /** Called when no live version lists table `n`: close it and delete its file. */
  onObsoleteTable(n: number): void {
    const reader = this.tables.get(n);
    this.tables.delete(n);
    this.cache.evictFile(n);
    if (this.crashed) return;
    void (async () => {
      await reader?.close().catch(() => undefined);
      try {
        await this.options.vfs.unlink(join(this.dir, tableFileName(n)));
        this.obsoleteTablesDeleted++;
      } catch (err) {
        // Left behind, it is removed as an orphan at the next open.
        this.options.logger.warn(
          { table: n, err: (err as Error).message },
          'could not delete obsolete table',
        );
      }
    })();
  }
}
