/**
 * A stored record. The `meta` byte holds the kind in its low two bits plus flags:
 *
 *   bits 0-1  kind: 0 put, 1 point delete, 2 range delete (value = exclusive end user key)
 *   bit  2    has expiry (an `expiresAt` varint follows in encoded forms)
 *   bit  3    value pointer (reserved for the value log: the value is a pointer, not the bytes)
 */

export const KIND_PUT = 0;
export const KIND_DELETE = 1;
export const KIND_RANGE_DELETE = 2;
export const KIND_MASK = 0x03;
export const META_HAS_EXPIRY = 0x04;
export const META_VALUE_POINTER = 0x08;
/** Bits a valid meta byte may have set. */
export const META_KNOWN_BITS = KIND_MASK | META_HAS_EXPIRY | META_VALUE_POINTER;

export type EntryKind = typeof KIND_PUT | typeof KIND_DELETE | typeof KIND_RANGE_DELETE;

export interface Entry {
  /** Internal key (see internal-key.ts). */
  key: Buffer;
  meta: number;
  /** Unix milliseconds after which the entry reads as absent; 0 = never. */
  expiresAt: number;
  value: Buffer;
}

export function entryKind(meta: number): EntryKind {
  return (meta & KIND_MASK) as EntryKind;
}

/** Meta byte for a kind and an expiry. */
export function makeMeta(kind: EntryKind, expiresAt: number): number {
  return expiresAt > 0 ? kind | META_HAS_EXPIRY : kind;
}

/** True when `meta` has only known bits and a known kind. */
export function isValidMeta(meta: number): boolean {
  return (meta & ~META_KNOWN_BITS) === 0 && (meta & KIND_MASK) <= KIND_RANGE_DELETE;
}

export function isExpired(expiresAt: number, nowMs: number): boolean {
  return expiresAt > 0 && expiresAt <= nowMs;
}
