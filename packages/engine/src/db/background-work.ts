/**
 * Flush and compaction, off the request path.
 *
 * Flush turns frozen memtables into level-0 tables, oldest first, one at a time: build the table,
 * fsync it and the directory, log the edit (which also advances the WAL log number), then delete
 * the memtable's WAL segment. A flush failure stops writes (`BackgroundError`): the memtable stays
 * readable and its WAL segment stays on disk for the next open to replay.
 *
 * Compaction runs one job at a time, chosen by `CompactionPicker`. Its outputs are fsynced before
 * the edit that installs them; a failed job deletes its outputs and is retried after a pause.
 */

import { join } from 'node:path';
import type { CompactionTask } from '../compaction/compaction-job.js';
import { CompactionPicker, type CompactionPlan } from '../compaction/picker.js';
import { ClosedError, IoError } from '../errors.js';
import { CF_COUNT } from '../keys/internal-key.js';
import { NUM_LEVELS } from '../manifest/version.js';
import { emptyEdit, type FileMetadata, type VersionEdit } from '../manifest/version-edit.js';
import type { Memtable } from '../memtable/memtable.js';
import type { TableBuilderOptions } from '../sstable/table-builder.js';
import { TableReader } from '../sstable/table-reader.js';
import { tableFileName, walFileName } from '../util/filenames.js';
import { AsyncMutex } from '../util/mutex.js';
import { type BackgroundExecutor, InlineExecutor, WorkerExecutor } from './background-executor.js';
import type { EngineCore } from './engine-core.js';

/** Pause after a failed compaction before the next attempt. */
const COMPACTION_RETRY_MS = 1000;
/** Consecutive failed compactions after which writes are stopped with the last error. */
const MAX_COMPACTION_ATTEMPTS = 5;

export interface FlushStats {
  completed: number;
  bytesWritten: number;
  lastMs: number;
  maxMs: number;
  totalMs: number;
}

export interface CompactionStats {
  runs: number;
  trivialMoves: number;
  failures: number;
  bytesRead: number;
  bytesWritten: number;
  entriesDropped: number;
  tombstonesDropped: number;
  lastMs: number;
  maxMs: number;
  totalMs: number;
}

export class BackgroundWork {
  private readonly core: EngineCore;
  private readonly picker: CompactionPicker;
  /** One compaction at a time, whether background or manual. */
  private readonly compactionMutex = new AsyncMutex();
  private flushTask: Promise<void> | undefined;
  private compactionTask: Promise<void> | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private flushWaiters: (() => void)[] = [];
  runningCompaction: CompactionPlan | undefined;
  private consecutiveFailures = 0;
  readonly flushStats: FlushStats = { completed: 0, bytesWritten: 0, lastMs: 0, maxMs: 0, totalMs: 0 };
  readonly compactionStats: CompactionStats = {
    runs: 0,
    trivialMoves: 0,
    failures: 0,
    bytesRead: 0,
    bytesWritten: 0,
    entriesDropped: 0,
    tombstonesDropped: 0,
    lastMs: 0,
    maxMs: 0,
    totalMs: 0,
  };

  private readonly executor: BackgroundExecutor;

  constructor(core: EngineCore) {
    this.core = core;
    this.picker = new CompactionPicker(core.options);
    this.executor =
      core.options.compactionThreads > 0
        ? new WorkerExecutor()
        : new InlineExecutor(core.options.vfs, core.tableSource);
  }

  /** Where jobs run: 'worker' (a thread of their own) or 'inline' (on the event loop). */
  get executorKind(): 'inline' | 'worker' {
    return this.executor.kind;
  }

  get builderOptions(): TableBuilderOptions {
    const o = this.core.options;
    return { blockBytes: o.blockBytes, bloomBitsPerKey: o.bloomBitsPerKey, compression: o.compression };
  }

  get isFlushing(): boolean {
    return this.flushTask !== undefined;
  }

  /** Starts flushing frozen memtables unless a flush is already running. */
  scheduleFlush(): void {
    const core = this.core;
    if (this.flushTask !== undefined || core.immutables.length === 0 || core.crashed) return;
    this.flushTask = this.flushLoop().finally(() => {
      this.flushTask = undefined;
      const waiters = this.flushWaiters.splice(0);
      for (const w of waiters) w();
      if (core.immutables.length > 0 && core.backgroundError === undefined && !core.crashed)
        this.scheduleFlush();
    });
  }

  /** Resolves when no flush is running and none is pending (or flushing has stopped on an error). */
  async waitForFlushes(): Promise<void> {
    while (this.flushTask !== undefined) {
      await new Promise<void>((resolve) => this.flushWaiters.push(resolve));
    }
  }

