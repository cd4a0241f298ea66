import type { RegionEpoch, RegionMeta } from '@nokv/proto';
import type { CoordinatorEvent, StoreRecord } from './events.js';

/** The durable part of the coordinator's state: what the checkpoint holds and events change. */
export class Catalog {
  readonly stores = new Map<bigint, StoreRecord>();
  readonly regions = new Map<bigint, RegionMeta>();
  idFence = 0n;
  tsoFence = 0n;
  /** Bumped on every region change (the route index rebuilds lazily). */
  regionVersion = 0;

  apply(e: CoordinatorEvent): void {
    switch (e.type) {
      case 'storePut':
        this.stores.set(e.store.id, { ...e.store });
        return;
      case 'regionUpsert':
        this.regions.set(e.region.id, e.region);
        this.regionVersion++;
        return;
      case 'regionRemoved':
        if (this.regions.delete(e.regionId)) this.regionVersion++;
        return;
      case 'idFence':
        if (e.fence > this.idFence) this.idFence = e.fence;
        return;
      case 'tsoFence':
        if (e.fence > this.tsoFence) this.tsoFence = e.fence;
        return;
    }
  }

  /** The largest store, region or peer id the catalog mentions (ids handed out must exceed it). */
  maxKnownId(): bigint {
    let max = 0n;
    for (const id of this.stores.keys()) if (id > max) max = id;
    for (const r of this.regions.values()) {
      if (r.id > max) max = r.id;
      for (const p of r.peers) {
        if (p.peerId > max) max = p.peerId;
        if (p.storeId > max) max = p.storeId;
      }
    }
    return max;
  }
}

/** The coordinator's staleness test: stale iff version lower, or same version and conf_version lower. */
export function isStaleEpoch(incoming: RegionEpoch, current: RegionEpoch): boolean {
  return (
    incoming.version < current.version ||
    (incoming.version === current.version && incoming.confVersion < current.confVersion)
  );
}

export function compareEpoch(a: RegionEpoch, b: RegionEpoch): number {
  if (a.version !== b.version) return a.version < b.version ? -1 : 1;
  if (a.confVersion !== b.confVersion) return a.confVersion < b.confVersion ? -1 : 1;
  return 0;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

/** Same id, range, epoch, peers and state. */
export function sameRegion(a: RegionMeta, b: RegionMeta): boolean {
  return (
    a.id === b.id &&
    bytesEqual(a.startKey, b.startKey) &&
    bytesEqual(a.endKey, b.endKey) &&
    a.epoch.version === b.epoch.version &&
    a.epoch.confVersion === b.epoch.confVersion &&
    a.state === b.state &&
    a.peers.length === b.peers.length &&
    a.peers.every(
      (p, i) =>
        p.storeId === b.peers[i]!.storeId &&
        p.peerId === b.peers[i]!.peerId &&
        p.learner === b.peers[i]!.learner,
    )
  );
}

/** Whether [a.start, a.end) and [b.start, b.end) intersect (empty end = +inf). */
export function rangesOverlap(
  a: Pick<RegionMeta, 'startKey' | 'endKey'>,
  b: Pick<RegionMeta, 'startKey' | 'endKey'>,
): boolean {
  const aBeforeB = a.endKey.length > 0 && Buffer.compare(a.endKey, b.startKey) <= 0;
  const bBeforeA = b.endKey.length > 0 && Buffer.compare(b.endKey, a.startKey) <= 0;
  return !aBeforeB && !bBeforeA;
}
