/**
 * Row cache: the latest visible value of recently read keys (default column family), so a hot
 * key's read skips the memtable and table lookups entirely. RocksDB calls the same idea a row
 * cache. It only serves reads of the latest state; the write path invalidates a key when any
 * write to it is applied, and a range delete clears the cache, so it never returns a stale value.
 * One slot per 32-bit key hash (a colliding key replaces the slot's entry); CLOCK eviction within
 * a byte budget. A key is admitted on its second miss (a bitmap "doorkeeper" remembers the
 * first), so keys read once do not pay for a copy nor push out hot rows.
 */

import { compareRange } from '../keys/internal-key.js';
import { ClockCache } from './clock-cache.js';

interface Row {
  /** Base key (column family + user key), owned. */
  base: Buffer;
  value: Buffer;
  expiresAt: number;
  chargeBytes: number;
  referenced: boolean;
}

/** Doorkeeper size: 2^19 bits (64 KiB). */
const DOORKEEPER_BITS = 1 << 19;
const DOORKEEPER_MASK = DOORKEEPER_BITS - 1;
/** First sightings before the doorkeeper forgets them all (keeps its false positives rare). */
const DOORKEEPER_RESET = DOORKEEPER_BITS >>> 3;

/** Bookkeeping bytes per row on top of key and value. */
const ROW_OVERHEAD_BYTES = 96;

export class RowCache {
  private readonly capacityBytes: number;
  private readonly rows: ClockCache<number, Row>;
  private readonly doorkeeper = new Uint32Array(DOORKEEPER_BITS >>> 5);
  private firstSightings = 0;
  hits = 0;
  misses = 0;

  constructor(capacityBytes: number) {
    this.capacityBytes = capacityBytes;
    this.rows = new ClockCache(capacityBytes);
  }

  get enabled(): boolean {
    return this.capacityBytes > 0;
  }

  get size(): number {
    return this.rows.size;
  }

  get capacity(): number {
    return this.capacityBytes;
  }

  /** The cached row of `key[0, baseLength)` (hash `hash`), if present and not expired at `nowMs`. */
  get(key: Uint8Array, baseLength: number, hash: number, nowMs: number): Row | undefined {
    const row = this.rows.peek(hash);
    if (
      row === undefined ||
      row.base.length !== baseLength ||
      compareRange(row.base, 0, baseLength, key, 0, baseLength) !== 0 ||
      (row.expiresAt > 0 && row.expiresAt <= nowMs)
    ) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    row.referenced = true;
    return row;
  }

  /**
   * Offers `value` as the latest value of `key[0, baseLength)`: admitted (copied) if the key was
   * offered before since the doorkeeper was last cleared.
   */
  set(key: Uint8Array, baseLength: number, hash: number, value: Uint8Array, expiresAt: number): void {
    const bytes = baseLength + value.length + ROW_OVERHEAD_BYTES;
    if (bytes > this.capacityBytes >>> 4) return;
    const bit = hash & DOORKEEPER_MASK;
    const word = bit >>> 5;
    const mask = 1 << (bit & 31);
    if ((this.doorkeeper[word]! & mask) === 0) {
      this.doorkeeper[word] = this.doorkeeper[word]! | mask;
      if (++this.firstSightings >= DOORKEEPER_RESET) {
        this.doorkeeper.fill(0);
        this.firstSightings = 0;
      }
      return;
    }
    // One allocation for key and value.
    const copy = Buffer.allocUnsafe(baseLength + value.length);
    copy.set(key.subarray(0, baseLength), 0);
    copy.set(value, baseLength);
    this.rows.set(hash, {
      base: copy.subarray(0, baseLength),
      value: copy.subarray(baseLength),
      expiresAt,
      chargeBytes: bytes,
      referenced: false,
    });
  }

  /** Forgets the row in slot `hash` (a write to that key is being applied). */
  invalidate(hash: number): void {
    this.rows.delete(hash);
  }

  clear(): void {
    this.rows.clear();
  }
}
