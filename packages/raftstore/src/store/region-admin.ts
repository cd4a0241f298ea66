import { createHash } from 'node:crypto';
import { Metadata, status as Status } from '@grpc/grpc-js';
import {
  decodeRegionLocalState,
  type nokv,
  RaftAdminService,
  type RegionMeta,
  type RegionPeer,
  RegionState,
  regionFromWire,
  regionToWire,
  uint64FromWire,
  uint64ToWire,
} from '@nokv/proto';
import { createClient, RpcError } from '../grpc/index.js';
import { RegionError, StoreError } from './errors.js';
import { regionStateKey } from './keys.js';
import type { RegionSnapshotHeader, StoreInternals } from './region-install.js';
import type { SnapshotTransfer } from './snapshot-tracker.js';
import type { Store } from './store.js';

// Region snapshots out of a leader (admin export) and the membership operations built on them:
// AddPeer (export, stream into the target store's ImportRegionSnapshotStream, then propose the
// membership change), RemovePeer, and the RegionRuntimeStatus a caller polls. The store's public
// methods delegate here.

/** Bytes of payload per streamed message. */
export const SNAPSHOT_CHUNK_BYTES = 64 * 1024;
/** gRPC metadata naming the store a snapshot stream comes from (progress reports). */
export const FROM_STORE_METADATA = 'nokv-from-store';

export interface ExportedRegionSnapshot {
  region: RegionMeta;
  appliedIndex: bigint;
  appliedTerm: bigint;
  /** The payload (snapshot-payload.ts, version 3). */
  data: Buffer;
  /** SHA-256 of `data`. */
  sha256: Buffer;
}

export interface AddPeerRequest {
  regionId: bigint;
  storeId: bigint;
  peerId: bigint;
  /** The target store's gRPC address; default: what the store resolves for `storeId`. */
  targetAddr?: string;
  learner?: boolean;
  /** Budget of the whole operation (snapshot stream and membership change). */
  deadlineMs?: number;
}

export interface AddPeerResult {
  region: RegionMeta;
  /** Size of the snapshot installed on the target (0 when the peer was a member already). */
  snapshotBytes: number;
}

/** What a store knows of one region (RegionRuntimeStatusResponse in domain form). */
export interface RegionRuntimeStatus {
  known: boolean;
  hosted: boolean;
  localPeerId: bigint;
  leaderPeerId: bigint;
  leader: boolean;
  region?: RegionMeta;
  appliedIndex: bigint;
  appliedTerm: bigint;
  member: boolean;
  tombstone: boolean;
}

/** Default budget of an AddPeer without a deadline (a large snapshot takes a while). */
const DEFAULT_ADD_PEER_MS = 10 * 60_000;

/**
 * A snapshot of a region this store leads, generated now.
 * @throws StoreError `NotFound` (not hosted here), `FailedPrecondition` (not the leader).
 */
export async function exportRegionSnapshot(store: Store, regionId: bigint): Promise<ExportedRegionSnapshot> {
  const peer = store.peer(regionId);
  if (!peer || peer.isStopped)
    throw new StoreError('NotFound', `region ${regionId} is not hosted on store ${store.storeId}`);
  if (!peer.isLeader) {
    const l = peer.leader();
    throw new StoreError(
      'FailedPrecondition',
      `region ${regionId}: store ${store.storeId} is not the leader${l ? `; peer ${l.peerId} on store ${l.storeId} is` : ''}`,
    );
  }
  const g = await peer.storage.generateSnapshotNow();
  const data = Buffer.from(g.snapshot.data.buffer, g.snapshot.data.byteOffset, g.snapshot.data.byteLength);
  return {
    region: g.region,
    appliedIndex: g.snapshot.metadata.index,
    appliedTerm: g.snapshot.metadata.term,
    data,
    sha256: createHash('sha256').update(data).digest(),
  };
}

/** A region snapshot as the messages of a stream: the header alone, then 64 KiB chunks. */
export function* snapshotChunks(
  snap: ExportedRegionSnapshot,
  peerId: bigint,
): Generator<{ header?: RegionSnapshotHeader; data?: Buffer }> {
  yield {
    header: {
      region: snap.region,
      appliedIndex: snap.appliedIndex,
      appliedTerm: snap.appliedTerm,
      totalBytes: snap.data.length,
      sha256: snap.sha256,
      peerId,
    },
  };
  for (let off = 0; off < snap.data.length; off += SNAPSHOT_CHUNK_BYTES) {
    yield { data: snap.data.subarray(off, Math.min(snap.data.length, off + SNAPSHOT_CHUNK_BYTES)) };
  }
}