  private async flushLoop(): Promise<void> {
    const core = this.core;
    while (core.immutables.length > 0 && core.backgroundError === undefined && !core.crashed) {
      const mem = core.immutables[0]!;
      const started = performance.now();
      try {
        await this.flushMemtable(mem);
      } catch (err) {
        if (!core.crashed) core.setBackgroundError(err);
        return;
      }
      core.immutables.shift();
      const ms = performance.now() - started;
      this.flushStats.completed++;
      this.flushStats.lastMs = ms;
      this.flushStats.totalMs += ms;
      if (ms > this.flushStats.maxMs) this.flushStats.maxMs = ms;
      core.wakeStalls();
      this.maybeScheduleCompaction();
    }
  }

  private async flushMemtable(mem: Memtable): Promise<void> {
    const core = this.core;
    const vfs = core.options.vfs;
    const next = core.immutables[1] ?? core.memtable;
    const edit: VersionEdit = emptyEdit();
    edit.logNumber = next.walNumber;
    if (mem.maxDefaultVersion > 0n) edit.lastVersion = mem.maxDefaultVersion;
    if (!mem.isEmpty) {
      const number = core.versions.newFileNumber();
      const file = await this.executor.flush(mem, {
        dir: core.dir,
        walNumber: mem.walNumber,
        outputNumber: number,
        // Level-0 tables are compacted soon; compressing them would slow the flush writes wait on.
        builder: { ...this.builderOptions, compression: 'none' },
        createdAtMs: core.options.clock(),
      });
      if (file !== undefined) {
        const path = join(core.dir, tableFileName(number));
        try {
          await syncDir(core);
          core.tables.set(number, await TableReader.open(vfs, path, number, core.cache));
        } catch (err) {
          const reader = core.tables.get(number);
          core.tables.delete(number);
          await reader?.close().catch(() => undefined);
          await vfs.unlink(path).catch(() => undefined);
          throw err;
        }
        edit.newFiles.push({ level: 0, file });
        this.flushStats.bytesWritten += file.size;
      }
    }
    // The table's pointers must not outlive the values they point at: make those durable first.
    await core.vlog.sync();
    await core.versions.logAndApply(edit);
    await vfs.unlink(join(core.dir, walFileName(mem.walNumber))).catch((err: unknown) => {
      core.options.logger.warn(
        { wal: mem.walNumber, err: (err as Error).message },
        'could not delete flushed WAL segment',
      );
    });
  }

  /** Starts a background compaction if one is due and none is running. */
  maybeScheduleCompaction(): void {
    const core = this.core;
    if (
      !core.options.autoCompaction ||
      core.options.readOnly ||
      this.compactionTask !== undefined ||
      this.retryTimer !== undefined ||
      core.closing ||
      core.crashed ||
      core.backgroundError !== undefined
    ) {
      return;
    }
    const plan = this.picker.pick(core.versions.current);
    if (plan === undefined) return;
    this.compactionTask = this.compactionMutex
      .run(() => this.runPlan(plan))
      .then(
        () => {
          this.compactionTask = undefined;
          this.consecutiveFailures = 0;
          this.maybeScheduleCompaction();
        },
        (err: unknown) => {
          this.compactionTask = undefined;
          if (err instanceof ClosedError || core.closing || core.crashed) return;
          this.consecutiveFailures++;
          this.compactionStats.failures++;
          core.options.logger.warn(
            { err: (err as Error).message, level: plan.level, attempt: this.consecutiveFailures },
            'compaction failed; will retry',
          );
          if (core.backgroundError !== undefined) return;
          if (this.consecutiveFailures >= MAX_COMPACTION_ATTEMPTS) {
            // Level 0 would keep growing until writes stall for good; fail them clearly instead.
            core.setBackgroundError(err);
            return;
          }
          this.retryTimer = setTimeout(() => {
            this.retryTimer = undefined;
            this.maybeScheduleCompaction();
          }, COMPACTION_RETRY_MS);
          this.retryTimer.unref();
        },
      );
  }

  /**
   * Compacts everything down to the last level, then rewrites that level (maintenance and tests):
   * afterwards every level but the last is empty and all that can be dropped has been.
   */
  async compactAll(): Promise<void> {
    const core = this.core;
    for (let level = 0; level < NUM_LEVELS - 1; level++) {
      for (;;) {
        core.checkWritable();
        const done = await this.compactionMutex.run(async () => {
          const plan = this.picker.planFor(core.versions.current, level);
          if (plan === undefined) return true;
          await this.runPlan(plan);
          return false;
        });
        if (done) break;
      }
    }
    core.checkWritable();
    await this.compactionMutex.run(async () => {
      const plan = this.picker.bottomPlan(core.versions.current);
      if (plan !== undefined) await this.runPlan(plan);
    });
  }

