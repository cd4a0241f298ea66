import { createHash } from 'node:crypto';
import type { Database, InternalWrite } from '@nokv/engine';
import {
  type ConfState,
  decodeRegionLocalState,
  decodeSnapshot,
  encodeHardState,
  encodeRegionLocalState,
  encodeSnapshot,
  type RaftMessage,
  type RegionLocalState,
  type RegionMeta,
  type RegionPeer,
  RegionState,
} from '@nokv/proto';
import {
  CorruptSnapshotError,
  confStateOfRegion,
  decodeSnapshotPayload,
  type SnapshotPayload,
  snapshotDataWrites,
  txnRangeDeletes,
} from '../peer-storage/index.js';
import { StoreError } from './errors.js';
import { dataRange, raftHardStateKey, raftRange, raftSnapshotKey, regionStateKey } from './keys.js';
import type { StoreLogger } from './logger.js';
import type { Peer } from './peer.js';
import type { SnapshotTransfer } from './snapshot-tracker.js';

// Installing a region snapshot streamed in by an operator (AddPeer's first half, spec §3.9):
// only into an EMPTY peer, as one engine batch, and published (a Peer opened and routed to)
// only once that batch is durable. The peer starts PENDING: its region meta lists it, but its
// Raft configuration is the snapshot's, which does not, so it cannot campaign or count in a quorum
// until the leader's membership change adding it is applied (then it becomes RUNNING, see
// `joinedRegion`). A store that restarts with a PENDING peer that never joined discards it
// (`discardInterruptedInstalls`): an install interrupted before AddPeer's conf change leaves no
// hosted peer.

/** Describes a region snapshot payload (the domain form of nokv.admin.v1.RegionSnapshotHeader). */
export interface RegionSnapshotHeader {
  region: RegionMeta;
  appliedIndex: bigint;
  appliedTerm: bigint;
  totalBytes: number;
  /** SHA-256 of the whole payload. */
  sha256: Uint8Array;
  /** The peer the importing store is to host (0 on export). */
  peerId: bigint;
}

/** What an install needs of the store beyond its public surface (see Store.internals). */
export interface StoreInternals {
  readonly storeId: bigint;
  readonly db: Database;
  readonly logger: StoreLogger;
  readonly stopped: boolean;
  readonly peers: ReadonlyMap<bigint, Peer>;
  /** Removed peers' ids by region. */
  readonly tombstones: ReadonlyMap<bigint, bigint>;
  /** Regions whose peer is being created, with Raft messages held until it exists. */
  readonly creating: Map<bigint, RaftMessage[]>;
  /** Opens the region's stored state as a Peer and routes to it. */
  openPeer(regionId: bigint): Promise<Peer>;
  route(message: RaftMessage): void;
  resolveStoreAddress(storeId: bigint): string | undefined;
  /** Remembers an address an operator gave for a store the resolver does not know. */
  learnStoreAddress(storeId: bigint, address: string): void;
}

/**
 * Verifies and installs a streamed region snapshot as a new PENDING peer `header.peerId` on this
 * store, and publishes it. Nothing is written unless every check passes; a failure after the
 * write (publishing) removes what was written.
 * @returns the installed peer's region meta (the exported region plus the new peer).
 * @throws StoreError `InvalidArgument` (header), `FailedPrecondition` (the region is not empty
 *   here), `Unavailable` (store stopping); CorruptSnapshotError (payload damaged or not matching
 *   the header).
 */