export function snapshotHeaderToWire(
  h: RegionSnapshotHeader,
): nokv.admin.v1.RegionSnapshotHeader.$Properties {
  return {
    region: regionToWire(h.region),
    appliedIndex: uint64ToWire(h.appliedIndex, 'applied_index'),
    appliedTerm: uint64ToWire(h.appliedTerm, 'applied_term'),
    totalBytes: uint64ToWire(BigInt(h.totalBytes), 'total_bytes'),
    sha256: h.sha256,
    peerId: uint64ToWire(h.peerId, 'peer_id'),
  };
}

/**
 * @throws StoreError `InvalidArgument` for a header without a region, a hash of the wrong size,
 *   or a size beyond `maxBytes`.
 */
export function snapshotHeaderFromWire(
  w: nokv.admin.v1.RegionSnapshotHeader.$Properties,
  maxBytes: number,
): RegionSnapshotHeader {
  const bad = (msg: string) => new StoreError('InvalidArgument', `region snapshot header: ${msg}`);
  if (!w.region) throw bad('region is required');
  let region: RegionMeta;
  try {
    region = regionFromWire(w.region);
  } catch (err) {
    throw bad(`region: ${(err as Error).message}`);
  }
  const total = uint64FromWire(w.totalBytes);
  if (total > BigInt(maxBytes)) throw bad(`total_bytes ${total} exceeds the limit of ${maxBytes}`);
  const sha256 = w.sha256 ?? new Uint8Array(0);
  if (sha256.length !== 32) throw bad(`sha256 has ${sha256.length} bytes, not 32`);
  return {
    region,
    appliedIndex: uint64FromWire(w.appliedIndex),
    appliedTerm: uint64FromWire(w.appliedTerm),
    totalBytes: Number(total),
    sha256,
    peerId: uint64FromWire(w.peerId),
  };
}

/**
 * Adds peer `peerId` on store `storeId` to a region this store leads: exports the region, streams
 * the snapshot into the target store (which installs it as a PENDING peer), proposes the
 * membership change and waits until it is applied here. A peer that is a member already is not
 * added again (a learner asked to be a voter is promoted).
 * @throws RegionError (not hosted here, not leader), StoreError (`InvalidArgument`,
 *   `FailedPrecondition` when the target refused the snapshot, `Unavailable`, `DeadlineExceeded`).
 */
export async function addPeer(
  store: Store,
  internals: StoreInternals,
  req: AddPeerRequest,
): Promise<AddPeerResult> {
  const { regionId, storeId, peerId } = req;
  if (regionId === 0n || storeId === 0n || peerId === 0n) {
    throw new StoreError('InvalidArgument', 'region_id, store_id and peer_id are required');
  }
  const started = Date.now();
  const budget = req.deadlineMs ?? DEFAULT_ADD_PEER_MS;
  const left = () => Math.max(0, budget - (Date.now() - started));
  const leader = leaderPeer(store, regionId);
  const region = leader.region;
  const kind = req.learner === true ? 'add-learner' : 'add-voter';
  const target: RegionPeer = { storeId, peerId, learner: req.learner === true };
  const existing = region.peers.find((p) => p.peerId === peerId);
  if (existing !== undefined) {
    if (existing.storeId !== storeId) {
      throw new StoreError(
        'InvalidArgument',
        `peer ${peerId} of region ${regionId} is on store ${existing.storeId}`,
      );
    }
    if (existing.learner && req.learner !== true) {
      return { region: await store.changePeer(regionId, 'add-voter', target, left()), snapshotBytes: 0 };
    }
    return { region, snapshotBytes: 0 };
  }
  const other = region.peers.find((p) => p.storeId === storeId);
  if (other !== undefined) {
    throw new StoreError(
      'FailedPrecondition',
      `region ${regionId} already has peer ${other.peerId} on store ${storeId}`,
    );
  }
  const address = req.targetAddr || internals.resolveStoreAddress(storeId);
  if (!address) {
    throw new StoreError('FailedPrecondition', `store ${storeId} has no known address; pass target_addr`);
  }
  if (req.targetAddr) internals.learnStoreAddress(storeId, req.targetAddr);

  const transfer = store.snapshots.begin({
    kind: 'admin',
    direction: 'send',
    regionId,
    peerStoreId: storeId,
  });
  const bytes = await transfer.run(async (t) => {
    const snap = await exportRegionSnapshot(store, regionId);
    t.total(snap.data.length).stage('stream');
    await streamSnapshotTo(address, snap, peerId, store.storeId, left(), t);
    return snap.data.length;
  });
  store.logger.info(
    { region: String(regionId), peer: String(peerId), toStore: String(storeId), bytes },
    'snapshot installed on the target store; proposing the membership change',
  );
  const after = await store.changePeer(regionId, kind, target, left());
  return { region: after, snapshotBytes: bytes };
}

