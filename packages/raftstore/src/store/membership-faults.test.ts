import { status as GrpcStatus } from '@grpc/grpc-js';
import { RaftAdminService, type RegionMeta, RegionState, uint64FromWire, uint64ToWire } from '@nokv/proto';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { ClientError } from '../client/raw-client.js';
import { createClient, type RpcClient, RpcError } from '../grpc/index.js';
import { sleep, TestCluster } from '../testing/cluster.js';
import { seededRandom } from '../transport/faults.js';
import { readValue } from './reads.js';

// Membership changes under faults, in process with real gRPC between the stores: an AddPeer whose
// snapshot cannot be exported or whose leader steps down half way, membership changes while links
// flap, and a follower cut off long enough that only a Raft snapshot can catch it up.

type AdminClient = RpcClient<typeof RaftAdminService>;

let cluster: TestCluster | undefined;
const clients: AdminClient[] = [];

afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of clients.splice(0)) c.close();
  await cluster?.stop();
  cluster = undefined;
});

const u64 = (v: bigint) => uint64ToWire(v, 'test');
const enc = (s: string) => Buffer.from(s);

function admin(c: TestCluster, storeId: bigint): AdminClient {
  const client = createClient(RaftAdminService, c.address(storeId)!);
  clients.push(client);
  return client;
}

/** One region [-, +inf) with a peer on each of `stores` (peer id = store id * 100 + 1). */
function oneRegion(stores: bigint[]): RegionMeta[] {
  return [
    {
      id: 1n,
      startKey: new Uint8Array(0),
      endKey: new Uint8Array(0),
      epoch: { version: 1n, confVersion: 1n },
      peers: stores.map((s) => ({ storeId: s, peerId: s * 100n + 1n, learner: false })),
      state: RegionState.Running,
    },
  ];
}

async function putKeys(c: TestCluster, prefix: string, n: number): Promise<string[]> {
  const client = c.client({ timeoutMs: 10_000 });
  const keys = Array.from({ length: n }, (_, i) => `${prefix}${i}`);
  await Promise.all(keys.map((k) => client.put(k, `v-${k}`)));
  return keys;
}

/** Every key is in the store's engine with its value. */
async function holdsAll(c: TestCluster, storeId: bigint, keys: string[]): Promise<boolean> {
  for (const k of keys) {
    if ((await readValue(c.store(storeId).db, enc(k)))?.toString() !== `v-${k}`) return false;
  }
  return true;
}

