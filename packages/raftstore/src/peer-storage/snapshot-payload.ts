import { crc32c as nativeCrc32c } from '@node-rs/crc32';
import { decodeRegionMeta, encodeRegionMeta, keyInRegion, type RegionMeta } from '@nokv/proto';
import { CorruptSnapshotError } from './errors.js';

// The data of a region snapshot (raft Snapshot.data), all integers big-endian:
//
//   'NKVS'                         magic
//   u8  version                    SNAPSHOT_PAYLOAD_VERSION (1)
//   u32 n  ‖ n bytes               region meta (nokv.meta.v1.RegionMeta)
//   u64 appliedIndex ‖ u64 appliedTerm
//   u64 count                      number of key-value pairs
//   count × (u32 keyLen ‖ key ‖ u32 valueLen ‖ value)   user keys (no 'z' prefix), ascending
//   version 2 only — the transaction column families (lock, write, data), every live version:
//   u64 records
//   records × (u8 cf ‖ u32 keyLen ‖ key ‖ u64 version ‖ u64 expiresAt ‖ u32 valueLen ‖ value)
//                                  cf: 1 lock, 2 write, 3 data; keys are user keys in the region
//   u32 crc32c                     CRC32C of every byte before it
//
// Decoding checks the magic, version and checksum first, then every length against the bytes
// left, that nothing trails the pairs, that keys ascend strictly and lie in the region's range.

export const SNAPSHOT_PAYLOAD_MAGIC = Buffer.from('NKVS', 'latin1');
/** Version 2 adds the transaction column families; version 1 payloads still decode. */
export const SNAPSHOT_PAYLOAD_VERSION = 2;

export type TxnColumnFamily = 'lock' | 'write' | 'data';
const CF_CODES: Record<TxnColumnFamily, number> = { lock: 1, write: 2, data: 3 };
const CF_NAMES: Record<number, TxnColumnFamily> = { 1: 'lock', 2: 'write', 3: 'data' };

/** One version of a key in a transaction column family. */
export interface VersionedRecord {
  cf: TxnColumnFamily;
  /** User key (no 'z' prefix). */
  key: Uint8Array;
  version: bigint;
  /** Unix ms, 0 = never. */
  expiresAt: number;
  value: Uint8Array;
}

export interface SnapshotPayload {
  region: RegionMeta;
  appliedIndex: bigint;
  appliedTerm: bigint;
  /** User keys (not engine data keys) in ascending order, with their values. */
  pairs: Array<[key: Uint8Array, value: Uint8Array]>;
  /** The transaction column families' live versions (absent in version-1 payloads). */
  records?: VersionedRecord[];
}

const HEADER_BYTES = 4 + 1 + 4;
const FIXED_BYTES = HEADER_BYTES + 8 + 8 + 8 + 4;
const U32_MAX = 0xffff_ffff;

function crc32c(data: Uint8Array): number {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return nativeCrc32c(buf, 0) >>> 0;
}

/** Encodes a region snapshot's data. Pairs must be user keys in ascending order. */
export function encodeSnapshotPayload(p: SnapshotPayload): Buffer {
  const region = encodeRegionMeta(p.region);
  let size = FIXED_BYTES + region.length;
  for (const [k, v] of p.pairs) {
    if (k.length > U32_MAX || v.length > U32_MAX) throw new RangeError('snapshot pair too large');
    size += 8 + k.length + v.length;
  }
  const records = p.records ?? [];
  size += 8;
  for (const r of records) size += 1 + 4 + r.key.length + 8 + 8 + 4 + r.value.length;
  const out = Buffer.allocUnsafe(size);
  let o = 0;
  SNAPSHOT_PAYLOAD_MAGIC.copy(out, o);
  o += 4;
  out[o++] = SNAPSHOT_PAYLOAD_VERSION;
  out.writeUInt32BE(region.length, o);
  o += 4;
  out.set(region, o);
  o += region.length;
  out.writeBigUInt64BE(p.appliedIndex, o);
  o += 8;
  out.writeBigUInt64BE(p.appliedTerm, o);
  o += 8;
  out.writeBigUInt64BE(BigInt(p.pairs.length), o);
  o += 8;
  for (const [k, v] of p.pairs) {
    out.writeUInt32BE(k.length, o);
    o += 4;
    out.set(k, o);
    o += k.length;
    out.writeUInt32BE(v.length, o);
    o += 4;
    out.set(v, o);
    o += v.length;
  }
  out.writeBigUInt64BE(BigInt(records.length), o);
  o += 8;
  for (const r of records) {
    out[o++] = CF_CODES[r.cf];
    out.writeUInt32BE(r.key.length, o);
    o += 4;
    out.set(r.key, o);
    o += r.key.length;
    out.writeBigUInt64BE(r.version, o);
    o += 8;
    out.writeBigUInt64BE(BigInt(r.expiresAt), o);
    o += 8;
    out.writeUInt32BE(r.value.length, o);
    o += 4;
    out.set(r.value, o);
    o += r.value.length;
  }
  out.writeUInt32BE(crc32c(out.subarray(0, o)), o);
  return out;
}

/**
 * Decodes and verifies a region snapshot's data. The returned keys and values are views into
 * `bytes`.
 * @throws CorruptSnapshotError for a bad magic, version, checksum, truncation, trailing bytes,
 *   an undecodable region, or keys out of order or outside the region.
 */
