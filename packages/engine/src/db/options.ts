/** Open options, their defaults and validation. */

import { InvalidArgumentError } from '../errors.js';
import type { Compression } from '../sstable/format.js';
import { nodeVfs } from '../vfs/node-vfs.js';
import type { Vfs } from '../vfs/vfs.js';
import type { WorkdirMode } from './mode-file.js';

/** Structured logger (a pino-compatible subset). The engine logs only unusual events. */
export interface Logger {
  warn(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
}

export interface OpenOptions {
  /** Workdir holding every file of the database. Created if missing (unless read-only). */
  dir: string;
  /**
   * fsync the WAL before a write resolves (default false). With it, an acknowledged write survives
   * an OS crash or power loss; without it, it survives a process crash (it is in the OS already).
   */
  syncWrites?: boolean;
  /** WAL bytes a memtable takes before it is frozen and flushed (default 64 MiB, min 64 KiB). */
  memtableBytes?: number;
  /** Budget of the decoded-block cache (default 32 MiB; 0 disables it). */
  blockCacheBytes?: number;
  /**
   * Budget of the row cache, which keeps the latest value of recently read keys (default 8 MiB;
   * 0 disables it). Counts toward memory like the block cache.
   */
  rowCacheBytes?: number;
  /**
   * Values of at least this many bytes are stored in the value log, with a pointer in the LSM
   * (default 2048; set it above MAX_VALUE_BYTES to keep every value inline).
   */
  valueThreshold?: number;
  /** Size at which a value log segment is sealed and a new one started (default 256 MiB). */
  vlogSegmentBytes?: number;
  /** How often background value log GC looks for a segment to reclaim (default 10 min; 0: never). */
  vlogGcIntervalMs?: number;
  /** Fraction of a segment known to be garbage before GC rewrites it (default 0.5). */
  vlogGcDiscardRatio?: number;
  /** Target uncompressed data block size (default 8 KiB). */
  blockBytes?: number;
  /**
   * Data block compression of compaction outputs (default 'lz4'). Level-0 tables (flushes) are
   * written uncompressed, and blocks that do not shrink are stored as they are.
   */
  compression?: Compression;
  /** Bloom filter bits per key (default 10, about 1% false positives). */
  bloomBitsPerKey?: number;
  /** Level-0 table count that triggers a compaction into level 1 (default 4). */
  l0CompactionTrigger?: number;
  /** Level-0 table count at which each commit is delayed a little (default 12). */
  l0SlowdownWritesTrigger?: number;
  /** Level-0 table count at which writes wait for compaction (default 20). */
  l0StopWritesTrigger?: number;
  /** Frozen memtables waiting for flush at which writes wait (default 2). */
  maxImmutableMemtables?: number;
  /** Target size of level 1 (default 4 × memtableBytes); each deeper level is 10× larger. */
  levelBaseBytes?: number;
  /** Growth factor between levels (default 10). */
  levelMultiplier?: number;
  /** Target size of a compaction output table (default min(memtableBytes, 64 MiB)). */
  targetFileBytes?: number;
  /** Rewrite the manifest once it exceeds this (default 4 MiB). */
  maxManifestBytes?: number;
  /** Run flush and compaction in the background (default true; tests may drive them by hand). */
  autoCompaction?: boolean;
  /**
   * Threads for flush and compaction: 1 (default) runs them in a worker thread so they never
   * block the event loop; 0 runs them on the event loop in small slices. A custom `vfs` cannot
   * be shared with a worker, so it implies 0.
   */
  compactionThreads?: 0 | 1;
  /** Open without taking the lock or changing any file; writes fail with `ReadOnly`. */
  readOnly?: boolean;
  /** Workdir modes besides standalone this open accepts (the raftstore passes its own). */
  allowedModes?: WorkdirMode[];
  /** Filesystem (default: the real one). Tests pass a `FaultVfs`. */
  vfs?: Vfs;
  /** Wall clock in Unix milliseconds, used for TTLs (default `Date.now`). */
  clock?: () => number;
  logger?: Logger;
}

export interface ResolvedOptions {
  dir: string;
  syncWrites: boolean;
  memtableBytes: number;
  blockCacheBytes: number;
  rowCacheBytes: number;
  valueThreshold: number;
  vlogSegmentBytes: number;
  vlogGcIntervalMs: number;
  vlogGcDiscardRatio: number;
  blockBytes: number;
  compression: Compression;
  bloomBitsPerKey: number;
  l0CompactionTrigger: number;
  l0SlowdownWritesTrigger: number;
  l0StopWritesTrigger: number;
  maxImmutableMemtables: number;
  levelBaseBytes: number;
  levelMultiplier: number;
  targetFileBytes: number;
  maxManifestBytes: number;
  autoCompaction: boolean;
  compactionThreads: 0 | 1;
  readOnly: boolean;
  allowedModes: WorkdirMode[];
  vfs: Vfs;
  clock: () => number;
  logger: Logger;
}

/** Largest user key accepted (bytes). */
export const MAX_KEY_BYTES = 64 * 1024;
/** Largest value accepted (bytes); a write request must also fit in one memtable. */
export const MAX_VALUE_BYTES = 256 * 1024 * 1024;

const MiB = 1024 * 1024;
/** Upper bound on a memtable (and so on one WAL segment and one write request). */
export const MAX_MEMTABLE_BYTES = 1024 * MiB;

export const silentLogger: Logger = { warn() {}, info() {} };

function positiveInt(name: string, value: number | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < min) {
    throw new InvalidArgumentError(
      'InvalidArgument',
      `option ${name} must be an integer >= ${min}; got ${value}`,
    );
  }
  return value;
}

