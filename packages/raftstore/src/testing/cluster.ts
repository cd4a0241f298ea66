import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { type Database, open } from '@nokv/engine';
import { type RegionMeta, RegionState } from '@nokv/proto';
import { RawClient } from '../client/raw-client.js';
import type { Peer } from '../store/peer.js';
import { Store, type StoreRaftOptions, type StoreStartOptions } from '../store/store.js';

// An in-process multi-store cluster for tests: real engines in temp dirs, real gRPC servers on
// loopback ports picked by the OS, the real transport between them. Stores can be stopped and
// restarted from their directories, and links cut with the transport's fault hooks.

export interface TestClusterOptions {
  stores?: number;
  /** Regions to bootstrap (default: two regions split at 'm', each on every store). */
  regions?: RegionMeta[];
  raft?: StoreRaftOptions;
  commandTimeoutMs?: number;
  /** Automatic split settings for every store. */
  split?: Pick<StoreStartOptions, 'splitSizeBytes' | 'splitCheckIntervalMs' | 'allocIds'>;
}

interface Node {
  id: bigint;
  dir: string;
  port: number;
  db?: Database;
  server?: grpc.Server;
  store?: Store;
}

const enc = new TextEncoder();

/** Regions `[-, m)` and `[m, +inf)`, peers 101/201/301 and 102/202/302 (the example topology). */
export function defaultRegions(stores = 3): RegionMeta[] {
  const ids = Array.from({ length: stores }, (_, i) => BigInt(i + 1));
  const region = (id: bigint, start: string, end: string): RegionMeta => ({
    id,
    startKey: enc.encode(start),
    endKey: enc.encode(end),
    epoch: { version: 1n, confVersion: 1n },
    peers: ids.map((s) => ({ storeId: s, peerId: s * 100n + id, learner: false })),
    state: RegionState.Running,
  });
  return [region(1n, '', 'm'), region(2n, 'm', '')];
}

export class TestCluster {
  private readonly nodes = new Map<bigint, Node>();
  private readonly clients: RawClient[] = [];
  readonly regions: RegionMeta[];

  private constructor(
    private readonly root: string,
    private readonly options: TestClusterOptions,
  ) {
    this.regions = options.regions ?? defaultRegions(options.stores ?? 3);
  }

  static async start(options: TestClusterOptions = {}): Promise<TestCluster> {
    const root = await mkdtemp(join(tmpdir(), 'nokv-cluster-'));
    const cluster = new TestCluster(root, options);
    const count = options.stores ?? 3;
    for (let i = 1; i <= count; i++) {
      cluster.nodes.set(BigInt(i), { id: BigInt(i), dir: join(root, `store-${i}`), port: 0 });
    }
    try {
      for (const id of cluster.nodes.keys()) await cluster.startStore(id);
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  address(storeId: bigint): string | undefined {
    const n = this.nodes.get(storeId);
    return n && n.port !== 0 ? `127.0.0.1:${n.port}` : undefined;
  }

  store(storeId: bigint): Store {
    const s = this.nodes.get(storeId)?.store;
    if (!s) throw new Error(`store ${storeId} is not running`);
    return s;
  }

  storeIds(): bigint[] {
    return [...this.nodes.keys()];
  }

  isRunning(storeId: bigint): boolean {
    return this.nodes.get(storeId)?.store !== undefined;
  }

  /** A client routed by the bootstrap regions (closed by `stop()`). */
  client(opts: { timeoutMs?: number; rpcTimeoutMs?: number } = {}): RawClient {
    const c = new RawClient({
      resolveStoreAddress: (id) => this.address(id),
      regions: this.regions,
      ...opts,
    });
    this.clients.push(c);
    return c;
  }

  async startStore(storeId: bigint): Promise<Store> {
    const node = this.nodes.get(storeId);
    if (!node) throw new Error(`no store ${storeId}`);
    if (node.store) return node.store;
    node.db = await open({ dir: node.dir, memtableBytes: 4 * 1024 * 1024, compactionThreads: 0 });
    const server = new grpc.Server({ 'grpc.max_receive_message_length': 80 * 1024 * 1024 });
    node.server = server;
    // Keep the port across restarts so peers' cached addresses stay valid.
    node.port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${node.port}`, grpc.ServerCredentials.createInsecure(), (err, port) =>
        err ? reject(err) : resolve(port),
      ),
    );
    node.store = await Store.start({
      storeId,
      db: node.db,
      resolveStoreAddress: (id) => this.address(id),
      bootstrapRegions: this.regions,
      raft: { tickMs: 20, ...this.options.raft },
      ...(this.options.commandTimeoutMs ? { commandTimeoutMs: this.options.commandTimeoutMs } : {}),
      ...this.options.split,
    });
    node.store.addServicesTo(server);
    return node.store;
  }

  /** A clean stop: the store, its server and its engine close in order. */
  async stopStore(storeId: bigint): Promise<void> {
    const node = this.nodes.get(storeId);
    if (!node?.store) return;
    const { store, server, db } = node;
    node.store = undefined;
    node.server = undefined;
    node.db = undefined;
    // Other stores keep Raft streams open to this server; give unary calls a moment, then cut them.
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        server!.forceShutdown();
        resolve();
      }, 200);
      server!.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    await store.stop();
    await db!.close();
  }

  async restartStore(storeId: bigint): Promise<Store> {
    await this.stopStore(storeId);
    return this.startStore(storeId);
  }

  /** The peer that leads `regionId` among running stores, if exactly one believes it leads in the highest term. */
  leader(regionId: bigint): { storeId: bigint; peer: Peer } | undefined {
    let best: { storeId: bigint; peer: Peer; term: bigint } | undefined;
    for (const [id, node] of this.nodes) {
      const peer = node.store?.peer(regionId);
      if (!peer?.isLeader) continue;
      const term = peer.status().term;
      if (!best || term > best.term) best = { storeId: id, peer, term };
    }
    return best && { storeId: best.storeId, peer: best.peer };
  }

  async waitForLeader(
    regionId: bigint,
    timeoutMs = 5000,
    exclude?: bigint,
  ): Promise<{ storeId: bigint; peer: Peer }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const l = this.leader(regionId);
      if (l && l.storeId !== exclude) return l;
      if (Date.now() > deadline) throw new Error(`region ${regionId} has no leader after ${timeoutMs} ms`);
      await sleep(20);
    }
  }

  /** Polls `check` until it holds or `timeoutMs` passes. */
  async waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await sleep(20);
    }
  }

  /** Cuts every link between `group` and the other stores, both ways. */
  isolate(group: readonly bigint[]): void {
    for (const a of this.storeIds()) {
      for (const b of this.storeIds()) {
        if (a === b || group.includes(a) === group.includes(b)) continue;
        this.nodes.get(a)?.store?.transport.setLinkFault(b, { block: true });
      }
    }
  }

  heal(): void {
    for (const node of this.nodes.values()) node.store?.transport.clearAllFaults();
  }

  async stop(): Promise<void> {
    for (const c of this.clients) c.close();
    for (const id of this.nodes.keys()) await this.stopStore(id).catch(() => {});
    await rm(this.root, { recursive: true, force: true });
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
