import { createHash, randomBytes } from 'node:crypto';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { type nokv, RaftAdminService, RegionState, uint64FromWire, uint64ToWire } from '@nokv/proto';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { createClient, type RpcClient } from '../grpc/index.js';
import { PeerStorage } from '../peer-storage/index.js';
import { defaultRegions, sleep, TestCluster } from '../testing/cluster.js';
import { regionStateKey } from './keys.js';
import { readValue } from './reads.js';

// Region snapshots between stores over real gRPC: AddPeer (export → stream → install PENDING →
// membership change), the import's refusals, failures that must leave nothing behind, restarts,
// RemovePeer, RegionRuntimeStatus and snapshot progress.

type Chunk = nokv.admin.v1.RegionSnapshotChunk.$Properties;
type AdminClient = RpcClient<typeof RaftAdminService>;

let cluster: TestCluster | undefined;
const clients: AdminClient[] = [];

afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of clients.splice(0)) c.close();
  await cluster?.stop();
  cluster = undefined;
});

/** Four stores; regions 1 [-, m) and 2 [m, +inf) on stores 1-3 only. */
async function startCluster(): Promise<TestCluster> {
  cluster = await TestCluster.start({ stores: 4, regions: defaultRegions(3) });
  await cluster.waitForLeader(1n);
  await cluster.waitForLeader(2n);
  return cluster;
}

function admin(c: TestCluster, storeId: bigint): AdminClient {
  const client = createClient(RaftAdminService, c.address(storeId)!);
  clients.push(client);
  return client;
}

const u64 = (v: bigint) => uint64ToWire(v, 'test');

async function exportSnapshot(
  client: AdminClient,
  regionId: bigint,
): Promise<{ chunks: Chunk[]; data: Buffer }> {
  const chunks: Chunk[] = [];
  for await (const m of client.serverStream(
    RaftAdminService.ExportRegionSnapshotStream,
    { regionId: u64(regionId) },
    { deadlineMs: 10_000 },
  )) {
    chunks.push({ ...(m.header ? { header: m.header } : {}), ...(m.data?.length ? { data: m.data } : {}) });
  }
  const data = Buffer.concat(chunks.filter((c) => c.data).map((c) => c.data!));
  return { chunks, data };
}

async function importStream(client: AdminClient, messages: Chunk[]) {
  const s = client.openClientStream(RaftAdminService.ImportRegionSnapshotStream, { deadlineMs: 10_000 });
  try {
    for (const m of messages) await s.write(m);
  } catch {
    // The call ended early; its response says why.
  }
  return s.end();
}

/** Store `storeId` holds nothing of region `regionId`: no peer, no state, none of its data. */
async function expectNothingHosted(c: TestCluster, storeId: bigint, regionId: bigint, probeKeys: string[]) {
  const store = c.store(storeId);
  expect(store.peer(regionId)).toBeUndefined();
  expect(await store.db.get(regionStateKey(regionId))).toBeUndefined();
  for (const k of probeKeys) expect(await readValue(store.db, Buffer.from(k))).toBeUndefined();
  const status = await store.regionRuntimeStatus(regionId);
  expect(status.hosted).toBe(false);
}

async function putKeys(c: TestCluster, prefix: string, n: number, value = (i: number) => `v${i}`) {
  const client = c.client({ timeoutMs: 10_000 });
  for (let i = 0; i < n; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, n - i) }, (_, j) => client.put(`${prefix}${i + j}`, value(i + j))),
    );
  }
}

