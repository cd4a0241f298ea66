import { nokv } from '@nokv/proto/gen/nokv';
import { ProtoError } from './errors.js';
import { uint64FromWire, uint64ToWire } from './uint64.js';

// bigint views of nokv.meta.v1 (meta.proto): the region metadata the store runtime works on.

const pb = nokv.meta.v1;

export const RegionState = {
  Unspecified: 0,
  New: 1,
  Running: 2,
  Removing: 3,
  Tombstone: 4,
  Merging: 5,
  Pending: 6,
} as const;
export type RegionState = (typeof RegionState)[keyof typeof RegionState];

export interface RegionEpoch {
  version: bigint;
  confVersion: bigint;
}

export interface RegionPeer {
  storeId: bigint;
  peerId: bigint;
  learner: boolean;
}

export interface RegionMeta {
  id: bigint;
  /** Inclusive; empty = -inf. */
  startKey: Uint8Array;
  /** Exclusive; empty = +inf. */
  endKey: Uint8Array;
  epoch: RegionEpoch;
  peers: RegionPeer[];
  state: RegionState;
}

export interface RegionLocalState {
  region: RegionMeta;
  appliedIndex: bigint;
  appliedTerm: bigint;
  truncatedIndex: bigint;
  truncatedTerm: bigint;
}

type Wire<T> = T extends bigint
  ? ReturnType<typeof uint64ToWire>
  : T extends Uint8Array
    ? Uint8Array
    : T extends (infer U)[]
      ? Wire<U>[]
      : T extends object
        ? { [K in keyof T]: Wire<T[K]> }
        : T;

export function epochToWire(e: RegionEpoch): Wire<RegionEpoch> {
  return {
    version: uint64ToWire(e.version, 'epoch.version'),
    confVersion: uint64ToWire(e.confVersion, 'epoch.conf_version'),
  };
}

export function epochFromWire(e: nokv.meta.v1.RegionEpoch.$Properties | null | undefined): RegionEpoch {
  return { version: uint64FromWire(e?.version), confVersion: uint64FromWire(e?.confVersion) };
}

export function peerToWire(p: RegionPeer): Wire<RegionPeer> {
  return {
    storeId: uint64ToWire(p.storeId, 'peer.store_id'),
    peerId: uint64ToWire(p.peerId, 'peer.peer_id'),
    learner: p.learner,
  };
}

export function peerFromWire(p: nokv.meta.v1.RegionPeer.$Properties | null | undefined): RegionPeer {
  return {
    storeId: uint64FromWire(p?.storeId),
    peerId: uint64FromWire(p?.peerId),
    learner: p?.learner === true,
  };
}

function checkState(state: number): RegionState {
  if (!Number.isInteger(state) || state < 0 || state > 6) {
    throw new ProtoError('MalformedMessage', `region state ${state} is not a RegionState`);
  }
  return state as RegionState;
}

export function regionToWire(r: RegionMeta): nokv.meta.v1.RegionMeta.$Properties {
  return {
    id: uint64ToWire(r.id, 'region.id'),
    startKey: r.startKey,
    endKey: r.endKey,
    epoch: epochToWire(r.epoch),
    peers: r.peers.map(peerToWire),
    state: r.state,
  };
}

export function regionFromWire(r: nokv.meta.v1.RegionMeta.$Properties | null | undefined): RegionMeta {
  return {
    id: uint64FromWire(r?.id),
    startKey: r?.startKey ?? new Uint8Array(0),
    endKey: r?.endKey ?? new Uint8Array(0),
    epoch: epochFromWire(r?.epoch),
    peers: (r?.peers ?? []).map(peerFromWire),
    state: checkState(r?.state ?? 0),
  };
}

export function encodeRegionMeta(r: RegionMeta): Uint8Array {
  return pb.RegionMeta.encode(regionToWire(r)).finish();
}

/** @throws ProtoError `MalformedMessage` */
export function decodeRegionMeta(bytes: Uint8Array): RegionMeta {
  return regionFromWire(decodeOrThrow(() => pb.RegionMeta.decode(bytes), 'RegionMeta'));
}

export function encodeRegionLocalState(s: RegionLocalState): Uint8Array {
  return pb.RegionLocalState.encode({
    region: regionToWire(s.region),
    appliedIndex: uint64ToWire(s.appliedIndex, 'applied_index'),
    appliedTerm: uint64ToWire(s.appliedTerm, 'applied_term'),
    truncatedIndex: uint64ToWire(s.truncatedIndex, 'truncated_index'),
    truncatedTerm: uint64ToWire(s.truncatedTerm, 'truncated_term'),
  }).finish();
}

/** @throws ProtoError `MalformedMessage` */
export function decodeRegionLocalState(bytes: Uint8Array): RegionLocalState {
  const m = decodeOrThrow(() => pb.RegionLocalState.decode(bytes), 'RegionLocalState');
  return {
    region: regionFromWire(m.region),
    appliedIndex: uint64FromWire(m.appliedIndex),
    appliedTerm: uint64FromWire(m.appliedTerm),
    truncatedIndex: uint64FromWire(m.truncatedIndex),
    truncatedTerm: uint64FromWire(m.truncatedTerm),
  };
}

function decodeOrThrow<T>(decode: () => T, what: string): T {
  try {
    return decode();
  } catch (err) {
    throw new ProtoError('MalformedMessage', `cannot decode ${what}: ${(err as Error).message}`);
  }
}

/** Unsigned byte order; empty start/end are -inf/+inf. */
export function keyInRegion(key: Uint8Array, r: Pick<RegionMeta, 'startKey' | 'endKey'>): boolean {
  if (r.startKey.length > 0 && Buffer.compare(key, r.startKey) < 0) return false;
  if (r.endKey.length > 0 && Buffer.compare(key, r.endKey) >= 0) return false;
  return true;
}

export function epochEquals(a: RegionEpoch, b: RegionEpoch): boolean {
  return a.version === b.version && a.confVersion === b.confVersion;
}
