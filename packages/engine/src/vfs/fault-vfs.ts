import { dirname, resolve } from 'node:path';
import { nodeVfs } from './node-vfs.js';
import type { OpenMode, Vfs, VfsFile, VfsOp } from './vfs.js';

/** When a rule fires, counted over the calls that match its op and path. */
export type FaultTrigger =
  /** Only the n-th matching call (1-based). */
  | { nth: number }
  /** Every matching call after the first `n` (n = 0: every call). */
  | { after: number }
  /** Each matching call with probability `p`, drawn from the vfs's `random`. */
  | { probability: number };

export interface FaultRule {
  op: VfsOp;
  /** Substring of the path, a regular expression, or a predicate; omitted: any path. */
  path?: string | RegExp | ((path: string) => boolean);
  when: FaultTrigger;
  /** For `write`: write only this many leading bytes, then fail (a torn write). */
  tornBytes?: number;
  /** errno code of the injected error (default `EIO`). */
  errno?: string;
}

/** The error `FaultVfs` throws for an injected failure; looks like a system error. */
export class InjectedFault extends Error {
  readonly code: string;
  readonly op: VfsOp;
  readonly path: string;

  constructor(op: VfsOp, path: string, errno: string) {
    super(`${errno}: injected ${op} failure on '${path}'`);
    this.name = 'InjectedFault';
    this.code = errno;
    this.op = op;
    this.path = path;
  }
}

/** Thrown by every call after `crash()`: the simulated process is gone. */
export class SimulatedCrash extends Error {
  readonly code = 'ECRASHED';

  constructor(op: VfsOp, path: string) {
    super(`simulated crash: ${op} '${path}' after the crash point`);
    this.name = 'SimulatedCrash';
  }
}

interface ArmedRule extends FaultRule {
  seen: number;
  fired: number;
}

interface FileState {
  /** Bytes known to be on stable storage (size at the last sync, or at open for existing files). */
  syncedSize: number;
}

/**
 * A `Vfs` wrapper that injects failures by operation and path, counts calls, and simulates a crash.
 *
 * `crash({ loseUnsynced: true })` models a power loss: every later call fails, files lose bytes
 * appended since their last `sync`, and files created since their directory's last `syncDir`
 * disappear. (Renames and deletions are treated as durable at once; the engine syncs the
 * directory right after each rename it depends on.) `crash({ loseUnsynced: false })` models a
 * killed process: the OS keeps everything written.
 */
export class FaultVfs implements Vfs {
  private readonly inner: Vfs;
  private readonly rules: ArmedRule[] = [];
  private readonly counts = new Map<VfsOp, number>();
  private readonly files = new Map<string, FileState>();
  private readonly unsyncedCreates = new Set<string>();
  private readonly openFiles = new Set<FaultFile>();
  private readonly random: () => number;
  private readonly inflight = new Set<Promise<unknown>>();
  private crashed = false;

  constructor(options: { inner?: Vfs; random?: () => number } = {}) {
    this.inner = options.inner ?? nodeVfs;
    this.random = options.random ?? Math.random;
  }

  /** Arms a rule; returns a function that disarms it. */
  inject(rule: FaultRule): () => void {
    const armed: ArmedRule = { ...rule, seen: 0, fired: 0 };
    this.rules.push(armed);
    return () => {
      const i = this.rules.indexOf(armed);
      if (i >= 0) this.rules.splice(i, 1);
    };
  }

  /** Disarms every rule. */
  clearFaults(): void {
    this.rules.length = 0;
  }

  /** Number of calls of `op` so far (all paths). */
  count(op: VfsOp): number {
    return this.counts.get(op) ?? 0;
  }

  /** Total injected failures so far. */
  get faultsFired(): number {
    return this.rules.reduce((n, r) => n + r.fired, 0);
  }

  get isCrashed(): boolean {
    return this.crashed;
  }

