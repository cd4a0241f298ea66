/**
 * Byte-budgeted cache of decoded blocks, shared by every table of a database (CLOCK eviction, see
 * `clock-cache.ts`).
 */

import type { Block } from '../sstable/block.js';
import { ClockCache } from './clock-cache.js';

/** Blocks per table the cache key can tell apart (a 2^24-block table is >100 GiB at 8 KiB blocks). */
export const MAX_BLOCKS_PER_TABLE = 1 << 24;

/**
 * Cache key of a block: table number times 2^24 plus the block's index in the table. Exact for
 * table numbers below 2^29, which at one new table a second lasts 17 years.
 */
export function blockCacheKey(fileNumber: number, blockIndex: number): number {
  return fileNumber * MAX_BLOCKS_PER_TABLE + blockIndex;
}

/** Size of the admission doorkeeper, in bits. */
const DOORKEEPER_BITS = 1 << 18;

export class BlockCache {
  private readonly cache: ClockCache<number, Block>;
  private readonly doorkeeper = new Uint32Array(DOORKEEPER_BITS >>> 5);
  private firstSightings = 0;
  private scratchBuffer = Buffer.alloc(0);
  hits = 0;
  misses = 0;

  constructor(capacityBytes: number) {
    this.cache = new ClockCache(capacityBytes);
  }

  get size(): number {
    return this.cache.size;
  }

  get capacity(): number {
    return this.cache.capacity;
  }

  get(key: number): Block | undefined {
    const block = this.cache.get(key);
    if (block === undefined) this.misses++;
    else this.hits++;
    return block;
  }

  set(key: number, block: Block): void {
    this.cache.set(key, block);
  }

  /**
   * Whether a block missed by a point read should be cached: yes if it was missed before since the
   * doorkeeper last forgot (a 2^18-bit map of block keys), otherwise remember it and say no.
   */
  admit(key: number): boolean {
    const h = (Math.imul((key * 0x9e3779b1) | 0, 0x85ebca6b) ^ (key / 0x1000000)) | 0;
    const bit = (h >>> 0) & (DOORKEEPER_BITS - 1);
    const word = bit >>> 5;
    const mask = 1 << (bit & 31);
    if ((this.doorkeeper[word]! & mask) !== 0) return true;
    this.doorkeeper[word] = this.doorkeeper[word]! | mask;
    if (++this.firstSightings >= DOORKEEPER_BITS >>> 3) {
      this.doorkeeper.fill(0);
      this.firstSightings = 0;
    }
    return false;
  }

  /** A buffer of `bytes` for one-off block reads; valid until the next call. */
  scratch(bytes: number): Buffer {
    if (this.scratchBuffer.length < bytes)
      this.scratchBuffer = Buffer.allocUnsafeSlow(Math.max(bytes, 16 * 1024));
    return this.scratchBuffer.subarray(0, bytes);
  }

  /** Drops every block of table `fileNumber` (called when the table is deleted). */
  evictFile(fileNumber: number): void {
    const lo = blockCacheKey(fileNumber, 0);
    const hi = blockCacheKey(fileNumber + 1, 0);
    this.cache.deleteWhere((key) => key >= lo && key < hi);
  }
}
