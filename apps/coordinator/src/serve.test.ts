import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { status as Status } from '@grpc/grpc-js';
import { CoordinatorService, regionToWire, uint64FromWire, uint64ToWire } from '@nokv/proto';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { createUnaryClient, type RpcError, type UnaryClient } from './grpc.js';
import { type RunningCoordinator, serve } from './serve.js';
import { region, regionHeartbeatRequest, storeHeartbeatRequest } from './testing.js';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const S = CoordinatorService;

let dir: string;
const cleanups: (() => Promise<void> | void)[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nokv-coord-serve-'));
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await rm(dir, { recursive: true, force: true });
});

async function start(extra: Partial<Parameters<typeof serve>[0]> = {}): Promise<{
  running: RunningCoordinator;
  client: UnaryClient<typeof S>;
}> {
  const running = await serve({
    addr: '127.0.0.1:0',
    httpAddr: '127.0.0.1:0',
    workdir: dir,
    logLevel: 'silent',
    ...extra,
  });
  const client = createUnaryClient(S, running.addr);
  cleanups.push(
    () => running.stop(),
    () => client.close(),
  );
  return { running, client };
}

async function rpcError(p: Promise<unknown>): Promise<RpcError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!err) throw new Error('the call succeeded');
  return err as RpcError;
}

test('malformed and invalid requests are INVALID_ARGUMENT; epoch mismatch is FAILED_PRECONDITION', async () => {
  const { client } = await start();
  // Bytes that are not a protobuf message (a field with wire type 7).
  const bad = await rpcError(client.callRaw(S.Tso, Buffer.from([0x0f, 0xff, 0xff])));
  expect(bad.status).toBe(Status.INVALID_ARGUMENT);
  expect(bad.code).toBe('MalformedMessage');
  for (const call of [
    client.call(S.StoreHeartbeat, { store: { id: uint64ToWire(0n, 'id') } }),
    client.call(S.StoreHeartbeat, {}),
    client.call(S.StoreHeartbeat, { store: { id: uint64ToWire(9n, 'id') } }), // unknown, no addr
    client.call(S.PutStore, { store: { id: uint64ToWire(1n, 'id'), addr: 'nonsense' } }),
    client.call(S.GetRegionById, {}),
    client.call(S.RegionHeartbeat, {}),
    client.call(S.RegionHeartbeat, { region: regionToWire(region(1n, 'b', 'a', [[1n, 11n]])) }),
    client.call(S.RegionHeartbeat, { region: regionToWire(region(1n, '', '', [])) }),
    client.call(
      S.RegionHeartbeat,
      regionHeartbeatRequest(region(1n, '', '', [[1n, 11n]]), { storeId: 2n, peerId: 99n, learner: false }),
    ),
    client.call(S.ScanRegions, { startKey: Buffer.from('z'), endKey: Buffer.from('a') }),
    client.call(S.AllocId, { count: 1 << 20 }),
    client.call(S.RemoveRegion, { regionId: uint64ToWire(1n, 'id') }),
  ]) {
    const err = await rpcError(call);
    expect(err.status, err.message).toBe(Status.INVALID_ARGUMENT);
  }
  await client.call(S.RegionHeartbeat, regionHeartbeatRequest(region(1n, '', '', [[1n, 11n]]), undefined));
  const mismatch = await rpcError(
    client.call(S.RemoveRegion, {
      regionId: uint64ToWire(1n, 'id'),
      expectedEpoch: { version: uint64ToWire(7n, 'v'), confVersion: uint64ToWire(1n, 'c') },
    }),
  );
  expect(mismatch.status).toBe(Status.FAILED_PRECONDITION);
  const removed = await client.call(S.RemoveRegion, {
    regionId: uint64ToWire(1n, 'id'),
    expectedEpoch: { version: uint64ToWire(1n, 'v'), confVersion: uint64ToWire(1n, 'c') },
  });
  expect(removed.removed).toBe(true);
  expect((await client.call(S.GetRegionById, { regionId: uint64ToWire(1n, 'id') })).notFound).toBe(true);
});

