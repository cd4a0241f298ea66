import {
  decodeRegionMeta,
  encodeRegionMeta,
  nokv,
  type RegionMeta,
  uint64FromWire,
  uint64ToWire,
} from '@nokv/proto';

// The events of the coordinator's log and their payloads. Region payloads are nokv.meta.v1.RegionMeta,
// store payloads nokv.coordinator.v1.Store, ids and fences a u64 LE.

/** An operator-set store state; a heartbeating store is `normal` (reported up/down by heartbeat age). */
export type StoreAdminState = 'normal' | 'offline' | 'tombstone';

export interface StoreRecord {
  id: bigint;
  addr: string;
  httpAddr: string;
  adminState: StoreAdminState;
}

export type CoordinatorEvent =
  /** A store registered, or its addresses / admin state changed. */
  | { type: 'storePut'; store: StoreRecord }
  /** A region's metadata was accepted (a newer epoch, or a region seen for the first time). */
  | { type: 'regionUpsert'; region: RegionMeta }
  | { type: 'regionRemoved'; regionId: bigint }
  /** Every id handed out from now on is <= fence. */
  | { type: 'idFence'; fence: bigint }
  /** Every timestamp handed out from now on is <= fence. */
  | { type: 'tsoFence'; fence: bigint };

/** The record type byte of each event. */
export const EVENT_TYPE = {
  storePut: 1,
  regionUpsert: 2,
  regionRemoved: 3,
  idFence: 4,
  tsoFence: 5,
} as const satisfies Record<CoordinatorEvent['type'], number>;

const pb = nokv.coordinator.v1;

export const STORE_ADMIN_TO_WIRE: Record<StoreAdminState, number> = {
  normal: pb.StoreState.STORE_STATE_UNSPECIFIED,
  offline: pb.StoreState.STORE_STATE_OFFLINE,
  tombstone: pb.StoreState.STORE_STATE_TOMBSTONE,
};

export function storeAdminFromWire(state: number | null | undefined): StoreAdminState {
  if (state === pb.StoreState.STORE_STATE_OFFLINE) return 'offline';
  if (state === pb.StoreState.STORE_STATE_TOMBSTONE) return 'tombstone';
  return 'normal';
}

export function storeToWire(s: StoreRecord): nokv.coordinator.v1.Store.$Properties {
  return {
    id: uint64ToWire(s.id, 'store.id'),
    addr: s.addr,
    httpAddr: s.httpAddr,
    state: STORE_ADMIN_TO_WIRE[s.adminState],
  };
}

export function storeFromWire(s: nokv.coordinator.v1.Store.$Properties | null | undefined): StoreRecord {
  return {
    id: uint64FromWire(s?.id),
    addr: s?.addr ?? '',
    httpAddr: s?.httpAddr ?? '',
    adminState: storeAdminFromWire(s?.state),
  };
}

function u64(value: bigint): Uint8Array {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(value);
  return b;
}

function readU64(payload: Uint8Array): bigint {
  if (payload.length !== 8) throw new Error(`expected 8 bytes, got ${payload.length}`);
  return Buffer.from(payload.buffer, payload.byteOffset, 8).readBigUInt64LE(0);
}

export function encodeEvent(e: CoordinatorEvent): { type: number; payload: Uint8Array } {
  switch (e.type) {
    case 'storePut':
      return { type: EVENT_TYPE.storePut, payload: pb.Store.encode(storeToWire(e.store)).finish() };
    case 'regionUpsert':
      return { type: EVENT_TYPE.regionUpsert, payload: encodeRegionMeta(e.region) };
    case 'regionRemoved':
      return { type: EVENT_TYPE.regionRemoved, payload: u64(e.regionId) };
    case 'idFence':
      return { type: EVENT_TYPE.idFence, payload: u64(e.fence) };
    case 'tsoFence':
      return { type: EVENT_TYPE.tsoFence, payload: u64(e.fence) };
  }
}

/** @throws Error when the type is unknown or the payload does not decode (the caller names the place). */
export function decodeEvent(type: number, payload: Uint8Array): CoordinatorEvent {
  switch (type) {
    case EVENT_TYPE.storePut:
      return { type: 'storePut', store: storeFromWire(pb.Store.decode(payload)) };
    case EVENT_TYPE.regionUpsert:
      return { type: 'regionUpsert', region: decodeRegionMeta(payload) };
    case EVENT_TYPE.regionRemoved:
      return { type: 'regionRemoved', regionId: readU64(payload) };
    case EVENT_TYPE.idFence:
      return { type: 'idFence', fence: readU64(payload) };
    case EVENT_TYPE.tsoFence:
      return { type: 'tsoFence', fence: readU64(payload) };
    default:
      throw new Error(`unknown event type ${type}`);
  }
}
