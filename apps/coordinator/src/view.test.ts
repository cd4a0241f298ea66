import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RegionMeta, regionFromWire, uint64FromWire } from '@nokv/proto';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { Coordinator } from './coordinator.js';
import { decodeReq, pb, region, regionHeartbeatRequest, storeHeartbeatRequest } from './testing.js';

let dir: string;
let now: number;
let c: Coordinator;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nokv-coord-view-'));
  now = 1_000_000;
  c = await Coordinator.open({
    workdir: dir,
    heartbeatTimeoutMs: 10_000,
    now: () => now,
    checkpointIntervalMs: 0,
    // Ticks by hand only.
    scheduler: { cooldownMs: 5000, intervalMs: 0, maxLeaderOps: 10 },
    operators: { tickMs: 0 },
  });
});
afterEach(async () => {
  await c.close();
  await rm(dir, { recursive: true, force: true });
});

const storeHb = (id: bigint) =>
  c.storeHeartbeat(decodeReq(pb.StoreHeartbeatRequest, storeHeartbeatRequest(id)));
const regionHb = (r: RegionMeta, leaderIdx = 0, term = 1n) =>
  c.regionHeartbeat(
    decodeReq(pb.RegionHeartbeatRequest, regionHeartbeatRequest(r, r.peers[leaderIdx], term)),
  );
const byKey = async (key: string) => {
  const res = await c.getRegionByKey(decodeReq(pb.GetRegionByKeyRequest, { key: Buffer.from(key) }));
  return res.notFound ? undefined : regionFromWire(res.region).id;
};
const three = (id: bigint): [bigint, bigint][] => [
  [1n, id * 10n + 1n],
  [2n, id * 10n + 2n],
  [3n, id * 10n + 3n],
];

test('region heartbeat staleness: lower version or same version and lower conf_version is ignored', async () => {
  const v = (version: bigint, confVersion: bigint) => region(1n, '', '', three(1n), { version, confVersion });
  expect(await regionHb(v(2n, 2n))).toEqual({});
  expect((await regionHb(v(1n, 5n))).stale).toBe(true);
  expect((await regionHb(v(2n, 1n))).stale).toBe(true);
  expect(await regionHb(v(2n, 3n))).toEqual({});
  expect(await regionHb(v(3n, 1n))).toEqual({});
  expect(c.state.catalog.regions.get(1n)?.epoch).toEqual({ version: 3n, confVersion: 1n });
  // Restart: the newest epoch is durable.
  await c.close({ checkpoint: false });
  c = await Coordinator.open({ workdir: dir, now: () => now, checkpointIntervalMs: 0 });
  expect(c.state.catalog.regions.get(1n)?.epoch).toEqual({ version: 3n, confVersion: 1n });
});

test('a split seen from the child first replaces the stale parent; older overlaps are refused', async () => {
  await regionHb(region(1n, '', '', three(1n), { version: 1n, confVersion: 1n }));
  // Child [m, +inf) at version 2 overlaps the parent at version 1: the parent entry is dropped.
  await regionHb(region(2n, 'm', '', three(2n), { version: 2n, confVersion: 1n }));
  expect([...c.state.catalog.regions.keys()]).toEqual([2n]);
  // The parent at its old epoch overlaps a newer region: stale.
  const stale = await regionHb(region(1n, '', '', three(1n), { version: 1n, confVersion: 1n }));
  expect(stale.stale).toBe(true);
  expect(stale.reason).toMatch(/overlaps region 2/);
  // The parent's post-split heartbeat fits.
  expect(await regionHb(region(1n, '', 'm', three(1n), { version: 2n, confVersion: 1n }))).toEqual({});
  expect(await byKey('a')).toBe(1n);
  expect(await byKey('m')).toBe(2n);
  expect(await byKey('zzz')).toBe(2n);
});

