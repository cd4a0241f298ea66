import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { open } from '@nokv/engine';
import { NoKVService, RaftAdminService, type RegionMeta, RegionState, uint64ToWire } from '@nokv/proto';
import { afterEach, describe, expect, test } from 'vitest';
import { mergeRegions, RegionOpsError, splitRegion } from '../client/region-ops.js';
import { createClient, type RpcClient, RpcError } from '../grpc/index.js';
import { PeerStorage } from '../peer-storage/index.js';
import { TestCluster } from '../testing/cluster.js';
import { decodeCommand, encodeCommand } from './command.js';
import { RegionError, StoreError } from './errors.js';
import { regionStateKey } from './keys.js';
import type { Peer } from './peer.js';
import { readValue } from './reads.js';
import { RegionOps } from './split-merge.js';

// Split and merge on an in-process three-store cluster (real engines, gRPC on loopback).

let cluster: TestCluster | undefined;
const admins: RpcClient<typeof RaftAdminService>[] = [];

afterEach(async () => {
  for (const a of admins.splice(0)) a.close();
  await cluster?.stop();
  cluster = undefined;
});

async function startCluster(opts: Parameters<typeof TestCluster.start>[0] = {}): Promise<TestCluster> {
  cluster = await TestCluster.start(opts);
  for (const r of cluster.regions) await cluster.waitForLeader(r.id, 10_000);
  return cluster;
}

const enc = (s: string) => Buffer.from(s);
const str = (b: Uint8Array) => Buffer.from(b).toString();

/** Admin clients by store id, for the client-side orchestration. */
function adminOf(c: TestCluster) {
  const byStore = new Map<bigint, RpcClient<typeof RaftAdminService>>();
  return {
    admin: (id: bigint) => {
      let a = byStore.get(id);
      const address = c.address(id);
      if (!a && address) {
        a = createClient(RaftAdminService, address);
        byStore.set(id, a);
        admins.push(a);
      }
      return a;
    },
    storeIds: c.storeIds(),
    timeoutMs: 20_000,
  };
}

async function leaderStore(c: TestCluster, regionId: bigint) {
  return c.store((await c.waitForLeader(regionId, 10_000)).storeId);
}

/** Every running store hosts `regionId` with the given range. */
async function waitHosted(c: TestCluster, regionId: bigint, start: string, end: string, timeoutMs = 10_000) {
  await c.waitFor(
    `region ${regionId} [${start}, ${end}) on every store`,
    () =>
      c.storeIds().every((id) => {
        const r = c.store(id).peer(regionId)?.region;
        return r !== undefined && str(r.startKey) === start && str(r.endKey) === end;
      }),
    timeoutMs,
  );
}

async function waitGone(c: TestCluster, regionId: bigint, timeoutMs = 10_000) {
  await c.waitFor(
    `region ${regionId} gone from every store`,
    () => c.storeIds().every((id) => c.store(id).peer(regionId) === undefined),
    timeoutMs,
  );
}

/** Splits region 1 of the default topology at 'f' into region 3 (peers 103/203/303). */
async function splitAtF(c: TestCluster) {
  const store = await leaderStore(c, 1n);
  return store.splitRegion(1n, enc('f'), 3n, [103n, 203n, 303n], 5000);
}

describe('admin command encoding', () => {
  test('split, prepare and commit merge round-trip; raw commands are unchanged', () => {
    const epoch = { version: 3n, confVersion: 2n };
    const source: RegionMeta = {
      id: 2n,
      startKey: enc('m'),
      endKey: new Uint8Array(0),
      epoch,
      peers: [{ storeId: 1n, peerId: 102n, learner: false }],
      state: RegionState.Merging,
    };
    for (const admin of [
      { type: 'split' as const, splitKey: enc('f'), newRegionId: 9n, newPeerIds: [91n, 92n] },
      { type: 'prepareMerge' as const, targetRegionId: 1n },
      { type: 'commitMerge' as const, source, sourcePrepareIndex: 42n },
    ]) {
      const bytes = encodeCommand({ regionId: 1n, epoch, peerId: 101n, requests: [], admin });
      const cmd = decodeCommand(bytes);
      expect(cmd.admin?.type).toBe(admin.type);
      expect(Buffer.from(encodeCommand(cmd))).toEqual(Buffer.from(bytes));
      expect(cmd.requests).toEqual([]);
    }
    const raw = decodeCommand(
      encodeCommand({
        regionId: 1n,
        epoch,
        peerId: 101n,
        requests: [{ op: 'put', key: enc('a'), value: enc('1') }],
      }),
    );
    expect(raw.admin).toBeUndefined();
    const merge = decodeCommand(
      encodeCommand({
        regionId: 1n,
        epoch,
        peerId: 101n,
        requests: [],
        admin: { type: 'commitMerge', source, sourcePrepareIndex: 42n },
      }),
    ).admin;
    expect(merge?.type === 'commitMerge' && merge.source.state).toBe(RegionState.Merging);
    expect(merge?.type === 'commitMerge' && merge.sourcePrepareIndex).toBe(42n);
    expect(raw.requests).toHaveLength(1);
  });
});

