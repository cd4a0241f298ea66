import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTopology, regionMetas, storeAddressResolver } from '@nokv/config';
import { RawClient } from '@nokv/raftstore';
import { freeLoopbackPort } from '@nokv/server-kit';
import { afterEach, expect, test } from 'vitest';
import { LabError, labClean, labDown, labUp } from './supervisor.js';

// The lab runs the compiled apps (npm test builds before it tests), as `npm start` does.

let root: string | undefined;
afterEach(async () => {
  if (root) {
    await labDown({ artifactsDir: join(root, 'artifacts') }).catch(() => {});
    await rm(root, { recursive: true, force: true });
  }
  root = undefined;
});

test('lab up starts every store, serves reads and writes, stops cleanly and comes back with its data', {
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
  await writeFile(
    config,
    JSON.stringify({
      cluster: 'lab-test',
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
  await expect(labUp(opts)).rejects.toThrow(LabError);
  const c1 = client();
  await c1.put('hello', 'world');
  await c1.put('zebra', 'stripes');
  expect((await c1.get('hello'))?.toString()).toBe('world');
  c1.close();
  // Stopped from "another terminal": every child exits cleanly.
  expect(await labDown({ artifactsDir: artifacts })).toBe(3);
  expect(await lab.done).toBe(true);
  expect((await readdir(artifacts)).sort()).toEqual(['store-1.log', 'store-2.log', 'store-3.log']);

  // Started again, it reuses the workdirs.
  const again = await labUp(opts);
  const c2 = client();
  expect((await c2.get('zebra'))?.toString()).toBe('stripes');
  c2.close();
  await expect(labClean({ configPath: config, artifactsDir: artifacts })).rejects.toThrow(/running/);
  await again.stop();
  const removed = await labClean({ configPath: config, artifactsDir: artifacts });
  expect(removed.some((d) => d.endsWith('store-1'))).toBe(true);
});
