import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoordinatorService, type RegionMeta } from '@nokv/proto';
import {
  createTRPCClient,
  httpBatchLink,
  httpSubscriptionLink,
  splitLink,
  TRPCClientError,
} from '@trpc/client';
import { EventSource } from 'eventsource';
import { afterEach, beforeEach, expect, test } from 'vitest';
import type { ClusterEvent } from '../cluster-events.js';
import { createUnaryClient } from '../grpc.js';
import { type RunningCoordinator, type ServeOptions, serve } from '../serve.js';
import {
  decodeReq,
  FakeStoreAdmin,
  pb,
  region,
  regionHeartbeatRequest,
  storeHeartbeatRequest,
} from '../testing.js';
import type { AppRouter } from './router.js';
import { isLoopbackHost } from './server.js';

let dir: string;
const cleanups: (() => Promise<void> | void)[] = [];
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nokv-coord-trpc-'));
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await rm(dir, { recursive: true, force: true });
});

async function start(extra: Partial<ServeOptions> = {}): Promise<RunningCoordinator> {
  const running = await serve({
    addr: '127.0.0.1:0',
    trpcAddr: '127.0.0.1:0',
    workdir: dir,
    logLevel: 'silent',
    checkpointIntervalMs: 0,
    scheduler: { disabled: true },
    ...extra,
  });
  cleanups.push(() => running.stop());
  return running;
}

function client(port: number, token?: string) {
  const url = `http://127.0.0.1:${port}`;
  return createTRPCClient<AppRouter>({
    links: [
      splitLink({
        condition: (op) => op.type === 'subscription',
        true: httpSubscriptionLink({ url, EventSource }),
        false: httpBatchLink({
          url,
          headers: () => (token === undefined ? {} : { authorization: `Bearer ${token}` }),
        }),
      }),
    ],
  });
}

async function trpcError(p: Promise<unknown>): Promise<TRPCClientError<AppRouter>> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!err) throw new Error('the call succeeded');
  expect(err).toBeInstanceOf(TRPCClientError);
  return err as TRPCClientError<AppRouter>;
}

const three = (id: bigint): [bigint, bigint][] => [
  [1n, id * 10n + 1n],
  [2n, id * 10n + 2n],
  [3n, id * 10n + 3n],
];

function feeder(running: RunningCoordinator) {
  const c = running.coordinator;
  return {
    storeHb: (id: bigint) => c.storeHeartbeat(decodeReq(pb.StoreHeartbeatRequest, storeHeartbeatRequest(id))),
    regionHb: (r: RegionMeta, leaderIdx = 0, term = 1n) =>
      c.regionHeartbeat(
        decodeReq(pb.RegionHeartbeatRequest, regionHeartbeatRequest(r, r.peers[leaderIdx], term)),
      ),
  };
}

