import { RaftAdminService, type RegionMeta, regionFromWire, uint64FromWire, uint64ToWire } from '@nokv/proto';
import { ClientError, mergeRegions, RawClient, splitRegion } from '@nokv/raftstore';
import { createClient, type RpcClient } from '@nokv/raftstore/grpc';
import {
  expand,
  type RuntimeStatus,
  removePeer,
  runtimeStatus,
  transferLeader,
} from '@nokv/raftstore/migrate';
import { afterEach, describe, expect, test } from 'vitest';
import { ProcessCluster } from './testing/process-cluster.js';

// Region lifecycle operations against real `nokv serve` processes killed with SIGKILL: an added
// replica, a removed one, a membership change after a leader restart, and split and merge must all
// survive crashes of the stores that hold them. The stores are driven only through their admin
// gRPC API (RegionRuntimeStatus, AddPeer, RemovePeer, TransferLeader, SplitRegion, PrepareMerge,
// CommitMerge) and read and written through the raw client.

type AdminClient = RpcClient<typeof RaftAdminService>;

let cluster: ProcessCluster | undefined;
const closers: (() => void)[] = [];

afterEach(async () => {
  for (const close of closers.splice(0)) close();
  await cluster?.stop();
  cluster = undefined;
});

const u64 = (v: bigint) => uint64ToWire(v, 'test');
const str = (b: Uint8Array) => Buffer.from(b).toString();

/** RaftAdmin clients by store id (the channel reconnects after a restart on the same port). */
function admins(c: ProcessCluster) {
  const byStore = new Map<number, AdminClient>();
  return (storeId: bigint | number): AdminClient => {
    const id = Number(storeId);
    let a = byStore.get(id);
    if (!a) {
      a = createClient(RaftAdminService, c.address(id)!);
      byStore.set(id, a);
      const client = a;
      closers.push(() => client.close());
    }
    return a;
  };
}

function status(c: ProcessCluster, storeId: number, regionId: bigint): Promise<RuntimeStatus> {
  return runtimeStatus(c.address(storeId)!, regionId, { rpcTimeoutMs: 3000 });
}

/** Polls `check` (errors count as "not yet") until it holds. */
async function eventually(
  c: ProcessCluster,
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 20_000,
) {
  await c.waitFor(
    what,
    async () => {
      try {
        return await check();
      } catch {
        return false;
      }
    },
    timeoutMs,
  );
}

const keys = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
const expectedValue = (key: string) => `value-of-${key}`;

/** Puts every key (value `expectedValue(key)`), retrying a put whose outcome was unknown: puts are idempotent. */
async function putAll(client: RawClient, ks: string[]): Promise<void> {
  for (let i = 0; i < ks.length; i += 10) {
    await Promise.all(
      ks.slice(i, i + 10).map(async (k) => {
        for (let attempt = 0; ; attempt++) {
          try {
            await client.put(k, expectedValue(k));
            return;
          } catch (err) {
            if (!(err instanceof ClientError) || attempt >= 4) throw err;
          }
        }
      }),
    );
  }
}

async function expectAll(client: RawClient, ks: string[]): Promise<void> {
  const got = await Promise.all(ks.map(async (k) => (await client.get(k))?.toString()));
  expect(got).toEqual(ks.map(expectedValue));
}

/** A client that can reach one store only: what it reads, that store served (as the leader). */
function pinnedClient(c: ProcessCluster, storeId: number, region: RegionMeta): RawClient {
  const addr = c.address(storeId)!;
  const client = new RawClient({
    resolveStoreAddress: (id) => (id === BigInt(storeId) ? addr : undefined),
    regions: [region],
    timeoutMs: 15_000,
  });
  closers.push(() => client.close());
  return client;
}

