/**
 * The JSON stats snapshot (`db.stats()`, `nokv stats`): plain data, JSON-safe (versions are
 * decimal strings), grouped by subsystem.
 */

import { levelScores, levelTargets } from '../compaction/picker.js';
import { NUM_LEVELS } from '../manifest/version.js';
import type { TornTail } from '../record/log-format.js';
import type { BackgroundWork } from './background-work.js';
import type { EngineCore } from './engine-core.js';
import type { ValueLogGc, ValueLogGcStats } from './value-log-gc.js';
import type { WritePipeline } from './write-pipeline.js';

export interface LevelStats {
  level: number;
  tables: number;
  sizeBytes: number;
  entries: number;
  deletions: number;
  rangeDeletions: number;
  rawKeyBytes: number;
  rawValueBytes: number;
  /** Size target (0 for level 0, which is scored by table count). */
  targetBytes: number;
  /** Compaction score; a level at or above 1 is due. */
  score: number;
}

export interface EngineStats {
  dir: string;
  readOnly: boolean;
  closed: boolean;
  /** Set when writes are stopped after a failure. */
  backgroundError: string | null;
  /** Point entries in memtables plus entries in tables (all versions, deletes included). */
  entries: number;
  memtable: {
    activeBytes: number;
    activeWalBytes: number;
    activeEntries: number;
    immutables: number;
    immutableBytes: number;
  };
  wal: {
    activeSegment: number;
    segments: number;
    activeBytes: number;
    bytesWritten: number;
    syncs: number;
    avgSyncMs: number;
  };
  write: {
    requests: number;
    groups: number;
    avgGroupRequests: number;
    avgGroupBytes: number;
    queueDepth: number;
    queueBytes: number;
    stalls: number;
    stallMsTotal: number;
    slowdowns: number;
    slowdownMsTotal: number;
    stallReason: string;
    memtableRotations: number;
  };
  flush: {
    pending: number;
    active: boolean;
    completed: number;
    bytesWritten: number;
    lastMs: number;
    maxMs: number;
    avgMs: number;
  };
  compaction: {
    running: string | null;
    runs: number;
    trivialMoves: number;
    failures: number;
    bytesRead: number;
    bytesWritten: number;
    entriesDropped: number;
    tombstonesDropped: number;
    lastMs: number;
    maxMs: number;
    backlog: number;
    maxScore: number;
  };
  cache: { capacityBytes: number; usedBytes: number; hits: number; misses: number; hitRate: number };
  rowCache: { capacityBytes: number; usedBytes: number; hits: number; misses: number; hitRate: number };
  valueLog: {
    threshold: number;
    segments: number;
    totalBytes: number;
    activeSegment: number | null;
    discardBytes: number;
    bytesWritten: number;
    recordsWritten: number;
    gc: ValueLogGcStats;
  };
  lsm: { levels: LevelStats[]; totalBytes: number; tables: number; obsoleteTablesDeleted: number };
  manifest: { file: string; bytes: number; rewrites: number; nextFileNumber: number; logNumber: number };
  versions: { lastVersion: string; visibleVersion: string; snapshots: number; oldestSnapshot: string | null };
  recovery: {
    walSegments: number;
    walRecords: number;
    walEntries: number;
    tornTails: TornTail[];
    manifestEdits: number;
    obsoleteFilesRemoved: string[];
    durationMs: number;
  };
}

const round = (n: number): number => Math.round(n * 1000) / 1000;

