import { mkdir, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { CoordinatorError } from '../errors.js';
import { Catalog } from './catalog.js';
import { CHECKPOINT_FILE, fsyncDir, readCheckpoint, writeCheckpoint } from './checkpoint.js';
import { type CoordinatorEvent, decodeEvent, encodeEvent } from './events.js';
import { LogWriter, logFileName, parseLogFileName, readLog } from './log.js';

// The coordinator's durable state: checkpoint + event logs in one directory.
//
// Open = load checkpoint.bin (if any) → replay events-<seq>.log for seq >= checkpoint.log_seq, in
// order → append to the last log. A checkpoint rotates to a new log first, writes the catalog as of
// that point with log_seq = the new log, then deletes the older logs; a crash in between only
// leaves logs that are replayed again (every event is idempotent).

export interface RecoveryReport {
  checkpoint: { logSeq: bigint; writtenUnixMs: number } | undefined;
  logs: { file: string; records: number }[];
  eventsReplayed: number;
  /** A torn last record that was cut off. */
  tornTail: { file: string; offset: number; bytes: number; reason: string } | undefined;
}

export interface DurableStateOptions {
  /** Write a checkpoint after this many appended events (default 1000). */
  checkpointEveryEvents?: number;
}

export class DurableState {
  readonly catalog: Catalog;
  private writer: LogWriter;
  private queue: Promise<unknown> = Promise.resolve();
  private sinceCheckpoint = 0;
  private closed = false;
  private checkpointing: Promise<void> | undefined;
  /** Events appended since open (for metrics). */
  appendedEvents = 0;
  checkpoints = 0;
  lastCheckpointUnixMs: number | undefined;

  private constructor(
    readonly dir: string,
    catalog: Catalog,
    writer: LogWriter,
    readonly recovery: RecoveryReport,
    private readonly opts: Required<DurableStateOptions>,
  ) {
    this.catalog = catalog;
    this.writer = writer;
  }

  static async open(dir: string, options: DurableStateOptions = {}): Promise<DurableState> {
    const opts = { checkpointEveryEvents: options.checkpointEveryEvents ?? 1000 };
    await mkdir(dir, { recursive: true });
    const catalog = new Catalog();
    const checkpointFile = join(dir, CHECKPOINT_FILE);
    const ckpt = await readCheckpoint(checkpointFile);
    let fromSeq = 1n;
    if (ckpt) {
      for (const s of ckpt.stores) catalog.apply({ type: 'storePut', store: s });
      for (const r of ckpt.regions) catalog.apply({ type: 'regionUpsert', region: r });
      catalog.apply({ type: 'idFence', fence: ckpt.idFence });
      catalog.apply({ type: 'tsoFence', fence: ckpt.tsoFence });
      fromSeq = ckpt.logSeq;
    }
    const names = await readdir(dir);
    const seqs = names
      .map((n) => parseLogFileName(n))
      .filter((s): s is bigint => s !== undefined)
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    // Logs a finished checkpoint already covers (a crash before their deletion).
    for (const s of seqs.filter((s) => s < fromSeq)) await unlink(join(dir, logFileName(s)));
    const live = seqs.filter((s) => s >= fromSeq);
    const report: RecoveryReport = {
      checkpoint: ckpt ? { logSeq: ckpt.logSeq, writtenUnixMs: ckpt.writtenUnixMs } : undefined,
      logs: [],
      eventsReplayed: 0,
      tornTail: undefined,
    };
    let writer: LogWriter | undefined;
    for (const [i, seq] of live.entries()) {
      const file = join(dir, logFileName(seq));
      const res = await readLog(file);
      const last = i === live.length - 1;
      if (res.torn && !last) {
        throw new CoordinatorError(
          'Corruption',
          `${file}: ${res.torn.reason} at offset ${res.torn.offset}, but newer logs follow it`,
          { file, offset: res.torn.offset },
        );
      }
      if (res.seq !== -1n && res.seq !== seq) {
        throw new CoordinatorError('Corruption', `${file}: header names log ${res.seq}`, { file, offset: 8 });
      }
      for (const rec of res.records) {
        let event: CoordinatorEvent;
        try {
          event = decodeEvent(rec.type, rec.payload);
        } catch (err) {
          throw new CoordinatorError(
            'Corruption',
            `${file}: bad event at offset ${rec.offset}: ${(err as Error).message}`,
            {
              file,
              offset: rec.offset,
              cause: err,
            },
          );
        }
        catalog.apply(event);
        report.eventsReplayed++;
      }
      report.logs.push({ file, records: res.records.length });
      if (res.torn) report.tornTail = { file, ...res.torn };
      if (last) writer = await LogWriter.openAt(file, seq, res.validBytes);
    }
    if (!writer) {
      writer = await LogWriter.create(join(dir, logFileName(fromSeq)), fromSeq);
      await fsyncDir(dir);
    }
    return new DurableState(dir, catalog, writer, report, opts);
  }

  /** Events appended since the last checkpoint. */
  get eventsSinceCheckpoint(): number {
    return this.sinceCheckpoint;
  }

  /** The current log file and its size. */
  get log(): { file: string; seq: bigint; bytes: number } {
    return { file: this.writer.file, seq: this.writer.seq, bytes: this.writer.bytes };
  }

  /** Runs `fn` after every earlier write has finished; writes are serialized. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => {});
    return run;
  }

  /**
   * Decides under the write lock: `decide` sees the catalog as of the previous write and returns the
   * events to persist and a result. The events are appended and fsynced, then applied to the catalog;
   * the result is returned only after that. A failed write leaves the catalog unchanged.
   */
  mutate<T>(decide: (catalog: Catalog) => { events: CoordinatorEvent[]; result: T }): Promise<T> {
    return this.exclusive(async () => {
      if (this.closed) throw new CoordinatorError('Closed', 'the coordinator state is closed');
      const { events, result } = decide(this.catalog);
      if (events.length > 0) {
        await this.writer.append(events.map(encodeEvent));
        for (const e of events) this.catalog.apply(e);
        this.appendedEvents += events.length;
        this.sinceCheckpoint += events.length;
        if (this.sinceCheckpoint >= this.opts.checkpointEveryEvents) {
          this.sinceCheckpoint = 0;
          // In the background: the write that triggered it is durable already.
          this.checkpointing ??= this.checkpoint()
            .catch(() => {})
            .finally(() => {
              this.checkpointing = undefined;
            });
        }
      }
      return result;
    });
  }

  append(events: CoordinatorEvent[]): Promise<void> {
    return this.mutate(() => ({ events, result: undefined }));
  }

  /** Rotates to a new log, writes the checkpoint atomically, deletes the logs it covers. */
  checkpoint(): Promise<void> {
    return this.exclusive(async () => {
      if (this.closed) return;
      await this.checkpointLocked();
    });
  }

  private async checkpointLocked(): Promise<void> {
    const oldSeq = this.writer.seq;
    const nextSeq = oldSeq + 1n;
    const next = await LogWriter.create(join(this.dir, logFileName(nextSeq)), nextSeq);
    await fsyncDir(this.dir);
    const old = this.writer;
    this.writer = next;
    await old.close();
    const now = Date.now();
    await writeCheckpoint(join(this.dir, CHECKPOINT_FILE), {
      stores: [...this.catalog.stores.values()].sort((a, b) => (a.id < b.id ? -1 : 1)),
      regions: [...this.catalog.regions.values()].sort((a, b) => (a.id < b.id ? -1 : 1)),
      idFence: this.catalog.idFence,
      tsoFence: this.catalog.tsoFence,
      logSeq: nextSeq,
      writtenUnixMs: now,
    });
    for (const name of await readdir(this.dir)) {
      const s = parseLogFileName(name);
      if (s !== undefined && s < nextSeq) await unlink(join(this.dir, name));
    }
    await fsyncDir(this.dir);
    this.sinceCheckpoint = 0;
    this.checkpoints++;
    this.lastCheckpointUnixMs = now;
  }

  /** Waits for pending writes, writes a final checkpoint (unless `checkpoint: false`) and closes. */
  close(opts: { checkpoint?: boolean } = {}): Promise<void> {
    return this.exclusive(async () => {
      if (this.closed) return;
      if (opts.checkpoint !== false) await this.checkpointLocked();
      this.closed = true;
      await this.writer.close();
    });
  }
}
