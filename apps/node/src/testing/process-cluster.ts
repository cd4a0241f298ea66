import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type RegionMeta, RegionState } from '@nokv/proto';
import { RawClient } from '@nokv/raftstore';
import { freeLoopbackPort } from '@nokv/server-kit';

// A cluster of real `nokv serve` processes on loopback: a topology file with free ports, one child
// process per store, readiness by /healthz, leaders found through /stats. Children can be killed
// with SIGKILL and started again on the same workdir. Used by tests and by `pnpm bench:cluster`.

const here = dirname(fileURLToPath(import.meta.url));
// src/testing → the app's root; dist/src/testing when running compiled.
const appDir = here.includes(`${join('dist', 'src')}`)
  ? join(here, '..', '..', '..')
  : join(here, '..', '..');

export interface ProcessClusterOptions {
  stores?: number;
  /** Run the compiled entry (dist) instead of the TypeScript sources through tsx (default: source). */
  compiled?: boolean;
  raftTickMs?: number;
  logLevel?: string;
  /** Also run a coordinator process (the stores heartbeat to it); without it the topology names none. */
  withCoordinator?: boolean;
  /** `none`: the topology lists stores only (their regions come from elsewhere, e.g. a migration). */
  regions?: 'two' | 'none';
  /** The stores the topology's regions list (default: every store); the others start empty. */
  regionStores?: number[];
  /** Start the store processes now (default true); false leaves it to `startStore`. */
  startStores?: boolean;
  /** Extra `nokv serve` flags for every store (e.g. `--enable-fault-injection`). */
  storeArgs?: string[];
}

interface Child {
  id: number;
  port: number;
  httpPort: number;
  workdir: string;
  proc?: ChildProcess;
  output: string[];
}

export class ProcessCluster {
  private readonly children = new Map<number, Child>();
  private coordinator: { port: number; workdir: string; proc?: ChildProcess; output: string[] } | undefined;
  private readonly clients: RawClient[] = [];
  readonly configPath: string;

  private constructor(
    readonly root: string,
    private readonly options: ProcessClusterOptions,
  ) {
    this.configPath = join(root, 'nokv.config.json');
  }

  static async start(options: ProcessClusterOptions = {}): Promise<ProcessCluster> {
    const root = await mkdtemp(join(tmpdir(), 'nokv-proc-cluster-'));
    const c = new ProcessCluster(root, options);
    const n = options.stores ?? 3;
    for (let id = 1; id <= n; id++) {
      c.children.set(id, {
        id,
        port: await freeLoopbackPort(),
        httpPort: await freeLoopbackPort(),
        workdir: join(root, `store-${id}`),
        output: [],
      });
    }
    if (options.withCoordinator) {
      c.coordinator = { port: await freeLoopbackPort(), workdir: join(root, 'coordinator'), output: [] };
    }
    await writeFile(c.configPath, JSON.stringify(c.topology(), null, 2));
    try {
      if (c.coordinator) await c.startCoordinator();
      if (options.startStores !== false)
        await Promise.all([...c.children.keys()].map((id) => c.startStore(id)));
    } catch (err) {
      await c.stop();
      throw err;
    }
    return c;
  }

  /** The stores the topology's regions list. */
  private regionStoreIds(): number[] {
    const all = [...this.children.keys()];
    return this.options.regionStores?.filter((id) => all.includes(id)) ?? all;
  }

  private topology() {
    const ids = this.regionStoreIds();
    const peers = (region: number) => ids.map((s) => ({ storeId: s, peerId: s * 100 + region }));
    return {
      cluster: 'nokv-test',
      ...(this.coordinator ? { coordinator: { addr: `127.0.0.1:${this.coordinator.port}` } } : {}),
      stores: [...this.children.values()].map((c) => ({
        id: c.id,
        addr: `127.0.0.1:${c.port}`,
        httpAddr: `127.0.0.1:${c.httpPort}`,
        workdir: c.workdir,
      })),
      regions:
        this.options.regions === 'none'
          ? []
          : [
              { id: 1, startKey: '', endKey: 'm', peers: peers(1) },
              { id: 2, startKey: 'm', endKey: '', peers: peers(2) },
            ],
    };
  }

  /** The regions of the topology as the client routes them. */
  regions(): RegionMeta[] {
    const ids = this.regionStoreIds().map(BigInt);
    const region = (id: bigint, start: string, end: string): RegionMeta => ({
      id,
      startKey: Buffer.from(start),
      endKey: Buffer.from(end),
      epoch: { version: 1n, confVersion: 1n },
      peers: ids.map((s) => ({ storeId: s, peerId: s * 100n + id, learner: false })),
      state: RegionState.Running,
    });
    return [region(1n, '', 'm'), region(2n, 'm', '')];
  }

  address(storeId: bigint | number): string | undefined {
    const c = this.children.get(Number(storeId));
    return c ? `127.0.0.1:${c.port}` : undefined;
  }

  client(opts: { timeoutMs?: number; rpcTimeoutMs?: number } = {}): RawClient {
    const client = new RawClient({
      resolveStoreAddress: (id) => this.address(id),
      regions: this.regions(),
      ...opts,
    });
    this.clients.push(client);
    return client;
  }

  workdir(storeId: number): string {
    const c = this.children.get(storeId);
    if (!c) throw new Error(`no store ${storeId}`);
    return c.workdir;
  }

  storeIds(): number[] {
    return [...this.children.keys()];
  }

