import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RegionMeta } from '@nokv/proto';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { Coordinator } from './coordinator.js';
import type { SchedulerOptions } from './scheduler.js';
import {
  decodeReq,
  FakeStoreAdmin,
  pb,
  region,
  regionHeartbeatRequest,
  storeHeartbeatRequest,
} from './testing.js';

let dir: string;
let now: number;
let c: Coordinator;
let admin: FakeStoreAdmin;

async function open(scheduler: SchedulerOptions): Promise<void> {
  admin = new FakeStoreAdmin((id) => c.state.catalog.regions.get(id));
  c = await Coordinator.open({
    workdir: dir,
    now: () => now,
    heartbeatTimeoutMs: 10_000,
    checkpointIntervalMs: 0,
    downDetectionIntervalMs: 0,
    storeAdmin: admin,
    scheduler: { intervalMs: 0, ...scheduler },
    operators: { tickMs: 0, pollMs: 100 },
  });
  admin.onTransferLeader = async (regionId, to) => {
    const r = c.state.catalog.regions.get(regionId)!;
    await regionHb(
      r,
      r.peers.findIndex((p) => p.peerId === to),
      (c.view.regionLiveOf(regionId)?.term ?? 1n) + 1n,
    );
  };
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nokv-coord-sched-'));
  now = 1_000_000;
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
const on = (id: bigint, stores: bigint[]): [bigint, bigint][] => stores.map((s) => [s, id * 10n + s]);

/** Rounds of 1 s: the `alive` stores heartbeat, the scheduler and the queue tick. */
async function rounds(n: number, alive: bigint[]): Promise<void> {
  for (let i = 0; i < n; i++) {
    for (const s of alive) await storeHb(s);
    c.scheduler.tick();
    await c.operators.tick();
    now += 1000;
  }
}

const storesOf = (id: bigint) => c.state.catalog.regions.get(id)?.peers.map((p) => p.storeId);

test('replica-replace: a store silent past the limit loses its replicas to a healthy store', async () => {
  await open({ replicaReplaceAfterMs: 60_000, maxReplaceOps: 1 });
  for (const s of [1n, 2n, 3n, 4n]) await storeHb(s);
  await regionHb(region(1n, '', 'm', on(1n, [1n, 2n, 3n])), 0);
  // Region 2 is led by store 3: it needs a new leader before anything can change it.
  await regionHb(region(2n, 'm', '', on(2n, [1n, 2n, 3n])), 2);

  await rounds(30, [1n, 2n, 4n]);
  expect(c.view.storeState(3n)).toBe('down');
  expect(c.operators.list()).toEqual([]);
  const st = c.scheduler.status().rules['replica-replace'];
  expect(st.stores).toEqual([{ storeId: '3', state: 'down', silentForMs: 30_000, replaceInMs: 30_000 }]);

  await rounds(31, [1n, 2n, 4n]);
  // Region 1 moves (one at a time); region 2 waits for a leader.
  const ops = c.operators.list({ source: 'scheduler' });
  expect(ops.map((o) => [o.spec, o.state])).toEqual([
    [{ kind: 'replace-replica', regionId: 1n, fromStoreId: 3n }, 'finished'],
  ]);
  expect(ops[0]!.reason).toMatch(/^replica-replace: store 3 silent for 6\d s$/);
  expect(storesOf(1n)).toEqual([1n, 2n, 4n]);
  expect(c.scheduler.status().rules['replica-replace'].waiting).toEqual([
    { regionId: '2', reason: 'no live leader' },
  ]);

  // Store 2's peer wins the election: region 2 moves too.
  await regionHb(c.state.catalog.regions.get(2n)!, 1, 2n);
  await rounds(5, [1n, 2n, 4n]);
  expect(storesOf(2n)).toEqual([1n, 2n, 4n]);
  expect(c.scheduler.created['replica-replace']).toBe(2);
  expect(c.scheduler.status().rules['replica-replace'].waiting).toEqual([]);
  // Nothing left to balance among the up stores.
  expect(c.scheduler.status().rules['region-balance'].counts).toEqual({ '1': 2, '2': 2, '4': 2 });
  await rounds(3, [1n, 2n, 4n]);
  expect(c.operators.list()).toHaveLength(2);
});

test('replica-replace: an offline store drains at once; no store to move to → waiting', async () => {
  await open({ replicaReplaceAfterMs: 3_600_000 });
  for (const s of [1n, 2n, 3n]) await storeHb(s);
  await regionHb(region(1n, '', '', on(1n, [1n, 2n, 3n])), 0);
  await c.setStoreAdminState(3n, 'offline');
  c.scheduler.tick();
  expect(c.operators.list()).toEqual([]);
  expect(c.scheduler.status().rules['replica-replace'].waiting).toEqual([
    { regionId: '1', reason: 'no up store without a replica of the region' },
  ]);
  await storeHb(4n);
  await rounds(5, [1n, 2n, 3n, 4n]);
  expect(storesOf(1n)).toEqual([1n, 2n, 4n]);
  expect(c.operators.list()[0]?.reason).toBe('replica-replace: store 3 is offline');
});

test('region-balance: one replica at a time from the most loaded up store to the least loaded', async () => {
  await open({ regionBalanceThreshold: 2, cooldownMs: 60_000 });
  c.scheduler.pause('leader-balance');
  for (const s of [1n, 2n, 3n, 4n]) await storeHb(s);
  const bounds = ['', 'd', 'h', 'p', ''];
  for (let i = 1; i <= 4; i++) {
    await regionHb(region(BigInt(i), bounds[i - 1]!, bounds[i]!, on(BigInt(i), [1n, 2n, 3n])), 0);
  }
  expect(c.scheduler.regionCounts()).toEqual(
    new Map([
      [1n, 4],
      [2n, 4],
      [3n, 4],
      [4n, 0],
    ]),
  );
  const first = c.scheduler.tick();
  expect(first.map((o) => o.spec)).toEqual([
    { kind: 'replace-replica', regionId: 1n, fromStoreId: 1n, toStoreId: 4n },
  ]);
  expect(first[0]!.reason).toBe('region-balance: store 1 holds 4 replicas, store 4 0');
  // One move at a time; counted as done meanwhile.
  expect(c.scheduler.tick()).toEqual([]);
  expect(c.scheduler.status().rules['region-balance']).toMatchObject({
    counts: { '1': 3, '2': 4, '3': 4, '4': 1 },
    waiting: '1 moves running',
  });
  await rounds(10, [1n, 2n, 3n, 4n]);
  // 4,4,4,0 → 3,4,4,1 → 3,3,4,2: a difference of 2 is within the threshold.
  expect(
    c.operators
      .list({ source: 'scheduler' })
      .map((o) => (o.spec.kind === 'replace-replica' ? [o.spec.regionId, o.spec.fromStoreId, o.state] : [])),
  ).toEqual([
    [2n, 2n, 'finished'],
    [1n, 1n, 'finished'],
  ]);
  expect(c.scheduler.regionCounts()).toEqual(
    new Map([
      [1n, 3],
      [2n, 3],
      [3n, 4],
      [4n, 2],
    ]),
  );
  // The leader of region 1 was on store 1: it moved away before the peer was removed.
  expect(admin.callsOf('transferLeader')[0]).toMatchObject({
    storeId: 1n,
    req: { regionId: 1n, toPeerId: 12n },
  });
});

test('leader-balance skips regions with unhealthy peers, one transfer at a time; rules pause and resume; disabled does nothing', async () => {
  await open({ cooldownMs: 10_000, maxLeaderOps: 1 });
  for (const s of [1n, 2n, 3n]) await storeHb(s);
  const bounds = ['', 'd', 'h', 'p', ''];
  for (let i = 1; i <= 4; i++) {
    await regionHb(region(BigInt(i), bounds[i - 1]!, bounds[i]!, on(BigInt(i), [1n, 2n, 3n])), 0);
  }
  // Region 1 reports its peer on store 2 pending: its leadership moves to store 3 instead.
  await c.regionHeartbeat(
    decodeReq(pb.RegionHeartbeatRequest, {
      ...regionHeartbeatRequest(c.state.catalog.regions.get(1n)!, c.state.catalog.regions.get(1n)!.peers[0]),
      pendingPeers: [{ storeId: 2, peerId: 12 }],
    }),
  );
  c.scheduler.pause('leader-balance');
  expect(c.scheduler.tick()).toEqual([]);
  expect(c.scheduler.status().paused).toEqual(['leader-balance']);
  c.scheduler.resume();
  const [op] = c.scheduler.tick();
  // Region 1 has a pending peer (blocked); region 2 goes to store 2 (fewest leaders, lower id).
  expect(op?.spec).toEqual({ kind: 'transfer-leader', regionId: 2n, toPeerId: 22n });
  expect(c.scheduler.tick()).toEqual([]); // maxLeaderOps
  await c.operators.tick();
  expect(c.view.leaderOf(2n)?.storeId).toBe(2n);
  now += 200;
  await c.operators.tick(); // it sees the new leader: finished
  expect(c.operators.get(op!.id)?.state).toBe('finished');
  const [next] = c.scheduler.tick();
  expect(next?.spec).toEqual({ kind: 'transfer-leader', regionId: 3n, toPeerId: 33n });
  expect(c.scheduler.status().decisions.map((d) => [d.rule, d.regionId])).toEqual([
    ['leader-balance', '3'],
    ['leader-balance', '2'],
  ]);
  await c.close();
  await rm(dir, { recursive: true, force: true });
  await open({ disabled: true });
  for (const s of [1n, 2n, 3n]) await storeHb(s);
  for (let i = 1; i <= 4; i++) {
    await regionHb(region(BigInt(i), bounds[i - 1]!, bounds[i]!, on(BigInt(i), [1n, 2n, 3n])), 0);
  }
  expect(c.scheduler.tick()).toEqual([]);
  expect(c.scheduler.status().enabled).toBe(false);
});
