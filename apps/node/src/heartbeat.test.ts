import * as grpc from '@grpc/grpc-js';
import { CoordinatorService, type nokv, type RegionMeta, RegionState, uint64FromWire } from '@nokv/proto';
import { GrpcStatusError, serverDefinition, unaryHandler } from '@nokv/raftstore/grpc';
import { bindGrpc, shutdownGrpc } from '@nokv/server-kit';
import { pino } from 'pino';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { CoordinatorHeartbeat, type HeartbeatOptions, type HeartbeatStore } from './heartbeat.js';

// The heartbeat loop against a fake coordinator: batched region heartbeats, unchanged regions left
// out except in full refreshes, a full round after a failure.

interface FakeRegion {
  id: bigint;
  leader: boolean;
  term: bigint;
  applied: bigint;
}

function fakeStore(regions: FakeRegion[]): HeartbeatStore {
  const meta = (r: FakeRegion): RegionMeta => ({
    id: r.id,
    startKey: Buffer.from(`k${r.id}`),
    endKey: Buffer.from(`k${r.id + 1n}`),
    epoch: { version: 1n, confVersion: 1n },
    peers: [{ storeId: 1n, peerId: r.id * 10n + 1n, learner: false }],
    state: RegionState.Running,
  });
  return {
    storeId: 1n,
    regionStatuses: () =>
      regions.map((r) => ({
        regionId: String(r.id),
        role: r.leader ? 'leader' : 'follower',
        term: String(r.term),
        appliedIndex: String(r.applied),
        epoch: { version: '1', confVersion: '1' },
        peers: [{ storeId: '1', peerId: String(r.id * 10n + 1n), learner: false }],
      })),
    peer: (id) => {
      const r = regions.find((x) => x.id === id);
      if (!r) return undefined;
      return {
        isLeader: r.leader,
        status: () => ({ peerId: r.id * 10n + 1n, term: r.term, appliedIndex: r.applied, region: meta(r) }),
      };
    },
    transferLeader: () => {},
  };
}

let server: grpc.Server;
let port: number;
/** Region ids of each RegionHeartbeatBatch call received. */
let batches: bigint[][];
let storeHeartbeats: number;
let failBatches: number;
const loops: CoordinatorHeartbeat[] = [];

beforeEach(async () => {
  batches = [];
  storeHeartbeats = 0;
  failBatches = 0;
  server = new grpc.Server();
  const S = CoordinatorService;
  server.addService(serverDefinition(S), {
    StoreHeartbeat: unaryHandler(
      S.StoreHeartbeat,
      async () => {
        storeHeartbeats++;
        return {};
      },
      { maxRequestBytes: 1 << 20 },
    ),
    RegionHeartbeatBatch: unaryHandler(
      S.RegionHeartbeatBatch,
      async (req: nokv.coordinator.v1.RegionHeartbeatBatchRequest) => {
        if (failBatches > 0) {
          failBatches--;
          throw new GrpcStatusError(grpc.status.UNAVAILABLE, 'not now');
        }
        batches.push(req.heartbeats.map((h) => uint64FromWire(h.region?.id)));
        return { responses: req.heartbeats.map(() => ({})) };
      },
      { maxRequestBytes: 1 << 20 },
    ),
  });
  port = await bindGrpc(server, '127.0.0.1:0', (m, cause) => Object.assign(new Error(m), { cause }));
});
afterEach(async () => {
  for (const l of loops.splice(0)) await l.stop();
  await shutdownGrpc(server, 1000);
});

function loop(store: HeartbeatStore, extra: Partial<HeartbeatOptions> = {}): CoordinatorHeartbeat {
  const l = new CoordinatorHeartbeat({
    store,
    coordinatorAddr: `127.0.0.1:${port}`,
    addr: '127.0.0.1:1',
    logger: pino({ level: 'silent' }),
    ...extra,
  });
  loops.push(l);
  return l;
}

test('one batch per round; unchanged regions are left out except in full refreshes', async () => {
  const regions: FakeRegion[] = [1n, 2n, 3n, 4n].map((id) => ({
    id,
    leader: id !== 4n,
    term: 1n,
    applied: 5n,
  }));
  const hb = loop(fakeStore(regions), { fullRefreshEvery: 5 });
  await hb.round(); // round 1: everything (first round)
  expect(batches).toEqual([[1n, 2n, 3n]]);
  await hb.round(); // round 2: nothing changed, no call at all
  expect(batches).toHaveLength(1);
  expect(hb.status.lastRound).toEqual({ leaders: 3, sent: 0, full: false });
  regions[1]!.applied = 6n; // a write in region 2
  regions[3]!.leader = true; // region 4 gets led here
  await hb.round(); // round 3
  expect(batches.at(-1)).toEqual([2n, 4n]);
  regions[0]!.leader = false; // region 1 led elsewhere...
  await hb.round(); // round 4
  expect(batches).toHaveLength(2);
  await hb.round(); // round 5: a full refresh
  expect(batches.at(-1)).toEqual([2n, 3n, 4n]);
  regions[0]!.leader = true; // ...and back: sent again although its content is the same
  await hb.round(); // round 6
  expect(batches.at(-1)).toEqual([1n]);
  expect(storeHeartbeats).toBe(6);
  expect(hb.status).toMatchObject({
    rounds: 6,
    failedRounds: 0,
    regionBatchesSent: 4,
    regionHeartbeatsSent: 9,
  });
  expect(hb.status.regionHeartbeatsSkipped).toBe(3 + 2 + 3 + 0 + 3);
});

test('batches of batchSize; after a failed round the next one is full', async () => {
  const regions: FakeRegion[] = [1n, 2n, 3n, 4n, 5n].map((id) => ({
    id,
    leader: true,
    term: 2n,
    applied: 1n,
  }));
  const hb = loop(fakeStore(regions), { batchSize: 2 });
  await hb.round();
  expect(batches).toEqual([[1n, 2n], [3n, 4n], [5n]]);
  batches = [];
  regions[2]!.term = 3n;
  failBatches = 1;
  await hb.round();
  expect(hb.status).toMatchObject({ mode: 'unavailable', failedRounds: 1 });
  expect(batches).toEqual([]);
  await hb.round();
  expect(hb.status.mode).toBe('healthy');
  expect(batches).toEqual([[1n, 2n], [3n, 4n], [5n]]);
  await hb.round();
  expect(batches).toHaveLength(3);
});