describe('AddPeer when the snapshot cannot be exported', () => {
  test('an export that fails, or a store that does not lead, leaves the target empty; a retry succeeds', {
    timeout: 60_000,
  }, async () => {
    const c = await TestCluster.start({ stores: 4, regions: oneRegion([1n, 2n, 3n]) });
    cluster = c;
    const keys = await putKeys(c, 'k', 60);
    const leader = await c.waitForLeader(1n);
    const confVersion = leader.peer.region.epoch.confVersion;
    const add = (storeId: bigint, peerId = 401n) =>
      admin(c, storeId).call(
        RaftAdminService.AddPeer,
        { regionId: u64(1n), storeId: u64(4n), peerId: u64(peerId) },
        { deadlineMs: 20_000 },
      );
    const expectTargetEmpty = async () => {
      const s = await c.store(4n).regionRuntimeStatus(1n);
      expect(s).toMatchObject({ known: false, hosted: false, member: false, tombstone: false });
      expect(c.store(4n).peer(1n)).toBeUndefined();
      expect(await readValue(c.store(4n).db, enc('k1'))).toBeUndefined();
      const l = await c.waitForLeader(1n);
      expect(l.peer.region.epoch.confVersion).toBe(confVersion);
      expect(l.peer.region.peers.some((p) => p.storeId === 4n)).toBe(false);
    };

    // 1. The leader cannot read the region (an injected I/O error in the export).
    const gen = vi
      .spyOn(leader.peer.storage, 'generateSnapshotNow')
      .mockRejectedValueOnce(new Error('injected: cannot read the region'));
    const failed = await add(leader.storeId).catch((e: unknown) => e);
    expect(gen).toHaveBeenCalledTimes(1);
    expect(failed).toBeInstanceOf(RpcError);
    expect((failed as RpcError).status).toBe(GrpcStatus.INTERNAL);
    expect((failed as RpcError).details).toMatch(/injected: cannot read the region/);
    const sent = c
      .store(leader.storeId)
      .snapshotProgress()
      .find((t) => t.kind === 'admin' && t.direction === 'send');
    expect(sent).toMatchObject({ stage: 'failed', regionId: 1n, peerStoreId: 4n, bytesDone: 0 });
    expect(sent!.error).toMatch(/injected/);
    // Nothing reached the target.
    expect(c.store(4n).snapshotProgress()).toEqual([]);
    await expectTargetEmpty();

    // 2. Asked of a follower (it names the leader) or of a store without the region.
    const follower = [1n, 2n, 3n].find((s) => s !== leader.storeId)!;
    const notLeader = await add(follower);
    expect(notLeader.regionError?.notLeader).toBeTruthy();
    expect(uint64FromWire(notLeader.regionError!.notLeader!.leader?.storeId)).toBe(leader.storeId);
    const notHosted = await add(4n);
    expect(notHosted.regionError?.regionNotFound).toBeTruthy();
    await expectTargetEmpty();

    // 3. The retry on the leader succeeds, and the new peer holds every key.
    const ok = await add(leader.storeId);
    expect(ok.regionError).toBeFalsy();
    expect(uint64FromWire(ok.snapshotBytes)).toBeGreaterThan(0n);
    await c.waitFor('peer 401 to join with every key', async () => {
      const s = await c.store(4n).regionRuntimeStatus(1n);
      return s.member && s.localPeerId === 401n && (await holdsAll(c, 4n, keys));
    });
  });

  test('a leader that steps down between the install and the membership change: NotLeader, then the retry on the new leader finishes it', {
    timeout: 60_000,
  }, async () => {
    const c = await TestCluster.start({ stores: 4, regions: oneRegion([1n, 2n, 3n]) });
    cluster = c;
    const keys = await putKeys(c, 'k', 60);
    const leader = await c.waitForLeader(1n);
    const store = c.store(leader.storeId);
    const successor = [1n, 2n, 3n].find((s) => s !== leader.storeId)!;
    const changePeer = store.changePeer.bind(store);
    const spy = vi.spyOn(store, 'changePeer').mockImplementationOnce(async (...args) => {
      // The snapshot is installed on the target; leadership moves away before the proposal.
      leader.peer.transferLeader(successor * 100n + 1n);
      await c.waitFor('the old leader to step down', () => !leader.peer.isLeader, 5000);
      return changePeer(...args);
    });
    const res = await admin(c, leader.storeId).call(
      RaftAdminService.AddPeer,
      { regionId: u64(1n), storeId: u64(4n), peerId: u64(401n) },
      { deadlineMs: 20_000 },
    );
    expect(spy).toHaveBeenCalledTimes(1);
    expect(res.regionError?.notLeader).toBeTruthy();
    // The target holds the install, unjoined: a PENDING peer that is not a member and cannot vote.
    const pending = await c.store(4n).regionRuntimeStatus(1n);
    expect(pending).toMatchObject({ known: true, hosted: true, member: false, localPeerId: 401n });
    expect(c.store(4n).peer(1n)!.region.state).toBe(RegionState.Pending);
    const next = await c.waitForLeader(1n, 5000, leader.storeId);
    expect(next.peer.region.peers.some((p) => p.storeId === 4n)).toBe(false);

    // The retry, on the new leader: the target answers the install as done, the peer is added.
    await putKeys(c, 'm', 20);
    const retry = await admin(c, next.storeId).call(
      RaftAdminService.AddPeer,
      { regionId: u64(1n), storeId: u64(4n), peerId: u64(401n) },
      { deadlineMs: 20_000 },
    );
    expect(retry.regionError).toBeFalsy();
    expect(retry.region?.peers?.some((p) => uint64FromWire(p.peerId) === 401n)).toBe(true);
    const all = [...keys, ...Array.from({ length: 20 }, (_, i) => `m${i}`)];
    await c.waitFor(
      'peer 401 to join and catch up',
      async () => {
        const s = await c.store(4n).regionRuntimeStatus(1n);
        return s.member && c.store(4n).peer(1n)?.region.state === RegionState.Running && holdsAll(c, 4n, all);
      },
      10_000,
    );
  });
});