export async function installRegionSnapshot(
  store: StoreInternals,
  header: RegionSnapshotHeader,
  data: Uint8Array,
  transfer?: SnapshotTransfer,
): Promise<RegionMeta> {
  const regionId = header.region.id;
  checkHeader(store.storeId, header);
  transfer?.stage('verify');
  if (data.length !== header.totalBytes) {
    throw new CorruptSnapshotError(
      `${data.length} bytes, the header announced ${header.totalBytes}`,
      regionId,
    );
  }
  if (!createHash('sha256').update(data).digest().equals(Buffer.from(header.sha256))) {
    throw new CorruptSnapshotError('SHA-256 of the payload does not match the header', regionId);
  }
  let payload: SnapshotPayload;
  try {
    payload = decodeSnapshotPayload(data);
  } catch (err) {
    if (err instanceof CorruptSnapshotError)
      throw new CorruptSnapshotError(err.reason, regionId, { cause: err });
    throw err;
  }
  const mismatch = regionMismatch(payload.region, header.region);
  if (mismatch !== undefined) {
    throw new CorruptSnapshotError(`the payload's region differs from the header's: ${mismatch}`, regionId);
  }
  if (payload.appliedIndex !== header.appliedIndex || payload.appliedTerm !== header.appliedTerm) {
    throw new CorruptSnapshotError(
      `the payload is at ${payload.appliedIndex}/${payload.appliedTerm}, the header says ${header.appliedIndex}/${header.appliedTerm}`,
      regionId,
    );
  }

  if (store.stopped) throw new StoreError('Unavailable', `store ${store.storeId} is stopping`);
  const hosted = store.peers.get(regionId);
  if (hosted !== undefined) {
    // A retry of an install that was published but whose AddPeer did not finish: nothing to do.
    if (hosted.region.state === RegionState.Pending && hosted.peerId === header.peerId && !hosted.isStopped) {
      return hosted.region;
    }
    throw new StoreError(
      'FailedPrecondition',
      `region ${regionId} is hosted here already (peer ${hosted.peerId}); a snapshot installs only into an empty peer`,
    );
  }
  if (store.creating.has(regionId)) {
    throw new StoreError('FailedPrecondition', `region ${regionId}: a peer is being created here right now`);
  }
  // Held until the peer is published or the install failed: Raft messages for the region wait,
  // and no other install or replica creation for it can start meanwhile.
  store.creating.set(regionId, []);
  try {
    await checkEmpty(store, header);
    transfer?.stage('install');
    const region = pendingRegion(header.region, {
      storeId: store.storeId,
      peerId: header.peerId,
      learner: true,
    });
    const ops = await installWrites(store.db, payload, region, confStateOfRegion(header.region));
    // One batch: data, raft state and region state become durable together or not at all.
    await store.db.internal.write(ops, { sync: true });
    try {
      if (store.stopped)
        throw new StoreError('Unavailable', `store ${store.storeId} stopped before the peer was published`);
      const peer = await store.openPeer(regionId);
      store.logger.info(
        {
          region: String(regionId),
          peer: String(header.peerId),
          index: String(header.appliedIndex),
          bytes: data.length,
          pairs: payload.pairs.length,
          records: payload.records?.length ?? 0,
        },
        'installed a region snapshot; the peer waits to be added to the region',
      );
      return peer.region;
    } catch (err) {
      await removeRegionState(store.db, region).catch((cleanup: Error) =>
        store.logger.error(
          { region: String(regionId), err: cleanup.message },
          'cannot remove a snapshot install that failed to publish; a restart discards it',
        ),
      );
      throw err;
    }
  } finally {
    const queued = store.creating.get(regionId) ?? [];
    store.creating.delete(regionId);
    for (const m of queued) store.route(m);
  }
}

function checkHeader(storeId: bigint, h: RegionSnapshotHeader): void {
  const bad = (msg: string) => new StoreError('InvalidArgument', `region snapshot header: ${msg}`);
  if (h.region.id === 0n) throw bad('region.id is required');
  if (h.peerId === 0n) throw bad('peer_id (the peer to create here) is required');
  if (h.appliedIndex === 0n || h.appliedTerm === 0n) throw bad('applied index and term are required');
  if (h.region.peers.length === 0) throw bad('the region lists no peers');
  if (h.region.peers.some((p) => p.peerId === h.peerId)) {
    throw bad(`peer ${h.peerId} is already a member of region ${h.region.id}`);
  }
  const here = h.region.peers.find((p) => p.storeId === storeId);
  if (here !== undefined) {
    throw new StoreError(
      'FailedPrecondition',
      `region ${h.region.id} already has peer ${here.peerId} on store ${storeId}`,
    );
  }
}

/**
 * The region holds nothing here: no state at all, or only an unpublished PENDING install (a
 * previous attempt), or the tombstone of an older peer; and no hosted region overlaps its range.
 */
async function checkEmpty(store: StoreInternals, header: RegionSnapshotHeader): Promise<void> {
  const id = header.region.id;
  const refuse = (msg: string) => new StoreError('FailedPrecondition', `region ${id}: ${msg}`);
  const raw = await store.db.get(regionStateKey(id));
  if (raw !== undefined) {
    const state = decodeRegionLocalState(raw);
    if (state.region.state !== RegionState.Pending) {
      throw refuse('this store holds state for it; a snapshot installs only into an empty peer');
    }
  } else {
    const range = raftRange(id);
    for await (const _ of store.db.iterate({ gte: range.lo, lt: range.hi, limit: 1 })) {
      throw refuse('this store holds raft state for it; a snapshot installs only into an empty peer');
    }
  }
  const removed = store.tombstones.get(id);
  if (removed !== undefined && header.peerId <= removed) {
    throw refuse(
      `peer ${removed} was removed from it here; a new peer needs a higher id than ${header.peerId}`,
    );
  }
  for (const p of store.peers.values()) {
    if (rangesOverlap(p.region, header.region)) {
      throw refuse(`its range overlaps region ${p.region.id}, hosted here`);
    }
  }
}

/** The exported region with this store's new peer, PENDING until its membership change applies. */
function pendingRegion(region: RegionMeta, self: RegionPeer): RegionMeta {
  const peers = [...region.peers, self].sort((a, b) =>
    a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0,
  );
  return { ...region, peers, state: RegionState.Pending };
}