describe('split', () => {
  test('both halves serve reads and writes; stale routes are corrected', { timeout: 40_000 }, async () => {
    const c = await startCluster();
    const client = c.client({ timeoutMs: 10_000 });
    for (let i = 0; i < 10; i++) {
      await client.put(`b${i}`, `left-${i}`);
      await client.put(`h${i}`, `right-${i}`);
    }
    const { left, right } = await splitAtF(c);
    expect(str(left.endKey)).toBe('f');
    expect(left.epoch).toEqual({ version: 2n, confVersion: 1n });
    expect(right).toMatchObject({ id: 3n, epoch: { version: 1n, confVersion: 1n } });
    expect(str(right.startKey)).toBe('f');
    expect(str(right.endKey)).toBe('m');
    expect(right.peers.map((p) => [p.storeId, p.peerId])).toEqual([
      [1n, 103n],
      [2n, 203n],
      [3n, 303n],
    ]);
    await waitHosted(c, 3n, 'f', 'm');
    await c.waitForLeader(3n, 10_000);

    // The client still routes by the pre-split regions: EpochNotMatch hands it both halves.
    for (let i = 0; i < 10; i++) {
      expect((await client.get(`b${i}`))?.toString()).toBe(`left-${i}`);
      expect((await client.get(`h${i}`))?.toString()).toBe(`right-${i}`);
    }
    await client.put('h-new', 'child');
    await client.put('b-new', 'parent');
    expect((await client.get('h-new'))?.toString()).toBe('child');
    expect((await client.get('b-new'))?.toString()).toBe('parent');
    expect((await client.scan('b9', 'h1', 10)).map((r) => r.key.toString())).toEqual(['b9', 'h-new', 'h0']);
    // Every replica holds the child's writes.
    await c.waitFor('child writes on every store', async () => {
      for (const id of c.storeIds()) {
        if ((await readValue(c.store(id).db, enc('h-new')))?.toString() !== 'child') return false;
      }
      return true;
    });

    // A request with the parent's old epoch: EpochNotMatch naming the parent and the child.
    const leader = await c.waitForLeader(1n);
    const raw = createClient(NoKVService, c.address(leader.storeId)!);
    try {
      const res = await raw.call(
        NoKVService.RawGet,
        {
          context: {
            regionId: uint64ToWire(1n, 'r'),
            regionEpoch: { version: uint64ToWire(1n, 'v'), confVersion: uint64ToWire(1n, 'c') },
          },
          key: enc('h1'),
        },
        { deadlineMs: 3000 },
      );
      const ids = (res.regionError?.epochNotMatch?.currentRegions ?? []).map((r) => String(r.id));
      expect(ids.slice(0, 2)).toEqual(['1', '3']);
      // The key outside the parent's new range with its new epoch: KeyNotInRegion.
      const outside = await raw.call(
        NoKVService.RawGet,
        {
          context: {
            regionId: uint64ToWire(1n, 'r'),
            regionEpoch: { version: uint64ToWire(2n, 'v'), confVersion: uint64ToWire(1n, 'c') },
          },
          key: enc('h1'),
        },
        { deadlineMs: 3000 },
      );
      expect(outside.regionError?.keyNotInRegion).toBeTruthy();
    } finally {
      raw.close();
    }

    // A retried split answers the same; bad splits are refused without changing anything.
    const store = await leaderStore(c, 1n);
    const again = await store.splitRegion(1n, enc('f'), 3n, [103n, 203n, 303n], 5000);
    expect(again.right.id).toBe(3n);
    await expect(store.splitRegion(1n, enc('x'), 4n, [104n, 204n, 304n])).rejects.toBeInstanceOf(RegionError);
    await expect(store.splitRegion(1n, enc('c'), 4n, [104n])).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
    expect(store.peer(1n)!.region.epoch.version).toBe(2n);
    // Over gRPC, requests missing their ids are INVALID_ARGUMENT.
    const a = adminOf(c).admin(store.storeId)!;
    for (const call of [
      a.call(RaftAdminService.SplitRegion, { regionId: uint64ToWire(1n, 'r') }, { deadlineMs: 2000 }),
      a.call(RaftAdminService.PrepareMerge, { sourceRegionId: uint64ToWire(2n, 's') }, { deadlineMs: 2000 }),
      a.call(RaftAdminService.CommitMerge, { targetRegionId: uint64ToWire(1n, 't') }, { deadlineMs: 2000 }),
    ]) {
      const e = await call.catch((x: unknown) => x);
      expect(e).toBeInstanceOf(RpcError);
      expect((e as RpcError).status).toBe(GrpcStatus.INVALID_ARGUMENT);
    }
    expect(store.peer(1n)!.region.epoch.version).toBe(2n);
  });

  test('the split survives a restart of every store', { timeout: 60_000 }, async () => {
    const c = await startCluster();
    const client = c.client({ timeoutMs: 10_000 });
    for (let i = 0; i < 20; i++) await client.put(`k${String(i).padStart(2, '0')}`, `${i}`);
    // Through the gRPC handler and the client-side helper this time.
    const { right } = await splitRegion({
      ...adminOf(c),
      regionId: 1n,
      splitKey: enc('k10'),
      newRegionId: 3n,
      newPeerIds: [103n, 203n, 303n],
    });
    expect(str(right.startKey)).toBe('k10');
    await waitHosted(c, 3n, 'k10', 'm');
    await client.put('k15', 'after-split');
    await client.put('k05', 'after-split');
    for (const id of c.storeIds()) await c.stopStore(id);
    for (const id of c.storeIds()) await c.startStore(id);
    await c.waitForLeader(1n, 15_000);
    await c.waitForLeader(3n, 15_000);
    for (const id of c.storeIds()) {
      expect(str(c.store(id).peer(1n)!.region.endKey)).toBe('k10');
      expect(str(c.store(id).peer(3n)!.region.startKey)).toBe('k10');
    }
    const fresh = c.client({ timeoutMs: 15_000 });
    for (let i = 0; i < 20; i++) {
      const k = `k${String(i).padStart(2, '0')}`;
      const want = i === 5 || i === 15 ? 'after-split' : `${i}`;
      expect((await fresh.get(k))?.toString()).toBe(want);
    }
    await fresh.put('k19', 'after-restart');
    expect((await fresh.get('k19'))?.toString()).toBe('after-restart');
  });

  test('a follower that misses the split creates the child when it applies it', {
    timeout: 60_000,
  }, async () => {
    const c = await startCluster();
    const client = c.client({ timeoutMs: 10_000 });
    const leader = await c.waitForLeader(1n);
    const lagging = c.storeIds().find((id) => id !== leader.storeId)!;
    await client.put('g1', 'before');
    await c.stopStore(lagging);
    await splitAtF(c);
    await c.waitForLeader(3n, 10_000);
    await client.put('g1', 'after'); // the child's leader writes before the lagging store has it
    await c.startStore(lagging);
    // The child's messages reach the lagging store before it applies the split: they must not create
    // a replica over the parent's range; the split creates it, and the log catches it up.
    await waitHosted(c, 3n, 'f', 'm', 15_000);
    await c.waitFor(
      'the lagging store to apply the child’s write',
      async () => (await readValue(c.store(lagging).db, enc('g1')))?.toString() === 'after',
      15_000,
    );
    expect(c.store(lagging).peer(3n)!.peerId).toBe(lagging * 100n + 3n);
  });

  test('applying a split whose child already exists leaves the child alone', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nokv-split-'));
    const db = await open({ dir, compactionThreads: 0 });
    try {
      const child: RegionMeta = {
        id: 3n,
        startKey: enc('f'),
        endKey: enc('m'),
        epoch: { version: 1n, confVersion: 1n },
        peers: [{ storeId: 1n, peerId: 103n, learner: false }],
        state: RegionState.Running,
      };
      await PeerStorage.bootstrap(db, child);
      const before = await db.get(regionStateKey(3n));
      const ops = new RegionOps(
        {
          storeId: 1n,
          db,
          logger: { debug() {}, info() {}, warn() {}, error() {} },
          peer: () => undefined,
          peers: () => [],
          openPeer: () => Promise.reject(new Error('must not open')),
          tombstone: () => undefined,
          forgetPeer: () => {},
          withTimeout: (p) => p,
        },
        { splitSizeBytes: 0, splitCheckIntervalMs: 1000 },
      );
      const parent: RegionMeta = {
        ...child,
        id: 1n,
        startKey: new Uint8Array(0),
        peers: [{ storeId: 1n, peerId: 101n, learner: false }],
      };
      const cmd = {
        type: 'split' as const,
        splitKey: enc('f'),
        newRegionId: 3n,
        newPeerIds: [103n],
      };
      const fakePeer = { isLeader: false, isStopped: false } as unknown as Peer;
      const out = await ops.applyAdmin(
        fakePeer,
        { regionId: 1n, epoch: parent.epoch, peerId: 101n, requests: [], admin: cmd },
        cmd,
        parent,
        10n,
      );
      if ('error' in out) throw out.error;
      expect(out.writes).toEqual([]);
      expect(str(out.region.endKey)).toBe('f');
      await out.after();
      expect(await db.get(regionStateKey(3n))).toEqual(before);
      // A stale epoch is refused.
      const stale = await ops.applyAdmin(
        fakePeer,
        { regionId: 1n, epoch: { version: 0n, confVersion: 1n }, peerId: 101n, requests: [], admin: cmd },
        cmd,
        parent,
        11n,
      );
      expect('error' in stale && stale.error).toBeInstanceOf(RegionError);
    } finally {
      await db.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a region that outgrows the split size is split automatically', { timeout: 60_000 }, async () => {
    let nextId = 1000n;
    const c = await startCluster({
      split: {
        splitSizeBytes: 32 * 1024,
        splitCheckIntervalMs: 100,
        allocIds: async (n) => Array.from({ length: n }, () => nextId++),
      },
    });
    const client = c.client({ timeoutMs: 10_000 });
    const value = 'v'.repeat(1024);
    for (let i = 0; i < 100; i++) await client.put(`auto${String(i).padStart(3, '0')}`, value);
    await c.waitFor(
      'an automatic split of region 1',
      () => c.storeIds().every((id) => str(c.store(id).peer(1n)?.region.endKey ?? enc('m')) !== 'm'),
      20_000,
    );
    const splitKey = str(c.store(c.storeIds()[0]!).peer(1n)!.region.endKey);
    expect(splitKey > 'auto000' && splitKey <= 'auto099').toBe(true);
    for (let i = 0; i < 100; i += 7) {
      expect((await client.get(`auto${String(i).padStart(3, '0')}`))?.toString()).toBe(value);
    }
  });
});