describe('membership changes while links flap', () => {
  test('peers added and removed in rounds under flapping links converge on one membership, one leader and every acknowledged write', {
    timeout: 90_000,
  }, async () => {
    const c = await TestCluster.start({ stores: 4, regions: oneRegion([1n, 2n, 3n]) });
    cluster = c;
    await c.waitForLeader(1n);
    const stores = c.storeIds();
    const log: string[] = [];
    const fail = (what: string, last: unknown) =>
      new Error(
        `${what} (last: ${last instanceof Error ? last.message : String(last)}; ${log.slice(-8).join(' | ')})`,
      );

    // Faults: every 100 ms a random link gets blocked or drops 30 %; at most two links are faulty.
    const rand = seededRandom(7);
    const faulty: [bigint, bigint][] = [];
    let flaps = 0;
    const flapper = setInterval(() => {
      if (faulty.length >= 2) {
        const [a, b] = faulty.shift()!;
        if (c.isRunning(a)) c.store(a).transport.clearLinkFault(b);
      }
      const a = stores[Math.floor(rand() * stores.length)]!;
      const others = stores.filter((s) => s !== a);
      const b = others[Math.floor(rand() * others.length)]!;
      const fault = rand() < 0.5 ? { block: true } : { drop: 0.3 };
      if (c.isRunning(a)) c.store(a).transport.setLinkFault(b, fault);
      faulty.push([a, b]);
      flaps++;
    }, 100);

    // A writer: what it was told succeeded must survive.
    const client = c.client({ timeoutMs: 3000, rpcTimeoutMs: 1000 });
    const acked: string[] = [];
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        const k = `w${i}`;
        try {
          await client.put(k, `v-${k}`);
          acked.push(k);
        } catch (err) {
          if (!(err instanceof ClientError)) throw err;
        }
      }
    })();

    /** Runs `attempt` on the current leader until `done` holds. */
    const onLeader = async (
      what: string,
      done: (leader: { storeId: bigint; region: RegionMeta }) => boolean | Promise<boolean>,
      attempt: (leaderStore: bigint) => Promise<unknown>,
    ) => {
      const deadline = Date.now() + 20_000;
      let last: unknown = 'no attempt';
      for (;;) {
        if (Date.now() > deadline) throw fail(`timed out: ${what}`, last);
        const l = c.leader(1n);
        if (!l) {
          await sleep(50);
          continue;
        }
        if (await done({ storeId: l.storeId, region: l.peer.region })) return;
        try {
          const res = (await attempt(l.storeId)) as { regionError?: { message?: string | null } | null };
          if (res?.regionError) last = res.regionError.message;
        } catch (err) {
          last = err;
        }
        await sleep(50);
      }
    };

    let members = [1n, 2n, 3n];
    const rounds = 8;
    try {
      for (let round = 1; round <= rounds; round++) {
        // Pacing: at least five flaps per round, so every change meets several fault patterns.
        await c.waitFor('the links to flap', () => flaps >= round * 5, 5000);
        // Add a peer (a new id every time) on the store that has none.
        const target = stores.find((s) => !members.includes(s))!;
        const peerId = target * 100n + BigInt(round) * 10n + 1n;
        log.push(`round ${round}: add ${peerId} on store ${target}`);
        await onLeader(
          `AddPeer ${peerId}`,
          (l) => l.region.peers.some((p) => p.peerId === peerId),
          (leader) =>
            admin(c, leader).call(
              RaftAdminService.AddPeer,
              { regionId: u64(1n), storeId: u64(target), peerId: u64(peerId) },
              { deadlineMs: 5000 },
            ),
        );
        await c.waitFor(
          `peer ${peerId} to join`,
          async () => {
            const s = await c.store(target).regionRuntimeStatus(1n);
            return s.member && s.localPeerId === peerId;
          },
          20_000,
        );
        // Remove another member that does not lead right now (leadership is moved away if it comes to).
        const leaderNow = (await c.waitForLeader(1n, 10_000)).storeId;
        const victim = members.find((s) => s !== leaderNow)!;
        const victimPeer = c.store(victim).peer(1n)!.peerId;
        log.push(`round ${round}: remove ${victimPeer} on store ${victim}`);
        await onLeader(
          `RemovePeer ${victimPeer}`,
          (l) => !l.region.peers.some((p) => p.peerId === victimPeer),
          async (leader) => {
            if (leader === victim) {
              const to = c
                .store(leader)
                .peer(1n)!
                .region.peers.find((p) => p.storeId !== victim && !p.learner)!;
              c.store(leader).transferLeader(1n, to.peerId);
              return undefined;
            }
            return admin(c, leader).call(
              RaftAdminService.RemovePeer,
              { regionId: u64(1n), peerId: u64(victimPeer) },
              { deadlineMs: 5000 },
            );
          },
        );
        members = [...members.filter((s) => s !== victim), target];
        await c.waitFor(
          `store ${victim} to drop peer ${victimPeer}`,
          async () => !(await c.store(victim).regionRuntimeStatus(1n)).hosted,
          20_000,
        );
      }
    } finally {
      writing = false;
      clearInterval(flapper);
      await writer;
    }
    c.heal();
    expect(flaps).toBeGreaterThanOrEqual(rounds * 5);
    expect(acked.length).toBeGreaterThan(10);

    // One leader; every member on the same membership, epoch and applied index; no one else hosts it.
    await c.waitFor(
      'the stores to agree',
      () => {
        const leaders = stores.filter((s) => c.store(s).peer(1n)?.isLeader);
        if (leaders.length !== 1) return false;
        const lead = c.store(leaders[0]!).peer(1n)!;
        const ids = lead.region.peers.map((p) => p.storeId);
        for (const s of stores) {
          const p = c.store(s).peer(1n);
          if (!ids.includes(s)) {
            if (p !== undefined) return false;
            continue;
          }
          if (!p || p.region.epoch.confVersion !== lead.region.epoch.confVersion) return false;
          if (p.region.epoch.version !== lead.region.epoch.version) return false;
          if (p.region.peers.map((x) => x.peerId).join() !== lead.region.peers.map((x) => x.peerId).join())
            return false;
          if (p.storage.appliedIndex !== lead.storage.appliedIndex) return false;
        }
        return true;
      },
      15_000,
    );
    const lead = (await c.waitForLeader(1n)).peer;
    expect(lead.region.peers.map((p) => p.storeId).sort()).toEqual([...members].sort());
    expect(lead.region.epoch.confVersion).toBe(1n + 2n * BigInt(rounds));
    const reader = c.client({ timeoutMs: 10_000 });
    const values = await Promise.all(acked.map(async (k) => (await reader.get(k))?.toString()));
    expect(values).toEqual(acked.map((k) => `v-${k}`));
    for (const s of members) {
      for (const k of acked) expect((await readValue(c.store(s).db, enc(k)))?.toString()).toBe(`v-${k}`);
    }
  });
});

