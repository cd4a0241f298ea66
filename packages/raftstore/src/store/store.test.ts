import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { open } from '@nokv/engine';
import { NoKVService, RaftAdminService, uint64ToWire } from '@nokv/proto';
import { afterEach, describe, expect, test } from 'vitest';
import { ClientError } from '../client/raw-client.js';
import { createClient, RpcError } from '../grpc/index.js';
import { PeerStorage, readRegionStates } from '../peer-storage/index.js';
import { defaultRegions, sleep, TestCluster } from '../testing/cluster.js';
import { StoreError } from './errors.js';
import { dataKey } from './keys.js';
import { readValue } from './reads.js';
import { Store } from './store.js';

// A three-store cluster in this process: real engines, real gRPC on loopback, the real transport.

let cluster: TestCluster | undefined;

afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

async function startCluster(opts: Parameters<typeof TestCluster.start>[0] = {}): Promise<TestCluster> {
  cluster = await TestCluster.start(opts);
  await cluster.waitForLeader(1n);
  await cluster.waitForLeader(2n);
  return cluster;
}

describe('replicated regions', () => {
  test('writes replicate to every store and reads see them', { timeout: 20_000 }, async () => {
    const c = await startCluster();
    const client = c.client();
    for (let i = 0; i < 20; i++) await client.put(`key-${i}`, `v${i}`);
    await client.put('zebra', 'stripes'); // region 2
    expect((await client.get('key-7'))?.toString()).toBe('v7');
    expect((await client.get('zebra'))?.toString()).toBe('stripes');
    expect(await client.get('missing')).toBeUndefined();
    await client.delete('key-3');
    expect(await client.get('key-3')).toBeUndefined();
    // Every replica applies the same log into its own engine.
    await c.waitFor('followers to apply', async () => {
      for (const id of c.storeIds()) {
        const v = await readValue(c.store(id).db, Buffer.from('zebra'));
        if (v?.toString() !== 'stripes') return false;
        if ((await readValue(c.store(id).db, Buffer.from('key-3'))) !== undefined) return false;
      }
      return true;
    });
    // Concurrent puts to a region are coalesced: far fewer proposals than puts, all applied.
    const leader1 = await c.waitForLeader(1n);
    const before = (c.store(leader1.storeId).stats().events as Record<string, number>).proposals ?? 0;
    await Promise.all(Array.from({ length: 200 }, (_, i) => client.put(`burst-${i}`, `${i}`)));
    const proposals =
      ((c.store(leader1.storeId).stats().events as Record<string, number>).proposals ?? 0) - before;
    expect(proposals).toBeLessThan(50);
    const burst = await Promise.all(Array.from({ length: 200 }, (_, i) => client.get(`burst-${i}`)));
    expect(burst.map((v) => v?.toString())).toEqual(Array.from({ length: 200 }, (_, i) => `${i}`));
    const rows = await client.scan('key-1', 'key-2', 100);
    expect(rows.map((r) => r.key.toString())).toEqual([
      'key-1',
      'key-10',
      'key-11',
      'key-12',
      'key-13',
      'key-14',
      'key-15',
      'key-16',
      'key-17',
      'key-18',
      'key-19',
    ]);
    // A scan across the region boundary at 'm'.
    const across = await client.scan('key-9', '', 10);
    expect(across.map((r) => r.key.toString())).toEqual(['key-9', 'zebra']);
  });

  test('the leader’s store stops: a new leader is elected and every acknowledged write survives', {
    timeout: 30_000,
  }, async () => {
    const c = await startCluster();
    const client = c.client({ timeoutMs: 8000 });
    const acked: string[] = [];
    for (let i = 0; i < 30; i++) {
      await client.put(`a${i}`, `${i}`);
      acked.push(`a${i}`);
    }
    const old = await c.waitForLeader(1n);
    await c.stopStore(old.storeId);
    const next = await c.waitForLeader(1n, 10_000, old.storeId);
    expect(next.storeId).not.toBe(old.storeId);
    // The client follows NotLeader / unreachable stores to the new leader.
    for (const k of acked) expect((await client.get(k))?.toString()).toBe(k.slice(1));
    await client.put('after', 'failover');
    expect((await client.get('after'))?.toString()).toBe('failover');
    // The old leader comes back as a follower and catches up from the log.
    await c.startStore(old.storeId);
    await c.waitFor(
      'restarted store to apply the write made while it was down',
      async () => {
        const v = await readValue(c.store(old.storeId).db, Buffer.from('after'));
        return v?.toString() === 'failover';
      },
      10_000,
    );
  });

  test('a follower that missed compacted entries catches up with a snapshot', {
    timeout: 30_000,
  }, async () => {
    const c = await startCluster({ raft: { logRetainEntries: 5, logCompactBatch: 5 } });
    const client = c.client();
    const leader = await c.waitForLeader(1n);
    const follower = c.storeIds().find((id) => id !== leader.storeId)!;
    await c.stopStore(follower);
    // Drop (rather than queue) what the others send it meanwhile, so it really misses entries.
    c.isolate([follower]);
    for (let i = 0; i < 60; i++) await client.put(`f${String(i).padStart(2, '0')}`, `${i}`);
    // The leader's log no longer holds what the follower lacks.
    await c.waitFor(
      'leader to compact',
      () => c.store(leader.storeId).peer(1n)!.storage.truncatedIndex > 20n,
    );
    c.heal();
    await c.startStore(follower);
    await c.waitFor(
      'follower to install a snapshot and apply',
      async () => {
        const v = await readValue(c.store(follower).db, Buffer.from('f59'));
        return v?.toString() === '59';
      },
      15_000,
    );
    const events = c.store(follower).stats().events as Record<string, number>;
    expect(events.snapshots_installed).toBeGreaterThanOrEqual(1);
    expect((await readValue(c.store(follower).db, Buffer.from('f00')))?.toString()).toBe('0');
  });

  test('a partitioned leader steps down; the majority elects and serves; the minority serves no reads', {
    timeout: 30_000,
  }, async () => {
    const c = await startCluster({ commandTimeoutMs: 1000 });
    const client = c.client({ timeoutMs: 8000 });
    await client.put('c', 'before');
    const old = await c.waitForLeader(1n);
    c.isolate([old.storeId]);
    const next = await c.waitForLeader(1n, 10_000, old.storeId);
    // CheckQuorum: the isolated leader notices it lost its quorum and steps down.
    await c.waitFor('isolated leader to step down', () => !c.store(old.storeId).peer(1n)!.isLeader, 10_000);
    // The client still routes to the old leader; its NotLeader answer sends it to the new one.
    await client.put('c', 'after');
    expect((await client.get('c'))?.toString()).toBe('after');
    // A read sent straight to the isolated store is refused (NotLeader), never served stale.
    const direct = createClient(NoKVService, c.address(old.storeId)!);
    try {
      const region = c.store(old.storeId).peer(1n)!.region;
      const res = await direct.call(
        NoKVService.RawGet,
        {
          context: {
            regionId: uint64ToWire(1n, 'r'),
            regionEpoch: {
              version: uint64ToWire(region.epoch.version, 'v'),
              confVersion: uint64ToWire(region.epoch.confVersion, 'c'),
            },
          },
          key: Buffer.from('c'),
        },
        { deadlineMs: 2000 },
      );
      expect(res.regionError?.notLeader).toBeTruthy();
      expect(res.value?.length ?? 0).toBe(0);
    } finally {
      direct.close();
    }
    c.heal();
    await c.waitFor(
      'old leader to learn the new value',
      async () => {
        const v = await readValue(c.store(old.storeId).db, Buffer.from('c'));
        return v?.toString() === 'after';
      },
      10_000,
    );
    expect(next.storeId).not.toBe(old.storeId);
  });

  test('without a quorum a request fails with a deadline error instead of hanging', {
    timeout: 30_000,
  }, async () => {
    const c = await startCluster({ commandTimeoutMs: 800 });
    const client = c.client({ timeoutMs: 1500, rpcTimeoutMs: 700 });
    await client.put('d', '1');
    const leader = await c.waitForLeader(1n);
    // Cut every link: no store can reach a quorum.
    for (const id of c.storeIds()) c.isolate([id]);
    const started = Date.now();
    const err = await client.put('d', '2').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClientError);
    expect((err as ClientError).code).toMatch(/Unknown|Timeout/);
    expect(Date.now() - started).toBeLessThan(5000);
    // Straight to the store, a deadline shorter than the command timeout → DEADLINE_EXCEEDED.
    const direct = createClient(NoKVService, c.address(leader.storeId)!);
    try {
      const region = c.store(leader.storeId).peer(1n)!.region;
      const call = direct.call(
        NoKVService.RawPut,
        {
          context: {
            regionId: uint64ToWire(1n, 'r'),
            regionEpoch: {
              version: uint64ToWire(region.epoch.version, 'v'),
              confVersion: uint64ToWire(region.epoch.confVersion, 'c'),
            },
          },
          key: Buffer.from('d'),
          value: Buffer.from('3'),
        },
        { deadlineMs: 300 },
      );
      const e = await call.then(
        (r) => r,
        (e: unknown) => e,
      );
      if (e instanceof RpcError) expect(e.status).toBe(GrpcStatus.DEADLINE_EXCEEDED);
      else expect((e as { regionError?: { notLeader?: unknown } }).regionError?.notLeader).toBeTruthy();
    } finally {
      direct.close();
    }
    c.heal();
    await sleep(100);
    const after = c.client({ timeoutMs: 8000 });
    await after.put('d', '4');
    expect((await after.get('d'))?.toString()).toBe('4');
  });

  test('clean shutdown and restart of every store keeps every acknowledged write', {
    timeout: 30_000,
  }, async () => {
    const c = await startCluster();
    const client = c.client();
    for (let i = 0; i < 50; i++) await client.put(`b${i}`, `${i}`.repeat(10));
    for (const id of c.storeIds()) await c.stopStore(id);
    for (const id of c.storeIds()) await c.startStore(id);
    await c.waitForLeader(1n, 10_000);
    const again = c.client({ timeoutMs: 10_000 });
    for (let i = 0; i < 50; i++) expect((await again.get(`b${i}`))?.toString()).toBe(`${i}`.repeat(10));
    // Restart does not re-apply or skip: applied index equals the commit index on every store.
    await c.waitFor('applied = commit everywhere', () =>
      c.storeIds().every((id) => {
        const s = c.store(id).peer(1n)!.status();
        return s.appliedIndex === s.commitIndex && s.appliedIndex > 50n;
      }),
    );
  });

  test('SetLinkFault is refused unless the store enables fault injection', async () => {
    const c = await startCluster();
    const admin = createClient(RaftAdminService, c.address(1n)!);
    try {
      const err = await admin
        .call(RaftAdminService.SetLinkFault, { toStoreId: uint64ToWire(2n, 'to'), block: true })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RpcError);
      expect((err as RpcError).status).toBe(GrpcStatus.FAILED_PRECONDITION);
      expect((err as RpcError).message).toMatch(/--enable-fault-injection/);
    } finally {
      admin.close();
    }
  });

  test('malformed and oversized requests get INVALID_ARGUMENT and change nothing', {
    timeout: 20_000,
  }, async () => {
    const c = await startCluster();
    const client = c.client();
    await client.put('safe', 'value');
    const leader = await c.waitForLeader(1n);
    const address = c.address(leader.storeId)!;
    const raw = createClient(NoKVService, address);
    const admin = createClient(RaftAdminService, address);
    const applied = () => c.store(leader.storeId).peer(1n)!.storage.appliedIndex;
    const before = applied();
    try {
      // Garbage bytes where a RawPut should be.
      const stream = raw.grpc.makeUnaryRequest(
        NoKVService.RawPut.path,
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]),
        (err: unknown) => {
          rawErr = err;
        },
      );
      let rawErr: unknown;
      await new Promise<void>((resolve) => stream.on('status', () => resolve()));
      expect((rawErr as { code: number }).code).toBe(GrpcStatus.INVALID_ARGUMENT);
      // Well-formed but invalid: no context, empty key, oversized value.
      const ctx = (await regionContext(c, leader.storeId)) as never;
      for (const req of [
        { key: Buffer.from('x'), value: Buffer.from('1') },
        { context: ctx, key: Buffer.alloc(0), value: Buffer.from('1') },
        { context: ctx, key: Buffer.from('x'), value: Buffer.alloc(9 * 1024 * 1024) },
        { context: ctx, key: Buffer.alloc(70 * 1024), value: Buffer.from('1') },
      ]) {
        const e = await raw.call(NoKVService.RawPut, req, { deadlineMs: 5000 }).catch((x: unknown) => x);
        expect(e).toBeInstanceOf(RpcError);
        expect((e as RpcError).status).toBe(GrpcStatus.INVALID_ARGUMENT);
      }
      for (const bad of [
        { context: ctx, pairs: [] },
        { context: ctx, pairs: [{ key: Buffer.alloc(0), value: Buffer.from('1') }] },
      ]) {
        const e2 = await raw
          .call(NoKVService.RawBatchPut, bad, { deadlineMs: 5000 })
          .catch((x: unknown) => x);
        expect((e2 as RpcError).status).toBe(GrpcStatus.INVALID_ARGUMENT);
      }
      const e = await admin
        .call(RaftAdminService.TransferLeader, {}, { deadlineMs: 2000 })
        .catch((x: unknown) => x);
      expect((e as RpcError).status).toBe(GrpcStatus.INVALID_ARGUMENT);
    } finally {
      raw.close();
      admin.close();
    }
    expect(applied()).toBe(before);
    expect((await client.get('safe'))?.toString()).toBe('value');
  });

  test('region errors: stale epoch, wrong store, unknown region', { timeout: 20_000 }, async () => {
    const c = await startCluster();
    const leader = await c.waitForLeader(1n);
    const raw = createClient(NoKVService, c.address(leader.storeId)!);
    try {
      const get = (context: object, key = 'a') =>
        raw.call(NoKVService.RawGet, { context, key: Buffer.from(key) }, { deadlineMs: 2000 });
      const epoch = { version: uint64ToWire(1n, 'v'), confVersion: uint64ToWire(1n, 'c') };
      const stale = await get({
        regionId: uint64ToWire(1n, 'r'),
        regionEpoch: { ...epoch, version: uint64ToWire(0n, 'v') },
      });
      // The region first, then its right neighbours (where split-off children would be).
      expect(stale.regionError?.epochNotMatch?.currentRegions?.map((r) => String(r.id))).toEqual(['1', '2']);
      const unknown = await get({ regionId: uint64ToWire(99n, 'r'), regionEpoch: epoch });
      expect(unknown.regionError?.regionNotFound).toBeTruthy();
      const wrongStore = await get({
        regionId: uint64ToWire(1n, 'r'),
        regionEpoch: epoch,
        peer: { storeId: uint64ToWire(42n, 's') },
      });
      expect(wrongStore.regionError?.storeNotMatch).toBeTruthy();
      const outside = await get({ regionId: uint64ToWire(1n, 'r'), regionEpoch: epoch }, 'zz');
      expect(outside.regionError?.keyNotInRegion).toBeTruthy();
      const follower = c.storeIds().find((id) => id !== leader.storeId)!;
      const f = createClient(NoKVService, c.address(follower)!);
      const nl = await f.call(
        NoKVService.RawGet,
        { context: { regionId: uint64ToWire(1n, 'r'), regionEpoch: epoch }, key: Buffer.from('a') },
        { deadlineMs: 2000 },
      );
      f.close();
      expect(nl.regionError?.notLeader?.leader?.storeId?.toString()).toBe(String(leader.storeId));
    } finally {
      raw.close();
    }
  });

  test('idle regions go quiet and wake on a write', { timeout: 20_000 }, async () => {
    const c = await startCluster({ raft: { hibernateAfterTicks: 5 } });
    const client = c.client();
    await client.put('h', '1');
    await c.waitFor('every peer of region 1 to hibernate', () =>
      c.storeIds().every((id) => c.store(id).peer(1n)!.hibernating),
    );
    await client.put('h', '2');
    expect((await client.get('h'))?.toString()).toBe('2');
  });
});

