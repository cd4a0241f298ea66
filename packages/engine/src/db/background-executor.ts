/**
 * Where flush and compaction run. `WorkerExecutor` runs them in a worker thread, so the CPU of
 * merging, compressing and checksumming tables never blocks reads and writes on the event loop
 * (on a 2-core machine the worker and the event loop each get a core). `InlineExecutor` runs them
 * on the event loop in small slices; it is used when the database runs on a custom filesystem
 * (a `FaultVfs` cannot be shared with another thread) or when asked for with
 * `compactionThreads: 0`.
 *
 * Jobs are plain data (see `FlushTask`, `CompactionTask`); results come back as table metadata.
 * The main thread alone edits the manifest and opens the new tables.
 */

import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { CompactionJob, type CompactionResult, type CompactionTask } from '../compaction/compaction-job.js';
import { type FlushTask, writeMemtableTable } from '../compaction/flush-job.js';
import { ClosedError, CorruptionError, IoError, NoKVError } from '../errors.js';
import type { FileMetadata } from '../manifest/version-edit.js';
import type { Memtable } from '../memtable/memtable.js';
import type { Vfs } from '../vfs/vfs.js';
import type { TableSource } from './read-view.js';

export interface BackgroundExecutor {
  readonly kind: 'inline' | 'worker';
  /** Writes `mem` (also described by `task`) as a table; undefined when it is empty. */
  flush(mem: Memtable, task: FlushTask): Promise<FileMetadata | undefined>;
  compact(task: CompactionTask): Promise<CompactionResult>;
  /** Asks running jobs to stop early (closing). */
  stop(): void;
  close(): Promise<void>;
}

export class InlineExecutor implements BackgroundExecutor {
  readonly kind = 'inline';
  private stopping = false;

  constructor(
    private readonly vfs: Vfs,
    private readonly tables: TableSource,
  ) {}

  async flush(mem: Memtable, task: FlushTask): Promise<FileMetadata | undefined> {
    if (mem.isEmpty) return undefined;
    return writeMemtableTable(this.vfs, task.dir, task.outputNumber, mem, task.builder, task.createdAtMs);
  }

  async compact(task: CompactionTask): Promise<CompactionResult> {
    const job = new CompactionJob(task, {
      vfs: this.vfs,
      tables: this.tables,
      shouldStop: () => this.stopping,
    });
    const outputs = await job.run();
    return { outputs, stats: job.stats };
  }

  stop(): void {
    this.stopping = true;
  }

  async close(): Promise<void> {}
}

/** What crosses the thread boundary for a failed job. */
export interface SerializedError {
  name: string;
  message: string;
  code?: string;
  file?: string;
  offset?: number;
  detail?: string;
  op?: string;
  path?: string;
}

export function serializeError(err: unknown): SerializedError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err) };
  const out: SerializedError = { name: err.name, message: err.message };
  if (err instanceof NoKVError) out.code = err.code;
  if (err instanceof CorruptionError)
    Object.assign(out, { file: err.file, offset: err.offset, detail: err.detail });
  if (err instanceof IoError) Object.assign(out, { op: err.op, path: err.path });
  return out;
}

function deserializeError(e: SerializedError): Error {
  switch (e.code) {
    case 'Corruption':
      return new CorruptionError(e.file ?? '?', e.offset ?? 0, e.detail ?? e.message);
    case 'IoError':
      return new IoError(e.op ?? 'io', e.path ?? '?', new Error(e.message.replace(/^.*? failed: /, '')));
    case 'Closed':
      return new ClosedError(e.message);
    default:
      return Object.assign(new Error(e.message), { name: e.name });
  }
}

type JobRequest =
  | { id: number; type: 'flush'; task: FlushTask }
  | { id: number; type: 'compact'; task: CompactionTask };

export type WorkerMessage =
  | JobRequest
  | { type: 'stop' }
  | { id: number; ok: true; result: FileMetadata | CompactionResult | undefined }
  | { id: number; ok: false; error: SerializedError };

/** Structured cloning turns Buffers into plain Uint8Arrays; this makes them Buffers again. */
function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

export function reviveFile(f: FileMetadata): FileMetadata {
  return { ...f, smallest: asBuffer(f.smallest), largest: asBuffer(f.largest) };
}

