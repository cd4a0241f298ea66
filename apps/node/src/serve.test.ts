import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from '@nokv/engine';
import { afterEach, describe, expect, it } from 'vitest';
import { type RunningNode, type ServeOptions, serve } from './serve.js';

const dirs: string[] = [];
const nodes: RunningNode[] = [];
afterEach(async () => {
  for (const n of nodes.splice(0)) await n.stop();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'nokv-node-'));
  dirs.push(dir);
  return dir;
}

/** A one-store topology (two regions split at "m", both on store 1) in a fresh directory. */
function singleStoreConfig(): { dir: string; config: string } {
  const dir = tempDir();
  const config = join(dir, 'nokv.config.json');
  writeFileSync(
    config,
    JSON.stringify({
      cluster: 'test',
      stores: [
        { id: 1, addr: '127.0.0.1:1', httpAddr: '127.0.0.1:2', workdir: './store-1' },
        { id: 2, addr: '127.0.0.1:3', workdir: './store-2' },
      ],
      regions: [
        { id: 1, startKey: '', endKey: 'm', peers: [{ storeId: 1, peerId: 101 }] },
        { id: 2, startKey: 'm', endKey: '', peers: [{ storeId: 1, peerId: 102 }] },
      ],
    }),
  );
  return { dir, config };
}

