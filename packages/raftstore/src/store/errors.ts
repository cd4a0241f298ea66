import {
  epochToWire,
  type nokv,
  peerToWire,
  type RegionEpoch,
  type RegionMeta,
  type RegionPeer,
  regionToWire,
  uint64ToWire,
} from '@nokv/proto';

/** Codes of store-runtime failures that are not region errors. */
export type StoreErrorCode =
  | 'InvalidArgument'
  | 'DeadlineExceeded'
  | 'Cancelled'
  | 'NotFound'
  | 'FailedPrecondition'
  | 'Unavailable'
  | 'Internal';

/** A failure of a store operation, with a code the gRPC layer maps to a status. */
export class StoreError extends Error {
  override readonly name = 'StoreError';
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export type RegionErrorKind =
  | 'NotLeader'
  | 'EpochNotMatch'
  | 'KeyNotInRegion'
  | 'RegionNotFound'
  | 'StoreNotMatch'
  | 'ServerBusy';

/**
 * A request the store refused for a region-level reason the client can act on (refresh its route
 * and retry). Carried in the response's `region_error`, not as a gRPC status.
 */
export class RegionError extends Error {
  override readonly name = 'RegionError';
  constructor(
    readonly code: RegionErrorKind,
    message: string,
    readonly wire: nokv.errors.v1.RegionError.$Properties,
  ) {
    super(message);
  }

  static notLeader(regionId: bigint, leader: RegionPeer | undefined): RegionError {
    const msg = leader
      ? `region ${regionId}: not leader; leader is peer ${leader.peerId} on store ${leader.storeId}`
      : `region ${regionId}: not leader; no leader known`;
    return new RegionError('NotLeader', msg, {
      message: msg,
      notLeader: { regionId: u64(regionId), leader: leader ? peerToWire(leader) : null },
    });
  }

  static epochNotMatch(requested: RegionEpoch, current: RegionMeta[]): RegionError {
    const cur = current[0]?.epoch;
    const msg = `epoch {version ${requested.version}, conf ${requested.confVersion}} is stale${
      cur ? `; current is {version ${cur.version}, conf ${cur.confVersion}}` : ''
    }`;
    return new RegionError('EpochNotMatch', msg, {
      message: msg,
      epochNotMatch: {
        currentEpoch: cur ? epochToWire(cur) : null,
        currentRegions: current.map(regionToWire),
      },
    });
  }

  static keyNotInRegion(key: Uint8Array, region: RegionMeta): RegionError {
    const msg = `key ${showKey(key)} is not in region ${region.id} [${showKey(region.startKey)}, ${showKey(region.endKey)})`;
    return new RegionError('KeyNotInRegion', msg, {
      message: msg,
      keyNotInRegion: { key, regionId: u64(region.id), startKey: region.startKey, endKey: region.endKey },
    });
  }

  static regionNotFound(regionId: bigint): RegionError {
    const msg = `region ${regionId} is not hosted on this store`;
    return new RegionError('RegionNotFound', msg, {
      message: msg,
      regionNotFound: { regionId: u64(regionId) },
    });
  }

  static storeNotMatch(requested: bigint, actual: bigint): RegionError {
    const msg = `request for store ${requested} reached store ${actual}`;
    return new RegionError('StoreNotMatch', msg, {
      message: msg,
      storeNotMatch: { requestStoreId: u64(requested), actualStoreId: u64(actual) },
    });
  }

  static serverBusy(reason: string, backoffMs: number): RegionError {
    return new RegionError('ServerBusy', `server busy: ${reason}`, {
      message: `server busy: ${reason}`,
      serverBusy: { reason, backoffMs },
    });
  }
}

function u64(v: bigint) {
  return uint64ToWire(v, 'region_id');
}

/** A key for messages: printable ASCII as is, anything else as hex; empty as "-" (unbounded). */
export function showKey(key: Uint8Array): string {
  if (key.length === 0) return '-';
  const printable = key.every((b) => b >= 0x20 && b < 0x7f);
  return printable ? `'${Buffer.from(key).toString('latin1')}'` : `hex:${Buffer.from(key).toString('hex')}`;
}