describe('AddPeer with a region snapshot', () => {
  test('the snapshot streams to a fourth store; the new peer catches up, leads and serves every key', {
    timeout: 60_000,
  }, async () => {
    const c = await startCluster();
    await putKeys(c, 'a', 200);
    const leader = await c.waitForLeader(1n);
    const res = await admin(c, leader.storeId).call(
      RaftAdminService.AddPeer,
      { regionId: u64(1n), storeId: u64(4n), peerId: u64(401n) },
      { deadlineMs: 20_000 },
    );
    expect(res.regionError).toBeFalsy();
    const bytes = Number(uint64FromWire(res.snapshotBytes));
    expect(bytes).toBeGreaterThan(1000);
    const peers = (res.region?.peers ?? []).map((p) => String(uint64FromWire(p.peerId)));
    expect(peers).toContain('401');
    // Writes after the snapshot reach the new peer through the log.
    await putKeys(c, 'b', 20);
    const store4 = c.store(4n);
    await c.waitFor(
      'the new peer to join and apply everything',
      async () => {
        const p = store4.peer(1n);
        if (p?.region.state !== RegionState.Running) return false;
        return (await readValue(store4.db, Buffer.from('b19')))?.toString() === 'v19';
      },
      15_000,
    );
    // The admin snapshot was its base: the log did the rest, no Raft snapshot was needed.
    expect(store4.snapshotProgress().some((t) => t.kind === 'raft')).toBe(false);
    const status = await store4.regionRuntimeStatus(1n);
    expect(status).toMatchObject({
      known: true,
      hosted: true,
      member: true,
      localPeerId: 401n,
      tombstone: false,
    });
    // Both ends recorded the admin transfer.
    const sent = c
      .store(leader.storeId)
      .snapshotProgress()
      .find((t) => t.kind === 'admin');
    expect(sent).toMatchObject({ direction: 'send', stage: 'done', regionId: 1n, peerStoreId: 4n });
    expect(sent!.bytesDone).toBe(bytes);
    expect(sent!.bytesTotal).toBe(bytes);
    const received = store4.snapshotProgress().find((t) => t.kind === 'admin');
    expect(received).toMatchObject({
      direction: 'receive',
      stage: 'done',
      bytesDone: bytes,
      peerStoreId: BigInt(leader.storeId),
    });
    // The new peer takes over leadership and serves every key.
    await c.waitFor(
      'peer 401 to lead',
      () => {
        const l = c.leader(1n);
        if (l?.storeId === 4n) return true;
        try {
          l?.peer.transferLeader(401n);
        } catch {
          // Leadership is moving; try again.
        }
        return false;
      },
      15_000,
    );
    const region = store4.peer(1n)!.region;
    const keys = [
      ...Array.from({ length: 200 }, (_, i) => `a${i}`),
      ...Array.from({ length: 20 }, (_, i) => `b${i}`),
    ];
    const values = await store4.batchGet(
      { regionId: 1n, epoch: region.epoch, storeId: 4n },
      keys.map((k) => Buffer.from(k)),
    );
    expect(values.map((v) => v?.toString())).toEqual([
      ...Array.from({ length: 200 }, (_, i) => `v${i}`),
      ...Array.from({ length: 20 }, (_, i) => `v${i}`),
    ]);
    // Asking again changes nothing: the peer is a member already.
    const again = await admin(c, 4n).call(RaftAdminService.AddPeer, {
      regionId: u64(1n),
      storeId: u64(4n),
      peerId: u64(401n),
    });
    expect(uint64FromWire(again.snapshotBytes)).toBe(0n);
    expect(uint64FromWire(again.region?.epoch?.confVersion)).toBe(region.epoch.confVersion);
    // A follower is told who leads.
    const follower = await admin(c, 1n).call(RaftAdminService.AddPeer, {
      regionId: u64(1n),
      storeId: u64(4n),
      peerId: u64(402n),
    });
    expect(follower.regionError?.notLeader).toBeTruthy();
    await expect(
      admin(c, 4n).call(RaftAdminService.AddPeer, { regionId: u64(1n), storeId: u64(0n), peerId: u64(9n) }),
    ).rejects.toMatchObject({ status: GrpcStatus.INVALID_ARGUMENT });
  });

  test('imports are refused for a corrupt payload, a missing or repeated header and an empty stream, leaving nothing', {
    timeout: 60_000,
  }, async () => {
    const c = await startCluster();
    await putKeys(c, 'k', 50);
    const leader = await c.waitForLeader(1n);
    const follower = [1n, 2n, 3n].find((s) => s !== leader.storeId)!;
    await expect(exportSnapshot(admin(c, follower), 1n)).rejects.toMatchObject({
      status: GrpcStatus.FAILED_PRECONDITION,
    });
    await expect(exportSnapshot(admin(c, 4n), 1n)).rejects.toMatchObject({ status: GrpcStatus.NOT_FOUND });
    const { chunks, data } = await exportSnapshot(admin(c, leader.storeId), 1n);
    const header = chunks[0]!.header!;
    expect(chunks.slice(1).every((m) => !m.header && m.data)).toBe(true);
    expect(Number(uint64FromWire(header.totalBytes))).toBe(data.length);
    expect(Buffer.from(header.sha256!).equals(createHash('sha256').update(data).digest())).toBe(true);

    const to4 = admin(c, 4n);
    const withPeer = { ...header, peerId: u64(401n) };
    const body = (bytes: Buffer): Chunk[] => {
      const out: Chunk[] = [];
      for (let o = 0; o < bytes.length; o += 64 * 1024) out.push({ data: bytes.subarray(o, o + 64 * 1024) });
      return out;
    };
    const probe = ['k1', 'k49'];
    const refused = async (messages: Chunk[], code: GrpcStatus, match?: RegExp) => {
      const err = await importStream(to4, messages).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ status: code });
      if (match) expect((err as Error).message).toMatch(match);
      await expectNothingHosted(c, 4n, 1n, probe);
    };
    await refused([], GrpcStatus.INVALID_ARGUMENT, /empty stream/);
    await refused(body(data), GrpcStatus.INVALID_ARGUMENT, /first message/);
    await refused(
      [{ header: withPeer }, { header: withPeer }, ...body(data)],
      GrpcStatus.INVALID_ARGUMENT,
      /second header/,
    );
    await refused(
      [{ header: { ...withPeer, peerId: u64(0n) } }, ...body(data)],
      GrpcStatus.INVALID_ARGUMENT,
      /peer_id/,
    );
    await refused(
      [{ header: withPeer }, ...body(data.subarray(0, data.length - 1))],
      GrpcStatus.INVALID_ARGUMENT,
      /announced/,
    );
    // One byte flipped: the header's SHA-256 catches it; with a matching hash, the payload's own
    // checks do.
    const flipped = Buffer.from(data);
    flipped[Math.floor(flipped.length / 2)]! ^= 0x10;
    await refused([{ header: withPeer }, ...body(flipped)], GrpcStatus.INVALID_ARGUMENT, /SHA-256/);
    const resealed = { ...withPeer, sha256: createHash('sha256').update(flipped).digest() };
    await refused([{ header: resealed }, ...body(flipped)], GrpcStatus.INVALID_ARGUMENT, /corrupt snapshot/);
    // A header whose region differs from the payload's.
    const otherEpoch = {
      ...withPeer,
      region: { ...withPeer.region, epoch: { version: u64(7n), confVersion: u64(1n) } },
    };
    await refused(
      [{ header: otherEpoch }, ...body(data)],
      GrpcStatus.INVALID_ARGUMENT,
      /differs from the header/,
    );
    expect(
      c
        .store(4n)
        .snapshotProgress()
        .filter((t) => t.stage === 'failed').length,
    ).toBeGreaterThanOrEqual(6);

    // The intact stream installs a PENDING peer: hosted, not a member, unable to campaign.
    const ok = await importStream(to4, [{ header: withPeer }, ...body(data)]);
    expect(Number(uint64FromWire(ok.bytes))).toBe(data.length);
    const pending = c.store(4n).peer(1n)!;
    expect(pending.region.state).toBe(RegionState.Pending);
    expect((await readValue(c.store(4n).db, Buffer.from('k49')))?.toString()).toBe('v49');
    expect(await c.store(4n).regionRuntimeStatus(1n)).toMatchObject({
      hosted: true,
      member: false,
      localPeerId: 401n,
    });
    const term = pending.status().term;
    await sleep(600); // well past an election timeout (10 ticks of 20 ms)
    expect(pending.isLeader).toBe(false);
    expect(pending.status().term).toBe(term);
    // A retry of the same install is answered as done; another peer id is refused.
    await importStream(to4, [{ header: withPeer }, ...body(data)]);
    await expect(
      importStream(to4, [{ header: { ...withPeer, peerId: u64(402n) } }, ...body(data)]),
    ).rejects.toMatchObject({
      status: GrpcStatus.FAILED_PRECONDITION,
    });

    // Interrupted before AddPeer's membership change: a restart discards the install.
    await c.restartStore(4n);
    await expectNothingHosted(c, 4n, 1n, probe);
    expect((await c.store(4n).regionRuntimeStatus(1n)).known).toBe(false);
    // ... and AddPeer, retried, succeeds.
    const lead = await c.waitForLeader(1n);
    const res = await admin(c, lead.storeId).call(
      RaftAdminService.AddPeer,
      { regionId: u64(1n), storeId: u64(4n), peerId: u64(401n), learner: true },
      { deadlineMs: 20_000 },
    );
    expect(res.regionError).toBeFalsy();
    expect(res.region?.peers?.find((p) => uint64FromWire(p.peerId) === 401n)?.learner).toBe(true);
    await c.waitFor(
      'the learner to join',
      () => c.store(4n).peer(1n)?.region.state === RegionState.Running,
      10_000,
    );
  });

  test('an install that fails to write or to publish leaves nothing behind; a retry succeeds', {
    timeout: 60_000,
  }, async () => {
    const c = await startCluster();
    await putKeys(c, 'f', 30);
    const leader = await c.waitForLeader(1n);
    const client = admin(c, leader.storeId);
    const add = () =>
      client.call(
        RaftAdminService.AddPeer,
        { regionId: u64(1n), storeId: u64(4n), peerId: u64(401n) },
        { deadlineMs: 20_000 },
      );
    const confVersion = leader.peer.region.epoch.confVersion;
    // The target's engine refuses the install batch.
    const write = vi
      .spyOn(c.store(4n).db.internal, 'write')
      .mockImplementationOnce(() => Promise.reject(new Error('injected: the disk is full')));
    await expect(add()).rejects.toMatchObject({ status: GrpcStatus.FAILED_PRECONDITION });
    expect(write).toHaveBeenCalledTimes(1);
    write.mockRestore();
    await expectNothingHosted(c, 4n, 1n, ['f1', 'f29']);
    expect(leader.peer.region.epoch.confVersion).toBe(confVersion);
    expect(leader.peer.region.peers.some((p) => p.peerId === 401n)).toBe(false);
    // Written, but the peer cannot be opened: the install is rolled back.
    const open = vi
      .spyOn(PeerStorage, 'open')
      .mockImplementationOnce(() => Promise.reject(new Error('injected: cannot open the peer')));
    await expect(add()).rejects.toMatchObject({ status: GrpcStatus.FAILED_PRECONDITION });
    open.mockRestore();
    await expectNothingHosted(c, 4n, 1n, ['f1', 'f29']);
    expect(
      c
        .store(4n)
        .snapshotProgress()
        .filter((t) => t.kind === 'admin' && t.stage === 'failed').length,
    ).toBe(2);
    // Nothing stands in the way of a retry.
    const res = await add();
    expect(Number(uint64FromWire(res.snapshotBytes))).toBeGreaterThan(0);
    await c.waitFor(
      'the new peer to hold the data',
      async () => (await readValue(c.store(4n).db, Buffer.from('f29')))?.toString() === 'v29',
      10_000,
    );
  });
});

