/**
 * Row cache: the latest visible value of recently read keys (default column family), so a hot
 * key's read skips the memtable and table lookups entirely. RocksDB calls the same idea a row
 * cache. It only serves reads of the latest state; the write path invalidates a key when any
 * write to it is applied, and a range delete clears the cache, so it never returns a stale value.
 * One slot per 32-bit key hash (a colliding key replaces the slot's entry); CLOCK eviction within
 * a byte budget.
 */

import { compareRange } from '../keys/internal-key.js';

interface Row {
  /** Base key (column family + user key), owned. */
  base: Buffer;
  value: Buffer;
  expiresAt: number;
  bytes: number;
  referenced: boolean;
}

/** Bookkeeping bytes per row on top of key and value. */
const ROW_OVERHEAD_BYTES = 96;

export class RowCache {
  private readonly capacityBytes: number;
  private readonly rows = new Map<number, Row>();
  private usedBytes = 0;
  hits = 0;
  misses = 0;

  constructor(capacityBytes: number) {
    this.capacityBytes = capacityBytes;
  }

  get enabled(): boolean {
    return this.capacityBytes > 0;
  }

  get size(): number {
    return this.usedBytes;
  }

  get capacity(): number {
    return this.capacityBytes;
  }

  /** The cached row of `key[0, baseLength)` (hash `hash`), if present and not expired at `nowMs`. */
  get(key: Uint8Array, baseLength: number, hash: number, nowMs: number): Row | undefined {
    const row = this.rows.get(hash);
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

  /** Caches `value` as the latest value of `key[0, baseLength)`; copies both. */
  set(key: Uint8Array, baseLength: number, hash: number, value: Uint8Array, expiresAt: number): void {
    const bytes = baseLength + value.length + ROW_OVERHEAD_BYTES;
    if (bytes > this.capacityBytes >>> 4) return;
    this.invalidate(hash);
    const row: Row = {
      base: Buffer.from(key.subarray(0, baseLength)),
      value: Buffer.from(value),
      expiresAt,
      bytes,
      referenced: false,
    };
    this.rows.set(hash, row);
    this.usedBytes += bytes;
    while (this.usedBytes > this.capacityBytes) {
      const oldest = this.rows.entries().next();
      if (oldest.done) break;
      const [h, candidate] = oldest.value;
      this.rows.delete(h);
      if (candidate.referenced && candidate !== row) {
        candidate.referenced = false;
        this.rows.set(h, candidate);
        continue;
      }
      this.usedBytes -= candidate.bytes;
    }
  }

  /** Forgets the row in slot `hash` (a write to that key is being applied). */
  invalidate(hash: number): void {
    const row = this.rows.get(hash);
    if (row === undefined) return;
    this.rows.delete(hash);
    this.usedBytes -= row.bytes;
  }

  clear(): void {
    this.rows.clear();
    this.usedBytes = 0;
  }
}
