/**
 * Executes a compaction plan: merges the input tables and writes new tables for the output level.
 *
 * What the merge drops, per column family with watermark W (no reader can read below W):
 * - versions at or below W that a newer version at or below W shadows;
 * - a version at or below W hidden by a range tombstone (from the inputs) at or below W;
 * - at the bottommost level only: a delete, or an expired put, that is the newest version at or
 *   below W (nothing older can be resurrected, since nothing older exists below);
 * - at the bottommost level only: range tombstones at or below W, when no newer source
 *   (memtables, higher levels) holds versions older than the tombstone in its range.
 * Everything else is kept, newest version first.
 *
 * Outputs are cut at `targetFileBytes`, always between two user keys, so no user key spans two
 * tables of a level. Range tombstones are clipped to each output's key span.
 */

import { join } from 'node:path';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { BlockCache } from '../cache/block-cache.js';
import type { TableSource } from '../db/read-view.js';
import { ClosedError } from '../errors.js';
import type { InternalIterator } from '../iterator/internal-iterator.js';
import { LevelIterator } from '../iterator/level-iterator.js';
import { MergingIterator } from '../iterator/merging-iterator.js';
import { entryKind, isExpired, KIND_DELETE, META_VALUE_POINTER } from '../keys/entry.js';
import {
  encodeInternalKey,
  internalKeyBase,
  internalKeyCf,
  internalKeyUserKey,
  internalKeyVersion,
  MAX_VERSION,
  sameBaseKey,
} from '../keys/internal-key.js';
import { rangesOverlap } from '../manifest/version.js';
import type { FileMetadata } from '../manifest/version-edit.js';
import { type RangeTombstone, TombstoneIndex } from '../rangedel/tombstone-index.js';
import { TableBuilder, type TableBuilderOptions } from '../sstable/table-builder.js';
import { TableFileWriter } from '../sstable/table-file-writer.js';
import { TableReader } from '../sstable/table-reader.js';
import { compareBytes } from '../util/bytes.js';
import { tableFileName } from '../util/filenames.js';
import { assert } from '../util/invariants.js';
import type { Vfs } from '../vfs/vfs.js';
import { POINTER_BYTES } from '../vlog/vlog-format.js';
import type { CompactionPlan } from './picker.js';

/**
 * Everything a compaction needs, as plain data that can be posted to a worker thread
 * (Buffers and bigints survive structured cloning).
 */
export interface CompactionTask {
  dir: string;
  plan: CompactionPlan;
  builder: TableBuilderOptions;
  targetFileBytes: number;
  /** File numbers reserved for the outputs, used in order. */
  fileNumbers: number[];
  /** Oldest version any reader may still read, indexed by column family id. */
  watermarks: bigint[];
  nowMs: number;
  /**
   * Sources newer than the inputs (tables of levels above, memtables): their key ranges (null:
   * unbounded) and smallest versions. A bottom-level range tombstone may be dropped only if none
   * of them overlapping it holds a version older than it.
   */
  newerSources: { smallest: Buffer | null; largest: Buffer | null; minVersion: bigint }[];
}

/** Where the job runs: its filesystem, the open input tables, and a stop signal. */
export interface CompactionEnv {
  vfs: Vfs;
  tables: TableSource;
  /** Polled between entries; when true the job stops and cleans up. */
  shouldStop: () => boolean;
}

export interface CompactionOutput {
  file: FileMetadata;
}

export interface CompactionStats {
  entriesIn: number;
  entriesOut: number;
  entriesDropped: number;
  tombstonesDropped: number;
  bytesRead: number;
  bytesWritten: number;
  /** Value log bytes that dropped entries pointed at, per segment. */
  vlogDiscard: [segment: number, bytes: number][];
}

/** Bytes of output buffered before they are written out. */
const WRITE_CHUNK_BYTES = 1 << 20;
/** Entries merged between yields to the event loop, so foreground reads and writes keep flowing. */
const ENTRIES_PER_YIELD = 2000;

function fileMetadata(
  number: number,
  size: number,
  builder: TableBuilder,
  createdAtMs: number,
): FileMetadata {
  const p = builder.finish(createdAtMs);
  return {
    number,
    size,
    smallest: p.smallest,
    largest: p.largest,
    minVersion: p.minVersion,
    maxVersion: p.maxVersion,
    entries: p.entries,
    deletions: p.deletions,
    rangeDeletions: p.rangeDeletions,
    rawKeyBytes: p.rawKeyBytes,
    rawValueBytes: p.rawValueBytes,
    createdAtMs,
  };
}