test('stores register by heartbeat or PutStore, survive a restart, and are served over gRPC and /view', async () => {
  const first = await start();
  await first.client.call(S.StoreHeartbeat, storeHeartbeatRequest(1n, '127.0.0.1:20170'));
  await first.client.call(S.PutStore, {
    store: { id: uint64ToWire(2n, 'id'), addr: '127.0.0.1:20171', httpAddr: '127.0.0.1:20181' },
  });
  const conflict = await rpcError(
    first.client.call(S.StoreHeartbeat, storeHeartbeatRequest(3n, '127.0.0.1:20170')),
  );
  expect(conflict.status).toBe(Status.FAILED_PRECONDITION);
  await first.client.call(
    S.RegionHeartbeat,
    regionHeartbeatRequest(
      region(5n, '', '', [
        [1n, 51n],
        [2n, 52n],
      ]),
      { storeId: 1n, peerId: 51n, learner: false },
    ),
  );
  const res = await fetch(`http://${first.running.httpAddr}/view`);
  const view = (await res.json()) as {
    stores: { id: string; state: string }[];
    regions: { id: string; leader: unknown }[];
  };
  expect(view.stores.map((s) => [s.id, s.state])).toEqual([
    ['1', 'up'],
    ['2', 'up'],
  ]);
  expect(view.regions[0]).toMatchObject({ id: '5', leader: { storeId: '1', peerId: '51' } });
  expect(await (await fetch(`http://${first.running.httpAddr}/healthz`)).text()).toBe('ok\n');
  const metrics = await (await fetch(`http://${first.running.httpAddr}/metrics`)).text();
  expect(metrics).toContain('nokv_coordinator_rpc_total{method="StoreHeartbeat",code="Ok"} 1');
  expect(metrics).toContain('nokv_coordinator_regions 1');
  await first.running.stop();

  const second = await start();
  const stores = await second.client.call(S.ListStores, {});
  expect(stores.stores.map((s) => [uint64FromWire(s.id), s.addr])).toEqual([
    [1n, '127.0.0.1:20170'],
    [2n, '127.0.0.1:20171'],
  ]);
  const got = await second.client.call(S.GetStore, { storeId: uint64ToWire(2n, 'id') });
  expect(got.store?.httpAddr).toBe('127.0.0.1:20181');
  expect((await second.client.call(S.GetStore, { storeId: uint64ToWire(9n, 'id') })).notFound).toBe(true);
  const route = await second.client.call(S.GetRegionByKey, { key: Buffer.from('k') });
  expect(uint64FromWire(route.region?.id)).toBe(5n);
  // Leaders are not durable: unknown until the next region heartbeat.
  expect(route.leader).toBeFalsy();
});

test('a store is reported down after the heartbeat timeout', async () => {
  const { client } = await start({ heartbeatTimeoutMs: 300 });
  await client.call(S.StoreHeartbeat, storeHeartbeatRequest(1n));
  await client.call(S.StoreHeartbeat, storeHeartbeatRequest(2n));
  const state = async (id: bigint) =>
    (await client.call(S.GetStore, { storeId: uint64ToWire(id, 'id') })).store?.state;
  expect(await state(1n)).toBe(1); // UP
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    await client.call(S.StoreHeartbeat, storeHeartbeatRequest(1n));
    if ((await state(2n)) === 2) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  expect(await state(2n)).toBe(2); // DOWN
  expect(await state(1n)).toBe(1);
});

test('TSO and AllocId over gRPC: contiguous batches, monotonic across a clean restart', async () => {
  const first = await start();
  const seen: bigint[] = [];
  for (let i = 0; i < 50; i++) {
    const r = await first.client.call(S.Tso, { count: 3 });
    expect(r.count).toBe(3);
    seen.push(uint64FromWire(r.timestamp));
  }
  for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThanOrEqual(seen[i - 1]! + 3n);
  const ids = await Promise.all(Array.from({ length: 10 }, () => first.client.call(S.AllocId, { count: 5 })));
  const idFirsts = ids.map((r) => uint64FromWire(r.firstId)).sort((a, b) => (a < b ? -1 : 1));
  for (let i = 1; i < idFirsts.length; i++) expect(idFirsts[i]! - idFirsts[i - 1]!).toBe(5n);
  await first.running.stop();
  const second = await start();
  expect(uint64FromWire((await second.client.call(S.Tso, {})).timestamp)).toBeGreaterThan(seen.at(-1)! + 2n);
  expect(uint64FromWire((await second.client.call(S.AllocId, {})).firstId)).toBeGreaterThan(
    idFirsts.at(-1)! + 4n,
  );
});

/** Starts main.ts in a child process; resolves with its gRPC address. */
function spawnCoordinator(workdir: string): Promise<{ child: ChildProcess; addr: string }> {
  const child = spawn(
    process.execPath,
    [
      '--conditions=@nokv/source',
      '--import',
      'tsx',
      'apps/coordinator/src/main.ts',
      '--addr',
      '127.0.0.1:0',
      '--workdir',
      workdir,
    ],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  cleanups.push(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`coordinator did not start: ${out}${err}`)), 30_000);
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      for (const line of out.split('\n')) {
        if (!line.includes('gRPC listening')) continue;
        clearTimeout(timer);
        resolve({ child, addr: (JSON.parse(line) as { addr: string }).addr });
        return;
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`coordinator exited with ${code}: ${out}${err}`));
    });
  });
}