export function decodeSnapshotPayload(bytes: Uint8Array): SnapshotPayload {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < FIXED_BYTES) {
    throw new CorruptSnapshotError(
      `payload of ${b.length} bytes is shorter than the ${FIXED_BYTES}-byte minimum`,
    );
  }
  if (!b.subarray(0, 4).equals(SNAPSHOT_PAYLOAD_MAGIC)) {
    throw new CorruptSnapshotError(`bad magic ${b.subarray(0, 4).toString('hex')}`);
  }
  const version = b[4]!;
  if (version !== 1 && version !== SNAPSHOT_PAYLOAD_VERSION) {
    throw new CorruptSnapshotError(
      `unknown payload version ${version} (expected ${SNAPSHOT_PAYLOAD_VERSION})`,
    );
  }
  const bodyEnd = b.length - 4;
  const stored = b.readUInt32BE(bodyEnd);
  const actual = crc32c(b.subarray(0, bodyEnd));
  if (stored !== actual) {
    throw new CorruptSnapshotError(
      `checksum mismatch: stored ${stored.toString(16)}, computed ${actual.toString(16)} over ${bodyEnd} bytes`,
    );
  }
  let o = 5;
  const need = (n: number, what: string): void => {
    if (n > bodyEnd - o) {
      throw new CorruptSnapshotError(`${what} needs ${n} bytes at offset ${o}; only ${bodyEnd - o} left`);
    }
  };
  need(4, 'region length');
  const regionLen = b.readUInt32BE(o);
  o += 4;
  need(regionLen, 'region meta');
  let region: RegionMeta;
  try {
    region = decodeRegionMeta(b.subarray(o, o + regionLen));
  } catch (err) {
    throw new CorruptSnapshotError(`region meta does not decode: ${(err as Error).message}`, undefined, {
      cause: err,
    });
  }
  o += regionLen;
  need(24, 'applied index, term and pair count');
  const appliedIndex = b.readBigUInt64BE(o);
  const appliedTerm = b.readBigUInt64BE(o + 8);
  const count = b.readBigUInt64BE(o + 16);
  o += 24;
  // Each pair takes at least 8 bytes, which bounds a forged count before anything is allocated.
  if (count > BigInt(Math.floor((bodyEnd - o) / 8))) {
    throw new CorruptSnapshotError(
      `pair count ${count} cannot fit in the ${bodyEnd - o} bytes left`,
      region.id,
    );
  }
  const n = Number(count);
  const pairs: Array<[Uint8Array, Uint8Array]> = new Array(n);
  let prev: Buffer | undefined;
  for (let i = 0; i < n; i++) {
    need(4, `key length of pair ${i}`);
    const kl = b.readUInt32BE(o);
    o += 4;
    need(kl, `key of pair ${i}`);
    const key = b.subarray(o, o + kl);
    o += kl;
    need(4, `value length of pair ${i}`);
    const vl = b.readUInt32BE(o);
    o += 4;
    need(vl, `value of pair ${i}`);
    const value = b.subarray(o, o + vl);
    o += vl;
    if (prev !== undefined && Buffer.compare(prev, key) >= 0) {
      throw new CorruptSnapshotError(`pair ${i}: keys are not in ascending order`, region.id);
    }
    if (!keyInRegion(key, region)) {
      throw new CorruptSnapshotError(
        `pair ${i}: key ${key.toString('hex')} is outside the region`,
        region.id,
      );
    }
    prev = key;
    pairs[i] = [key, value];
  }
  let records: VersionedRecord[] | undefined;
  if (version >= 2) {
    need(8, 'record count');
    const rc = b.readBigUInt64BE(o);
    o += 8;
    // Each record takes at least 25 bytes.
    if (rc > BigInt(Math.floor((bodyEnd - o) / 25))) {
      throw new CorruptSnapshotError(
        `record count ${rc} cannot fit in the ${bodyEnd - o} bytes left`,
        region.id,
      );
    }
    records = new Array(Number(rc));
    for (let i = 0; i < records.length; i++) {
      need(5, `header of record ${i}`);
      const cf = CF_NAMES[b[o]!];
      if (cf === undefined)
        throw new CorruptSnapshotError(`record ${i}: unknown column family ${b[o]}`, region.id);
      const kl = b.readUInt32BE(o + 1);
      o += 5;
      need(kl + 16 + 4, `key and version of record ${i}`);
      const key = b.subarray(o, o + kl);
      o += kl;
      const rv = b.readBigUInt64BE(o);
      const exp = b.readBigUInt64BE(o + 8);
      const vl = b.readUInt32BE(o + 16);
      o += 20;
      need(vl, `value of record ${i}`);
      const value = b.subarray(o, o + vl);
      o += vl;
      if (!keyInRegion(key, region)) {
        throw new CorruptSnapshotError(
          `record ${i}: key ${key.toString('hex')} is outside the region`,
          region.id,
        );
      }
      if (exp > BigInt(Number.MAX_SAFE_INTEGER)) {
        throw new CorruptSnapshotError(`record ${i}: expiry ${exp} is out of range`, region.id);
      }
      records[i] = { cf, key, version: rv, expiresAt: Number(exp), value };
    }
  }
  if (o !== bodyEnd) {
    throw new CorruptSnapshotError(`${bodyEnd - o} trailing bytes after ${n} pairs`, region.id);
  }
  return records === undefined
    ? { region, appliedIndex, appliedTerm, pairs }
    : { region, appliedIndex, appliedTerm, pairs, records };
}