/** Clips tombstone `t` to the base-key span [lo, hi) (undefined = unbounded). */
function clip(t: RangeTombstone, lo: Buffer | undefined, hi: Buffer | undefined): RangeTombstone | undefined {
  const cfByte = Buffer.from([t.cf]);
  let start: Buffer = Buffer.concat([cfByte, t.start]);
  let end: Buffer = Buffer.concat([cfByte, t.end]);
  if (lo !== undefined && compareBytes(lo, start) > 0) start = lo;
  if (hi !== undefined && compareBytes(hi, end) < 0) end = hi;
  if (compareBytes(start, end) >= 0) return undefined;
  return { cf: t.cf, start: start.subarray(1), end: end.subarray(1), version: t.version };
}

export class CompactionJob {
  readonly plan: CompactionPlan;
  private readonly task: CompactionTask;
  private readonly env: CompactionEnv;
  private nextNumber = 0;
  private readonly outputs: FileMetadata[] = [];
  private readonly written: string[] = [];
  readonly stats: CompactionStats = {
    entriesIn: 0,
    entriesOut: 0,
    entriesDropped: 0,
    tombstonesDropped: 0,
    bytesRead: 0,
    bytesWritten: 0,
    vlogDiscard: [],
  };
  private readonly discard = new Map<number, number>();

  private builder: TableBuilder | undefined;
  private writer: TableFileWriter | undefined;
  private outputNumber = 0;
  private lowerBound: Buffer | undefined;
  private keptTombstones: RangeTombstone[] = [];

  constructor(task: CompactionTask, env: CompactionEnv) {
    this.plan = task.plan;
    this.task = task;
    this.env = env;
  }

  /** Runs the merge; returns the new tables (already fsynced; the caller syncs the directory). */
  async run(): Promise<FileMetadata[]> {
    try {
      await this.merge();
      this.stats.vlogDiscard = [...this.discard];
      return this.outputs;
    } catch (err) {
      await this.writer?.abort();
      for (const path of this.written) await this.env.vfs.unlink(path).catch(() => undefined);
      throw err;
    }
  }

  /** Paths of every table this job wrote (for cleanup if the install fails). */
  get outputPaths(): readonly string[] {
    return this.written;
  }

  private inputIterator(): InternalIterator {
    const plan = this.plan;
    const children: InternalIterator[] = [];
    const open = (n: number) => this.env.tables.table(n);
    if (plan.level === 0) {
      for (const f of plan.inputs) children.push(open(f.number).iterator());
    } else {
      children.push(new LevelIterator(plan.inputs, open));
    }
    if (plan.outputLevelInputs.length > 0) children.push(new LevelIterator(plan.outputLevelInputs, open));
    return new MergingIterator(children, false);
  }

  private async merge(): Promise<void> {
    const { plan, task, env } = this;
    const allInputs = [...plan.inputs, ...plan.outputLevelInputs];
    const tombstones: RangeTombstone[] = [];
    for (const f of allInputs) {
      this.stats.bytesRead += f.size;
      if (f.rangeDeletions > 0) tombstones.push(...env.tables.table(f.number).tombstones);
    }
    this.keptTombstones = tombstones.filter((t) => {
      const droppable = plan.bottommost && t.version <= watermarkOf(t.cf) && !this.olderBehind(t);
      if (droppable) this.stats.tombstonesDropped++;
      return !droppable;
    });
    const tombstoneIndex = TombstoneIndex.build(tombstones);
    function watermarkOf(cf: number): bigint {
      return task.watermarks[cf] ?? 0n;
    }

    const it = this.inputIterator();
    let prevKey: Buffer | undefined;
    let seenAtWatermark = false;
    let sinceYield = 0;
    for (it.seekToFirst(); it.valid(); it.next()) {
      if (++sinceYield >= ENTRIES_PER_YIELD) {
        sinceYield = 0;
        await yieldToEventLoop();
        if (env.shouldStop()) throw new ClosedError('compaction stopped: the database is closing');
      }
      const key = it.key();
      this.stats.entriesIn++;
      const newKey = prevKey === undefined || !sameBaseKey(key, prevKey);
      if (newKey) seenAtWatermark = false;
      prevKey = key;
      const version = internalKeyVersion(key);
      const cf = internalKeyCf(key);
      const w = watermarkOf(cf);
      let keep = true;
      if (version <= w) {
        if (seenAtWatermark) {
          keep = false; // shadowed by a newer version every reader sees
        } else {
          seenAtWatermark = true;
          const meta = it.meta();
          if (
            !tombstoneIndex.isEmpty &&
            tombstoneIndex.maxCoveringVersion(cf, internalKeyUserKey(key), w) > version
          ) {
            keep = false;
          } else if (
            plan.bottommost &&
            (entryKind(meta) === KIND_DELETE || isExpired(it.expiresAt(), task.nowMs))
          ) {
            keep = false;
          }
        }
      }
      if (!keep) {
        this.stats.entriesDropped++;
        if (it.meta() & META_VALUE_POINTER) {
          // The value this entry pointed at is garbage now: GC picks segments by these counts.
          const pointer = it.value();
          if (pointer.length === POINTER_BYTES) {
            const segment = pointer.readUInt32LE(0);
            this.discard.set(segment, (this.discard.get(segment) ?? 0) + pointer.readUInt32LE(8));
          }
        }
        continue;
      }
      if (this.builder !== undefined && newKey && this.builder.estimatedFileSize >= task.targetFileBytes) {
        const boundary = Buffer.from(internalKeyBase(key));
        await this.finishOutput(boundary);
        this.lowerBound = boundary;
      }
      if (this.builder === undefined) await this.startOutput();
      this.builder!.add(key, it.meta(), it.expiresAt(), it.value());
      this.stats.entriesOut++;
      if (this.builder!.estimatedFileSize - this.writer!.bytesWritten > WRITE_CHUNK_BYTES) {
        await this.writer!.write(this.builder!.takeOutput());
      }
    }
    if (this.builder === undefined && this.keptTombstones.length > 0) await this.startOutput();
    if (this.builder !== undefined) await this.finishOutput(undefined);
  }