  private async runPlan(plan: CompactionPlan): Promise<void> {
    const core = this.core;
    // The plan was made against an earlier version; make sure its inputs are all still live.
    const live = new Set<number>();
    for (const { file } of core.versions.current.allFiles()) live.add(file.number);
    if (![...plan.inputs, ...plan.outputLevelInputs].every((f) => live.has(f.number))) return;
    const started = performance.now();
    this.runningCompaction = plan;
    try {
      const edit = emptyEdit();
      for (const f of plan.inputs) edit.deletedFiles.push({ level: plan.level, number: f.number });
      if (plan.trivialMove) {
        edit.newFiles.push({ level: plan.outputLevel, file: plan.inputs[0]! });
        await core.versions.logAndApply(edit).catch((err: unknown) => {
          if (core.versions.failed) core.setBackgroundError(err);
          throw err;
        });
        this.compactionStats.trivialMoves++;
        return;
      }
      for (const f of plan.outputLevelInputs)
        edit.deletedFiles.push({ level: plan.outputLevel, number: f.number });
      const version = core.versions.current;
      version.ref();
      const task = this.describeCompaction(plan);
      let outputs: FileMetadata[] = [];
      try {
        const result = await this.executor.compact(task);
        outputs = result.outputs;
        await syncDir(core);
        for (const f of outputs) {
          const path = join(core.dir, tableFileName(f.number));
          core.tables.set(f.number, await TableReader.open(core.options.vfs, path, f.number, core.cache));
        }
        for (const file of outputs) edit.newFiles.push({ level: plan.outputLevel, file });
        edit.vlogDiscard = result.stats.vlogDiscard.map(([segment, bytes]) => ({ segment, bytes }));
        await core.versions.logAndApply(edit);
        const s = this.compactionStats;
        s.runs++;
        s.bytesRead += result.stats.bytesRead;
        s.bytesWritten += result.stats.bytesWritten;
        s.entriesDropped += result.stats.entriesDropped;
        s.tombstonesDropped += result.stats.tombstonesDropped;
      } catch (err) {
        for (const f of outputs) {
          const reader = core.tables.get(f.number);
          core.tables.delete(f.number);
          await reader?.close().catch(() => undefined);
        }
        if (core.versions.failed) {
          // The edit may have reached the disk even though its write or sync failed, so the
          // outputs may be listed there: keep them (an unlisted one is removed at the next open).
          core.setBackgroundError(err);
        } else {
          for (const f of outputs) {
            await core.options.vfs.unlink(join(core.dir, tableFileName(f.number))).catch(() => undefined);
          }
        }
        throw err;
      } finally {
        version.unref();
      }
    } finally {
      this.runningCompaction = undefined;
      const ms = performance.now() - started;
      const s = this.compactionStats;
      s.lastMs = ms;
      s.totalMs += ms;
      if (ms > s.maxMs) s.maxMs = ms;
      core.wakeStalls();
    }
  }

  /** The plan as a self-contained job description (runs inline or in the worker). */
  private describeCompaction(plan: CompactionPlan): CompactionTask {
    const core = this.core;
    const o = core.options;
    const inputBytes = [...plan.inputs, ...plan.outputLevelInputs].reduce((n, f) => n + f.size, 0);
    // Outputs are cut at the target size, so this many numbers always suffice.
    const reserve = Math.ceil(inputBytes / o.targetFileBytes) * 2 + 4;
    const fileNumbers = Array.from({ length: reserve }, () => core.versions.newFileNumber());
    const newerSources: CompactionTask['newerSources'] = [];
    for (let level = 0; level < plan.level; level++) {
      for (const f of core.versions.current.levels[level]!) {
        newerSources.push({ smallest: f.smallest, largest: f.largest, minVersion: f.minVersion });
      }
    }
    for (const m of [core.memtable, ...core.immutables]) {
      if (m.minVersion !== undefined)
        newerSources.push({ smallest: null, largest: null, minVersion: m.minVersion });
    }
    return {
      dir: core.dir,
      plan,
      builder: this.builderOptions,
      targetFileBytes: o.targetFileBytes,
      fileNumbers,
      watermarks: Array.from({ length: CF_COUNT }, (_, cf) => core.watermark(cf)),
      nowMs: o.clock(),
      newerSources,
    };
  }

  /** Stops timers; waits for running work to finish or abort. */
  async stop(): Promise<void> {
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.executor.stop();
    await this.waitForFlushes();
    await this.compactionTask?.catch(() => undefined);
    await this.compactionMutex.run(async () => undefined);
    await this.executor.close();
  }
}

async function syncDir(core: EngineCore): Promise<void> {
  try {
    await core.options.vfs.syncDir(core.dir);
  } catch (err) {
    throw new IoError('sync directory', core.dir, err);
  }
}