  /** Simulates a crash; see the class comment. */
  async crash(options: { loseUnsynced: boolean }): Promise<void> {
    this.crashed = true;
    // Writes already handed to the OS land (unsynced) before the "power" goes.
    await Promise.allSettled([...this.inflight]);
    for (const file of [...this.openFiles]) {
      await file.closeInner().catch(() => undefined);
    }
    this.openFiles.clear();
    if (!options.loseUnsynced) return;
    for (const path of this.unsyncedCreates) {
      await this.inner.unlink(path).catch(() => undefined);
      this.files.delete(path);
    }
    this.unsyncedCreates.clear();
    for (const [path, state] of this.files) {
      const file = await this.inner.open(path, 'readwrite').catch(() => undefined);
      if (!file) continue;
      try {
        if (file.size() > state.syncedSize) await file.truncate(state.syncedSize);
      } finally {
        await file.close();
      }
    }
  }

  private check(op: VfsOp, path: string): ArmedRule | undefined {
    if (this.crashed) throw new SimulatedCrash(op, path);
    this.counts.set(op, (this.counts.get(op) ?? 0) + 1);
    let firing: ArmedRule | undefined;
    for (const rule of this.rules) {
      if (rule.op !== op || !matches(rule.path, path)) continue;
      // Every matching rule counts the call, even one an earlier rule already fails.
      rule.seen++;
      if (firing !== undefined) continue;
      const w = rule.when;
      const fire =
        'nth' in w ? rule.seen === w.nth : 'after' in w ? rule.seen > w.after : this.random() < w.probability;
      if (fire) {
        rule.fired++;
        firing = rule;
      }
    }
    return firing;
  }

  /** Runs the fault check for `op`; throws the injected error when a rule fires. */
  private gate(op: VfsOp, path: string): void {
    const rule = this.check(op, path);
    if (rule) throw new InjectedFault(op, path, rule.errno ?? 'EIO');
  }

  async open(path: string, mode: OpenMode): Promise<VfsFile> {
    this.gate('open', path);
    const existed = mode === 'read' || mode === 'readwrite' ? true : await this.inner.exists(path);
    const file = await this.inner.open(path, mode);
    if (!existed) this.unsyncedCreates.add(path);
    if (!this.files.has(path) || mode === 'createTruncate' || mode === 'createExclusive') {
      this.files.set(path, { syncedSize: existed && mode !== 'createTruncate' ? file.size() : 0 });
    }
    const wrapped = new FaultFile(this, file, this.files.get(path)!);
    this.openFiles.add(wrapped);
    return wrapped;
  }

  /** @internal used by FaultFile */
  gateFile(op: VfsOp, path: string): ArmedRule | undefined {
    return this.check(op, path);
  }

  /** @internal used by FaultFile: remembers an operation until it settles */
  track<T>(op: Promise<T>): Promise<T> {
    this.inflight.add(op);
    const done = () => this.inflight.delete(op);
    op.then(done, done);
    return op;
  }

  /** @internal used by FaultFile */
  forget(file: FaultFile): void {
    this.openFiles.delete(file);
  }

  async readFile(path: string): Promise<Buffer> {
    this.gate('readFile', path);
    return this.inner.readFile(path);
  }

  async rename(from: string, to: string): Promise<void> {
    this.gate('rename', from);
    // Replacing a durable entry: after a crash the name must still exist (renames count as
    // durable at once, so it names the new file), never vanish with the unsynced source.
    const replacesDurable = !this.unsyncedCreates.has(to) && (await this.inner.exists(to));
    await this.inner.rename(from, to);
    const state = this.files.get(from);
    this.files.delete(from);
    if (state) this.files.set(to, state);
    else this.files.delete(to);
    const fromUnsynced = this.unsyncedCreates.delete(from);
    this.unsyncedCreates.delete(to);
    if (fromUnsynced && !replacesDurable) this.unsyncedCreates.add(to);
  }

  async unlink(path: string): Promise<void> {
    this.gate('unlink', path);
    await this.inner.unlink(path);
    this.files.delete(path);
    this.unsyncedCreates.delete(path);
  }

