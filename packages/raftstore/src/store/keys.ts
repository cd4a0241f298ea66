// Where a store keeps things in its one engine (all in the `default` column family):
//
//   'z' ‖ user key                                   user data (raw KV)
//   0x01 0x01                                        store ident (StoreIdent: cluster, store id)
//   0x01 0x02 ‖ region id (u64 BE) ‖ 0x01 ‖ index    raft log entry (nokv.raft.v1.Entry)
//   0x01 0x02 ‖ region id (u64 BE) ‖ 0x02            raft hard state (nokv.raft.v1.HardState)
//   0x01 0x02 ‖ region id (u64 BE) ‖ 0x03            raft snapshot metadata the log starts after
//   0x01 0x03 ‖ region id (u64 BE)                   region local state (RegionLocalState): meta,
//                                                    applied index/term, truncated index/term
//   0x01 0x04 ‖ region id (u64 BE)                   tombstone: peer id (u64 BE) removed from it
//   0x01 0x05 ‖ region id (u64 BE)                   merge state of a source region in MERGING:
//                                                    target region id, PrepareMerge index (u64 BE)
//
// Local keys sort before every data key ('z' = 0x7a), so a scan of the data space never meets
// them, and the region-state keys sit together so the catalog is one short prefix scan.

const LOCAL = 0x01;
const STORE_IDENT = 0x01;
const RAFT = 0x02;
const REGION_STATE = 0x03;
const RAFT_LOG = 0x01;
const RAFT_HARD_STATE = 0x02;
const RAFT_SNAPSHOT = 0x03;

export const DATA_PREFIX = 0x7a; // 'z'

function u64(b: Buffer, offset: number, v: bigint): void {
  b.writeBigUInt64BE(v, offset);
}

/** Engine key of a user key. */
export function dataKey(userKey: Uint8Array): Buffer {
  const k = Buffer.allocUnsafe(userKey.length + 1);
  k[0] = DATA_PREFIX;
  k.set(userKey, 1);
  return k;
}

/** User key of an engine data key. */
export function userKeyOf(dataKeyBytes: Uint8Array): Buffer {
  return Buffer.from(dataKeyBytes.buffer, dataKeyBytes.byteOffset + 1, dataKeyBytes.length - 1);
}

/** Engine key range [lo, hi) of a region's user range [start, end) (empty end = +inf). */
export function dataRange(start: Uint8Array, end: Uint8Array): { lo: Buffer; hi: Buffer } {
  return { lo: dataKey(start), hi: end.length === 0 ? Buffer.from([DATA_PREFIX + 1]) : dataKey(end) };
}

export const storeIdentKey = Buffer.from([LOCAL, STORE_IDENT]);

function raftKey(regionId: bigint, suffix: number, extra = 0): Buffer {
  const k = Buffer.alloc(2 + 8 + 1 + extra);
  k[0] = LOCAL;
  k[1] = RAFT;
  u64(k, 2, regionId);
  k[10] = suffix;
  return k;
}

export function raftLogKey(regionId: bigint, index: bigint): Buffer {
  const k = raftKey(regionId, RAFT_LOG, 8);
  u64(k, 11, index);
  return k;
}

/** [lo, hi) covering a region's log entries with index in [from, to). */
export function raftLogRange(regionId: bigint, from: bigint, to: bigint): { lo: Buffer; hi: Buffer } {
  return { lo: raftLogKey(regionId, from), hi: raftLogKey(regionId, to) };
}

export function raftHardStateKey(regionId: bigint): Buffer {
  return raftKey(regionId, RAFT_HARD_STATE);
}

export function raftSnapshotKey(regionId: bigint): Buffer {
  return raftKey(regionId, RAFT_SNAPSHOT);
}

/** Every raft key of a region (log, hard state, snapshot metadata): [lo, hi). */
export function raftRange(regionId: bigint): { lo: Buffer; hi: Buffer } {
  const lo = Buffer.alloc(10);
  lo[0] = LOCAL;
  lo[1] = RAFT;
  u64(lo, 2, regionId);
  const hi = Buffer.from(lo);
  // region ids < 2^64 - 1, so incrementing the id never overflows into the prefix
  u64(hi, 2, regionId + 1n);
  return { lo, hi };
}

export function regionStateKey(regionId: bigint): Buffer {
  const k = Buffer.alloc(10);
  k[0] = LOCAL;
  k[1] = REGION_STATE;
  u64(k, 2, regionId);
  return k;
}

/** [lo, hi) of every region-state key: the store's catalog. */
export const regionStateRange = {
  lo: Buffer.from([LOCAL, REGION_STATE]),
  hi: Buffer.from([LOCAL, REGION_STATE + 1]),
};

/** Region id of a region-state key. */
export function regionIdOfStateKey(key: Uint8Array): bigint {
  return Buffer.from(key.buffer, key.byteOffset, key.length).readBigUInt64BE(2);
}

const TOMBSTONE = 0x04;

/** 0x01 0x04 ‖ region id: the id of this store's last peer of a region it was removed from. */
export function tombstoneKey(regionId: bigint): Buffer {
  const k = Buffer.alloc(10);
  k[0] = LOCAL;
  k[1] = TOMBSTONE;
  u64(k, 2, regionId);
  return k;
}

export const tombstoneRange = {
  lo: Buffer.from([LOCAL, TOMBSTONE]),
  hi: Buffer.from([LOCAL, TOMBSTONE + 1]),
};

const MERGE_STATE = 0x05;

/** 0x01 0x05 ‖ region id: the merge a source region is in (target id ‖ PrepareMerge index). */
export function mergeStateKey(regionId: bigint): Buffer {
  const k = Buffer.alloc(10);
  k[0] = LOCAL;
  k[1] = MERGE_STATE;
  u64(k, 2, regionId);
  return k;
}
