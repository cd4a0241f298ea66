/**
 * Turns the merged internal stream into what a reader sees. For each user key in one column
 * family, in the iteration direction, it finds the newest version at or below the read version and
 * yields it if it is a live put (not a delete, not expired, not under a visible range tombstone).
 * Older versions are never yielded. Synchronous; `db.iterate` wraps it as an async iterable.
 */

import { entryKind, isExpired, KIND_PUT, META_VALUE_POINTER } from '../keys/entry.js';
import {
  encodeInternalKey,
  internalKeyCf,
  internalKeyVersion,
  MAX_VERSION,
  sameBaseKey,
  VERSION_SUFFIX_BYTES,
  VersionBound,
} from '../keys/internal-key.js';
import { maxCoveringVersionOf, type TombstoneIndex } from '../rangedel/tombstone-index.js';
import { copyOut } from '../util/bytes.js';
import type { InternalIterator } from './internal-iterator.js';

export interface UserIteratorOptions {
  cf: number;
  /** Inclusive lower bound (user key). */
  lower?: Buffer | undefined;
  /** Exclusive upper bound (user key). */
  upper?: Buffer | undefined;
  reverse: boolean;
  readVersion: bigint;
  nowMs: number;
  tombstones: readonly TombstoneIndex[];
  /** Reads the value a value-log pointer stands for (a fresh buffer). */
  resolvePointer: (key: Buffer, pointer: Buffer) => Buffer;
}

/** An owned copy of an entry's value (resolving a value-log pointer). */
function ownedValue(o: UserIteratorOptions, key: Buffer, meta: number, value: Buffer): Buffer {
  return meta & META_VALUE_POINTER ? o.resolvePointer(key, value) : copyOut(value);
}

/** One version of a key, as `scanVersions` yields it. */
export interface VersionRecord {
  key: Buffer;
  version: bigint;
  meta: number;
  expiresAt: number;
  value: Buffer;
}

function userKeyOf(ikey: Buffer): Buffer {
  return ikey.subarray(1, ikey.length - VERSION_SUFFIX_BYTES);
}

/** Positions `it` at the first entry of the range in the iteration direction. */
function positionAtStart(
  it: InternalIterator,
  o: { cf: number; lower?: Buffer | undefined; upper?: Buffer | undefined; reverse: boolean },
): void {
  if (!o.reverse) {
    it.seek(encodeInternalKey(o.cf, o.lower ?? Buffer.alloc(0), MAX_VERSION));
  } else if (o.upper !== undefined) {
    // (upper, MAX_VERSION) sorts before every real version of `upper`, so "<=" means "< upper".
    it.seekForPrev(encodeInternalKey(o.cf, o.upper, MAX_VERSION));
  } else {
    it.seekForPrev(encodeInternalKey(o.cf + 1, Buffer.alloc(0), MAX_VERSION));
  }
}

/** True while `ikey` is inside the column family and bounds. */
function inRange(
  ikey: Buffer,
  o: { cf: number; lower?: Buffer | undefined; upper?: Buffer | undefined; reverse: boolean },
): boolean {
  if (internalKeyCf(ikey) !== o.cf) return false;
  const end = ikey.length - VERSION_SUFFIX_BYTES;
  if (!o.reverse) {
    return o.upper === undefined || ikey.compare(o.upper, 0, o.upper.length, 1, end) < 0;
  }
  return o.lower === undefined || ikey.compare(o.lower, 0, o.lower.length, 1, end) >= 0;
}

export class UserIterator {
  private readonly it: InternalIterator;
  private readonly o: UserIteratorOptions;
  private readonly bound: VersionBound;
  private started = false;
  private done = false;

  constructor(it: InternalIterator, options: UserIteratorOptions) {
    this.it = it;
    this.o = options;
    this.bound = new VersionBound(options.readVersion);
  }

  private visible(key: Buffer, meta: number, expiresAt: number): boolean {
    if (entryKind(meta) !== KIND_PUT || isExpired(expiresAt, this.o.nowMs)) return false;
    const t = this.o.tombstones;
    if (t.length === 0) return true;
    return maxCoveringVersionOf(t, this.o.cf, userKeyOf(key), this.o.readVersion) <= internalKeyVersion(key);
  }

  /** The next visible [key, value] (both owned copies), or undefined at the end. */
  next(): [Buffer, Buffer] | undefined {
    if (this.done) return undefined;
    const it = this.it;
    if (!this.started) {
      this.started = true;
      positionAtStart(it, this.o);
    }
    const bound = this.bound;
    while (it.valid()) {
      const key = it.key();
      if (!inRange(key, this.o)) break;
      if (!this.o.reverse) {
        // Versions of a key arrive newest first: skip those above the read version, take the
        // first at or below it, then step past the rest of the key.
        if (!bound.admits(key)) {
          it.next();
          continue;
        }
        const meta = it.meta();
        const expiresAt = it.expiresAt();
        const value = it.value();
        it.next();
        while (it.valid() && sameBaseKey(it.key(), key)) it.next();
        if (this.visible(key, meta, expiresAt)) {
          return [copyOut(key, 1, key.length - VERSION_SUFFIX_BYTES), ownedValue(this.o, key, meta, value)];
        }
      } else {
        // Backwards, versions of a key arrive oldest first: the last one at or below the read
        // version is the newest visible.
        let bestKey: Buffer | undefined;
        let bestMeta = 0;
        let bestExpires = 0;
        let bestValue: Buffer | undefined;
        while (it.valid() && sameBaseKey(it.key(), key)) {
          const k = it.key();
          if (bound.admits(k)) {
            bestKey = k;
            bestMeta = it.meta();
            bestExpires = it.expiresAt();
            bestValue = it.value();
          }
          it.prev();
        }
        if (bestKey !== undefined && this.visible(bestKey, bestMeta, bestExpires)) {
          return [
            copyOut(key, 1, key.length - VERSION_SUFFIX_BYTES),
            ownedValue(this.o, bestKey, bestMeta, bestValue!),
          ];
        }
      }
    }
    this.done = true;
    return undefined;
  }
}

/**
 * Every stored point version (puts and deletes, expired or not) at or below the read version,
 * in key order then newest version first (reverse: the exact opposite order), skipping versions
 * hidden by a visible range tombstone. This is what the transaction layer scans.
 */
export class VersionIterator {
  private readonly it: InternalIterator;
  private readonly o: UserIteratorOptions;
  private started = false;

  constructor(it: InternalIterator, options: UserIteratorOptions) {
    this.it = it;
    this.o = options;
  }

  next(): VersionRecord | undefined {
    const it = this.it;
    if (!this.started) {
      this.started = true;
      positionAtStart(it, this.o);
    }
    while (it.valid()) {
      const key = it.key();
      if (!inRange(key, this.o)) return undefined;
      const version = internalKeyVersion(key);
      const meta = it.meta();
      const expiresAt = it.expiresAt();
      const value = it.value();
      if (this.o.reverse) it.prev();
      else it.next();
      if (version > this.o.readVersion) continue;
      const t = this.o.tombstones;
      if (t.length > 0 && maxCoveringVersionOf(t, this.o.cf, userKeyOf(key), this.o.readVersion) > version)
        continue;
      return {
        key: copyOut(key, 1, key.length - VERSION_SUFFIX_BYTES),
        version,
        meta: meta & ~META_VALUE_POINTER,
        expiresAt,
        value: ownedValue(this.o, key, meta, value),
      };
    }
    return undefined;
  }
}