  async mkdirp(path: string): Promise<void> {
    this.gate('mkdirp', path);
    await this.inner.mkdirp(path);
  }

  async readdir(dir: string): Promise<string[]> {
    this.gate('readdir', dir);
    return this.inner.readdir(dir);
  }

  async exists(path: string): Promise<boolean> {
    this.gate('exists', path);
    return this.inner.exists(path);
  }

  async syncDir(dir: string): Promise<void> {
    this.gate('syncDir', dir);
    await this.inner.syncDir(dir);
    const synced = resolve(dir);
    for (const path of [...this.unsyncedCreates]) {
      if (resolve(dirname(path)) === synced) this.unsyncedCreates.delete(path);
    }
  }
}

class FaultFile implements VfsFile {
  constructor(
    private readonly owner: FaultVfs,
    private readonly inner: VfsFile,
    private readonly state: FileState,
  ) {}

  get path(): string {
    return this.inner.path;
  }

  private gate(op: VfsOp): ArmedRule | undefined {
    return this.owner.gateFile(op, this.inner.path);
  }

  readAt(buffer: Uint8Array, position: number): number {
    const rule = this.gate('read');
    if (rule) throw new InjectedFault('read', this.inner.path, rule.errno ?? 'EIO');
    return this.inner.readAt(buffer, position);
  }

  async write(data: Uint8Array, position: number): Promise<void> {
    const rule = this.gate('write');
    if (rule) {
      if (rule.tornBytes !== undefined && rule.tornBytes > 0) {
        await this.owner.track(
          this.inner.write(data.subarray(0, Math.min(rule.tornBytes, data.length)), position),
        );
      }
      throw new InjectedFault('write', this.inner.path, rule.errno ?? 'EIO');
    }
    await this.owner.track(this.inner.write(data, position));
    if (this.owner.isCrashed) throw new SimulatedCrash('write', this.inner.path);
  }

  writevSync(chunks: readonly Uint8Array[], position: number): void {
    const rule = this.gate('write');
    if (rule) {
      if (rule.tornBytes !== undefined && rule.tornBytes > 0) {
        const all = Buffer.concat(chunks);
        this.inner.writevSync([all.subarray(0, Math.min(rule.tornBytes, all.length))], position);
      }
      throw new InjectedFault('write', this.inner.path, rule.errno ?? 'EIO');
    }
    this.inner.writevSync(chunks, position);
  }

  async sync(): Promise<void> {
    const rule = this.gate('sync');
    if (rule) throw new InjectedFault('sync', this.inner.path, rule.errno ?? 'EIO');
    const sizeAtSync = this.inner.size();
    await this.owner.track(this.inner.sync());
    // A sync that the crash overtook did not complete, as far as the caller can know.
    if (this.owner.isCrashed) throw new SimulatedCrash('sync', this.inner.path);
    this.state.syncedSize = sizeAtSync;
  }

  async truncate(size: number): Promise<void> {
    const rule = this.gate('truncate');
    if (rule) throw new InjectedFault('truncate', this.inner.path, rule.errno ?? 'EIO');
    await this.inner.truncate(size);
    this.state.syncedSize = Math.min(this.state.syncedSize, size);
  }

  size(): number {
    // After a crash the real descriptor is closed (and its number may belong to another file).
    if (this.owner.isCrashed) throw new SimulatedCrash('read', this.inner.path);
    return this.inner.size();
  }

  /** Closes the real file without fault checks (used by `crash`). */
  closeInner(): Promise<void> {
    return this.inner.close();
  }

  async close(): Promise<void> {
    this.owner.forget(this);
    const rule = this.gate('close');
    await this.inner.close();
    if (rule) throw new InjectedFault('close', this.inner.path, rule.errno ?? 'EIO');
  }
}

function matches(pattern: FaultRule['path'], path: string): boolean {
  if (pattern === undefined) return true;
  if (typeof pattern === 'string') return path.includes(pattern);
  if (pattern instanceof RegExp) return pattern.test(path);
  return pattern(path);
}