async function installWrites(
  db: Database,
  payload: SnapshotPayload,
  region: RegionMeta,
  conf: ConfState,
): Promise<InternalWrite[]> {
  const id = region.id;
  const index = payload.appliedIndex;
  const term = payload.appliedTerm;
  const state: RegionLocalState = {
    region,
    appliedIndex: index,
    appliedTerm: term,
    truncatedIndex: index,
    truncatedTerm: term,
  };
  return [
    ...(await snapshotDataWrites(db, payload)),
    // A previous unpublished attempt's raft state goes.
    { cf: 'default', op: 'deleteRange', key: raftRange(id).lo, end: raftRange(id).hi },
    {
      cf: 'default',
      op: 'put',
      key: raftHardStateKey(id),
      value: encodeHardState({ term, vote: 0n, commit: index }),
    },
    // The snapshot's real configuration (the exported region's), without the new peer: Raft
    // starts from it (PeerStorage.open reads it for a PENDING region).
    {
      cf: 'default',
      op: 'put',
      key: raftSnapshotKey(id),
      value: encodeSnapshot({ data: new Uint8Array(0), metadata: { index, term, confState: conf } }),
    },
    { cf: 'default', op: 'put', key: regionStateKey(id), value: encodeRegionLocalState(state) },
  ];
}

/** Deletes a region's data range, raft state and region state in one synced batch. */
async function removeRegionState(db: Database, region: RegionMeta): Promise<void> {
  const id = region.id;
  const data = dataRange(region.startKey, region.endKey);
  const ops: InternalWrite[] = [
    { cf: 'default', op: 'deleteRange', key: data.lo, end: data.hi },
    ...(await txnRangeDeletes(db, data)),
    { cf: 'default', op: 'deleteRange', key: raftRange(id).lo, end: raftRange(id).hi },
    { cf: 'default', op: 'delete', key: regionStateKey(id) },
  ];
  await db.internal.write(ops, { sync: true });
}

/**
 * On store start: PENDING regions whose own peer is not in the configuration they applied were
 * installed by an admin snapshot whose AddPeer never reached them. They are deleted (data range,
 * raft state, region state); the rest of `states` is returned. A leader that did add the peer
 * meanwhile recreates it the ordinary way (its messages create a replica it sends a snapshot to).
 */
export async function discardInterruptedInstalls(
  db: Database,
  states: RegionLocalState[],
  storeId: bigint,
  logger: StoreLogger,
): Promise<RegionLocalState[]> {
  const kept: RegionLocalState[] = [];
  for (const state of states) {
    const region = state.region;
    if (region.state !== RegionState.Pending) {
      kept.push(state);
      continue;
    }
    const self = region.peers.find((p) => p.storeId === storeId);
    const rawSnap = await db.get(raftSnapshotKey(region.id));
    const conf = rawSnap === undefined ? undefined : decodeSnapshot(rawSnap).metadata.confState;
    if (self !== undefined && conf !== undefined && inConf(conf, self.peerId)) {
      kept.push(state);
      continue;
    }
    await removeRegionState(db, region);
    logger.warn(
      { region: String(region.id), peer: String(self?.peerId ?? 0n), index: String(state.appliedIndex) },
      'discarded a snapshot install whose peer was never added to the region',
    );
  }
  return kept;
}

/**
 * The region after a membership change was applied: a PENDING peer that is now in the
 * configuration has joined and becomes RUNNING (persisted with the change).
 */
export function joinedRegion(region: RegionMeta, conf: ConfState, peerId: bigint): RegionMeta {
  if (region.state !== RegionState.Pending || !inConf(conf, peerId)) return region;
  return { ...region, state: RegionState.Running };
}

function inConf(conf: ConfState, peerId: bigint): boolean {
  return (
    conf.voters.includes(peerId) ||
    conf.learners.includes(peerId) ||
    conf.votersOutgoing.includes(peerId) ||
    conf.learnersNext.includes(peerId)
  );
}

/** Why two region metas differ in id, range, epoch or peers, or undefined when they agree. */
export function regionMismatch(a: RegionMeta, b: RegionMeta): string | undefined {
  if (a.id !== b.id) return `id ${a.id} vs ${b.id}`;
  if (Buffer.compare(a.startKey, b.startKey) !== 0 || Buffer.compare(a.endKey, b.endKey) !== 0)
    return 'range';
  if (a.epoch.version !== b.epoch.version || a.epoch.confVersion !== b.epoch.confVersion) return 'epoch';
  const key = (p: RegionPeer) => `${p.storeId}:${p.peerId}:${p.learner ? 'L' : 'V'}`;
  const pa = a.peers.map(key).sort().join(',');
  const pb = b.peers.map(key).sort().join(',');
  return pa === pb ? undefined : `peers [${pa}] vs [${pb}]`;
}

function rangesOverlap(a: RegionMeta, b: RegionMeta): boolean {
  // [a.start, a.end) ∩ [b.start, b.end) ≠ ∅, empty end = +inf.
  const aBeforeB = a.endKey.length > 0 && Buffer.compare(a.endKey, b.startKey) <= 0;
  const bBeforeA = b.endKey.length > 0 && Buffer.compare(b.endKey, a.startKey) <= 0;
  return !aBeforeB && !bBeforeA;
}