test('GetRegionByKey and ScanRegions', async () => {
  await regionHb(region(1n, '', 'g', three(1n)));
  await regionHb(region(2n, 'g', 'p', three(2n)), 1);
  await regionHb(region(4n, 'x', '', three(4n)));
  expect(await byKey('')).toBe(1n);
  expect(await byKey('f')).toBe(1n);
  expect(await byKey('g')).toBe(2n);
  expect(await byKey('q')).toBeUndefined(); // [p, x) is a hole
  expect(await byKey('y')).toBe(4n);
  const res = await c.getRegionByKey(decodeReq(pb.GetRegionByKeyRequest, { key: Buffer.from('h') }));
  expect(uint64FromWire(res.leader?.peerId)).toBe(22n);
  const scan = async (start: string, end: string, limit = 0) =>
    (
      await c.scanRegions(
        decodeReq(pb.ScanRegionsRequest, { startKey: Buffer.from(start), endKey: Buffer.from(end), limit }),
      )
    ).regions?.map((r) => uint64FromWire(r.region?.id as never));
  expect(await scan('', '')).toEqual([1n, 2n, 4n]);
  expect(await scan('h', 'y')).toEqual([2n, 4n]);
  expect(await scan('a', 'g')).toEqual([1n]);
  expect(await scan('', '', 2)).toEqual([1n, 2n]);
  expect(await scan('p', 'x')).toEqual([]);
});

test('store down detection and problem regions', async () => {
  for (const id of [1n, 2n, 3n]) await storeHb(id);
  await regionHb(region(1n, '', 'm', three(1n)));
  await regionHb(region(2n, 'm', 't', [three(2n)[0]!, three(2n)[1]!]));
  await regionHb(region(3n, 't', '', three(3n)));
  expect(c.view.storeState(1n)).toBe('up');
  now += 6000;
  await storeHb(1n);
  await storeHb(2n);
  now += 6000; // store 3: 12 s without a heartbeat
  expect(c.view.storeState(3n)).toBe('down');
  expect(c.view.storeState(1n)).toBe('up');
  const p = c.view.problems();
  expect(p.downReplicas.map((d) => d.regionId)).toEqual(['1', '3']);
  expect(p.missingReplicas).toEqual([{ regionId: '2', voters: 2, expected: 3 }]);
  // Region heartbeats are 12 s old, their leaders (store 1) up: still trusted, as stores send
  // unchanged regions only in a periodic full refresh.
  expect(p.noLeader).toEqual([]);
  const json = c.viewJson() as { stores: { id: string; state: string }[] };
  expect(json.stores.map((s) => [s.id, s.state])).toEqual([
    ['1', 'up'],
    ['2', 'up'],
    ['3', 'down'],
  ]);
  // Past the region heartbeat timeout (3 × 10 s): no live leader known.
  now += 19_000;
  await storeHb(1n);
  expect(c.view.problems().noLeader).toEqual(['1', '2', '3']);
});

test('leader balancing: transfer-leader operations from the store leading most, one per region', async () => {
  for (const id of [1n, 2n, 3n]) await storeHb(id);
  const regions = [1n, 2n, 3n, 4n, 5n, 6n].map((id, i) =>
    region(id, String.fromCharCode(97 + i), i === 5 ? '' : String.fromCharCode(98 + i), three(id)),
  );
  regions[0]!.startKey = Buffer.alloc(0);
  for (const r of regions) await regionHb(r, 0); // all led by store 1
  // Store heartbeats carry no hints any more.
  expect((await storeHb(1n)).operations).toEqual([]);
  const ops = c.scheduler.tick().map((op) => op.spec);
  // 6 leaders on 3 stores: 4 move (2 each), counting operations in flight, and no region twice.
  expect(ops).toHaveLength(4);
  expect(new Set(ops.map((o) => o.regionId)).size).toBe(4);
  const targets = ops.map((o) => (o.kind === 'transfer-leader' ? o.toPeerId % 10n : 0n)).sort();
  expect(targets).toEqual([2n, 2n, 3n, 3n]);
  // Nothing more while they are unfinished.
  expect(c.scheduler.tick()).toEqual([]);
  expect(c.scheduler.leaderCounts()).toEqual(
    new Map([
      [1n, 2],
      [2n, 2],
      [3n, 2],
    ]),
  );
  expect(c.operators.list({ source: 'scheduler' })).toHaveLength(4);
});

test('an old leader at a lower term does not take the leadership back', async () => {
  const r = region(1n, '', '', three(1n));
  await regionHb(r, 1, 5n);
  await regionHb(r, 0, 4n);
  expect(c.view.leaderOf(1n)?.storeId).toBe(2n);
});