  isRunning(id: number): boolean {
    const p = this.children.get(id)?.proc;
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  }

  /** The last lines a store printed (for failure messages). */
  output(id: number): string {
    return (this.children.get(id)?.output ?? []).join('').slice(-4000);
  }

  async startStore(id: number): Promise<void> {
    const c = this.children.get(id);
    if (!c) throw new Error(`no store ${id}`);
    if (this.isRunning(id)) return;
    const compiledEntry = join(appDir, 'dist', 'src', 'main.js');
    const useCompiled = this.options.compiled === true && existsSync(compiledEntry);
    const args = useCompiled
      ? [compiledEntry]
      : ['--conditions=@nokv/source', '--import', 'tsx', join(appDir, 'src', 'main.ts')];
    // NOKV_CHILD_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the stores (not allowed in NODE_OPTIONS).
    args.unshift(...(process.env.NOKV_CHILD_NODE_ARGS ?? '').split(' ').filter((a) => a.length > 0));
    args.push(
      '--config',
      this.configPath,
      '--store-id',
      String(id),
      '--log-level',
      this.options.logLevel ?? 'warn',
    );
    if (this.options.raftTickMs !== undefined) args.push('--raft-tick-ms', String(this.options.raftTickMs));
    args.push(...(this.options.storeArgs ?? []));
    const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    c.proc = proc;
    c.output = [];
    const keep = (chunk: Buffer) => {
      c.output.push(chunk.toString());
      if (c.output.length > 200) c.output.splice(0, c.output.length - 200);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    await this.waitFor(
      `store ${id} to answer /healthz`,
      async () => {
        if (proc.exitCode !== null)
          throw new Error(`store ${id} exited with ${proc.exitCode}: ${this.output(id)}`);
        try {
          const res = await fetch(`http://127.0.0.1:${c.httpPort}/healthz`);
          return res.ok;
        } catch {
          return false;
        }
      },
      30_000,
    );
  }

  /** The coordinator's address (when the cluster has one). */
  get coordinatorAddr(): string | undefined {
    return this.coordinator ? `127.0.0.1:${this.coordinator.port}` : undefined;
  }

  async startCoordinator(): Promise<void> {
    const co = this.coordinator;
    if (!co) throw new Error('this cluster has no coordinator');
    if (co.proc && co.proc.exitCode === null && co.proc.signalCode === null) return;
    const root = join(appDir, '..', 'coordinator');
    const compiledEntry = join(root, 'dist', 'src', 'main.js');
    const args =
      this.options.compiled === true && existsSync(compiledEntry)
        ? [compiledEntry]
        : ['--conditions=@nokv/source', '--import', 'tsx', join(root, 'src', 'main.ts')];
    args.push(
      '--addr',
      `127.0.0.1:${co.port}`,
      '--workdir',
      co.workdir,
      '--log-level',
      this.options.logLevel ?? 'warn',
    );
    const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    co.proc = proc;
    co.output = [];
    const keep = (chunk: Buffer) => co.output.push(chunk.toString());
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    // Ready when its port accepts connections.
    await this.waitFor(
      'the coordinator to listen',
      async () => {
        if (proc.exitCode !== null)
          throw new Error(`coordinator exited with ${proc.exitCode}: ${co.output.join('')}`);
        return new Promise<boolean>((res) => {
          const sock = connect(co.port, '127.0.0.1');
          sock.once('connect', () => {
            sock.destroy();
            res(true);
          });
          sock.once('error', () => res(false));
        });
      },
      30_000,
    );
  }

  async killCoordinator(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const proc = this.coordinator?.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill(signal);
    await exited;
  }

  /** Kills a store's process (SIGKILL by default: no shutdown code runs) and waits for it to exit. */
  async kill(id: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const proc = this.children.get(id)?.proc;
    if (!proc || !this.isRunning(id)) return;
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill(signal);
    await exited;
  }

  /** A store's /stats document. */
  async stats(id: number): Promise<{ regions: { regionId: string; role: string; appliedIndex: string }[] }> {
    const c = this.children.get(id)!;
    const res = await fetch(`http://127.0.0.1:${c.httpPort}/stats`);
    return (await res.json()) as { regions: { regionId: string; role: string; appliedIndex: string }[] };
  }

  /** The store whose peer leads `regionId`, asking every running store. */
  async leaderStore(regionId: number): Promise<number | undefined> {
    for (const id of this.storeIds()) {
      if (!this.isRunning(id)) continue;
      try {
        const s = await this.stats(id);
        if (s.regions.some((r) => r.regionId === String(regionId) && r.role === 'leader')) return id;
      } catch {
        // not answering: not a leader we can use
      }
    }
    return undefined;
  }

  async waitForLeader(regionId: number, timeoutMs = 15_000, exclude?: number): Promise<number> {
    let found: number | undefined;
    await this.waitFor(
      `a leader of region ${regionId}`,
      async () => {
        found = await this.leaderStore(regionId);
        return found !== undefined && found !== exclude;
      },
      timeoutMs,
    );
    return found!;
  }

  async waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Stops every store with SIGTERM (a clean stop) and removes the workdirs. */
  async stop(): Promise<void> {
    for (const c of this.clients) c.close();
    await this.killCoordinator('SIGTERM');
    await Promise.all(
      this.storeIds().map(async (id) => {
        const proc = this.children.get(id)?.proc;
        if (!proc || !this.isRunning(id)) return;
        const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }),
    );
    await rm(this.root, { recursive: true, force: true });
  }
}
