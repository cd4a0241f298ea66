/**
 * The write path. Requests queue up; one commit loop takes as many as are waiting (a group),
 * stamps versions, appends one WAL record per request in a single write, fsyncs once for the group
 * when any request needs it, then applies the entries to the memtable and resolves the group.
 *
 * Durability contract: a write resolves only after its WAL record is written to the OS (it
 * survives a process crash) and, with `syncWrites` (or `{ sync: true }`), fsynced (it survives an
 * OS crash or power loss). Entries become readable after that point, never before.
 *
 * A failed WAL write or sync leaves the segment's tail unknown, so it stops all writes with a
 * `BackgroundError` until reopen, where replay cuts any torn record. Nothing acknowledged is lost.
 *
 * Backpressure: the queue is bounded in bytes (callers wait for room), and the loop stalls while
 * too many memtables wait for flush or level 0 has too many tables.
 */

import { levelScores } from '../compaction/picker.js';
import { BackgroundError, ClosedError, InvalidArgumentError } from '../errors.js';
import { entryKind, KIND_RANGE_DELETE } from '../keys/entry.js';
import {
  CF_DEFAULT,
  internalKeyCf,
  internalKeyVersion,
  MAX_VERSION,
  VERSION_SUFFIX_BYTES,
} from '../keys/internal-key.js';
import type { Version } from '../manifest/version.js';
import { Memtable } from '../memtable/memtable.js';
import { RECORD_HEADER_BYTES, writeRecordHeader } from '../record/log-format.js';
import { bloomHash } from '../sstable/bloom.js';
import { Arena } from '../util/arena.js';
import {
  type EncodedBatch,
  encodeBatch,
  type SeparatedValue,
  WAL_RECORD_WRITE_BATCH,
  type WriteToEncode,
} from '../wal/batch-codec.js';
import { WalWriter } from '../wal/wal.js';
import type { EngineCore } from './engine-core.js';
import type { ResolvedOptions } from './options.js';

interface WriteRequest {
  kind: 'write';
  /** The encoded batch: WAL payload plus memtable entries that are views into it. */
  batch: EncodedBatch;
  sync: boolean;
  resolve: () => void;
  reject: (err: unknown) => void;
}

interface RotateRequest {
  kind: 'rotate';
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Writes decided at commit time, with no other write in between (value log GC rewrites). */
interface ConditionalRequest {
  kind: 'conditional';
  prepare: () => WriteToEncode[];
  resolve: (written: number) => void;
  reject: (err: unknown) => void;
}

type Request = WriteRequest | RotateRequest | ConditionalRequest;

/** Delay of a commit group while compaction is behind. */
const SLOWDOWN_MS = 1;
/** Compaction score (the most overdue level) at which writes slow down. */
const SLOWDOWN_SCORE = 4;

const debtByVersion = new WeakMap<Version, number>();

/** The highest compaction score of `version`'s levels 1..5, computed once per version. */
function compactionDebt(version: Version, options: ResolvedOptions): number {
  let debt = debtByVersion.get(version);
  if (debt === undefined) {
    debt = Math.max(
      0,
      ...levelScores(version, options)
        .filter((s) => s.level > 0)
        .map((s) => s.score),
    );
    debtByVersion.set(version, debt);
  }
  return debt;
}

/** Most bytes one group writes to the WAL in one call. */
const MAX_GROUP_BYTES = 4 << 20;
/** Queue size beyond which callers wait before enqueueing. */
const MAX_QUEUE_BYTES = 64 << 20;

export interface WriteStats {
  requests: number;
  groups: number;
  groupRequests: number;
  groupBytes: number;
  walBytesWritten: number;
  syncs: number;
  syncMsTotal: number;
  stalls: number;
  stallMsTotal: number;
  stallReason: 'none' | 'memtables' | 'level0' | 'slowdown';
  /** Commit groups delayed because compaction was falling behind. */
  slowdowns: number;
  slowdownMsTotal: number;
  rotations: number;
}

export class WritePipeline {
  private readonly core: EngineCore;
  private readonly arena = new Arena();
  private readonly alloc = (bytes: number): Buffer => this.arena.alloc(bytes);
  private readonly queue: Request[] = [];
  private queueBytes = 0;
  private committing = false;
  private readonly roomWaiters: (() => void)[] = [];
  private readonly idleWaiters: (() => void)[] = [];
  /** Invoked after a memtable is frozen, so background work can flush it. */
  onFrozen: () => void = () => {};
  readonly stats: WriteStats = {
    requests: 0,
    groups: 0,
    groupRequests: 0,
    groupBytes: 0,
    walBytesWritten: 0,
    syncs: 0,
    syncMsTotal: 0,
    stalls: 0,
    stallMsTotal: 0,
    stallReason: 'none',
    slowdowns: 0,
    slowdownMsTotal: 0,
    rotations: 0,
  };

