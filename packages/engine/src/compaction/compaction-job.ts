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
import type { TableSource } from '../db/read-view.js';
import { ClosedError } from '../errors.js';
import type { InternalIterator } from '../iterator/internal-iterator.js';
import { LevelIterator } from '../iterator/level-iterator.js';
import { MergingIterator } from '../iterator/merging-iterator.js';
import { entryKind, isExpired, KIND_DELETE } from '../keys/entry.js';
import {
  internalKeyBase,
  internalKeyCf,
  internalKeyUserKey,
  internalKeyVersion,
  sameBaseKey,
} from '../keys/internal-key.js';
import type { FileMetadata } from '../manifest/version-edit.js';
import { type RangeTombstone, TombstoneIndex } from '../rangedel/tombstone-index.js';
import { TableBuilder, type TableBuilderOptions } from '../sstable/table-builder.js';
import { TableFileWriter } from '../sstable/table-file-writer.js';
import { compareBytes } from '../util/bytes.js';
import { tableFileName } from '../util/filenames.js';
import type { Vfs } from '../vfs/vfs.js';
import type { CompactionPlan } from './picker.js';

export interface CompactionContext {
  vfs: Vfs;
  dir: string;
  tables: TableSource;
  builder: TableBuilderOptions;
  targetFileBytes: number;
  newFileNumber: () => number;
  /** Oldest version any reader may still read, per column family. */
  watermark: (cf: number) => bigint;
  nowMs: number;
  /** Smallest version held by sources newer than the inputs within a tombstone's range. */
  minVersionAbove: (t: RangeTombstone) => bigint | undefined;
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
  private readonly ctx: CompactionContext;
  private readonly outputs: FileMetadata[] = [];
  private readonly written: string[] = [];
  readonly stats: CompactionStats = {
    entriesIn: 0,
    entriesOut: 0,
    entriesDropped: 0,
    tombstonesDropped: 0,
    bytesRead: 0,
    bytesWritten: 0,
  };

  private builder: TableBuilder | undefined;
  private writer: TableFileWriter | undefined;
  private outputNumber = 0;
  private lowerBound: Buffer | undefined;
  private keptTombstones: RangeTombstone[] = [];

  constructor(plan: CompactionPlan, ctx: CompactionContext) {
    this.plan = plan;
    this.ctx = ctx;
  }

  /** Runs the merge; returns the new tables (already fsynced; the caller syncs the directory). */
  async run(): Promise<FileMetadata[]> {
    try {
      await this.merge();
      return this.outputs;
    } catch (err) {
      await this.writer?.abort();
      for (const path of this.written) await this.ctx.vfs.unlink(path).catch(() => undefined);
      throw err;
    }
  }

  /** Paths of every table this job wrote (for cleanup if the install fails). */
  get outputPaths(): readonly string[] {
    return this.written;
  }

  private inputIterator(): InternalIterator {
    const { plan, ctx } = this;
    const children: InternalIterator[] = [];
    const open = (n: number) => ctx.tables.table(n);
    if (plan.level === 0) {
      for (const f of plan.inputs) children.push(open(f.number).iterator());
    } else {
      children.push(new LevelIterator(plan.inputs, open));
    }
    if (plan.outputLevelInputs.length > 0) children.push(new LevelIterator(plan.outputLevelInputs, open));
    return new MergingIterator(children, false);
  }

  private async merge(): Promise<void> {
    const { plan, ctx } = this;
    const allInputs = [...plan.inputs, ...plan.outputLevelInputs];
    const tombstones: RangeTombstone[] = [];
    for (const f of allInputs) {
      this.stats.bytesRead += f.size;
      if (f.rangeDeletions > 0) tombstones.push(...ctx.tables.table(f.number).tombstones);
    }
    this.keptTombstones = tombstones.filter((t) => {
      const droppable =
        plan.bottommost &&
        t.version <= ctx.watermark(t.cf) &&
        (ctx.minVersionAbove(t) === undefined || ctx.minVersionAbove(t)! >= t.version);
      if (droppable) this.stats.tombstonesDropped++;
      return !droppable;
    });
    const tombstoneIndex = TombstoneIndex.build(tombstones);
    const watermarks = new Map<number, bigint>();
    const watermarkOf = (cf: number): bigint => {
      let w = watermarks.get(cf);
      if (w === undefined) {
        w = ctx.watermark(cf);
        watermarks.set(cf, w);
      }
      return w;
    };

    const it = this.inputIterator();
    let prevKey: Buffer | undefined;
    let seenAtWatermark = false;
    let sinceYield = 0;
    for (it.seekToFirst(); it.valid(); it.next()) {
      if (++sinceYield >= ENTRIES_PER_YIELD) {
        sinceYield = 0;
        await yieldToEventLoop();
        if (ctx.shouldStop()) throw new ClosedError('compaction stopped: the database is closing');
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
            (entryKind(meta) === KIND_DELETE || isExpired(it.expiresAt(), ctx.nowMs))
          ) {
            keep = false;
          }
        }
      }
      if (!keep) {
        this.stats.entriesDropped++;
        continue;
      }
      if (this.builder !== undefined && newKey && this.builder.estimatedFileSize >= ctx.targetFileBytes) {
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

  private async startOutput(): Promise<void> {
    this.outputNumber = this.ctx.newFileNumber();
    const path = join(this.ctx.dir, tableFileName(this.outputNumber));
    this.builder = new TableBuilder(this.ctx.builder);
    this.writer = await TableFileWriter.create(this.ctx.vfs, path);
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
    const file = fileMetadata(this.outputNumber, 0, builder, this.ctx.nowMs);
    await writer.write(builder.takeOutput());
    await writer.finish();
    file.size = builder.fileSize;
    this.stats.bytesWritten += file.size;
    this.outputs.push(file);
  }
}