async function killHard(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

test('TSO and ids stay monotonic across SIGKILL of a real coordinator process', async () => {
  let maxTs = 0n;
  let maxId = 0n;
  for (let round = 0; round < 3; round++) {
    const { child, addr } = await spawnCoordinator(dir);
    const client = createUnaryClient(S, addr);
    // Calls in flight when the process dies must not matter: only answered values count.
    const answered: Promise<void>[] = [];
    for (let i = 0; i < 200; i++) {
      const count = 1 + (i % 4);
      answered.push(
        client.call(S.Tso, { count }).then((r) => {
          const first = uint64FromWire(r.timestamp);
          expect(first).toBeGreaterThan(maxTs);
          expect(r.count).toBe(count);
          maxTs = first + BigInt(count) - 1n;
        }),
      );
      if (i % 10 === 0) {
        answered.push(
          client.call(S.AllocId, { count }).then((r) => {
            const first = uint64FromWire(r.firstId);
            expect(first).toBeGreaterThan(maxId);
            maxId = first + BigInt(count) - 1n;
          }),
        );
      }
    }
    await Promise.all(answered);
    // Some calls still running while it dies.
    const late = Array.from({ length: 20 }, () =>
      client.call(S.Tso, { count: 2 }).then(
        (r) => {
          const first = uint64FromWire(r.timestamp);
          if (first + 1n > maxTs) maxTs = first + 1n;
        },
        () => {},
      ),
    );
    await killHard(child);
    await Promise.all(late);
    client.close();
  }
  const { child, addr } = await spawnCoordinator(dir);
  const client = createUnaryClient(S, addr);
  expect(uint64FromWire((await client.call(S.Tso, {})).timestamp)).toBeGreaterThan(maxTs);
  expect(uint64FromWire((await client.call(S.AllocId, {})).firstId)).toBeGreaterThan(maxId);
  client.close();
  // A clean stop on SIGTERM exits 0.
  const exit = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  expect(await exit).toBe(0);
});

test('RegionHeartbeatBatch: answers in order (stale ones say why); one bad entry fails the call and changes nothing', async () => {
  const { running, client } = await start({ scheduler: { disabled: true } });
  await client.call(S.StoreHeartbeat, storeHeartbeatRequest(1n));
  const r1 = region(1n, '', 'm', [[1n, 11n]], { version: 2n, confVersion: 1n });
  const r2 = region(2n, 'm', '', [[1n, 21n]]);
  const res = await client.call(S.RegionHeartbeatBatch, {
    heartbeats: [
      regionHeartbeatRequest(r1, r1.peers[0]),
      regionHeartbeatRequest(r2, r2.peers[0]),
      // An older epoch of region 1.
      regionHeartbeatRequest(region(1n, '', 'm', [[1n, 11n]]), undefined),
    ],
  });
  expect(res.responses.map((r) => [r.stale, r.reason !== ''])).toEqual([
    [false, false],
    [false, false],
    [true, true],
  ]);
  const c = running.coordinator;
  expect(c.regionHeartbeats).toBe(3);
  expect(c.view.leaderOf(2n)?.peerId).toBe(21n);
  const bad = await rpcError(
    client.call(S.RegionHeartbeatBatch, {
      heartbeats: [
        // Valid on its own (a newer epoch of region 2)...
        regionHeartbeatRequest(region(2n, 'm', '', [[1n, 21n]], { version: 3n, confVersion: 1n }), undefined),
        regionHeartbeatRequest(region(4n, 'b', 'a', [[1n, 41n]]), undefined),
      ],
    }),
  );
  expect(bad.status).toBe(Status.INVALID_ARGUMENT);
  expect(bad.details).toMatch(/^heartbeats\[1\]: region 4/);
  // ...but not applied.
  expect(c.state.catalog.regions.get(2n)?.epoch.version).toBe(1n);
  expect((await client.call(S.RegionHeartbeatBatch, {})).responses).toEqual([]);
  // The metric counts entries, not calls.
  const metrics = await (await fetch(`http://${running.httpAddr}/metrics`)).text();
  expect(metrics).toMatch(/nokv_coordinator_region_heartbeats_received 3/);
  expect(metrics).toMatch(/nokv_coordinator_rpc_total\{method="RegionHeartbeatBatch",code="Ok"\} 2/);
});