describe('RemovePeer and RegionRuntimeStatus', () => {
  test('a removed replica is destroyed and does not come back after a restart', {
    timeout: 40_000,
  }, async () => {
    const c = await startCluster();
    await putKeys(c, 'g', 20);
    const leader = await c.waitForLeader(1n);
    const victim = [1n, 2n, 3n].find((s) => s !== leader.storeId)!;
    const victimPeer = victim * 100n + 1n;
    const res = await admin(c, leader.storeId).call(RaftAdminService.RemovePeer, {
      regionId: u64(1n),
      peerId: u64(victimPeer),
    });
    expect(res.region?.peers?.some((p) => uint64FromWire(p.peerId) === victimPeer)).toBe(false);
    await c.waitFor(
      'the removed replica to be destroyed',
      async () =>
        c.store(victim).peer(1n) === undefined &&
        (await readValue(c.store(victim).db, Buffer.from('g1'))) === undefined,
      10_000,
    );
    // Removing it again is a no-op.
    const again = await admin(c, leader.storeId).call(RaftAdminService.RemovePeer, {
      regionId: u64(1n),
      peerId: u64(victimPeer),
    });
    expect(uint64FromWire(again.region?.epoch?.confVersion)).toBe(
      uint64FromWire(res.region?.epoch?.confVersion),
    );
    await c.restartStore(victim);
    await sleep(300);
    expect(c.store(victim).peer(1n)).toBeUndefined();
    expect(c.store(victim).peer(2n)).toBeDefined();
    const status = await admin(c, victim).call(RaftAdminService.RegionRuntimeStatus, { regionId: u64(1n) });
    expect(status).toMatchObject({ known: true, hosted: false, tombstone: true, member: false });
    expect(uint64FromWire(status.localPeerId)).toBe(victimPeer);
    const live = await admin(c, leader.storeId).call(RaftAdminService.RegionRuntimeStatus, {
      regionId: u64(1n),
    });
    expect(live).toMatchObject({ known: true, hosted: true, leader: true, member: true, tombstone: false });
    expect(uint64FromWire(live.appliedIndex)).toBeGreaterThan(5n);
    const unknown = await admin(c, victim).call(RaftAdminService.RegionRuntimeStatus, { regionId: u64(99n) });
    expect(unknown).toMatchObject({
      known: false,
      hosted: false,
      leader: false,
      member: false,
      tombstone: false,
    });
    expect(unknown.region ?? null).toBeNull();
    expect(uint64FromWire(unknown.localPeerId)).toBe(0n);
    expect(uint64FromWire(unknown.appliedIndex)).toBe(0n);
  });
});