async function streamSnapshotTo(
  address: string,
  snap: ExportedRegionSnapshot,
  peerId: bigint,
  fromStore: bigint,
  deadlineMs: number,
  transfer: SnapshotTransfer,
): Promise<void> {
  const client = createClient(RaftAdminService, address, {
    maxSendMessageBytes: 4 * SNAPSHOT_CHUNK_BYTES,
  });
  const metadata = new Metadata();
  metadata.set(FROM_STORE_METADATA, String(fromStore));
  const stream = client.openClientStream(RaftAdminService.ImportRegionSnapshotStream, {
    deadlineMs,
    metadata,
    waitForReady: true,
  });
  try {
    for (const chunk of snapshotChunks(snap, peerId)) {
      await stream.write(
        chunk.header
          ? { header: snapshotHeaderToWire(chunk.header) }
          : { data: chunk.data ?? new Uint8Array(0) },
      );
      if (chunk.data) transfer.advance(chunk.data.length);
    }
    // The target verifies and installs once the stream ends.
    transfer.stage('install');
    await stream.end();
  } catch (err) {
    stream.cancel();
    // A failed write usually means the call ended: the response says why.
    const cause = await stream.response.then(
      () => err,
      (e: unknown) => e,
    );
    throw targetError(address, cause);
  } finally {
    client.close();
  }
}

function targetError(address: string, err: unknown): Error {
  if (err instanceof RpcError) {
    const code =
      err.status === Status.UNAVAILABLE
        ? 'Unavailable'
        : err.status === Status.DEADLINE_EXCEEDED
          ? 'DeadlineExceeded'
          : 'FailedPrecondition';
    return new StoreError(
      code,
      `the target store at ${address} did not install the snapshot: ${err.message}`,
      {
        cause: err,
      },
    );
  }
  return err instanceof Error ? err : new Error(String(err));
}

/**
 * Removes a peer from a region this store leads (the removed replica tombstones and destroys
 * itself when it applies the change). A peer that is not a member is not removed again.
 */
export async function removePeer(
  store: Store,
  regionId: bigint,
  peerId: bigint,
  deadlineMs?: number,
): Promise<RegionMeta> {
  if (regionId === 0n || peerId === 0n)
    throw new StoreError('InvalidArgument', 'region_id and peer_id are required');
  const leader = leaderPeer(store, regionId);
  const target = leader.region.peers.find((p) => p.peerId === peerId);
  if (target === undefined) return leader.region;
  return store.changePeer(regionId, 'remove', target, deadlineMs);
}

function leaderPeer(store: Store, regionId: bigint) {
  const peer = store.peer(regionId);
  if (!peer || peer.isStopped) throw RegionError.regionNotFound(regionId);
  if (!peer.isLeader) throw RegionError.notLeader(regionId, peer.leader());
  return peer;
}

/** What this store knows of a region; an unknown region is all zero (`known` false). */
export async function regionRuntimeStatus(
  store: Store,
  internals: StoreInternals,
  regionId: bigint,
): Promise<RegionRuntimeStatus> {
  const out: RegionRuntimeStatus = {
    known: false,
    hosted: false,
    localPeerId: 0n,
    leaderPeerId: 0n,
    leader: false,
    appliedIndex: 0n,
    appliedTerm: 0n,
    member: false,
    tombstone: false,
  };
  const peer = store.peer(regionId);
  if (peer && !peer.isStopped) {
    const s = peer.status();
    const region = peer.region;
    return {
      ...out,
      known: true,
      hosted: true,
      localPeerId: peer.peerId,
      leaderPeerId: s.leaderPeerId,
      leader: peer.isLeader,
      region,
      appliedIndex: peer.storage.appliedIndex,
      appliedTerm: peer.storage.appliedTerm,
      // The region meta follows the applied configuration, except for a PENDING peer, which lists
      // itself before it has been added.
      member: region.state !== RegionState.Pending && region.peers.some((p) => p.peerId === peer.peerId),
    };
  }
  if (regionId === 0n) return out;
  const raw = await internals.db.get(regionStateKey(regionId));
  if (raw !== undefined) {
    // State without a live peer: an unpublished install, or a removed peer being destroyed.
    const st = decodeRegionLocalState(raw);
    out.known = true;
    out.region = st.region;
    out.localPeerId = st.region.peers.find((p) => p.storeId === store.storeId)?.peerId ?? 0n;
    out.appliedIndex = st.appliedIndex;
    out.appliedTerm = st.appliedTerm;
  }
  const removed = internals.tombstones.get(regionId);
  if (removed !== undefined) {
    out.known = true;
    out.tombstone = true;
    if (out.localPeerId === 0n) out.localPeerId = removed;
  }
  return out;
}
