/**
 * Read side of the block format in `block-builder.ts`. A `Block` wraps verified, uncompressed
 * contents; its iterator decodes entries in place and compares keys without copying them.
 */

import { CorruptionError } from '../errors.js';
import type { InternalIterator } from '../iterator/internal-iterator.js';
import { isValidMeta, META_HAS_EXPIRY } from '../keys/entry.js';
import { compareInternalKeyAt } from '../keys/internal-key.js';
import { readVarintInto, VarintError, type VarintResult } from '../util/varint.js';

export class Block {
  readonly data: Buffer;
  readonly count: number;
  /** Start of the offsets array (= end of the entries). */
  readonly entriesEnd: number;
  /** File and offset, for corruption reports. */
  readonly file: string;
  readonly fileOffset: number;
  /**
   * Where each entry's key starts and ends, decoded once when the block is loaded: searches then
   * compare keys in place without re-reading length varints.
   */
  readonly keyStart: Int32Array;
  readonly keyEnd: Int32Array;
  /** CLOCK reference bit of the block cache. */
  referenced = false;

  constructor(data: Buffer, file: string, fileOffset: number) {
    this.data = data;
    this.file = file;
    this.fileOffset = fileOffset;
    if (data.length < 4) throw this.corrupt('block is shorter than its entry count');
    const n = data.readUInt32LE(data.length - 4);
    if (n * 4 + 4 > data.length) throw this.corrupt(`entry count ${n} does not fit in ${data.length} bytes`);
    this.count = n;
    this.entriesEnd = data.length - 4 - n * 4;
    this.keyStart = new Int32Array(n);
    this.keyEnd = new Int32Array(n);
    const scratch: VarintResult = { value: 0, offset: 0 };
    let prev = -1;
    for (let i = 0; i < n; i++) {
      const off = data.readUInt32LE(this.entriesEnd + 4 * i);
      if (off <= prev || off >= this.entriesEnd)
        throw this.corrupt(`entry offset ${i} (${off}) is out of order`);
      prev = off;
      try {
        readVarintInto(data, off, this.entriesEnd, scratch);
      } catch (err) {
        if (err instanceof VarintError) throw this.corrupt(`entry ${i}: ${err.message}`);
        throw err;
      }
      if (scratch.value < 9 || scratch.offset + scratch.value >= this.entriesEnd) {
        throw this.corrupt(`entry ${i} key is malformed`);
      }
      this.keyStart[i] = scratch.offset;
      this.keyEnd[i] = scratch.offset + scratch.value;
    }
  }

  corrupt(detail: string): CorruptionError {
    return new CorruptionError(this.file, this.fileOffset, detail);
  }

  offsetOf(i: number): number {
    return this.data.readUInt32LE(this.entriesEnd + 4 * i);
  }

  iterator(): BlockIterator {
    return new BlockIterator(this);
  }

  /** Index of the first entry whose key is >= `target` (count if none). */
  lowerBound(target: Buffer): number {
    const data = this.data;
    const starts = this.keyStart;
    const ends = this.keyEnd;
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareInternalKeyAt(data, starts[mid]!, ends[mid]!, target) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Approximate memory held, for cache accounting. */
  get byteSize(): number {
    return this.data.length + 8 * this.count + 128;
  }

  /** What the block cache charges for it. */
  get chargeBytes(): number {
    return this.byteSize;
  }
}

/** Cursor over one block. Positions are entry indexes; -1 or `count` means invalid. */
export class BlockIterator implements InternalIterator {
  private readonly block: Block;
  private readonly data: Buffer;
  private idx = -1;
  private keyStart = 0;
  private keyEnd = 0;
  private metaByte = 0;
  private expires = 0;
  private valueStart = 0;
  private valueEnd = 0;
  private readonly scratch: VarintResult = { value: 0, offset: 0 };
  private keyView: Buffer | undefined;

  constructor(block: Block) {
    this.block = block;
    this.data = block.data;
  }

  /** Decodes entry `i` into the cursor fields. */
  private decode(i: number): void {
    const block = this.block;
    const end = i + 1 < block.count ? block.offsetOf(i + 1) : block.entriesEnd;
    const s = this.scratch;
    this.keyStart = block.keyStart[i]!;
    this.keyEnd = block.keyEnd[i]!;
    this.keyView = undefined;
    try {
      this.metaByte = this.data[this.keyEnd]!;
      if (!isValidMeta(this.metaByte)) throw block.corrupt(`entry ${i} has unknown meta ${this.metaByte}`);
      let p = this.keyEnd + 1;
      this.expires = 0;
      if (this.metaByte & META_HAS_EXPIRY) {
        readVarintInto(this.data, p, end, s);
        this.expires = s.value;
        p = s.offset;
      }
      readVarintInto(this.data, p, end, s);
      this.valueStart = s.offset;
      this.valueEnd = s.offset + s.value;
      if (this.valueEnd !== end) throw block.corrupt(`entry ${i} value length does not match its slot`);
    } catch (err) {
      if (err instanceof VarintError) throw block.corrupt(`entry ${i}: ${err.message}`);
      throw err;
    }
    this.idx = i;
  }

  /** Compares entry `i`'s key with `target` without decoding the rest of the entry. */
  private compareAt(i: number, target: Buffer): number {
    return compareInternalKeyAt(this.data, this.block.keyStart[i]!, this.block.keyEnd[i]!, target);
  }

  private lowerBound(target: Buffer): number {
    return this.block.lowerBound(target);
  }

  /** Positions at entry `i` (used by table lookups that found it with `Block.lowerBound`). */
  moveToEntry(i: number): void {
    this.moveTo(i);
  }

  private moveTo(i: number): void {
    if (i < 0 || i >= this.block.count) {
      this.idx = i < 0 ? -1 : this.block.count;
      return;
    }
    this.decode(i);
  }

  /** Index of the current entry (entries of an index block are numbered like the data blocks). */
  get position(): number {
    return this.idx;
  }

  valid(): boolean {
    return this.idx >= 0 && this.idx < this.block.count;
  }
  seekToFirst(): void {
    this.moveTo(0);
  }
  seekToLast(): void {
    this.moveTo(this.block.count - 1);
  }
  seek(target: Buffer): void {
    this.moveTo(this.lowerBound(target));
  }
  seekForPrev(target: Buffer): void {
    const i = this.lowerBound(target);
    if (i < this.block.count && this.compareAt(i, target) === 0) this.moveTo(i);
    else this.moveTo(i - 1);
  }
  next(): void {
    this.moveTo(this.idx + 1);
  }
  prev(): void {
    this.moveTo(this.idx - 1);
  }
  key(): Buffer {
    // Made once per position: merges ask for the current key many times.
    if (this.keyView === undefined) this.keyView = this.data.subarray(this.keyStart, this.keyEnd);
    return this.keyView;
  }
  /** Compares the current key with `target` without slicing. */
  compareKey(target: Buffer): number {
    return compareInternalKeyAt(this.data, this.keyStart, this.keyEnd, target);
  }
  meta(): number {
    return this.metaByte;
  }
  expiresAt(): number {
    return this.expires;
  }
  value(): Buffer {
    return this.data.subarray(this.valueStart, this.valueEnd);
  }
}