describe('snapshot progress', () => {
  test('shows bytes while a large snapshot streams, and Raft catch-up snapshots too', {
    timeout: 60_000,
  }, async () => {
    const c = await startCluster();
    // About 6 MiB that does not compress.
    await putKeys(c, 'big', 600, () => randomBytes(10 * 1024).toString('base64'));
    const leader = await c.waitForLeader(1n);
    const store = c.store(leader.storeId);
    const stream = admin(c, leader.storeId).serverStream(
      RaftAdminService.ExportRegionSnapshotStream,
      { regionId: u64(1n) },
      { deadlineMs: 30_000 },
    );
    const it = stream[Symbol.asyncIterator]();
    const first = await it.next();
    const header = (first.value as Chunk).header!;
    const total = Number(uint64FromWire(header.totalBytes));
    expect(total).toBeGreaterThan(6 * 1024 * 1024);
    const parts: Buffer[] = [];
    for (let i = 0; i < 3; i++) parts.push(Buffer.from(((await it.next()).value as Chunk).data!));
    // The reader pauses: the export waits on flow control, part way through.
    let midway: { bytesDone: number; bytesTotal: number; stage: string } | undefined;
    await c.waitFor('the export to stall part way', async () => {
      const rpc = await admin(c, leader.storeId).call(RaftAdminService.SnapshotProgress, {});
      const t = rpc.transfers?.find(
        (x) => x.kind === 'admin' && x.direction === 'send' && x.stage === 'stream',
      );
      if (!t) return false;
      midway = {
        bytesDone: Number(uint64FromWire(t.bytesDone)),
        bytesTotal: Number(uint64FromWire(t.bytesTotal)),
        stage: t.stage ?? '',
      };
      return midway.bytesDone > 0;
    });
    expect(midway!.bytesTotal).toBe(total);
    expect(midway!.bytesDone).toBeLessThan(total);
    await sleep(100);
    const still = store.snapshotProgress().find((t) => t.kind === 'admin' && t.direction === 'send')!;
    expect(still.stage).toBe('stream');
    expect(still.bytesDone).toBeLessThan(total);
    expect((store.stats().snapshots as { running: number }).running).toBe(1);
    for (;;) {
      const next = await it.next();
      if (next.done) break;
      parts.push(Buffer.from((next.value as Chunk).data!));
    }
    const data = Buffer.concat(parts);
    expect(data.length).toBe(total);
    expect(createHash('sha256').update(data).digest().equals(Buffer.from(header.sha256!))).toBe(true);
    await c.waitFor('the export to finish', () => store.snapshotProgress()[0]?.stage === 'done');
    expect(store.snapshotProgress()[0]).toMatchObject({ kind: 'admin', bytesDone: total, bytesTotal: total });

    // A learner added without an admin snapshot catches up by a Raft snapshot: both ends report it.
    await store.changePeer(1n, 'add-learner', { storeId: 4n, peerId: 401n, learner: true });
    await c.waitFor(
      'the raft snapshot to arrive',
      () => {
        const r = c
          .store(4n)
          .snapshotProgress()
          .find((t) => t.kind === 'raft');
        return r?.stage === 'done';
      },
      20_000,
    );
    const received = c
      .store(4n)
      .snapshotProgress()
      .find((t) => t.kind === 'raft')!;
    expect(received).toMatchObject({ direction: 'receive', regionId: 1n, peerStoreId: leader.storeId });
    expect(received.bytesDone).toBeGreaterThan(6 * 1024 * 1024);
    expect(received.bytesDone).toBe(received.bytesTotal);
    await c.waitFor('the sender to finish', () =>
      store.snapshotProgress().some((t) => t.kind === 'raft' && t.direction === 'send' && t.stage === 'done'),
    );
    const sent = store.snapshotProgress().find((t) => t.kind === 'raft' && t.direction === 'send')!;
    expect(sent).toMatchObject({ stage: 'done', peerStoreId: 4n, bytesDone: received.bytesDone });
    const stats = store.stats().snapshots as { bytesSent: number; started: number };
    expect(stats.bytesSent).toBeGreaterThanOrEqual(total + received.bytesDone);
  });
});
