import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status as grpcStatus } from '@grpc/grpc-js';
import type { RegionMeta } from '@nokv/proto';
import { RpcError } from '@nokv/raftstore/grpc';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { Coordinator, type CoordinatorOptions, OPERATIONS_FILE } from './coordinator.js';
import { isOperatorError, type OperatorErrorCode } from './errors.js';
import type { OperationSpec } from './operators.js';
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

async function open(extra: Partial<CoordinatorOptions> = {}): Promise<void> {
  admin = new FakeStoreAdmin((id) => c.state.catalog.regions.get(id));
  c = await Coordinator.open({
    workdir: dir,
    now: () => now,
    checkpointIntervalMs: 0,
    downDetectionIntervalMs: 0,
    storeAdmin: admin,
    scheduler: { intervalMs: 0, disabled: true },
    operators: { tickMs: 0, pollMs: 100, retryBaseMs: 500, retryMaxMs: 4000, stepTimeoutMs: 10_000 },
    ...extra,
  });
  // A transfer takes effect at once: the new leader reports itself at a higher term.
  admin.onTransferLeader = (regionId, to) => reportLeader(regionId, to);
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nokv-coord-ops-'));
  now = 1_000_000;
  await open();
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
async function reportLeader(regionId: bigint, peerId: bigint): Promise<void> {
  const r = c.state.catalog.regions.get(regionId)!;
  const term = (c.view.regionLiveOf(regionId)?.term ?? 1n) + 1n;
  await regionHb(
    r,
    r.peers.findIndex((p) => p.peerId === peerId),
    term,
  );
}
const three = (id: bigint): [bigint, bigint][] => [
  [1n, id * 10n + 1n],
  [2n, id * 10n + 2n],
  [3n, id * 10n + 3n],
];

/** Stores 1..n up, regions 1 [,'m') and 2 ['m', +inf) on stores 1-3, led by store 1. */
async function cluster(stores = 3): Promise<void> {
  for (let id = 1n; id <= BigInt(stores); id++) await storeHb(id);
  await regionHb(region(1n, '', 'm', three(1n)));
  await regionHb(region(2n, 'm', '', three(2n)));
}

/** Ticks the queue (stores `alive` heartbeating, 1 s per round) until nothing is unfinished. */
async function drive(alive: bigint[] = [1n, 2n, 3n], rounds = 60): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    for (const s of alive) await storeHb(s);
    await c.operators.tick();
    if (c.operators.active().every((o) => o.state === 'paused')) return;
    now += 1000;
  }
  throw new Error(
    `still unfinished: ${JSON.stringify(c.operators.active().map((o) => [o.id, o.state, o.lastError]))}`,
  );
}

function refusal(spec: OperationSpec): OperatorErrorCode | undefined {
  try {
    c.operators.add(spec);
    return undefined;
  } catch (err) {
    if (isOperatorError(err)) return err.code;
    throw err;
  }
}

