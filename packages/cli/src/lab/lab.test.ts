import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTopology, regionMetas, storeAddressResolver } from '@nokv/config';
import { RawClient } from '@nokv/raftstore';
import { freeLoopbackPort } from '@nokv/server-kit';
import { afterEach, expect, test } from 'vitest';
import { LabError, labClean, labDown, labUp } from './supervisor.js';

// The lab runs the compiled apps (npm test builds before it tests), as `npm start` does.

/** One command over RESP, its reply's first line (`+OK`, `$5` + the bulk, `-TRYAGAIN …`). */
function redis(port: number, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    let got = '';
    sock.setTimeout(10_000, () => {
      sock.destroy();
      reject(new Error(`no reply to ${args.join(' ')}`));
    });
    sock.once('connect', () =>
      sock.write(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`),
    );
    sock.on('data', (d) => {
      got += d.toString();
      const lines = got.split('\r\n');
      const complete = got.startsWith('$') && !got.startsWith('$-1') ? lines.length >= 3 : lines.length >= 2;
      if (complete) {
        sock.destroy();
        resolve(got.startsWith('$') && !got.startsWith('$-1') ? lines[1]! : lines[0]!);
      }
    });
    sock.once('error', reject);
  });
}

async function redisUntilOk(port: number, ...args: string[]): Promise<string> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const reply = await redis(port, ...args);
    // TRYAGAIN while the coordinator still learns the regions from the stores' heartbeats.
    if (!reply.startsWith('-TRYAGAIN') || Date.now() > deadline) return reply;
    await new Promise((r) => setTimeout(r, 200));
  }
}

let root: string | undefined;
afterEach(async () => {
  if (root) {
    await labDown({ artifactsDir: join(root, 'artifacts') }).catch(() => {});
    await rm(root, { recursive: true, force: true });
  }
  root = undefined;
});

test('lab up starts the coordinator, every store and the Redis gateway, serves reads and writes, stops cleanly and comes back with its data', {
  timeout: 120_000,
}, async () => {
  root = await mkdtemp(join(tmpdir(), 'nokv-lab-'));
  const stores: { id: number; addr: string; httpAddr: string; workdir: string }[] = [];
  for (let id = 1; id <= 3; id++) {
    stores.push({
      id,
      addr: `127.0.0.1:${await freeLoopbackPort()}`,
      httpAddr: `127.0.0.1:${await freeLoopbackPort()}`,
      workdir: `./data/store-${id}`,
    });
  }
  const peers = (r: number) => stores.map((s) => ({ storeId: s.id, peerId: s.id * 100 + r }));
  const config = join(root, 'nokv.config.json');
  const redisPort = await freeLoopbackPort();
  await writeFile(
    config,
    JSON.stringify({
      cluster: 'lab-test',
      coordinator: { addr: `127.0.0.1:${await freeLoopbackPort()}` },
      stores,
      regions: [
        { id: 1, startKey: '', endKey: 'm', peers: peers(1) },
        { id: 2, startKey: 'm', endKey: '', peers: peers(2) },
      ],
    }),
  );
  const artifacts = join(root, 'artifacts');
  const lines: string[] = [];
  const opts = {
    configPath: config,
    artifactsDir: artifacts,
    logLevel: 'warn',
    print: (l: string) => lines.push(l),
    redisAddr: `127.0.0.1:${redisPort}`,
    trpcAddr: `127.0.0.1:${await freeLoopbackPort()}`,
  };
  const topology = await loadTopology(config);
  const client = () =>
    new RawClient({
      resolveStoreAddress: storeAddressResolver(topology),
      regions: regionMetas(topology),
      timeoutMs: 15_000,
    });

  const lab = await labUp(opts);
  expect(lines.join('\n')).toContain('NoKV lab is up');
  expect(lines.join('\n')).toContain(`redis-cli -p ${redisPort} set hello world`);
  await expect(labUp(opts)).rejects.toThrow(LabError);
  const c1 = client();
  await c1.put('hello', 'world');
  await c1.put('zebra', 'stripes');
  expect((await c1.get('hello'))?.toString()).toBe('world');
  c1.close();
  // The gateway: transactions over the same cluster (its keys live beside the raw ones).
  expect(await redisUntilOk(redisPort, 'SET', 'greeting', 'hello from redis')).toBe('+OK');
  expect(await redisUntilOk(redisPort, 'GET', 'greeting')).toBe('hello from redis');
  // Stopped from "another terminal": every child exits cleanly.
  expect(await labDown({ artifactsDir: artifacts })).toBe(5);
  expect(await lab.done).toBe(true);
  expect((await readdir(artifacts)).sort()).toEqual([
    'coordinator.log',
    'redis.log',
    'store-1.log',
    'store-2.log',
    'store-3.log',
  ]);

  // Started again, it reuses the workdirs.
  const again = await labUp(opts);
  const c2 = client();
  expect((await c2.get('zebra'))?.toString()).toBe('stripes');
  c2.close();
  expect(await redisUntilOk(redisPort, 'GET', 'greeting')).toBe('hello from redis');
  await expect(labClean({ configPath: config, artifactsDir: artifacts })).rejects.toThrow(/running/);
  await again.stop();
  const removed = await labClean({ configPath: config, artifactsDir: artifacts });
  expect(removed.some((d) => d.endsWith('store-1'))).toBe(true);
});