export function collectStats(
  core: EngineCore,
  writes: WritePipeline,
  background: BackgroundWork,
  gc: ValueLogGc,
): EngineStats {
  const version = core.versions.current;
  const segments = core.vlog.list();
  const scores = levelScores(version, core.options);
  const targets = levelTargets(core.options);
  const levels: LevelStats[] = [];
  let tableEntries = 0;
  let totalBytes = 0;
  let tables = 0;
  for (let level = 0; level < NUM_LEVELS; level++) {
    const files = version.levels[level]!;
    const s: LevelStats = {
      level,
      tables: files.length,
      sizeBytes: 0,
      entries: 0,
      deletions: 0,
      rangeDeletions: 0,
      rawKeyBytes: 0,
      rawValueBytes: 0,
      targetBytes: level === 0 ? 0 : targets[level]!,
      score: round(scores[level]?.score ?? 0),
    };
    for (const f of files) {
      s.sizeBytes += f.size;
      s.entries += f.entries;
      s.deletions += f.deletions;
      s.rangeDeletions += f.rangeDeletions;
      s.rawKeyBytes += f.rawKeyBytes;
      s.rawValueBytes += f.rawValueBytes;
    }
    tableEntries += s.entries;
    totalBytes += s.sizeBytes;
    tables += files.length;
    levels.push(s);
  }
  const mem = core.memtable;
  const imm = core.immutables;
  const w = writes.stats;
  const f = background.flushStats;
  const c = background.compactionStats;
  const due = scores.filter((s) => s.score >= 1);
  const oldest = core.snapshots.oldest();
  const running = background.runningCompaction;
  const cache = core.cache;
  return {
    dir: core.dir,
    readOnly: core.options.readOnly,
    closed: core.closed,
    backgroundError:
      core.backgroundError === undefined
        ? null
        : core.backgroundError instanceof Error
          ? core.backgroundError.message
          : String(core.backgroundError),
    entries: mem.pointEntries + imm.reduce((n, m) => n + m.pointEntries, 0) + tableEntries,
    memtable: {
      activeBytes: mem.approxBytes,
      activeWalBytes: mem.walBytes,
      activeEntries: mem.pointEntries,
      immutables: imm.length,
      immutableBytes: imm.reduce((n, m) => n + m.approxBytes, 0),
    },
    wal: {
      activeSegment: mem.walNumber,
      segments: imm.length + 1,
      activeBytes: core.wal?.size ?? mem.walBytes,
      bytesWritten: w.walBytesWritten,
      syncs: w.syncs,
      avgSyncMs: w.syncs === 0 ? 0 : round(w.syncMsTotal / w.syncs),
    },
    write: {
      requests: w.requests,
      groups: w.groups,
      avgGroupRequests: w.groups === 0 ? 0 : round(w.groupRequests / w.groups),
      avgGroupBytes: w.groups === 0 ? 0 : round(w.groupBytes / w.groups),
      queueDepth: writes.queueDepth,
      queueBytes: writes.queuedBytes,
      stalls: w.stalls,
      stallMsTotal: round(w.stallMsTotal),
      slowdowns: w.slowdowns,
      slowdownMsTotal: round(w.slowdownMsTotal),
      stallReason: w.stallReason,
      memtableRotations: w.rotations,
    },
    flush: {
      pending: imm.length,
      active: background.isFlushing,
      completed: f.completed,
      bytesWritten: f.bytesWritten,
      lastMs: round(f.lastMs),
      maxMs: round(f.maxMs),
      avgMs: f.completed === 0 ? 0 : round(f.totalMs / f.completed),
    },
    compaction: {
      running: running === undefined ? null : `L${running.level} -> L${running.outputLevel}`,
      runs: c.runs,
      trivialMoves: c.trivialMoves,
      failures: c.failures,
      bytesRead: c.bytesRead,
      bytesWritten: c.bytesWritten,
      entriesDropped: c.entriesDropped,
      tombstonesDropped: c.tombstonesDropped,
      lastMs: round(c.lastMs),
      maxMs: round(c.maxMs),
      backlog: due.length,
      maxScore: round(Math.max(0, ...scores.map((s) => s.score))),
    },
    cache: {
      capacityBytes: cache.capacity,
      usedBytes: cache.size,
      hits: cache.hits,
      misses: cache.misses,
      hitRate: cache.hits + cache.misses === 0 ? 0 : round(cache.hits / (cache.hits + cache.misses)),
    },
    rowCache: {
      capacityBytes: core.rowCache.capacity,
      usedBytes: core.rowCache.size,
      hits: core.rowCache.hits,
      misses: core.rowCache.misses,
      hitRate:
        core.rowCache.hits + core.rowCache.misses === 0
          ? 0
          : round(core.rowCache.hits / (core.rowCache.hits + core.rowCache.misses)),
    },
    valueLog: {
      threshold: core.options.valueThreshold,
      segments: segments.length,
      totalBytes: segments.reduce((n, s) => n + s.size, 0),
      activeSegment: core.vlog.activeSegment ?? null,
      discardBytes: [...core.versions.vlog.discard.values()].reduce((n, b) => n + b, 0),
      bytesWritten: core.vlog.bytesWritten,
      recordsWritten: core.vlog.recordsWritten,
      gc: { ...gc.stats, lastMs: round(gc.stats.lastMs) },
    },
    lsm: { levels, totalBytes, tables, obsoleteTablesDeleted: core.obsoleteTablesDeleted },
    manifest: {
      file: core.versions.manifestName,
      bytes: core.versions.manifestBytes,
      rewrites: core.versions.manifestRewrites,
      nextFileNumber: core.versions.nextFileNumber,
      logNumber: core.versions.logNumber,
    },
    versions: {
      lastVersion: core.lastVersion.toString(),
      visibleVersion: core.visibleVersion.toString(),
      snapshots: core.snapshots.size,
      oldestSnapshot: oldest === undefined ? null : oldest.toString(),
    },
    recovery: { ...core.recovery, durationMs: round(core.recovery.durationMs) },
  };
}