test('operator operations are validated: unknown region/store/peer, nonsense, store not up', async () => {
  await cluster(4);
  expect(refusal({ kind: 'add-peer', regionId: 9n, storeId: 4n, learner: false })).toBe('RegionNotFound');
  expect(refusal({ kind: 'add-peer', regionId: 1n, storeId: 9n, learner: false })).toBe('StoreNotFound');
  expect(refusal({ kind: 'add-peer', regionId: 1n, storeId: 2n, learner: false })).toBe('InvalidOperation');
  expect(refusal({ kind: 'remove-peer', regionId: 1n, peerId: 99n })).toBe('PeerNotFound');
  expect(refusal({ kind: 'transfer-leader', regionId: 1n, toPeerId: 21n })).toBe('PeerNotFound');
  expect(refusal({ kind: 'split-region', regionId: 1n, splitKey: Buffer.from('z') })).toBe(
    'InvalidOperation',
  );
  expect(refusal({ kind: 'split-region', regionId: 1n, splitKey: Buffer.alloc(0) })).toBe('InvalidOperation');
  expect(refusal({ kind: 'merge-regions', regionId: 1n, sourceRegionId: 1n })).toBe('InvalidOperation');
  expect(refusal({ kind: 'merge-regions', regionId: 1n, sourceRegionId: 7n })).toBe('RegionNotFound');
  // A region merges into its left neighbour only.
  expect(refusal({ kind: 'merge-regions', regionId: 2n, sourceRegionId: 1n })).toBe('InvalidOperation');
  expect(refusal({ kind: 'replace-replica', regionId: 1n, fromStoreId: 4n })).toBe('PeerNotFound');
  expect(refusal({ kind: 'replace-replica', regionId: 1n, fromStoreId: 3n, toStoreId: 2n })).toBe(
    'InvalidOperation',
  );
  // Store 4 goes quiet: no new replica there.
  now += 11_000;
  for (const s of [1n, 2n, 3n]) await storeHb(s);
  expect(refusal({ kind: 'add-peer', regionId: 1n, storeId: 4n, learner: false })).toBe('StoreNotUp');
  expect(c.operators.list()).toEqual([]);
});

test('add-peer: a fresh peer id, AddPeer on the leader store, then the new replica is waited for', async () => {
  await cluster(4);
  const op = c.operators.add({ kind: 'add-peer', regionId: 2n, storeId: 4n, learner: false });
  expect(op.state).toBe('pending');
  admin.member = false; // the new peer is still catching up
  await c.operators.tick();
  expect(op.state).toBe('running');
  expect(op.stepsDone).toBe(1);
  const [call] = admin.callsOf('addPeer');
  expect(call).toMatchObject({
    storeId: 1n,
    req: { regionId: 2n, storeId: 4n, targetAddr: '127.0.0.1:20004' },
  });
  const peerId = call!.req.peerId as bigint;
  expect(peerId).toBeGreaterThan(c.state.catalog.maxKnownId() - 1n);
  // The answer went into the catalog at once.
  expect(c.state.catalog.regions.get(2n)?.peers.map((p) => p.storeId)).toEqual([1n, 2n, 3n, 4n]);
  now += 200;
  await c.operators.tick();
  expect(op.state).toBe('running');
  admin.member = true;
  now += 200;
  await c.operators.tick();
  expect(op.state).toBe('finished');
  expect(op.vars.peerId).toBe(peerId);
  expect(admin.callsOf('addPeer')).toHaveLength(1);
  const events = c.events.latest(10).filter((e) => e.kind.startsWith('operation-'));
  expect(events.map((e) => [e.kind, e.details.state])).toEqual([
    ['operation-added', 'pending'],
    ['operation-ended', 'finished'],
  ]);
});

test('stores without RegionRuntimeStatus: the membership in the metadata is enough', async () => {
  await cluster(4);
  admin.runtimeUnimplemented = true;
  const op = c.operators.add({ kind: 'add-peer', regionId: 1n, storeId: 4n, learner: true });
  await drive([1n, 2n, 3n, 4n]);
  expect(op.state).toBe('finished');
  expect(c.state.catalog.regions.get(1n)?.peers.at(-1)).toMatchObject({ storeId: 4n, learner: true });
});

