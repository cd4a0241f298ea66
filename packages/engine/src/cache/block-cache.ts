/**
 * Byte-budgeted cache of decoded blocks, shared by every table of a database, with CLOCK
 * (second-chance) eviction: a hit only sets the block's reference bit, so the read path pays a
 * single Map lookup. A JavaScript Map keeps insertion order; eviction walks from the oldest entry,
 * moving referenced blocks to the back with their bit cleared and dropping the first one without.
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
    block.referenced = true;
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
      const oldest = this.map.entries().next();
      if (oldest.done) break;
      const [oldKey, candidate] = oldest.value;
      this.map.delete(oldKey);
      if (candidate.referenced && candidate !== block) {
        candidate.referenced = false;
        this.map.set(oldKey, candidate);
        continue;
      }
      this.usedBytes -= candidate.byteSize;
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