/** Moves the leadership of `regionId` to `peerId` on `storeId`, from whichever store leads now. */
async function moveLeader(c: ProcessCluster, regionId: bigint, storeId: number, peerId: bigint) {
  await eventually(c, `peer ${peerId} to lead region ${regionId}`, async () => {
    const from = await c.waitForLeader(Number(regionId));
    const s = await transferLeader({
      addr: c.address(from)!,
      targetAddr: c.address(storeId)!,
      regionId,
      peerId,
      waitMs: 5000,
      pollIntervalMs: 50,
    });
    return s.leader;
  });
}

async function snapshotsInstalled(c: ProcessCluster, storeId: number): Promise<number> {
  const s = (await c.stats(storeId)) as unknown as { store: { events: Record<string, number> } };
  return s.store.events.snapshots_installed ?? 0;
}

async function appliedOnLeader(c: ProcessCluster, regionId: bigint): Promise<bigint> {
  const leader = await c.waitForLeader(Number(regionId));
  return (await status(c, leader, regionId)).appliedIndex;
}

describe('region lifecycle across SIGKILLs (real processes)', () => {
  test('an added replica restarts from its workdir as a member, catches up, leads and serves every key', {
    timeout: 120_000,
  }, async () => {
    // Regions 1 and 2 on stores 1-3; store 4 starts empty.
    cluster = await ProcessCluster.start({ stores: 4, regionStores: [1, 2, 3], raftTickMs: 50 });
    const c = cluster;
    const leader = await c.waitForLeader(1);
    expect((await status(c, 4, 1n)).known).toBe(false);
    const client = c.client({ timeoutMs: 20_000, rpcTimeoutMs: 3000 });
    await putAll(client, keys('a', 100));

    const expanded = await expand({
      addr: c.address(leader)!,
      regionId: 1n,
      targets: [{ storeId: 4n, peerId: 401n, addr: c.address(4)! }],
      waitMs: 30_000,
      pollIntervalMs: 50,
    });
    expect(BigInt(expanded.added[0]!.snapshotBytes)).toBeGreaterThan(0n);
    expect(expanded.region?.peers.map((p) => p.peerId)).toContain(401n);
    await putAll(client, keys('b', 20));

    // SIGKILL the new replica; the other three keep a quorum of the four voters and go on.
    await c.kill(4);
    await putAll(client, keys('c', 20));
    await c.startStore(4);
    const target = await appliedOnLeader(c, 1n);
    let after: RuntimeStatus | undefined;
    await eventually(c, 'store 4 to host region 1 as a member again and catch up', async () => {
      after = await status(c, 4, 1n);
      return after.hosted && after.member && after.appliedIndex >= target;
    });
    expect(after).toMatchObject({
      known: true,
      hosted: true,
      member: true,
      tombstone: false,
      localPeerId: 401n,
    });
    expect(after!.region?.peers.map((p) => p.storeId).sort()).toEqual([1n, 2n, 3n, 4n]);

    // Leadership moves to the restarted replica, and it alone serves every key.
    await moveLeader(c, 1n, 4, 401n);
    const region = (await status(c, 4, 1n)).region!;
    await expectAll(pinnedClient(c, 4, region), [...keys('a', 100), ...keys('b', 20), ...keys('c', 20)]);
  });
  test('a removed replica restarts as a tombstone, is not re-created, and the region goes on without it', {
    timeout: 120_000,
  }, async () => {
    cluster = await ProcessCluster.start({ raftTickMs: 50 });
    const c = cluster;
    const leader = await c.waitForLeader(1);
    await c.waitForLeader(2);
    const victim = c.storeIds().find((id) => id !== leader)!;
    const victimPeer = BigInt(victim * 100 + 1);
    const client = c.client({ timeoutMs: 20_000, rpcTimeoutMs: 3000 });
    await putAll(client, [...keys('a', 50), ...keys('x', 10)]);

    const removed = await removePeer({
      addr: c.address(leader)!,
      targetAddr: c.address(victim)!,
      regionId: 1n,
      peerId: victimPeer,
      waitMs: 20_000,
      pollIntervalMs: 50,
    });
    expect(removed.region?.peers.some((p) => p.peerId === victimPeer)).toBe(false);
    await c.kill(victim);
    await c.startStore(victim);

    const after = await status(c, victim, 1n);
    expect(after).toMatchObject({ known: true, hosted: false, member: false, tombstone: true });
    expect(after.localPeerId).toBe(victimPeer);
    // Its other region is back.
    await eventually(c, `store ${victim} to host region 2`, async () => (await status(c, victim, 2n)).hosted);

    // Writes go on with the two remaining voters; the leader's membership does not list the victim.
    await putAll(client, keys('b', 30));
    await expectAll(client, [...keys('a', 50), ...keys('b', 30), ...keys('x', 10)]);
    const now = await c.waitForLeader(1);
    const membership = (await status(c, now, 1n)).region!;
    expect(membership.peers.map((p) => p.storeId).sort()).toEqual(
      c
        .storeIds()
        .filter((id) => id !== victim)
        .map(BigInt)
        .sort(),
    );
    expect(membership.peers.some((p) => p.peerId === victimPeer)).toBe(false);
    // The leader's traffic (new entries, heartbeats) does not bring the replica back.
    const applied = (await status(c, now, 1n)).appliedIndex;
    await putAll(client, keys('c', 10));
    await eventually(c, 'the remaining follower to apply the new writes', async () => {
      const other = c.storeIds().find((id) => id !== victim && id !== now)!;
      return (await status(c, other, 1n)).appliedIndex > applied;
    });
    expect(await status(c, victim, 1n)).toMatchObject({ hosted: false, tombstone: true });
  });

  test('after the leader store is killed and restarts, a RemovePeer and an AddPeer with a new peer id succeed', {
    timeout: 120_000,
  }, async () => {
    cluster = await ProcessCluster.start({ raftTickMs: 50 });
    const c = cluster;
    const admin = admins(c);
    const first = await c.waitForLeader(1);
    const client = c.client({ timeoutMs: 20_000, rpcTimeoutMs: 3000 });
    await putAll(client, keys('a', 50));

    await c.kill(first);
    const next = await c.waitForLeader(1, 20_000, first);
    await putAll(client, keys('b', 30));
    await c.startStore(first);
    const target = await appliedOnLeader(c, 1n);
    await eventually(c, `store ${first} to catch up`, async () => {
      const s = await status(c, first, 1n);
      return s.hosted && s.member && s.appliedIndex >= target;
    });

    // The restarted store's replica is replaced by a new one (a new peer id) on the same store.
    const leader = await c.waitForLeader(1);
    const victim = leader === first ? next : first;
    const oldPeer = BigInt(victim * 100 + 1);
    const newPeer = BigInt(victim * 100 + 11);
    await removePeer({
      addr: c.address(leader)!,
      targetAddr: c.address(victim)!,
      regionId: 1n,
      peerId: oldPeer,
      waitMs: 20_000,
      pollIntervalMs: 50,
    });
    await putAll(client, keys('c', 20));
    let added: { bytes: bigint; region: RegionMeta } | undefined;
    // The removed replica's state is destroyed in the background; the install waits for it.
    await eventually(c, `AddPeer of peer ${newPeer} on store ${victim}`, async () => {
      const l = await c.waitForLeader(1);
      const res = await admin(l).call(
        RaftAdminService.AddPeer,
        { regionId: u64(1n), storeId: u64(BigInt(victim)), peerId: u64(newPeer) },
        { deadlineMs: 20_000 },
      );
      if (res.regionError) return false;
      added = { bytes: uint64FromWire(res.snapshotBytes), region: regionFromWire(res.region!) };
      return true;
    });
    expect(added!.region.peers.find((p) => p.storeId === BigInt(victim))?.peerId).toBe(newPeer);
    expect(added!.region.peers).toHaveLength(3);
    expect(added!.bytes).toBeGreaterThan(0n);
    await putAll(client, keys('d', 20));
    const applied = await appliedOnLeader(c, 1n);
    await eventually(c, `peer ${newPeer} to join and catch up`, async () => {
      const s = await status(c, victim, 1n);
      return s.hosted && s.member && s.localPeerId === newPeer && s.appliedIndex >= applied;
    });

    const all = [...keys('a', 50), ...keys('b', 30), ...keys('c', 20), ...keys('d', 20)];
    await expectAll(client, all);
    // The new replica holds everything: it leads and serves every key alone.
    await moveLeader(c, 1n, victim, newPeer);
    await expectAll(pinnedClient(c, victim, (await status(c, victim, 1n)).region!), all);
  });
  test('a split and then a merge survive SIGKILLs of every store, one after another and all at once', {
    timeout: 180_000,
  }, async () => {
    cluster = await ProcessCluster.start({ raftTickMs: 50 });
    const c = cluster;
    const admin = admins(c);
    const storeIds = c.storeIds().map(BigInt);
    const ops = { admin, storeIds, timeoutMs: 30_000 };
    await c.waitForLeader(1);
    await c.waitForLeader(2);
    const client = c.client({ timeoutMs: 20_000, rpcTimeoutMs: 3000 });
    // Region 1 is [-, m): 'a…' stays left of the split key 'f', 'g…' goes right; 'x…' is region 2.
    const written: string[] = [];
    const write = async (ks: string[]) => {
      await putAll(client, ks);
      written.push(...ks);
    };
    await write([...keys('a', 40), ...keys('g', 40), ...keys('x', 10)]);

    const { left, right } = await splitRegion({
      ...ops,
      regionId: 1n,
      splitKey: Buffer.from('f'),
      newRegionId: 10n,
      newPeerIds: [1010n, 2010n, 3010n],
    });
    expect(str(left.endKey)).toBe('f');
    expect(right).toMatchObject({ id: 10n });
    expect([str(right.startKey), str(right.endKey)]).toEqual(['f', 'm']);
    expect(right.peers.map((p) => p.peerId)).toEqual([1010n, 2010n, 3010n]);
    const splitEverywhere = async () => {
      for (const id of c.storeIds()) {
        const l = await status(c, id, 1n);
        const r = await status(c, id, 10n);
        if (!l.hosted || !r.hosted || str(l.region!.endKey) !== 'f') return false;
        if (str(r.region!.startKey) !== 'f' || str(r.region!.endKey) !== 'm') return false;
        if (r.localPeerId !== BigInt(id * 1000 + 10)) return false;
      }
      return true;
    };
    await eventually(c, 'every store to hold both halves', splitEverywhere);
    await c.waitForLeader(10);
    await write([...keys('b', 20), ...keys('h', 20)]);

    // One store after another: the other two keep both halves available.
    for (const id of c.storeIds()) {
      await c.kill(id);
      await write([`a-down-${id}`, `h-down-${id}`]);
      await c.startStore(id);
    }
    // All together.
    await Promise.all(c.storeIds().map((id) => c.kill(id)));
    await Promise.all(c.storeIds().map((id) => c.startStore(id)));
    for (const r of [1, 10, 2]) await c.waitForLeader(r, 20_000);
    expect(await splitEverywhere()).toBe(true);
    // A fresh client routes by the topology (region 1 before the split): the stores correct it.
    const fresh = c.client({ timeoutMs: 20_000, rpcTimeoutMs: 3000 });
    await expectAll(fresh, written);
    await write(['a-after-restart', 'h-after-restart']);

    // Merge region 10 back into region 1 (its left neighbour).
    const merged = await mergeRegions({ ...ops, sourceRegionId: 10n, targetRegionId: 1n });
    expect(merged.alreadyMerged).toBe(false);
    expect([str(merged.region.startKey), str(merged.region.endKey)]).toEqual(['', 'm']);
    const mergedEverywhere = async () => {
      for (const id of c.storeIds()) {
        const t = await status(c, id, 1n);
        const s = await status(c, id, 10n);
        if (!t.hosted || str(t.region!.startKey) !== '' || str(t.region!.endKey) !== 'm') return false;
        if (s.hosted || !s.tombstone) return false;
      }
      return true;
    };
    await eventually(c, 'every store to hold the merged region only', mergedEverywhere);
    await write(['g-after-merge', 'b-after-merge']);

    await Promise.all(c.storeIds().map((id) => c.kill(id)));
    await Promise.all(c.storeIds().map((id) => c.startStore(id)));
    await c.waitForLeader(1, 20_000);
    await c.waitForLeader(2, 20_000);
    expect(await mergedEverywhere()).toBe(true);
    const afterMerge = c.client({ timeoutMs: 20_000, rpcTimeoutMs: 3000 });
    await expectAll(afterMerge, written);
    // Keys of the merged-away range are written through region 1; region 10 stays gone.
    const applied = await appliedOnLeader(c, 1n);
    const last = ['g-final', 'h-final'];
    await putAll(afterMerge, last);
    written.push(...last);
    await eventually(c, 'every store to apply the last writes', async () => {
      for (const id of c.storeIds()) if ((await status(c, id, 1n)).appliedIndex <= applied) return false;
      return true;
    });
    expect(await mergedEverywhere()).toBe(true);
    expect(await mergeRegions({ ...ops, sourceRegionId: 10n, targetRegionId: 1n })).toMatchObject({
      alreadyMerged: true,
    });
    await expectAll(afterMerge, written);
  });
  test('a partitioned follower process catches up by a Raft snapshot once the partition heals', {
    timeout: 120_000,
  }, async () => {
    // A short log: the leader compacts past the cut-off follower quickly.
    cluster = await ProcessCluster.start({
      raftTickMs: 50,
      storeArgs: ['--enable-fault-injection', '--raft-log-retain', '5'],
    });
    const c = cluster;
    const admin = admins(c);
    const leader = await c.waitForLeader(1);
    const follower = c.storeIds().find((id) => id !== leader)!;
    const client = c.client({ timeoutMs: 20_000, rpcTimeoutMs: 3000 });
    await putAll(client, keys('before', 20));
    const installedBefore = await snapshotsInstalled(c, follower);
    // Cut the follower off both ways (each store drops what it sends across the link).
    const cut = async (block: boolean) => {
      for (const other of c.storeIds().filter((id) => id !== follower)) {
        await admin(other).call(RaftAdminService.SetLinkFault, {
          toStoreId: u64(BigInt(follower)),
          block,
          clear: !block,
        });
        await admin(follower).call(RaftAdminService.SetLinkFault, {
          toStoreId: u64(BigInt(other)),
          block,
          clear: !block,
        });
      }
    };
    await cut(true);
    const cutAt = (await status(c, follower, 1n)).appliedIndex;
    await putAll(client, keys('during', 400));
    // The follower saw none of it while cut off.
    expect((await status(c, follower, 1n)).appliedIndex).toBe(cutAt);
    await cut(false);
    const target = await appliedOnLeader(c, 1n);
    await eventually(
      c,
      'the follower to catch up',
      async () => (await status(c, follower, 1n)).appliedIndex >= target,
    );
    expect(await snapshotsInstalled(c, follower)).toBeGreaterThan(installedBefore);
    // It holds everything: it leads and serves every key alone.
    await moveLeader(c, 1n, follower, BigInt(follower * 100 + 1));
    const region = (await status(c, follower, 1n)).region!;
    await expectAll(pinnedClient(c, follower, region), [...keys('before', 20), ...keys('during', 400)]);
  });

  test('membership changes under repeated link flaps between store processes converge', {
    timeout: 180_000,
  }, async () => {
    cluster = await ProcessCluster.start({
      stores: 4,
      regionStores: [1, 2, 3],
      raftTickMs: 50,
      storeArgs: ['--enable-fault-injection'],
    });
    const c = cluster;
    const admin = admins(c);
    await c.waitForLeader(1);
    const client = c.client({ timeoutMs: 30_000, rpcTimeoutMs: 3000 });
    // Flap one random link at a time every 150 ms (seeded: the same schedule every run).
    let seed = 7;
    const rnd = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    let flapping = true;
    let faultsSet = 0;
    const ids = c.storeIds();
    const flaps = (async () => {
      while (flapping) {
        const from = ids[Math.floor(rnd() * ids.length)]!;
        const to = ids.filter((x) => x !== from)[Math.floor(rnd() * (ids.length - 1))]!;
        const fault = rnd() < 0.5 ? { block: true } : { drop: 0.3 };
        await admin(from)
          .call(RaftAdminService.SetLinkFault, { toStoreId: u64(BigInt(to)), ...fault })
          .then(() => faultsSet++)
          .catch(() => {});
        await new Promise((r) => setTimeout(r, 100));
        await admin(from)
          .call(RaftAdminService.SetLinkFault, { toStoreId: u64(BigInt(to)), clear: true })
          .catch(() => {});
      }
    })();
    const written: string[] = [];
    try {
      // Store 4's replica joins and leaves five times with fresh peer ids, writes in between.
      for (let round = 0; round < 5; round++) {
        const peerId = BigInt(4000 + round);
        await eventually(
          c,
          `peer ${peerId} added`,
          async () => {
            const leader = await c.waitForLeader(1);
            await expand({
              addr: c.address(leader)!,
              regionId: 1n,
              targets: [{ storeId: 4n, peerId, addr: c.address(4)! }],
              waitMs: 10_000,
              pollIntervalMs: 50,
            });
            return true;
          },
          60_000,
        );
        const batch = keys(`r${round}-`, 20);
        await putAll(client, batch);
        written.push(...batch);
        // Let the links flap a few times while the new member is in the configuration.
        const flapsBefore = faultsSet;
        await c.waitFor('links to flap', async () => faultsSet >= flapsBefore + 2, 10_000);
        await eventually(
          c,
          `peer ${peerId} removed`,
          async () => {
            const leader = await c.waitForLeader(1);
            await removePeer({
              addr: c.address(leader)!,
              targetAddr: c.address(4)!,
              regionId: 1n,
              peerId,
              waitMs: 10_000,
              pollIntervalMs: 50,
            });
            return true;
          },
          60_000,
        );
      }
    } finally {
      flapping = false;
      await flaps;
      for (const from of ids)
        for (const to of ids)
          if (from !== to)
            await admin(from)
              .call(RaftAdminService.SetLinkFault, { toStoreId: u64(BigInt(to)), clear: true })
              .catch(() => {});
    }
    expect(faultsSet).toBeGreaterThanOrEqual(10);
    // Converged: stores 1-3 agree on the region, store 4 hosts nothing, every write is there.
    let views: RuntimeStatus[] = [];
    await eventually(
      c,
      'stores 1-3 to agree on region 1',
      async () => {
        views = await Promise.all([1, 2, 3].map((id) => status(c, id, 1n)));
        const epochs = new Set(views.map((v) => `${v.region?.epoch.version}/${v.region?.epoch.confVersion}`));
        const applied = new Set(views.map((v) => String(v.appliedIndex)));
        return views.every((v) => v.hosted && v.member) && epochs.size === 1 && applied.size === 1;
      },
      30_000,
    );
    expect(views[0]!.region?.peers.map((p) => p.storeId).sort()).toEqual([1n, 2n, 3n]);
    expect(views.filter((v) => v.leader)).toHaveLength(1);
    await eventually(c, 'store 4 to host nothing', async () => !(await status(c, 4, 1n)).hosted);
    await expectAll(client, written);
  });
});