test('one started operation per region, maxRunning overall, FIFO', async () => {
  await c.close();
  await rm(dir, { recursive: true, force: true });
  await open({
    scheduler: { intervalMs: 0, disabled: true },
    operators: { tickMs: 0, maxRunning: 1, pollMs: 100 },
  });
  await cluster(4);
  const a = c.operators.add({ kind: 'transfer-leader', regionId: 1n, toPeerId: 12n });
  const b = c.operators.add({ kind: 'transfer-leader', regionId: 1n, toPeerId: 13n });
  const d = c.operators.add({ kind: 'transfer-leader', regionId: 2n, toPeerId: 22n });
  admin.onTransferLeader = undefined; // transfers hang: the operations keep running
  await c.operators.tick();
  expect([a.state, b.state, d.state]).toEqual(['running', 'pending', 'pending']);
  await c.close();
  await rm(dir, { recursive: true, force: true });
  await open({ scheduler: { intervalMs: 0, disabled: true }, operators: { tickMs: 0, maxRunning: 8 } });
  await cluster(4);
  const e = c.operators.add({ kind: 'transfer-leader', regionId: 1n, toPeerId: 12n });
  const f = c.operators.add({ kind: 'transfer-leader', regionId: 1n, toPeerId: 13n });
  const g = c.operators.add({ kind: 'transfer-leader', regionId: 2n, toPeerId: 22n });
  admin.onTransferLeader = undefined;
  await c.operators.tick();
  expect([e.state, f.state, g.state]).toEqual(['running', 'pending', 'running']);
  // The first finishes (the leader changes): the second on region 1 starts.
  await reportLeader(1n, 12n);
  now += 600;
  await c.operators.tick();
  expect([e.state, f.state]).toEqual(['finished', 'pending']);
  await c.operators.tick();
  expect(f.state).toBe('running');
});

test('failures are retried with exponential backoff; permanent ones and too many fail the operation', async () => {
  await c.close();
  await rm(dir, { recursive: true, force: true });
  await open({
    scheduler: { intervalMs: 0, disabled: true },
    operators: { tickMs: 0, retryBaseMs: 500, retryMaxMs: 4000, maxAttempts: 3 },
  });
  await cluster(4);
  admin.failNext('addPeer', new Error('connection refused'));
  admin.failNext('addPeer', { kind: 'NotLeader', message: 'not the leader' });
  const op = c.operators.add({ kind: 'add-peer', regionId: 1n, storeId: 4n, learner: false });
  await c.operators.tick();
  expect(op).toMatchObject({ state: 'running', attempts: 1, nextAttemptAtMs: now + 500 });
  expect(op.lastError).toMatch(/add-peer: connection refused/);
  await c.operators.tick(); // not due yet
  expect(admin.callsOf('addPeer')).toHaveLength(1);
  now += 500;
  await c.operators.tick();
  expect(op).toMatchObject({ attempts: 2, nextAttemptAtMs: now + 1000 });
  expect(op.lastError).toMatch(/NotLeader: not the leader/);
  // The same peer id on every attempt.
  const ids = new Set(admin.callsOf('addPeer').map((x) => x.req.peerId));
  expect(ids.size).toBe(1);
  now += 1000;
  await c.operators.tick();
  expect(op).toMatchObject({ state: 'finished', retries: 2 });
  expect([...ids][0]).toBe(op.vars.peerId);

  // The store does not implement the RPC: failed at once.
  admin.failNext(
    'removePeer',
    new RpcError(grpcStatus.UNIMPLEMENTED, 'Unimplemented', 'unknown method', 'RemovePeer'),
  );
  const rm1 = c.operators.add({ kind: 'remove-peer', regionId: 2n, peerId: 23n });
  await c.operators.tick();
  expect(rm1.state).toBe('failed');
  expect(rm1.error).toMatch(/remove-peer: .*Unimplemented/);
  // Failing every time: failed after maxAttempts.
  admin.failNext('removePeer', new Error('boom'), 5);
  const rm2 = c.operators.add({ kind: 'remove-peer', regionId: 2n, peerId: 23n });
  await drive([1n, 2n, 3n, 4n]);
  expect(rm2.state).toBe('failed');
  expect(rm2.error).toBe('remove-peer: boom (after 3 attempts)');
  expect(c.operators.counts()).toMatchObject({ finished: 1, failed: 2 });
});