/** Copies `options` with defaults filled in; throws `InvalidArgumentError` on bad values. */
export function resolveOptions(options: OpenOptions): ResolvedOptions {
  if (options === null || typeof options !== 'object') {
    throw new InvalidArgumentError('InvalidArgument', 'open() needs an options object with a dir');
  }
  if (typeof options.dir !== 'string' || options.dir.length === 0) {
    throw new InvalidArgumentError(
      'InvalidArgument',
      `option dir must be a non-empty path; got ${String(options.dir)}`,
    );
  }
  const memtableBytes = positiveInt('memtableBytes', options.memtableBytes, 64 * MiB, 64 * 1024);
  if (memtableBytes > MAX_MEMTABLE_BYTES) {
    throw new InvalidArgumentError(
      'InvalidArgument',
      `option memtableBytes must be at most ${MAX_MEMTABLE_BYTES} (1 GiB); got ${memtableBytes}`,
    );
  }
  const compression = options.compression ?? 'lz4';
  if (compression !== 'lz4' && compression !== 'none') {
    throw new InvalidArgumentError(
      'InvalidArgument',
      `option compression must be 'lz4' or 'none'; got ${String(compression)}`,
    );
  }
  const l0CompactionTrigger = positiveInt('l0CompactionTrigger', options.l0CompactionTrigger, 4);
  const l0StopWritesTrigger = positiveInt('l0StopWritesTrigger', options.l0StopWritesTrigger, 20);
  if (l0StopWritesTrigger <= l0CompactionTrigger) {
    throw new InvalidArgumentError(
      'InvalidArgument',
      `option l0StopWritesTrigger (${l0StopWritesTrigger}) must exceed l0CompactionTrigger (${l0CompactionTrigger})`,
    );
  }
  if (options.vlogSegmentBytes !== undefined && options.vlogSegmentBytes > 2 ** 31) {
    throw new InvalidArgumentError(
      'InvalidArgument',
      `option vlogSegmentBytes must be at most 2 GiB; got ${options.vlogSegmentBytes}`,
    );
  }
  return {
    dir: options.dir,
    syncWrites: options.syncWrites ?? false,
    memtableBytes,
    blockCacheBytes: positiveInt('blockCacheBytes', options.blockCacheBytes, 32 * MiB, 0),
    rowCacheBytes: positiveInt('rowCacheBytes', options.rowCacheBytes, 8 * MiB, 0),
    valueThreshold: positiveInt('valueThreshold', options.valueThreshold, 2048, 1),
    vlogSegmentBytes: positiveInt('vlogSegmentBytes', options.vlogSegmentBytes, 256 * MiB, 64 * 1024),
    vlogGcIntervalMs: positiveInt('vlogGcIntervalMs', options.vlogGcIntervalMs, 10 * 60 * 1000, 0),
    vlogGcDiscardRatio: ratio('vlogGcDiscardRatio', options.vlogGcDiscardRatio, 0.5),
    blockBytes: positiveInt('blockBytes', options.blockBytes, 8 * 1024, 256),
    compression,
    bloomBitsPerKey: positiveInt('bloomBitsPerKey', options.bloomBitsPerKey, 10),
    l0CompactionTrigger,
    l0SlowdownWritesTrigger: positiveInt(
      'l0SlowdownWritesTrigger',
      options.l0SlowdownWritesTrigger,
      Math.max(l0CompactionTrigger + 1, Math.min(12, l0StopWritesTrigger - 1)),
    ),
    l0StopWritesTrigger,
    maxImmutableMemtables: positiveInt('maxImmutableMemtables', options.maxImmutableMemtables, 2),
    levelBaseBytes: positiveInt('levelBaseBytes', options.levelBaseBytes, 4 * memtableBytes, 1024),
    levelMultiplier: positiveInt('levelMultiplier', options.levelMultiplier, 10, 2),
    targetFileBytes: positiveInt(
      'targetFileBytes',
      options.targetFileBytes,
      Math.min(memtableBytes, 64 * MiB),
      1024,
    ),
    maxManifestBytes: positiveInt('maxManifestBytes', options.maxManifestBytes, 4 * MiB, 1024),
    autoCompaction: options.autoCompaction ?? true,
    compactionThreads: resolveThreads(options),
    readOnly: options.readOnly ?? false,
    allowedModes: [...(options.allowedModes ?? [])],
    vfs: options.vfs ?? nodeVfs,
    clock: options.clock ?? Date.now,
    logger: options.logger ?? silentLogger,
  };
}

function resolveThreads(options: OpenOptions): 0 | 1 {
  const custom = options.vfs !== undefined && options.vfs !== nodeVfs;
  const threads = options.compactionThreads ?? (custom ? 0 : 1);
  if (threads !== 0 && threads !== 1) {
    throw new InvalidArgumentError(
      'InvalidArgument',
      `option compactionThreads must be 0 or 1; got ${String(threads)}`,
    );
  }
  if (threads === 1 && custom) {
    throw new InvalidArgumentError(
      'InvalidArgument',
      'option compactionThreads: 1 needs the real filesystem; a custom vfs runs compaction inline',
    );
  }
  return threads;
}

function ratio(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value > 0 && value < 1)) {
    throw new InvalidArgumentError(
      'InvalidArgument',
      `option ${name} must be a number between 0 and 1; got ${value}`,
    );
  }
  return value;
}