describe('merge', () => {
  test('two neighbours merge; every key is served by the target; a re-run is a no-op', {
    timeout: 60_000,
  }, async () => {
    const c = await startCluster();
    const client = c.client({ timeoutMs: 10_000 });
    for (let i = 0; i < 10; i++) {
      await client.put(`a${i}`, `left-${i}`);
      await client.put(`x${i}`, `right-${i}`);
    }
    const merged = await mergeRegions({ ...adminOf(c), sourceRegionId: 2n, targetRegionId: 1n });
    expect(merged.alreadyMerged).toBe(false);
    expect(merged.region.endKey.length).toBe(0);
    // version = max(target 1, source 1 + 1 from PrepareMerge) + 1
    expect(merged.region.epoch).toEqual({ version: 3n, confVersion: 1n });
    await waitHosted(c, 1n, '', '');
    await waitGone(c, 2n);
    // The client still routes 'x…' to region 2: the stores point it at region 1.
    for (let i = 0; i < 10; i++) {
      expect((await client.get(`a${i}`))?.toString()).toBe(`left-${i}`);
      expect((await client.get(`x${i}`))?.toString()).toBe(`right-${i}`);
    }
    await client.put('x-new', 'merged');
    expect((await client.get('x-new'))?.toString()).toBe('merged');
    expect((await client.scan('a9', '', 3)).map((r) => r.key.toString())).toEqual(['a9', 'x-new', 'x0']);
    const again = await mergeRegions({ ...adminOf(c), sourceRegionId: 2n, targetRegionId: 1n });
    expect(again.alreadyMerged).toBe(true);
    expect(again.region.epoch.version).toBe(3n);
  });

  test('a merge survives a restart of every store and the source never comes back', {
    timeout: 60_000,
  }, async () => {
    const c = await startCluster();
    const client = c.client({ timeoutMs: 10_000 });
    for (let i = 0; i < 10; i++) await client.put(`y${i}`, `${i}`);
    await client.put('c', 'left');
    await mergeRegions({ ...adminOf(c), sourceRegionId: 2n, targetRegionId: 1n });
    await waitGone(c, 2n);
    for (const id of c.storeIds()) await c.stopStore(id);
    for (const id of c.storeIds()) await c.startStore(id);
    await c.waitForLeader(1n, 15_000);
    for (const id of c.storeIds()) {
      expect(c.store(id).peer(2n)).toBeUndefined();
      expect(c.store(id).peer(1n)!.region.endKey.length).toBe(0);
      expect(c.store(id).stats().tombstones).toBe(1);
    }
    const fresh = c.client({ timeoutMs: 15_000 });
    for (let i = 0; i < 10; i++) expect((await fresh.get(`y${i}`))?.toString()).toBe(`${i}`);
    expect((await fresh.get('c'))?.toString()).toBe('left');
    await fresh.put('y-after', 'restart');
    // Region 2 stays gone after the cluster has run a while.
    await c.waitFor('the write to reach every store', async () => {
      for (const id of c.storeIds()) {
        if ((await readValue(c.store(id).db, enc('y-after')))?.toString() !== 'restart') return false;
      }
      return true;
    });
    for (const id of c.storeIds()) expect(c.store(id).peer(2n)).toBeUndefined();
  });

  test('a merging source refuses writes but serves reads until the merge commits', {
    timeout: 60_000,
  }, async () => {
    const c = await startCluster();
    const client = c.client({ timeoutMs: 10_000 });
    await client.put('q', 'before');
    const sourceLeader = await leaderStore(c, 2n);
    const prepared = await sourceLeader.prepareMerge(2n, 1n, 5000);
    expect(prepared.source.state).toBe(RegionState.Merging);
    expect(prepared.source.epoch.version).toBe(2n);
    // Idempotent: asking again answers with the same entry.
    const again = await sourceLeader.prepareMerge(2n, 1n, 5000);
    expect(again.prepareIndex).toBe(prepared.prepareIndex);
    const ctx = { regionId: 2n, epoch: prepared.source.epoch };
    const refused = await sourceLeader
      .write(ctx, [{ op: 'put', key: enc('q'), value: enc('during') }], 2000)
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RegionError);
    expect((refused as RegionError).code).toBe('ServerBusy');
    expect((await sourceLeader.get(ctx, enc('q'), 2000))?.toString()).toBe('before');
    // Merging into another region, or splitting it, is refused too.
    await expect(sourceLeader.prepareMerge(2n, 7n, 1000)).rejects.toBeInstanceOf(StoreError);
    await expect(sourceLeader.splitRegion(2n, enc('t'), 9n, [109n, 209n, 309n], 1000)).rejects.toMatchObject({
      code: 'FailedPrecondition',
    });
    // A re-run of the orchestration picks up the prepared merge and finishes it.
    const merged = await mergeRegions({ ...adminOf(c), sourceRegionId: 2n, targetRegionId: 1n });
    expect(merged.prepareIndex).toBe(prepared.prepareIndex);
    await client.put('q', 'after');
    expect((await client.get('q'))?.toString()).toBe('after');
  });

  test('regions on different stores or not adjacent do not merge', { timeout: 60_000 }, async () => {
    const region = (id: bigint, start: string, end: string, stores: bigint[]): RegionMeta => ({
      id,
      startKey: enc(start),
      endKey: enc(end),
      epoch: { version: 1n, confVersion: 1n },
      peers: stores.map((s) => ({ storeId: s, peerId: s * 100n + id, learner: false })),
      state: RegionState.Running,
    });
    const c = await startCluster({
      stores: 4,
      regions: [
        region(1n, '', 'g', [1n, 2n, 3n]),
        region(2n, 'g', 'm', [1n, 2n, 4n]),
        region(3n, 'm', '', [1n, 2n, 3n]),
      ],
    });
    const opts = { ...adminOf(c), timeoutMs: 10_000 };
    const e1 = await mergeRegions({ ...opts, sourceRegionId: 2n, targetRegionId: 1n }).catch(
      (e: unknown) => e,
    );
    expect(e1).toBeInstanceOf(RegionOpsError);
    expect((e1 as RegionOpsError).code).toBe('FailedPrecondition');
    const e2 = await mergeRegions({ ...opts, sourceRegionId: 3n, targetRegionId: 1n }).catch(
      (e: unknown) => e,
    );
    expect((e2 as RegionOpsError).code).toBe('FailedPrecondition');
    // CommitMerge checks the stores itself as well.
    const target = await leaderStore(c, 1n);
    const fakeSource = { ...region(2n, 'g', 'm', [1n, 2n, 4n]), state: RegionState.Merging };
    await expect(target.commitMerge(1n, fakeSource, 10n, 2000)).rejects.toMatchObject({
      code: 'FailedPrecondition',
    });
    for (const id of [1n, 2n, 3n])
      expect((await leaderStore(c, id)).peer(id)!.region.state).toBe(RegionState.Running);
  });
});