test('pause, resume and cancel', async () => {
  await cluster(4);
  admin.onTransferLeader = undefined;
  const op = c.operators.add({ kind: 'transfer-leader', regionId: 1n, toPeerId: 12n }, { paused: true });
  await c.operators.tick();
  expect(op.state).toBe('paused');
  expect(admin.calls).toEqual([]);
  // A paused, never started operation does not hold its region.
  const other = c.operators.add({ kind: 'transfer-leader', regionId: 1n, toPeerId: 13n });
  await c.operators.tick();
  expect(other.state).toBe('running');
  expect(c.operators.cancel(other.id).state).toBe('cancelled');
  expect(c.operators.cancel(other.id).state).toBe('cancelled'); // idempotent
  expect(c.operators.resume(op.id).state).toBe('pending');
  await c.operators.tick();
  expect(op.state).toBe('running');
  expect(admin.callsOf('transferLeader')).toHaveLength(2);
  // Paused while running: nothing more is sent, and the region stays held.
  expect(c.operators.pause(op.id).state).toBe('paused');
  const third = c.operators.add({ kind: 'split-region', regionId: 1n, splitKey: Buffer.from('f') });
  now += 10_000;
  await c.operators.tick();
  expect(admin.callsOf('transferLeader')).toHaveLength(2);
  expect(third.state).toBe('pending');
  expect(c.operators.resume(op.id).state).toBe('running');
  await reportLeader(1n, 12n);
  await c.operators.tick();
  expect(op.state).toBe('finished');
  const code = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      return isOperatorError(err) ? err.code : 'other';
    }
    return undefined;
  };
  expect(code(() => c.operators.cancel(op.id))).toBe('InvalidState');
  expect(code(() => c.operators.pause(op.id))).toBe('InvalidState');
  expect(code(() => c.operators.resume(op.id))).toBe('InvalidState');
  expect(code(() => c.operators.cancel(999))).toBe('OperationNotFound');
  await c.operators.tick();
  expect(third.state).toBe('finished');
});

test('remove-peer of the leader moves the leadership away first', async () => {
  await cluster();
  const op = c.operators.add({ kind: 'remove-peer', regionId: 1n, peerId: 11n });
  await drive();
  expect(op.state).toBe('finished');
  expect(admin.callsOf('transferLeader')).toEqual([
    { method: 'transferLeader', storeId: 1n, req: { regionId: 1n, toPeerId: 12n } },
  ]);
  // RemovePeer goes to the new leader's store.
  expect(admin.callsOf('removePeer')).toEqual([
    { method: 'removePeer', storeId: 2n, req: { regionId: 1n, peerId: 11n } },
  ]);
  expect(c.state.catalog.regions.get(1n)?.peers.map((p) => p.peerId)).toEqual([12n, 13n]);
  expect(c.state.catalog.regions.get(1n)?.epoch.confVersion).toBe(2n);
});

test('split-region allocates the new region and peer ids; merge-regions prepares on the source and commits on the target', async () => {
  await cluster();
  const split = c.operators.add({ kind: 'split-region', regionId: 2n, splitKey: Buffer.from('t') });
  await drive();
  expect(split.state).toBe('finished');
  const newId = split.vars.newRegionId!;
  expect(split.vars.newPeerIds).toEqual([newId + 1n, newId + 2n, newId + 3n]);
  const right = c.state.catalog.regions.get(newId)!;
  expect(Buffer.from(right.startKey).toString()).toBe('t');
  expect(right.peers.map((p) => p.storeId)).toEqual([1n, 2n, 3n]);
  expect(Buffer.from(c.state.catalog.regions.get(2n)!.endKey).toString()).toBe('t');
  // The new region needs a leader before it can be merged.
  await regionHb(right, 1, 1n);

  // The source's replicas have not applied PrepareMerge yet: CommitMerge waits.
  admin.appliedIndex = 41n;
  const merge = c.operators.add({ kind: 'merge-regions', regionId: 2n, sourceRegionId: newId });
  await c.operators.tick();
  expect(merge.steps[merge.stepsDone]).toBe('wait-merge-applied');
  expect(admin.callsOf('commitMerge')).toEqual([]);
  admin.appliedIndex = 42n;
  await drive();
  expect(merge.state).toBe('finished');
  expect(admin.callsOf('prepareMerge')).toEqual([
    { method: 'prepareMerge', storeId: 2n, req: { sourceRegionId: newId, targetRegionId: 2n } },
  ]);
  expect(admin.callsOf('commitMerge')[0]).toMatchObject({
    storeId: 1n,
    req: { targetRegionId: 2n, sourcePrepareIndex: 42n },
  });
  expect(c.state.catalog.regions.has(newId)).toBe(false);
  const merged = c.state.catalog.regions.get(2n)!;
  expect([Buffer.from(merged.startKey).toString(), merged.endKey.length]).toEqual(['m', 0]);
  expect(c.events.latest(30).some((e) => e.kind === 'region-removed' && e.regionId === String(newId))).toBe(
    true,
  );
});