/** Restores Buffers in a task that crossed into the worker. */
export function reviveCompactionTask(task: CompactionTask): CompactionTask {
  return {
    ...task,
    plan: {
      ...task.plan,
      inputs: task.plan.inputs.map(reviveFile),
      outputLevelInputs: task.plan.outputLevelInputs.map(reviveFile),
      smallest: asBuffer(task.plan.smallest),
      largest: asBuffer(task.plan.largest),
    },
    newerSources: task.newerSources.map((s) => ({
      minVersion: s.minVersion,
      smallest: s.smallest === null ? null : asBuffer(s.smallest),
      largest: s.largest === null ? null : asBuffer(s.largest),
    })),
  };
}

/**
 * Starts the worker: the compiled JS next to this file, or, when the engine runs from its
 * TypeScript sources (tests), a bootstrap that loads tsx into the worker first.
 */
function startWorker(): Worker {
  if (!import.meta.url.endsWith('.ts')) {
    return new Worker(new URL('./background-worker.js', import.meta.url), { name: 'nokv-background' });
  }
  const tsxDir = dirname(createRequire(import.meta.url).resolve('tsx/package.json'));
  const tsxApi = pathToFileURL(join(tsxDir, 'dist', 'esm', 'api', 'index.mjs')).href;
  const entry = new URL('./background-worker.ts', import.meta.url).href;
  const code = `const { register } = await import(${JSON.stringify(tsxApi)}); register(); await import(${JSON.stringify(entry)});`;
  return new Worker(new URL(`data:text/javascript,${encodeURIComponent(code)}`), { name: 'nokv-background' });
}

/** One worker thread and the jobs waiting on it. Starts the thread on first use. */
class WorkerChannel {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: unknown) => void }
  >();

  private ensureWorker(): Worker {
    if (this.worker !== undefined) return this.worker;
    const worker = startWorker();
    worker.on('message', (msg: WorkerMessage) => {
      if (!('id' in msg) || !('ok' in msg)) return;
      const p = this.pending.get(msg.id);
      if (p === undefined) return;
      this.pending.delete(msg.id);
      // An idle worker must not keep the process alive.
      if (this.pending.size === 0) worker.unref();
      if (msg.ok) p.resolve(msg.result);
      else p.reject(deserializeError(msg.error));
    });
    const failAll = (err: unknown) => {
      if (this.worker === worker) this.worker = undefined;
      const waiting = [...this.pending.values()];
      this.pending.clear();
      for (const p of waiting) p.reject(err);
    };
    worker.on('error', (err) => failAll(err));
    worker.on('exit', (code) => failAll(new Error(`background worker exited (code ${code})`)));
    worker.unref();
    this.worker = worker;
    return worker;
  }

  run<T>(
    request: { type: 'flush'; task: FlushTask } | { type: 'compact'; task: CompactionTask },
  ): Promise<T> {
    const worker = this.ensureWorker();
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      worker.ref();
      worker.postMessage({ ...request, id } as JobRequest);
    });
  }

  stop(): void {
    this.worker?.postMessage({ type: 'stop' } satisfies WorkerMessage);
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (worker !== undefined) await worker.terminate();
  }
}

/**
 * Flushes and compactions each get a thread, so a long compaction never holds up the flush that
 * writes need (a flush waiting behind a compaction would stall writes).
 */
export class WorkerExecutor implements BackgroundExecutor {
  readonly kind = 'worker';
  private readonly flusher = new WorkerChannel();
  private readonly compactor = new WorkerChannel();

  async flush(_mem: Memtable, task: FlushTask): Promise<FileMetadata | undefined> {
    const file = await this.flusher.run<FileMetadata | undefined>({ type: 'flush', task });
    return file === undefined ? undefined : reviveFile(file);
  }

  async compact(task: CompactionTask): Promise<CompactionResult> {
    const result = await this.compactor.run<CompactionResult>({ type: 'compact', task });
    return { ...result, outputs: result.outputs.map(reviveFile) };
  }

  stop(): void {
    this.flusher.stop();
    this.compactor.stop();
  }

  async close(): Promise<void> {
    await Promise.all([this.flusher.close(), this.compactor.close()]);
  }
}