async function until<T>(read: () => T | Promise<T>, ok: (v: T) => boolean, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out; last value ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('cluster view, stores, regions and problems (heartbeats over gRPC)', async () => {
  const running = await start();
  const grpc = createUnaryClient(CoordinatorService, running.addr);
  cleanups.push(() => grpc.close());
  for (const id of [1n, 2n, 3n]) {
    await grpc.call(CoordinatorService.StoreHeartbeat, storeHeartbeatRequest(id));
  }
  const r1 = region(1n, '', 'm', three(1n));
  const r2 = region(2n, 'm', '', [
    [1n, 21n],
    [2n, 22n],
  ]);
  await grpc.call(CoordinatorService.RegionHeartbeat, regionHeartbeatRequest(r1, r1.peers[1], 3n));
  await grpc.call(CoordinatorService.RegionHeartbeat, regionHeartbeatRequest(r2, undefined));
  const t = client(running.trpcPort!);

  const view = await t.cluster.view.query();
  expect(view.stores.map((s) => s.id)).toEqual(['1', '2', '3']);
  expect(view.regions.map((r) => r.id)).toEqual(['1', '2']);
  expect(view.allocator.idFence).toMatch(/^\d+$/);
  expect(typeof view.durable.dir).toBe('string');

  const stores = await t.cluster.stores.query();
  expect(stores[1]).toMatchObject({ id: '2', state: 'up', adminState: 'normal', leaders: 1, regions: 2 });
  expect(stores[1]!.lastHeartbeatAgeMs).toBeGreaterThanOrEqual(0);

  const all = await t.cluster.regions.query();
  expect(all[0]).toMatchObject({
    id: '1',
    startKey: '',
    endKey: 'm',
    epoch: { version: '1', confVersion: '1' },
    leader: { storeId: '2', peerId: '12' },
    term: '3',
  });
  expect(all[0]!.peers).toHaveLength(3);
  expect((await t.cluster.regions.query({ startKey: 'n' })).map((r) => r.id)).toEqual(['2']);
  expect((await t.cluster.regions.query({ startKey: 'a', endKey: 'b' })).map((r) => r.id)).toEqual(['1']);
  expect((await t.cluster.regions.query({ limit: 1 })).map((r) => r.id)).toEqual(['1']);
  expect((await t.cluster.regions.query({ startKey: 'hex:6e' })).map((r) => r.id)).toEqual(['2']);

  const problems = await t.cluster.problems.query();
  expect(problems.noLeader).toEqual(['2']);
  expect(problems.missingReplicas).toEqual([{ regionId: '2', voters: 2, expected: 3 }]);
  expect(problems.downReplicas).toEqual([]);
});

test('events: region added/changed/removed, leader changes, store joined/down/up', async () => {
  const running = await start({ heartbeatTimeoutMs: 400 });
  const { storeHb, regionHb } = feeder(running);
  const t = client(running.trpcPort!);
  await storeHb(1n);
  await storeHb(2n);
  await storeHb(3n);
  const r1 = region(1n, '', '', three(1n));
  await regionHb(r1, 0, 1n);
  await regionHb(r1, 0, 1n); // nothing new
  await regionHb(r1, 1, 2n); // leader 11 → 12
  await regionHb(r1, 0, 1n); // an old leader at a lower term: ignored
  // A split: region 1 shrinks (version 2), region 2 appears.
  await regionHb(region(1n, '', 'm', three(1n), { version: 2n, confVersion: 1n }), 1, 2n);
  await regionHb(region(2n, 'm', '', three(2n), { version: 2n, confVersion: 1n }), 2, 1n);

  const { events, lastSeq, firstSeq } = await t.events.recent.query();
  expect(firstSeq).toBe(1);
  expect(lastSeq).toBe(events.length);
  expect(events.map((e) => [e.kind, e.regionId ?? e.storeId])).toEqual([
    ['store-joined', '1'],
    ['store-joined', '2'],
    ['store-joined', '3'],
    ['region-added', '1'],
    ['leader-changed', '1'],
    ['leader-changed', '1'],
    ['region-changed', '1'],
    ['region-added', '2'],
    ['leader-changed', '2'],
  ]);
  expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
  const change = events[5]!;
  expect(change.details).toEqual({
    from: { storeId: '1', peerId: '11' },
    to: { storeId: '2', peerId: '12' },
    term: '2',
  });
  expect(events[6]!.details).toMatchObject({
    before: { endKey: '', epoch: { version: '1' } },
    after: { endKey: 'm', epoch: { version: '2' } },
  });

  // afterSeq / limit.
  const after = await t.events.recent.query({ afterSeq: 7, limit: 1 });
  expect(after.events.map((e) => e.seq)).toEqual([8]);
  expect((await t.events.recent.query({ limit: 2 })).events.map((e) => e.seq)).toEqual([8, 9]);

  // Stores 2 and 3 keep heartbeating, store 1 stops: the periodic detection reports it down.
  const keep = setInterval(() => {
    storeHb(2n).catch(() => {});
    storeHb(3n).catch(() => {});
  }, 50);
  cleanups.push(() => clearInterval(keep));
  const down = await until(
    () => t.events.recent.query({ afterSeq: 9 }),
    (r) => r.events.some((e) => e.kind === 'store-down'),
  );
  clearInterval(keep);
  expect(down.events.filter((e) => e.kind.startsWith('store-'))).toEqual([
    expect.objectContaining({ kind: 'store-down', storeId: '1', details: { state: 'down', previous: 'up' } }),
  ]);
  expect((await t.cluster.stores.query())[0]!.state).toBe('down');
  expect((await t.cluster.problems.query()).downReplicas.map((d) => d.regionId)).toEqual(['1', '2']);
  // It comes back.
  await storeHb(1n);
  const up = await t.events.recent.query({ limit: 1 });
  expect(up.events[0]).toMatchObject({
    kind: 'store-up',
    storeId: '1',
    details: { state: 'up', previous: 'down' },
  });
});

test('the event stream delivers new events, and resumes after lastEventId', async () => {
  const running = await start();
  const { storeHb, regionHb } = feeder(running);
  const t = client(running.trpcPort!);
  await storeHb(1n);
  const got: ClusterEvent[] = [];
  let started = false;
  const sub = t.events.stream.subscribe(undefined, {
    onStarted: () => {
      started = true;
    },
    onData: (e) => got.push(e.data),
    onError: (err) => {
      throw err;
    },
  });
  cleanups.push(() => sub.unsubscribe());
  await until(
    () => started && running.coordinator.events.subscribers,
    (n) => n === 1,
  );
  await storeHb(2n);
  await regionHb(region(1n, '', '', [[1n, 11n]]));
  await until(
    () => got.length,
    (n) => n >= 3,
  );
  // Only events after the subscription started (store 1 joined before it).
  expect(got.map((e) => [e.kind, e.seq])).toEqual([
    ['store-joined', 2],
    ['region-added', 3],
    ['leader-changed', 4],
  ]);
  sub.unsubscribe();

  // Resuming after seq 2, only leader changes.
  const again: { id: string; kind: string }[] = [];
  const sub2 = t.events.stream.subscribe(
    { lastEventId: '2', kinds: ['leader-changed'] },
    { onData: (e) => again.push({ id: e.id, kind: e.data.kind }) },
  );
  cleanups.push(() => sub2.unsubscribe());
  await until(
    () => again.length,
    (n) => n >= 1,
  );
  expect(again).toEqual([{ id: '4', kind: 'leader-changed' }]);
  sub2.unsubscribe();
  await until(
    () => running.coordinator.events.subscribers,
    (n) => n === 0,
  );
});

test('invalid input is BAD_REQUEST; unknown region or store is NOT_FOUND', async () => {
  const running = await start();
  const { storeHb, regionHb } = feeder(running);
  const t = client(running.trpcPort!);
  const badRequests = [
    t.cluster.regions.query({ limit: -1 }),
    t.cluster.regions.query({ startKey: 'hex:zz' }),
    t.cluster.regions.query({ startKey: 'z', endKey: 'a' }),
    t.events.recent.query({ afterSeq: 1.5 }),
    t.events.recent.query({ limit: 0 }),
    t.admin.transferLeader.mutate({ regionId: 'abc', toPeerId: 1 }),
    t.admin.transferLeader.mutate({ regionId: 0, toPeerId: 1 }),
    t.admin.transferLeader.mutate({ regionId: '18446744073709551616', toPeerId: 1 }),
    // @ts-expect-error not a state
    t.admin.setStoreState.mutate({ storeId: 1, state: 'down' }),
  ];
  for (const p of badRequests) {
    const err = await trpcError(p);
    expect(err.data?.code, err.message).toBe('BAD_REQUEST');
    expect(err.data?.httpStatus).toBe(400);
  }
  expect((await trpcError(t.admin.transferLeader.mutate({ regionId: 9, toPeerId: 1 }))).data?.code).toBe(
    'NOT_FOUND',
  );
  expect((await trpcError(t.admin.setStoreState.mutate({ storeId: '9', state: 'offline' }))).data?.code).toBe(
    'NOT_FOUND',
  );
  // Known region: a non-peer target is BAD_REQUEST; no known leader is PRECONDITION_FAILED.
  await storeHb(1n);
  await storeHb(2n);
  const r = region(1n, '', '', [
    [1n, 11n],
    [2n, 12n],
  ]);
  await running.coordinator.regionHeartbeat(
    decodeReq(pb.RegionHeartbeatRequest, regionHeartbeatRequest(r, undefined)),
  );
  expect((await trpcError(t.admin.transferLeader.mutate({ regionId: 1, toPeerId: 12 }))).data?.code).toBe(
    'PRECONDITION_FAILED',
  );
  await regionHb(r, 0);
  expect((await trpcError(t.admin.transferLeader.mutate({ regionId: 1, toPeerId: 99 }))).data?.code).toBe(
    'BAD_REQUEST',
  );
});

test('transferLeader queues a transfer-leader operation carried out over RaftAdmin; setStoreState', async () => {
  let running: RunningCoordinator | undefined;
  const admin = new FakeStoreAdmin((id) => running?.coordinator.state.catalog.regions.get(id));
  running = await start({ storeAdmin: admin, operators: { tickMs: 10, pollMs: 10 } });
  const { storeHb, regionHb } = feeder(running);
  const t = client(running.trpcPort!);
  await storeHb(1n);
  await storeHb(2n);
  const r = region(1n, '', '', [
    [1n, 11n],
    [2n, 12n],
  ]);
  await regionHb(r, 0);
  // The new leader reports itself at a higher term once the store was asked.
  admin.onTransferLeader = async (regionId, to) => {
    await regionHb(
      r,
      r.peers.findIndex((p) => p.peerId === to),
      2n,
    );
    expect(regionId).toBe(1n);
  };
  expect(await t.admin.transferLeader.mutate({ regionId: '1', toPeerId: 11 })).toMatchObject({
    alreadyLeader: true,
    operation: null,
  });
  const queued = await t.admin.transferLeader.mutate({ regionId: '1', toPeerId: 12 });
  expect(queued).toMatchObject({
    regionId: '1',
    toPeerId: '12',
    fromStoreId: '1',
    toStoreId: '2',
    alreadyLeader: false,
    operation: { kind: 'transfer-leader', regionId: '1', params: { toPeerId: '12' }, source: 'operator' },
  });
  const done = await until(
    () => t.operators.get.query({ id: queued.operation!.id }),
    (op) => op.state === 'finished',
  );
  expect(done.stepsDone).toBe(1);
  expect(admin.callsOf('transferLeader')).toEqual([
    { method: 'transferLeader', storeId: 1n, req: { regionId: 1n, toPeerId: 12n } },
  ]);
  expect(running.coordinator.view.leaderOf(1n)?.peerId).toBe(12n);
  // Heartbeat replies carry no hints.
  expect((await storeHb(1n)).operations).toEqual([]);
  expect((await t.events.recent.query({ limit: 2 })).events.map((e) => [e.kind, e.details.state])).toEqual([
    ['leader-changed', undefined],
    ['operation-ended', 'finished'],
  ]);

  // Store states: offline → store-down, up again → store-up; persisted.
  expect(await t.admin.setStoreState.mutate({ storeId: 2, state: 'offline' })).toMatchObject({
    id: '2',
    state: 'offline',
    adminState: 'offline',
  });
  expect(running.coordinator.state.catalog.stores.get(2n)?.adminState).toBe('offline');
  expect(await t.admin.setStoreState.mutate({ storeId: 2, state: 'up' })).toMatchObject({ state: 'up' });
  const kinds = (await t.events.recent.query({ limit: 2 })).events.map((e) => [e.kind, e.details]);
  expect(kinds).toEqual([
    ['store-down', { state: 'offline', previous: 'up' }],
    ['store-up', { state: 'up', previous: 'offline' }],
  ]);
});

test('operators: add, list, pause, resume, cancel, typed errors; scheduler status and pause', async () => {
  let running: RunningCoordinator | undefined;
  const admin = new FakeStoreAdmin((id) => running?.coordinator.state.catalog.regions.get(id));
  running = await start({ storeAdmin: admin, operators: { tickMs: 10, pollMs: 10 } });
  const { storeHb, regionHb } = feeder(running);
  const t = client(running.trpcPort!);
  for (const id of [1n, 2n, 3n, 4n]) await storeHb(id);
  await regionHb(region(1n, '', 'm', three(1n)));
  await regionHb(region(2n, 'm', '', three(2n)));

  const added = await t.operators.add.mutate({ kind: 'add-peer', regionId: '1', storeId: 4, paused: true });
  expect(added).toMatchObject({
    id: 1,
    kind: 'add-peer',
    regionId: '1',
    params: { storeId: '4', learner: false },
    state: 'paused',
    source: 'operator',
    steps: ['add-peer', 'wait-replica'],
    stepsDone: 0,
    currentStep: 'add-peer',
  });
  const split = await t.operators.add.mutate({
    kind: 'split-region',
    regionId: 2,
    splitKey: 't',
    paused: true,
  });
  expect(split.params).toEqual({ splitKey: 't' });
  const list = await t.operators.list.query({ states: ['paused'], kinds: ['add-peer'] });
  expect(list.operations.map((o) => o.id)).toEqual([1]);
  expect(list.counts).toMatchObject({ paused: 2, pending: 0 });
  expect((await t.operators.list.query({ regionId: 2 })).operations.map((o) => o.id)).toEqual([2]);
  expect((await t.operators.list.query({ storeId: 4 })).operations.map((o) => o.id)).toEqual([1]);
  expect((await t.operators.pause.mutate({ id: 1 })).state).toBe('paused');
  expect((await t.operators.resume.mutate({ id: 1 })).state).toBe('pending');
  const done = await until(
    () => t.operators.get.query({ id: 1 }),
    (op) => op.state === 'finished',
  );
  expect(done).toMatchObject({ stepsDone: 2, currentStep: null, error: null });
  expect(done.resolved.peerId).toMatch(/^\d+$/);
  expect((await t.cluster.regions.query({ limit: 1 }))[0]!.peers.map((p) => p.storeId)).toEqual([
    '1',
    '2',
    '3',
    '4',
  ]);
  expect((await t.operators.cancel.mutate({ id: 2 })).state).toBe('cancelled');
  expect(admin.callsOf('splitRegion')).toEqual([]);

  // Typed errors.
  const code = async (p: Promise<unknown>) => (await trpcError(p)).data?.code;
  expect(await code(t.operators.cancel.mutate({ id: 1 }))).toBe('PRECONDITION_FAILED');
  expect(await code(t.operators.resume.mutate({ id: 2 }))).toBe('PRECONDITION_FAILED');
  expect(await code(t.operators.pause.mutate({ id: 99 }))).toBe('NOT_FOUND');
  expect(await code(t.operators.get.query({ id: 99 }))).toBe('NOT_FOUND');
  expect(await code(t.operators.add.mutate({ kind: 'transfer-leader', regionId: 9, toPeerId: 1 }))).toBe(
    'NOT_FOUND',
  );
  expect(await code(t.operators.add.mutate({ kind: 'replace-replica', regionId: 1, fromStoreId: 9 }))).toBe(
    'NOT_FOUND',
  );
  expect(await code(t.operators.add.mutate({ kind: 'remove-peer', regionId: 1, peerId: 99 }))).toBe(
    'NOT_FOUND',
  );
  expect(await code(t.operators.add.mutate({ kind: 'add-peer', regionId: 1, storeId: 2 }))).toBe(
    'BAD_REQUEST',
  );
  expect(await code(t.operators.add.mutate({ kind: 'split-region', regionId: 1, splitKey: 'z' }))).toBe(
    'BAD_REQUEST',
  );
  expect(await code(t.operators.add.mutate({ kind: 'merge-regions', regionId: 1, sourceRegionId: 1 }))).toBe(
    'BAD_REQUEST',
  );
  // zod: an empty split key, an unknown kind.
  expect(await code(t.operators.add.mutate({ kind: 'split-region', regionId: 1, splitKey: '' }))).toBe(
    'BAD_REQUEST',
  );
  // @ts-expect-error not a kind
  expect(await code(t.operators.add.mutate({ kind: 'move-everything', regionId: 1 }))).toBe('BAD_REQUEST');
  expect((await t.operators.list.query()).counts).toMatchObject({ finished: 1, cancelled: 1 });

  // The scheduler (disabled in these tests).
  const status = await t.scheduler.status.query();
  expect(status).toMatchObject({ enabled: false, paused: [], created: { 'replica-replace': 0 } });
  expect(status.rules['replica-replace'].afterMs).toBe(30 * 60_000);
  expect((await t.scheduler.pause.mutate({ rule: 'region-balance' })).paused).toEqual(['region-balance']);
  expect((await t.scheduler.resume.mutate()).paused).toEqual([]);
  const view = await t.cluster.view.query();
  expect(view.operators.counts).toMatchObject({ finished: 1 });
  expect(view.scheduler.enabled).toBe(false);
});

test('mutations on a non-loopback listener: no token configured → FORBIDDEN; wrong/missing → UNAUTHORIZED', async () => {
  // Bound to 0.0.0.0, reached through 127.0.0.1: the rule follows the listen address.
  const open = await start({ trpcAddr: '0.0.0.0:0' });
  await feeder(open).storeHb(1n);
  const anon = client(open.trpcPort!, 'whatever');
  expect(
    (await trpcError(anon.admin.setStoreState.mutate({ storeId: 1, state: 'offline' }))).data?.code,
  ).toBe('FORBIDDEN');
  // Queries stay open.
  expect((await anon.cluster.stores.query()).map((s) => s.id)).toEqual(['1']);
  await open.stop();
  await rm(dir, { recursive: true, force: true });

  const guarded = await start({ trpcAddr: '0.0.0.0:0', adminToken: 's3cret' });
  await feeder(guarded).storeHb(1n);
  const none = client(guarded.trpcPort!);
  const wrong = client(guarded.trpcPort!, 'nope');
  const right = client(guarded.trpcPort!, 's3cret');
  for (const c of [none, wrong]) {
    const err = await trpcError(c.admin.setStoreState.mutate({ storeId: 1, state: 'offline' }));
    expect(err.data?.code).toBe('UNAUTHORIZED');
    expect(err.data?.httpStatus).toBe(401);
  }
  expect(guarded.coordinator.state.catalog.stores.get(1n)?.adminState).toBe('normal');
  expect(await right.admin.setStoreState.mutate({ storeId: 1, state: 'offline' })).toMatchObject({
    state: 'offline',
  });
  // Auth comes before the lookup: an unknown region is NOT_FOUND only with the token.
  expect((await trpcError(wrong.admin.transferLeader.mutate({ regionId: 9, toPeerId: 1 }))).data?.code).toBe(
    'UNAUTHORIZED',
  );
  expect((await trpcError(right.admin.transferLeader.mutate({ regionId: 9, toPeerId: 1 }))).data?.code).toBe(
    'NOT_FOUND',
  );
});

test('loopback listener: mutations need no token; the server stops with the coordinator', async () => {
  expect(
    ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1'].every(isLoopbackHost),
  ).toBe(true);
  expect(['0.0.0.0', '::', '10.0.0.1', 'example.com', '128.0.0.1'].some(isLoopbackHost)).toBe(false);
  const running = await start({ adminToken: 'unused' });
  await feeder(running).storeHb(1n);
  const t = client(running.trpcPort!);
  expect(await t.admin.setStoreState.mutate({ storeId: '1', state: 'tombstone' })).toMatchObject({
    state: 'tombstone',
  });
  // An open event stream does not hold up the stop.
  const sub = t.events.stream.subscribe(undefined, { onData: () => {} });
  await until(
    () => running.coordinator.events.subscribers,
    (n) => n === 1,
  );
  await running.stop();
  sub.unsubscribe();
  await expect(fetch(`http://127.0.0.1:${running.trpcPort}/cluster.stores`)).rejects.toThrow();
});

test('--trpc-addr and --admin-token (or NOKV_ADMIN_TOKEN)', async () => {
  const { parseCoordinatorArgs } = await import('../main.js');
  expect(
    await parseCoordinatorArgs(['--workdir', 'd', '--trpc-addr', '0.0.0.0:2381', '--admin-token', 'a'], {
      NOKV_ADMIN_TOKEN: 'b',
    }),
  ).toMatchObject({ trpcAddr: '0.0.0.0:2381', adminToken: 'a' });
  expect(await parseCoordinatorArgs(['--workdir', 'd'], { NOKV_ADMIN_TOKEN: 'b' })).toMatchObject({
    adminToken: 'b',
  });
  const plain = await parseCoordinatorArgs(['--workdir', 'd'], {});
  expect(plain.trpcAddr).toBeUndefined();
  expect(plain.adminToken).toBeUndefined();
  await expect(serve({ workdir: dir, addr: '127.0.0.1:0', trpcAddr: 'nonsense' })).rejects.toThrow(
    /--trpc-addr/,
  );
});

test('migration steps run as jobs the console can poll, with typed errors', async () => {
  const running = await start();
  const c = client(running.trpcPort!);
  const { open } = await import('@nokv/engine');
  const workdir = join(dir, 'standalone');
  const db = await open({ dir: workdir });
  for (let i = 0; i < 200; i++) await db.set(`k${i}`, `v${i}`);
  await db.close();
  const finished = async (id: number) => {
    for (let i = 0; i < 200; i++) {
      const job = await c.migration.job.query({ id });
      if (job.state !== 'running') return job;
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`job ${id} did not finish`);
  };
  const plan = await finished((await c.migration.start.mutate({ step: 'plan', workdir })).id);
  expect(plan).toMatchObject({ step: 'plan', state: 'finished', result: { eligible: true, keys: 200 } });
  const init = await finished(
    (await c.migration.start.mutate({ step: 'init', workdir, storeId: '1', regionId: 5, peerId: 50 })).id,
  );
  expect(init.state).toBe('finished');
  expect(init.stages).toEqual([
    'mode-preparing-written',
    'seed-snapshot-exported',
    'local-catalog-persisted',
    'raft-seed-initialized',
    'seeded-finalized',
  ]);
  expect(init.messages.some((m) => m.includes('exporting 200 keys'))).toBe(true);
  // Different ids on the seeded workdir: the job fails with the step's typed error.
  const again = await finished(
    (await c.migration.start.mutate({ step: 'init', workdir, storeId: 1, regionId: 6, peerId: 60 })).id,
  );
  expect(again).toMatchObject({ state: 'failed', error: { code: 'IdMismatch' } });
  // Bad input never starts a job.
  expect(
    (await trpcError(c.migration.start.mutate({ step: 'expand', addr: 'nope', regionId: 1, targets: [] })))
      .data?.code,
  ).toBe('BAD_REQUEST');
  expect((await trpcError(c.migration.job.query({ id: 999 }))).data?.code).toBe('NOT_FOUND');
  const jobs = await c.migration.jobs.query();
  expect(jobs.map((j) => j.step)).toEqual(['init', 'init', 'plan']);
});