describe('store bootstrap and recovery', () => {
  test('the topology is used on the first start only, and a workdir refuses another store id', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nokv-store-'));
    const db = await open({ dir, compactionThreads: 0 });
    try {
      const [r1, r2] = defaultRegions(1);
      const first = await Store.start({
        storeId: 1n,
        db,
        resolveStoreAddress: () => undefined,
        bootstrapRegions: [r1!],
      });
      expect(first.regionStatuses().map((r) => r.regionId)).toEqual(['1']);
      await first.stop();
      // Later starts recover from the engine and ignore the file's regions.
      const again = await Store.start({
        storeId: 1n,
        db,
        resolveStoreAddress: () => undefined,
        bootstrapRegions: [r1!, r2!],
      });
      expect(again.regionStatuses().map((r) => r.regionId)).toEqual(['1']);
      await again.stop();
      const err = await Store.start({ storeId: 2n, db, resolveStoreAddress: () => undefined }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(StoreError);
      expect((err as StoreError).code).toBe('FailedPrecondition');
      expect((err as StoreError).message).toMatch(/belongs to store 1, not store 2/);
    } finally {
      await db.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a replica whose removal was applied but not yet destroyed is destroyed at the next start', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nokv-store-removed-'));
    const db = await open({ dir, compactionThreads: 0 });
    try {
      const [r1, r2] = defaultRegions(3);
      // Region 1 as it looks after this store (1) applied its own removal; region 2 is live here.
      const removed = { ...r1!, peers: r1!.peers.filter((p) => p.storeId !== 1n) };
      await PeerStorage.bootstrap(db, removed);
      await PeerStorage.bootstrap(db, r2!);
      await db.internal.write(
        [
          { cf: 'default', op: 'put', key: dataKey(Buffer.from('apple')), value: Buffer.from('stale') },
          { cf: 'default', op: 'put', key: dataKey(Buffer.from('zebra')), value: Buffer.from('live') },
        ],
        { sync: true },
      );
      const store = await Store.start({ storeId: 1n, db, resolveStoreAddress: () => undefined });
      expect(store.regionStatuses().map((r) => r.regionId)).toEqual(['2']);
      await store.stop();
      expect((await readRegionStates(db)).map((s) => s.region.id)).toEqual([2n]);
      expect(await readValue(db, Buffer.from('apple'))).toBeUndefined();
      expect((await readValue(db, Buffer.from('zebra')))?.toString()).toBe('live');
    } finally {
      await db.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('membership changes', () => {
  test('a new store joins by snapshot, is promoted, and a removed peer is destroyed and never comes back', {
    timeout: 40_000,
  }, async () => {
    // Four stores; the regions start on stores 1-3 only.
    const regions = defaultRegions(3);
    cluster = await TestCluster.start({ stores: 4, regions });
    const c = cluster;
    const client = c.client({ timeoutMs: 8000 });
    for (let i = 0; i < 20; i++) await client.put(`g${i}`, `${i}`);
    const leader = await c.waitForLeader(1n);
    const store = c.store(leader.storeId);
    const joined = await store.changePeer(1n, 'add-learner', { storeId: 4n, peerId: 401n, learner: true });
    expect(joined.peers.find((p) => p.peerId === 401n)?.learner).toBe(true);
    expect(joined.epoch.confVersion).toBe(2n);
    await c.waitFor(
      'store 4 to receive the region and its data',
      async () => {
        const v = await readValue(c.store(4n).db, Buffer.from('g19'));
        return v?.toString() === '19';
      },
      15_000,
    );
    const promoted = await c.store((await c.waitForLeader(1n)).storeId).changePeer(1n, 'add-voter', {
      storeId: 4n,
      peerId: 401n,
      learner: false,
    });
    expect(promoted.peers.find((p) => p.peerId === 401n)?.learner).toBe(false);
    // Remove a follower's peer (the leader refuses to remove itself).
    const lead = await c.waitForLeader(1n);
    const victim = [1n, 2n, 3n].find((s) => s !== lead.storeId)!;
    const victimPeer = victim * 100n + 1n;
    const after = await c
      .store(lead.storeId)
      .changePeer(1n, 'remove', { storeId: victim, peerId: victimPeer, learner: false });
    expect(after.peers.some((p) => p.peerId === victimPeer)).toBe(false);
    await c.waitFor(
      'removed replica to be dropped and destroyed',
      async () => {
        if (c.store(victim).peer(1n) !== undefined) return false;
        return (await readValue(c.store(victim).db, Buffer.from('g1'))) === undefined;
      },
      10_000,
    );
    // The client's cached epoch is stale now; it follows EpochNotMatch and keeps working.
    await client.put('g-after', 'ok');
    expect((await client.get('g-after'))?.toString()).toBe('ok');
    // A restart of the removed store does not bring the replica back.
    await c.restartStore(victim);
    await sleep(300);
    expect(c.store(victim).peer(1n)).toBeUndefined();
    expect(c.store(victim).peer(2n)).toBeDefined();
  });
});

async function regionContext(c: TestCluster, storeId: bigint) {
  const region = c.store(storeId).peer(1n)!.region;
  return {
    regionId: uint64ToWire(1n, 'r'),
    regionEpoch: {
      version: uint64ToWire(region.epoch.version, 'v'),
      confVersion: uint64ToWire(region.epoch.confVersion, 'c'),
    },
  };
}