  constructor(core: EngineCore) {
    this.core = core;
  }

  get queueDepth(): number {
    return this.queue.length;
  }

  get queuedBytes(): number {
    return this.queueBytes;
  }

  /**
   * Queues `entries` as one atomic request and resolves when it is durable per the contract.
   * Entries with placeholder versions listed in `unstamped` get fresh default-CF versions.
   */
  /**
   * Encodes `writes` as one atomic request (copying their bytes, so the caller's buffers are free
   * once this returns) and queues it; resolves when it is durable per the contract.
   */
  write(writes: readonly WriteToEncode[], sync: boolean): Promise<void> {
    this.core.checkWritable();
    if (writes.length === 0) return Promise.resolve();
    return this.submit(encodeBatch(writes, this.alloc, this.core.options.valueThreshold), sync);
  }

  private submit(batch: EncodedBatch, sync: boolean): Promise<void> {
    const recordBytes = batch.payload.length + RECORD_HEADER_BYTES;
    if (recordBytes > this.core.options.memtableBytes) {
      throw new InvalidArgumentError(
        'BatchTooLarge',
        `write of ${batch.entries.length} entries takes ${recordBytes} bytes; one write must fit in a memtable (memtableBytes = ${this.core.options.memtableBytes})`,
      );
    }
    if (this.queueBytes > MAX_QUEUE_BYTES) return this.writeWhenRoom(batch, sync);
    this.stats.requests++;
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ kind: 'write', batch, sync, resolve, reject });
      this.queueBytes += recordBytes;
      this.kick();
    });
  }

  private async writeWhenRoom(batch: EncodedBatch, sync: boolean): Promise<void> {
    while (this.queueBytes > MAX_QUEUE_BYTES) {
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
      this.core.checkWritable();
    }
    return this.submit(batch, sync);
  }

  /**
   * Runs `prepare` in the commit loop, where no other write can come between it and its result:
   * it looks at the current state and returns what to write, which is committed (fsynced) as one
   * request. Resolves with the number of writes made.
   */
  writeIfCurrent(prepare: () => WriteToEncode[]): Promise<number> {
    this.core.checkWritable();
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ kind: 'conditional', prepare, resolve, reject });
      this.kick();
    });
  }

  /** Freezes the active memtable (if it holds anything) in write order. */
  rotate(): Promise<void> {
    this.core.checkWritable();
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ kind: 'rotate', resolve, reject });
      this.kick();
    });
  }

  /** Resolves once every queued request has been processed. */
  drain(): Promise<void> {
    if (!this.committing && this.queue.length === 0) return Promise.resolve();
    return new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private kick(): void {
    if (this.committing) return;
    this.committing = true;
    void this.commitLoop().finally(() => {
      this.committing = false;
      if (this.queue.length > 0) {
        this.kick();
        return;
      }
      const waiters = this.idleWaiters.splice(0);
      for (const w of waiters) w();
    });
  }

  private failQueued(err: unknown): void {
    const failed = this.queue.splice(0);
    this.queueBytes = 0;
    for (const r of failed) r.reject(err);
    this.releaseRoom();
  }

  private releaseRoom(): void {
    if (this.queueBytes > MAX_QUEUE_BYTES) return;
    const waiters = this.roomWaiters.splice(0);
    for (const w of waiters) w();
  }

  private stopError(): unknown {
    const core = this.core;
    if (core.crashed) return new ClosedError('the database crashed (simulated)');
    if (core.backgroundError !== undefined) return new BackgroundError(core.backgroundError);
    return undefined;
  }

  private async commitLoop(): Promise<void> {
    const core = this.core;
    while (this.queue.length > 0) {
      const stop = this.stopError();
      if (stop !== undefined) {
        this.failQueued(stop);
        return;
      }
      await this.waitForRoom();
      const stopAfterWait = this.stopError();
      if (stopAfterWait !== undefined) {
        this.failQueued(stopAfterWait);
        return;
      }
      const head = this.queue[0]!;
      if (head.kind === 'rotate') {
        this.queue.shift();
        try {
          if (!core.memtable.isEmpty) await this.rotateMemtable();
          head.resolve();
        } catch (err) {
          head.reject(err);
        }
        continue;
      }
      if (head.kind === 'conditional') {
        this.queue.shift();
        try {
          const writes = head.prepare();
          if (writes.length > 0) {
            const batch = encodeBatch(writes, this.alloc, core.options.valueThreshold);
            const request: WriteRequest = {
              kind: 'write',
              batch,
              sync: true,
              resolve: () => {},
              reject: () => {},
            };
            await this.commitGroup([request], batch.payload.length + RECORD_HEADER_BYTES, true);
          }
          head.resolve(writes.length);
        } catch (err) {
          head.reject(err);
        }
        continue;
      }
      const group: WriteRequest[] = [];
      let bytes = 0;
      let sync = core.options.syncWrites;
      while (this.queue.length > 0) {
        const next = this.queue[0]!;
        if (next.kind !== 'write') break;
        const size = next.batch.payload.length + RECORD_HEADER_BYTES;
        if (group.length > 0 && bytes + size > MAX_GROUP_BYTES) break;
        this.queue.shift();
        group.push(next);
        bytes += size;
        sync ||= next.sync;
      }
      this.queueBytes -= bytes;
      this.releaseRoom();
      try {
        await this.commitGroup(group, bytes, sync);
        for (const r of group) r.resolve();
        if (core.shouldYield()) await core.yieldTurn();
      } catch (err) {
        for (const r of group) r.reject(err);
      }
    }
  }

  /** Waits while flush or compaction is too far behind. */
  private async waitForRoom(): Promise<void> {
    const core = this.core;
    const started = performance.now();
    let stalled = false;
    for (;;) {
      if (this.stopError() !== undefined) break;
      let reason: WriteStats['stallReason'] = 'none';
      if (core.immutables.length >= core.options.maxImmutableMemtables) reason = 'memtables';
      else if (
        core.options.autoCompaction &&
        !core.closing &&
        core.versions.current.levels[0]!.length >= core.options.l0StopWritesTrigger
      ) {
        reason = 'level0';
      }
      this.stats.stallReason = reason;
      if (reason === 'none') break;
      if (!stalled) {
        stalled = true;
        this.stats.stalls++;
      }
      await new Promise<void>((resolve) => core.stallWaiters.push(resolve));
    }
    if (stalled) this.stats.stallMsTotal += performance.now() - started;
    else if (core.options.autoCompaction && !core.closing && this.behind()) {
      // Compaction is falling behind: slow writers down a little now rather than stop them later.
      this.stats.stallReason = 'slowdown';
      this.stats.slowdowns++;
      const t0 = performance.now();
      await new Promise((resolve) => setTimeout(resolve, SLOWDOWN_MS));
      this.stats.slowdownMsTotal += performance.now() - t0;
    }
  }

  /** Whether level 0 or the compaction backlog is past the slowdown triggers. */
  private behind(): boolean {
    const core = this.core;
    const version = core.versions.current;
    if (version.levels[0]!.length >= core.options.l0SlowdownWritesTrigger) return true;
    return compactionDebt(version, core.options) >= SLOWDOWN_SCORE;
  }

  private async commitGroup(group: WriteRequest[], bytes: number, sync: boolean): Promise<void> {
    const core = this.core;
    if (core.memtable.walBytes > 0 && core.memtable.walBytes + bytes > core.options.memtableBytes) {
      await this.rotateMemtable();
    }
    const wal = core.wal!;
    let nextVersion = core.lastVersion;
    for (const r of group) {
      for (const e of r.batch.unstamped) {
        nextVersion++;
        if (nextVersion >= MAX_VERSION)
          throw new InvalidArgumentError('InvalidArgument', 'version counter exhausted');
        e.key.writeBigUInt64BE(MAX_VERSION - nextVersion, e.key.length - 8);
      }
    }
    // Values bound for the value log go first, so no WAL record ever points past them.
    const separated: SeparatedValue[] = [];
    for (const r of group) {
      for (const v of r.batch.separated) {
        v.entry.key.copy(
          v.key,
          v.key.length - VERSION_SUFFIX_BYTES,
          v.entry.key.length - VERSION_SUFFIX_BYTES,
        );
        separated.push(v);
      }
    }
    if (separated.length > 0) {
      try {
        await core.vlog.append(separated);
      } catch (err) {
        core.setBackgroundError(err);
        throw err;
      }
    }
    // One header block for the group; each payload is written from where it was encoded.
    const headers = Buffer.allocUnsafe(group.length * RECORD_HEADER_BYTES);
    const chunks: Buffer[] = [];
    for (let i = 0; i < group.length; i++) {
      const payload = group[i]!.batch.payload;
      writeRecordHeader(headers, i * RECORD_HEADER_BYTES, WAL_RECORD_WRITE_BATCH, payload);
      chunks.push(headers.subarray(i * RECORD_HEADER_BYTES, (i + 1) * RECORD_HEADER_BYTES), payload);
    }
    try {
      wal.appendSync(chunks, bytes);
      if (sync) {
        const t0 = performance.now();
        // Any value a WAL record points at must be on disk before the record is.
        await core.vlog.sync();
        await wal.sync();
        this.stats.syncs++;
        this.stats.syncMsTotal += performance.now() - t0;
      }
    } catch (err) {
      core.setBackgroundError(err);
      throw err;
    }
    // Durable per the contract: stamp the counter, then make the entries readable.
    core.lastVersion = nextVersion;
    const mem = core.memtable;
    mem.walBytes += bytes;
    const rows = core.rowCache.size > 0 ? core.rowCache : undefined;
    for (const r of group) {
      for (const e of r.batch.entries) {
        mem.add(e);
        if (internalKeyCf(e.key) === CF_DEFAULT) {
          const v = internalKeyVersion(e.key);
          if (v > core.lastVersion) core.lastVersion = v;
          if (rows !== undefined) {
            // The key's cached latest value is about to be stale.
            if (entryKind(e.meta) === KIND_RANGE_DELETE) rows.clear();
            else rows.invalidate(bloomHash(e.key, 0, e.key.length - VERSION_SUFFIX_BYTES));
          }
        }
      }
    }
    core.visibleVersion = core.lastVersion;
    this.stats.groups++;
    this.stats.groupRequests += group.length;
    this.stats.groupBytes += bytes;
    this.stats.walBytesWritten += bytes;
  }

  /**
   * Freezes the active memtable and starts a new one with a new WAL segment. The old segment is
   * fsynced first, so every segment but the newest is complete on disk (replay relies on it).
   */
  private async rotateMemtable(): Promise<void> {
    const core = this.core;
    const oldWal = core.wal!;
    try {
      await core.vlog.sync();
      await oldWal.sync();
      const number = core.versions.newFileNumber();
      core.wal = await WalWriter.create(core.options.vfs, core.dir, number);
      core.immutables.push(core.memtable);
      core.memtable = new Memtable(number);
    } catch (err) {
      core.setBackgroundError(err);
      throw err;
    }
    this.stats.rotations++;
    await oldWal.close().catch(() => undefined);
    this.onFrozen();
  }
}