describe('a removed peer that missed its removal', () => {
  test('is told so by the members once it can reach them, destroys itself, stays gone after a restart, and its store takes a new peer', {
    timeout: 60_000,
  }, async () => {
    const c = await TestCluster.start({ regions: oneRegion([1n, 2n, 3n]) });
    cluster = c;
    const keys = await putKeys(c, 'z', 20);
    const leader = await c.waitForLeader(1n);
    const victim = [1n, 2n, 3n].find((s) => s !== leader.storeId)!;
    const victimPeer = victim * 100n + 1n;
    await c.waitFor('the victim to hold the data', () => holdsAll(c, victim, keys));
    // Cut off while it is removed: the change commits without it, and the leader stops talking to it.
    c.isolate([victim]);
    const region = await c.store(leader.storeId).removePeer(1n, victimPeer, 5000);
    expect(region.peers.some((p) => p.peerId === victimPeer)).toBe(false);
    const stale = c.store(victim).peer(1n)!;
    expect(stale.region.peers.some((p) => p.peerId === victimPeer)).toBe(true);
    expect(stale.region.epoch.confVersion).toBeLessThan(region.epoch.confVersion);

    // Healed, its campaign reaches the members, which answer that it is not in the region any more.
    c.heal();
    await c.waitFor(
      'the removed peer to destroy itself',
      async () => {
        const s = await c.store(victim).regionRuntimeStatus(1n);
        return !s.hosted && s.tombstone && (await readValue(c.store(victim).db, enc('z1'))) === undefined;
      },
      10_000,
    );
    expect(stale.isStopped).toBe(true);
    await c.restartStore(victim);
    expect(c.store(victim).peer(1n)).toBeUndefined();
    expect(await c.store(victim).regionRuntimeStatus(1n)).toMatchObject({
      known: true,
      hosted: false,
      tombstone: true,
      localPeerId: victimPeer,
    });
    // The members were never disturbed, and the store can host the region again under a new peer id.
    const l = await c.waitForLeader(1n);
    expect(l.peer.region.epoch.confVersion).toBe(region.epoch.confVersion);
    await c
      .store(l.storeId)
      .addPeer({ regionId: 1n, storeId: victim, peerId: victimPeer + 10n, deadlineMs: 10_000 });
    await c.waitFor('the new peer to join with every key', async () => {
      const s = await c.store(victim).regionRuntimeStatus(1n);
      return s.member && s.localPeerId === victimPeer + 10n && (await holdsAll(c, victim, keys));
    });
  });
});

