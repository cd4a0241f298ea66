import { nokv, type RegionMeta, type RegionPeer, regionToWire, uint64ToWire } from '@nokv/proto';

// Builders for wire requests (tests and tools).

export function region(
  id: bigint,
  start: string,
  end: string,
  peers: [storeId: bigint, peerId: bigint][],
  epoch: { version: bigint; confVersion: bigint } = { version: 1n, confVersion: 1n },
): RegionMeta {
  return {
    id,
    startKey: Buffer.from(start),
    endKey: Buffer.from(end),
    epoch,
    peers: peers.map(([storeId, peerId]) => ({ storeId, peerId, learner: false })),
    state: 2,
  };
}

export function regionHeartbeatRequest(
  r: RegionMeta,
  leader: RegionPeer | undefined,
  term = 1n,
): nokv.coordinator.v1.RegionHeartbeatRequest.$Properties {
  return {
    region: regionToWire(r),
    ...(leader
      ? { leader: { storeId: uint64ToWire(leader.storeId, 's'), peerId: uint64ToWire(leader.peerId, 'p') } }
      : {}),
    term: uint64ToWire(term, 'term'),
  };
}

export function storeHeartbeatRequest(
  id: bigint,
  addr = `127.0.0.1:${20000 + Number(id)}`,
): nokv.coordinator.v1.StoreHeartbeatRequest.$Properties {
  return { store: { id: uint64ToWire(id, 'id'), addr }, stats: {} };
}

export function decodeReq<T>(
  codec: { encode(m: unknown): { finish(): Uint8Array }; decode(b: Uint8Array): T },
  m: unknown,
): T {
  return codec.decode(codec.encode(m).finish());
}

export const pb = nokv.coordinator.v1;
