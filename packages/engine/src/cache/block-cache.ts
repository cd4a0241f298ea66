/**
 * Byte-budgeted LRU cache of decoded blocks, shared by every table of a database. A JavaScript Map
 * keeps insertion order, so "move to most recent" is delete + set and eviction takes from the
 * front.
 */

import type { Block } from '../sstable/block.js';

/** Blocks per table the cache key can tell apart (a 2^24-block table is >100 GiB at 8 KiB blocks). */
export const MAX_BLOCKS_PER_TABLE = 1 << 24;

/**
 * Cache key of a block: table number times 2^24 plus the block's index in the table. Exact for
 * table numbers below 2^29, which at one new table a second lasts 17 years.
 */
export function blockCacheKey(fileNumber: number, blockIndex: number): number {
  return fileNumber * MAX_BLOCKS_PER_TABLE + blockIndex;
}

export class BlockCache {
  private readonly capacityBytes: number;
  private readonly map = new Map<number, Block>();
  private usedBytes = 0;
  hits = 0;
  misses = 0;

  constructor(capacityBytes: number) {
    this.capacityBytes = capacityBytes;
  }

  get size(): number {
    return this.usedBytes;
  }

  get capacity(): number {
    return this.capacityBytes;
  }

  get(key: number): Block | undefined {
    const block = this.map.get(key);
    if (block === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.map.delete(key);
    this.map.set(key, block);
    return block;
  }

  set(key: number, block: Block): void {
    const size = block.byteSize;
    if (size > this.capacityBytes) return;
    const old = this.map.get(key);
    if (old !== undefined) {
      this.usedBytes -= old.byteSize;
      this.map.delete(key);
    }
    this.map.set(key, block);
    this.usedBytes += size;
    while (this.usedBytes > this.capacityBytes) {
      const oldest = this.map.keys().next();
      if (oldest.done) break;
      const evicted = this.map.get(oldest.value)!;
      this.map.delete(oldest.value);
      this.usedBytes -= evicted.byteSize;
    }
  }

  /** Drops every block of table `fileNumber` (called when the table is deleted). */
  evictFile(fileNumber: number): void {
    const lo = blockCacheKey(fileNumber, 0);
    const hi = blockCacheKey(fileNumber + 1, 0);
    for (const [key, block] of this.map) {
      if (key >= lo && key < hi) {
        this.map.delete(key);
        this.usedBytes -= block.byteSize;
      }
    }
  }
}