describe('a follower cut off past the leader’s log', () => {
  test('catches up by a Raft snapshot once the partition heals, and holds every key', {
    timeout: 60_000,
  }, async () => {
    const c = await TestCluster.start({
      regions: oneRegion([1n, 2n, 3n]),
      raft: { logRetainEntries: 10, logCompactBatch: 10 },
    });
    cluster = c;
    const leader = await c.waitForLeader(1n);
    const before = await putKeys(c, 'a', 20);
    const lagging = [1n, 2n, 3n].find((s) => s !== leader.storeId)!;
    await c.waitFor('the follower to apply the first writes', () => holdsAll(c, lagging, before));
    const stuckAt = c.store(lagging).peer(1n)!.storage.appliedIndex;
    c.isolate([lagging]);
    // One entry per put (one at a time): the leader compacts its log well past the follower.
    const client = c.client({ timeoutMs: 10_000 });
    const during: string[] = [];
    for (let i = 0; c.store(leader.storeId).peer(1n)!.storage.truncatedIndex <= stuckAt + 1n; i++) {
      const k = `b${i}`;
      await client.put(k, `v-${k}`);
      during.push(k);
      if (i > 500) throw new Error('the leader never compacted its log');
    }
    const lead = c.store(leader.storeId).peer(1n)!;
    expect(lead.storage.truncatedIndex).toBeGreaterThan(stuckAt);
    expect(c.store(lagging).peer(1n)!.storage.appliedIndex).toBe(stuckAt);
    expect(c.store(lagging).stats().events).not.toHaveProperty('snapshots_installed');

    c.heal();
    const all = [...before, ...during];
    await c.waitFor(
      'the follower to catch up',
      async () =>
        c.store(lagging).peer(1n)!.storage.appliedIndex >= lead.storage.appliedIndex &&
        (await holdsAll(c, lagging, all)),
      15_000,
    );
    // It took a Raft snapshot: counted by the peer, reported by both ends.
    const events = c.store(lagging).stats().events as Record<string, number>;
    expect(events.snapshots_installed).toBeGreaterThanOrEqual(1);
    const received = c
      .store(lagging)
      .snapshotProgress()
      .find((t) => t.kind === 'raft');
    expect(received).toMatchObject({ direction: 'receive', stage: 'done', regionId: 1n });
    expect(received!.bytesDone).toBeGreaterThan(0);
    await c.waitFor('the leader to record the send', () =>
      c
        .store(leader.storeId)
        .snapshotProgress()
        .some(
          (t) =>
            t.kind === 'raft' && t.direction === 'send' && t.stage === 'done' && t.peerStoreId === lagging,
        ),
    );
    // And it takes part again: with the other follower cut off, writes still commit.
    const other = [1n, 2n, 3n].find((s) => s !== leader.storeId && s !== lagging)!;
    c.isolate([other]);
    const after = await putKeys(c, 'c', 10);
    await c.waitFor('the caught-up follower to apply new writes', () => holdsAll(c, lagging, after));
  });
});