function logCapture(): { lines: () => Record<string, unknown>[]; write(msg: string): void } {
  const chunks: string[] = [];
  return {
    write: (msg) => void chunks.push(msg),
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

async function start(options: Partial<ServeOptions> & { configPath: string }): Promise<RunningNode> {
  const node = await serve({
    storeId: 1,
    addr: '127.0.0.1:0',
    httpAddr: '127.0.0.1:0',
    raftTickMs: 10,
    shutdownGraceMs: 200,
    logLevel: 'warn',
    ...options,
  });
  nodes.push(node);
  return node;
}

async function stopNode(node: RunningNode): Promise<void> {
  nodes.splice(nodes.indexOf(node), 1);
  await node.stop();
}

interface StatsPayload {
  storeId: string;
  addr: string;
  uptimeMs: number;
  engine: { dir: string };
  store: { regions: number };
  regions: { regionId: string; role: string; leaderPeerId: string }[];
}

async function stats(node: RunningNode): Promise<StatsPayload> {
  const res = await fetch(`http://127.0.0.1:${node.httpPort}/stats`);
  expect(res.status).toBe(200);
  return (await res.json()) as StatsPayload;
}

async function until<T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('serve', () => {
  it('bootstraps on the first start, serves HTTP, and recovers on a restart', async () => {
    const { dir, config } = singleStoreConfig();
    const log = logCapture();
    const node = await start({ configPath: config, logLevel: 'info', logDestination: log });
    expect(node.bootstrapped).toBe(true);
    expect(node.workdir).toBe(join(dir, 'store-1'));
    expect(node.grpcPort).toBeGreaterThan(0);
    expect(node.httpPort).toBeGreaterThan(0);
    const mode = JSON.parse(readFileSync(join(node.workdir, 'MODE.json'), 'utf8')) as Record<string, unknown>;
    expect(mode).toMatchObject({ mode: 'cluster', storeId: 1 });

    const messages = log.lines().map((l) => l.msg);
    expect(messages).toContain(`bootstrapped 2 regions from ${config}`);
    expect(messages).toContain(`gRPC listening on 127.0.0.1:${node.grpcPort}`);
    expect(log.lines().every((l) => l.store === 1)).toBe(true);

    const base = `http://127.0.0.1:${node.httpPort}`;
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.text()).toBe('ok\n');
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/^nokv_process_cpu_user_seconds_total /m);
    expect(metrics).toMatch(/^nokv_engine_entries /m);
    expect(metrics).toMatch(/^nokv_store_regions\{kind="hosted"\} 2$/m);
    const missing = await fetch(`${base}/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ error: 'not found', path: '/nope' });
    expect((await fetch(`${base}/stats`, { method: 'POST' })).status).toBe(405);

    const s = await until('both regions to elect their single peer', async () => {
      const s = await stats(node);
      return s.regions.length === 2 && s.regions.every((r) => r.role === 'leader') ? s : undefined;
    });
    expect(s.storeId).toBe('1');
    expect(s.addr).toBe(`127.0.0.1:${node.grpcPort}`);
    expect(s.engine.dir).toBe(node.workdir);
    expect(s.store.regions).toBe(2);
    expect(s.regions.map((r) => r.regionId)).toEqual(['1', '2']);

    await stopNode(node);
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();

    const log2 = logCapture();
    const again = await start({ configPath: config, logLevel: 'info', logDestination: log2 });
    expect(again.bootstrapped).toBe(false);
    const messages2 = log2.lines().map((l) => l.msg);
    expect(messages2).toContain('recovered 2 regions from workdir');
    expect(messages2.some((m) => String(m).includes('ignored on restart'))).toBe(true);
    expect((await stats(again)).regions).toHaveLength(2);
  });

  it('refuses a workdir that belongs to another store', async () => {
    const { config } = singleStoreConfig();
    const first = await start({ configPath: config });
    const workdir = first.workdir;
    await stopNode(first);
    await expect(start({ configPath: config, storeId: 2, workdir })).rejects.toMatchObject({
      code: 'StoreIdMismatch',
      message: expect.stringContaining(`workdir ${workdir} belongs to store 1, not store 2`),
    });
  });

  it('refuses a standalone database and explains what to do', async () => {
    const { config } = singleStoreConfig();
    const workdir = tempDir();
    const db = await open({ dir: workdir });
    await db.set('k', 'v');
    await db.close();
    await expect(start({ configPath: config, workdir })).rejects.toMatchObject({
      code: 'WorkdirModeNotAllowed',
      message: expect.stringMatching(/has no MODE.json but holds database files: .*nokv migrate/),
    });
  });

  it('starts a workdir seeded by migrate init and turns it into a cluster store', async () => {
    const { config } = singleStoreConfig();
    const workdir = tempDir();
    const db = await open({ dir: workdir });
    for (let i = 0; i < 50; i++) await db.set(`k${i}`, `v${i}`);
    await db.close();
    const { init } = await import('@nokv/raftstore/migrate');
    await init({ workdir, storeId: 1n, regionId: 9n, peerId: 901n });
    // Seeded for store 1: store 2 may not take it.
    await expect(start({ configPath: config, workdir, storeId: 2 })).rejects.toMatchObject({
      code: 'StoreIdMismatch',
    });
    const node = await start({ configPath: config, workdir });
    expect(node.bootstrapped).toBe(false);
    const mode = JSON.parse(readFileSync(join(workdir, 'MODE.json'), 'utf8')) as Record<string, unknown>;
    expect(mode).toMatchObject({ mode: 'cluster', storeId: 1 });
    expect(mode.regionId).toBeUndefined();
    const { RawClient } = await import('@nokv/raftstore');
    const { RegionState } = await import('@nokv/proto');
    const client = new RawClient({
      resolveStoreAddress: () => node.grpcAddr,
      regions: [
        {
          id: 9n,
          startKey: new Uint8Array(0),
          endKey: new Uint8Array(0),
          epoch: { version: 1n, confVersion: 1n },
          peers: [{ storeId: 1n, peerId: 901n, learner: false }],
          state: RegionState.Running,
        },
      ],
      timeoutMs: 10_000,
    });
    try {
      expect((await client.get('k7'))?.toString()).toBe('v7');
      expect(await client.scan('', '', 1000)).toHaveLength(50);
    } finally {
      client.close();
    }
  });

  it('reports unknown stores, bad flags and missing files', async () => {
    const { config } = singleStoreConfig();
    await expect(start({ configPath: config, storeId: 9 })).rejects.toMatchObject({
      code: 'UnknownStore',
      message: expect.stringContaining('store 9 is not in topology file'),
    });
    await expect(start({ configPath: config, addr: 'nope' })).rejects.toMatchObject({
      code: 'InvalidArgument',
      message: "--addr 'nope' is not host:port",
    });
    await expect(start({ configPath: config, storeId: 0 })).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
    await expect(start({ configPath: config, logLevel: 'loud' })).rejects.toMatchObject({
      code: 'InvalidArgument',
      message: expect.stringContaining("unknown log level 'loud'"),
    });
    await expect(start({ configPath: join(tempDir(), 'none.json') })).rejects.toMatchObject({
      code: 'ConfigNotFound',
    });
  });

  it('fails cleanly when a port is taken, leaving the workdir usable', async () => {
    const { config } = singleStoreConfig();
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      await expect(start({ configPath: config, httpAddr: `127.0.0.1:${port}` })).rejects.toMatchObject({
        code: 'ListenFailed',
        message: expect.stringContaining(`cannot listen on 127.0.0.1:${port} (HTTP)`),
      });
    } finally {
      blocker.close();
    }
    // The engine lock was released: the same workdir starts (as a restart: MODE.json was written).
    const node = await start({ configPath: config });
    expect(node.bootstrapped).toBe(false);
  });
});
