/**
 * Internal keys: every stored record is keyed by
 *
 *     cf:u8 | userKey | u64be(MAX_VERSION - version)
 *
 * The "base key" is everything but the last 8 bytes (column family + user key). Keys order by base
 * key bytewise, then by version descending (the inverted suffix makes newer versions sort first).
 * Comparing whole buffers in one go would be wrong ("a"+suffix vs "ab"+suffix), so the comparator
 * works in two stages. The same comparator orders memtables, blocks, iterators and table bounds.
 */

import { AssertionError } from '../util/invariants.js';

/** Column families: the public API writes `default`; the transaction layer uses the other three. */
export const COLUMN_FAMILIES = ['default', 'lock', 'write', 'data'] as const;
export type ColumnFamily = (typeof COLUMN_FAMILIES)[number];

export const CF_DEFAULT = 0;
export const CF_COUNT = COLUMN_FAMILIES.length;

/** Largest version; reads use it to mean "newest". It is never written. */
export const MAX_VERSION = 0xffff_ffff_ffff_ffffn;

/** Bytes after the user key. */
export const VERSION_SUFFIX_BYTES = 8;

/** Bytes an internal key adds around the user key. */
export const INTERNAL_KEY_OVERHEAD = 1 + VERSION_SUFFIX_BYTES;

/** Column family name → id; throws on an unknown name. */
export function cfId(cf: ColumnFamily): number {
  const id = COLUMN_FAMILIES.indexOf(cf);
  if (id < 0) throw new AssertionError(`unknown column family '${String(cf)}'`);
  return id;
}

export function cfName(id: number): ColumnFamily {
  const name = COLUMN_FAMILIES[id];
  if (name === undefined) throw new AssertionError(`unknown column family id ${id}`);
  return name;
}

/** Builds an internal key. */
export function encodeInternalKey(cf: number, userKey: Uint8Array, version: bigint): Buffer {
  const key = Buffer.allocUnsafe(userKey.length + INTERNAL_KEY_OVERHEAD);
  key[0] = cf;
  key.set(userKey, 1);
  key.writeBigUInt64BE(MAX_VERSION - version, userKey.length + 1);
  return key;
}

/** True when `key` is long enough to be an internal key with a known column family. */
export function isValidInternalKey(key: Uint8Array): boolean {
  return key.length >= INTERNAL_KEY_OVERHEAD && key[0]! < CF_COUNT;
}

export function internalKeyCf(key: Uint8Array): number {
  return key[0]!;
}

/** The user key, as a view into `key` (no copy). */
export function internalKeyUserKey(key: Buffer): Buffer {
  return key.subarray(1, key.length - VERSION_SUFFIX_BYTES);
}

/** The base key (column family + user key), as a view into `key`. */
export function internalKeyBase(key: Buffer): Buffer {
  return key.subarray(0, key.length - VERSION_SUFFIX_BYTES);
}

export function internalKeyVersion(key: Buffer): bigint {
  return MAX_VERSION - key.readBigUInt64BE(key.length - VERSION_SUFFIX_BYTES);
}

/**
 * Bytewise order of `a[aStart, aEnd)` and `b[bStart, bEnd)`. A plain loop: for keys of a few
 * dozen bytes it is several times cheaper than `Buffer#compare` with offsets, whose argument
 * checks and native call dominate the read path. Long ranges go to the native compare.
 */
export function compareRange(
  a: Uint8Array,
  aStart: number,
  aEnd: number,
  b: Uint8Array,
  bStart: number,
  bEnd: number,
): number {
  const aLen = aEnd - aStart;
  const bLen = bEnd - bStart;
  const n = Math.min(aLen, bLen);
  if (n > 128) {
    const c = Buffer.compare(a.subarray(aStart, aStart + n), b.subarray(bStart, bStart + n));
    return c !== 0 ? c : aLen - bLen;
  }
  for (let i = 0; i < n; i++) {
    const d = a[aStart + i]! - b[bStart + i]!;
    if (d !== 0) return d;
  }
  return aLen - bLen;
}

/** Internal-key order: base keys bytewise, then newer versions first. */
export function compareInternalKeys(a: Uint8Array, b: Uint8Array): number {
  return compareInternalKeyAt(a, 0, a.length, b);
}

/**
 * Internal-key order between `a[aStart, aEnd)` (a key stored inside a larger buffer, such as a
 * block) and the whole of `b`. Avoids slicing on the read path.
 */
export function compareInternalKeyAt(a: Uint8Array, aStart: number, aEnd: number, b: Uint8Array): number {
  const aBase = aEnd - VERSION_SUFFIX_BYTES;
  const bBase = b.length - VERSION_SUFFIX_BYTES;
  const c = compareRange(a, aStart, aBase, b, 0, bBase);
  if (c !== 0) return c;
  for (let i = 0; i < VERSION_SUFFIX_BYTES; i++) {
    const d = a[aBase + i]! - b[bBase + i]!;
    if (d !== 0) return d;
  }
  return 0;
}

/** Compares the base keys (column family + user key) of two internal keys. */
export function compareBaseKeys(a: Uint8Array, b: Uint8Array): number {
  return compareRange(a, 0, a.length - VERSION_SUFFIX_BYTES, b, 0, b.length - VERSION_SUFFIX_BYTES);
}

/** True when two internal keys share a base key. */
export function sameBaseKey(a: Uint8Array, b: Uint8Array): boolean {
  const n = a.length - VERSION_SUFFIX_BYTES;
  return n === b.length - VERSION_SUFFIX_BYTES && compareRange(a, 0, n, b, 0, n) === 0;
}

/** Compares the base key of internal key `ikey` with a bare base key `base`. */
export function compareBaseKeyTo(ikey: Uint8Array, base: Uint8Array): number {
  return compareRange(ikey, 0, ikey.length - VERSION_SUFFIX_BYTES, base, 0, base.length);
}

/** Builds a base key (column family + user key). */
export function encodeBaseKey(cf: number, userKey: Uint8Array): Buffer {
  const key = Buffer.allocUnsafe(userKey.length + 1);
  key[0] = cf;
  key.set(userKey, 1);
  return key;
}

/**
 * "Is this key's version at or below V?" without BigInt arithmetic: compares the stored suffix
 * (MAX_VERSION - version, big-endian) with V's suffix as two 32-bit halves. Iterators ask it for
 * every entry they pass.
 */
export class VersionBound {
  private readonly hi: number;
  private readonly lo: number;
  readonly version: bigint;

  constructor(version: bigint) {
    const suffix = MAX_VERSION - version;
    this.version = version;
    this.hi = Number(suffix >> 32n);
    this.lo = Number(suffix & 0xffff_ffffn);
  }

  /** True when the version of internal key `key` is at or below the bound. */
  admits(key: Uint8Array): boolean {
    const p = key.length - VERSION_SUFFIX_BYTES;
    const hi = ((key[p]! << 24) | (key[p + 1]! << 16) | (key[p + 2]! << 8) | key[p + 3]!) >>> 0;
    if (hi !== this.hi) return hi > this.hi;
    const lo = ((key[p + 4]! << 24) | (key[p + 5]! << 16) | (key[p + 6]! << 8) | key[p + 7]!) >>> 0;
    return lo >= this.lo;
  }
}