  /** True when a newer source overlapping `t` holds a version older than it (so `t` still hides something). */
  private olderBehind(t: RangeTombstone): boolean {
    const start = encodeInternalKey(t.cf, t.start, MAX_VERSION);
    const end = encodeInternalKey(t.cf, t.end, 0n);
    return this.task.newerSources.some(
      (s) =>
        s.minVersion < t.version &&
        (s.smallest === null || s.largest === null || rangesOverlap(s.smallest, s.largest, start, end)),
    );
  }

  private async startOutput(): Promise<void> {
    const number = this.task.fileNumbers[this.nextNumber++];
    assert(
      number !== undefined,
      () => `compaction used all ${this.task.fileNumbers.length} reserved file numbers`,
    );
    this.outputNumber = number;
    const path = join(this.task.dir, tableFileName(number));
    this.builder = new TableBuilder(this.task.builder);
    this.writer = await TableFileWriter.create(this.env.vfs, path);
    this.written.push(path);
  }

  private async finishOutput(upper: Buffer | undefined): Promise<void> {
    const builder = this.builder!;
    const writer = this.writer!;
    for (const t of this.keptTombstones) {
      const piece = clip(t, this.lowerBound, upper);
      if (piece !== undefined) builder.addTombstone(piece);
    }
    this.builder = undefined;
    this.writer = undefined;
    if (builder.isEmpty) {
      await writer.abort();
      this.written.pop();
      return;
    }
    const file = fileMetadata(this.outputNumber, 0, builder, this.task.nowMs);
    await writer.write(builder.takeOutput());
    await writer.finish();
    file.size = builder.fileSize;
    this.stats.bytesWritten += file.size;
    this.outputs.push(file);
  }
}

export interface CompactionResult {
  outputs: FileMetadata[];
  stats: CompactionStats;
}

/**
 * Runs `task` with its own readers of the input tables (for a worker thread, which shares no
 * open files with the main thread). The inputs must stay on disk meanwhile: the caller pins the
 * version that lists them.
 */
export async function runCompactionTask(
  vfs: Vfs,
  task: CompactionTask,
  shouldStop: () => boolean,
): Promise<CompactionResult> {
  const cache = new BlockCache(8 << 20);
  const readers = new Map<number, TableReader>();
  try {
    for (const f of [...task.plan.inputs, ...task.plan.outputLevelInputs]) {
      readers.set(
        f.number,
        await TableReader.open(vfs, join(task.dir, tableFileName(f.number)), f.number, cache),
      );
    }
    const tables: TableSource = {
      table: (n) => {
        const t = readers.get(n);
        assert(t !== undefined, () => `compaction input ${n} is not open`);
        return t;
      },
    };
    const job = new CompactionJob(task, { vfs, tables, shouldStop });
    const outputs = await job.run();
    return { outputs, stats: job.stats };
  } finally {
    for (const r of readers.values()) await r.close().catch(() => undefined);
  }
}