test('replace-replica: a peer on the least loaded store without one, then the old one goes', async () => {
  await cluster(5);
  // Region 3 replaces region 2 (a newer version) with a replica on store 4: store 5 is the least
  // loaded store without a replica of region 1.
  await regionHb(
    region(
      3n,
      'm',
      '',
      [
        [4n, 34n],
        [2n, 32n],
      ],
      { version: 2n, confVersion: 1n },
    ),
    0,
  );
  const op = c.operators.add({ kind: 'replace-replica', regionId: 1n, fromStoreId: 3n });
  await drive([1n, 2n, 3n, 4n, 5n]);
  expect(op.state).toBe('finished');
  expect(op.vars.toStoreId).toBe(5n);
  expect(c.state.catalog.regions.get(1n)?.peers.map((p) => p.storeId)).toEqual([1n, 2n, 5n]);
  expect(admin.calls.map((x) => x.method)).toEqual(['addPeer', 'regionRuntimeStatus', 'removePeer']);
  expect(c.operators.list({ storeId: 5n }).map((o) => o.id)).toEqual([op.id]);
  expect(c.operators.list({ storeId: 4n })).toEqual([]);
});

test('operations survive a restart; the kept history is bounded', async () => {
  await c.close();
  await rm(dir, { recursive: true, force: true });
  await open({ scheduler: { intervalMs: 0, disabled: true }, operators: { tickMs: 0, historyLimit: 2 } });
  await cluster(4);
  for (const to of [12n, 13n, 11n]) {
    c.operators.add({ kind: 'transfer-leader', regionId: 1n, toPeerId: to });
    await drive([1n, 2n, 3n, 4n]);
  }
  const waiting = c.operators.add(
    { kind: 'add-peer', regionId: 2n, storeId: 4n, learner: false },
    { paused: true },
  );
  expect(c.operators.list().map((o) => [o.id, o.state])).toEqual([
    [4, 'paused'],
    [3, 'finished'],
    [2, 'finished'],
  ]);
  expect(c.operators.get(1)).toBeUndefined();
  await c.close();
  const file = JSON.parse(await readFile(join(dir, OPERATIONS_FILE), 'utf8')) as { nextId: number };
  expect(file.nextId).toBe(5);
  await open({ scheduler: { intervalMs: 0, disabled: true }, operators: { tickMs: 0, historyLimit: 2 } });
  expect(c.operators.list().map((o) => [o.id, o.state, o.spec.kind])).toEqual([
    [4, 'paused', 'add-peer'],
    [3, 'finished', 'transfer-leader'],
    [2, 'finished', 'transfer-leader'],
  ]);
  expect(c.operators.get(waiting.id)?.spec).toEqual(waiting.spec);
  // Leaders come back with heartbeats; then the resumed operation runs.
  await cluster(4);
  c.operators.resume(waiting.id);
  await drive([1n, 2n, 3n, 4n]);
  expect(c.operators.get(waiting.id)?.state).toBe('finished');
  expect(c.operators.add({ kind: 'transfer-leader', regionId: 1n, toPeerId: 12n }).id).toBe(5);
});
