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

  constructor(data: Buffer, file: string, fileOffset: number) {
    this.data = data;
    this.file = file;
    this.fileOffset = fileOffset;
    if (data.length < 4) throw this.corrupt('block is shorter than its entry count');
    const n = data.readUInt32LE(data.length - 4);
    if (n * 4 + 4 > data.length) throw this.corrupt(`entry count ${n} does not fit in ${data.length} bytes`);
    this.count = n;
    this.entriesEnd = data.length - 4 - n * 4;
    let prev = -1;
    for (let i = 0; i < n; i++) {
      const off = data.readUInt32LE(this.entriesEnd + 4 * i);
      if (off <= prev || off >= this.entriesEnd)
        throw this.corrupt(`entry offset ${i} (${off}) is out of order`);
      prev = off;
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

  /** Approximate memory held, for cache accounting. */
  get byteSize(): number {
    return this.data.length + 128;
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

  constructor(block: Block) {
    this.block = block;
    this.data = block.data;
  }

  /** Decodes entry `i` into the cursor fields. */
  private decode(i: number): void {
    const block = this.block;
    const end = i + 1 < block.count ? block.offsetOf(i + 1) : block.entriesEnd;
    const s = this.scratch;
    try {
      readVarintInto(this.data, block.offsetOf(i), end, s);
      this.keyStart = s.offset;
      this.keyEnd = s.offset + s.value;
      if (this.keyEnd + 1 > end || s.value < 9) throw block.corrupt(`entry ${i} key is malformed`);
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
    const s = this.scratch;
    const start = this.block.offsetOf(i);
    try {
      readVarintInto(this.data, start, this.block.entriesEnd, s);
    } catch (err) {
      if (err instanceof VarintError) throw this.block.corrupt(`entry ${i}: ${err.message}`);
      throw err;
    }
    if (s.value < 9 || s.offset + s.value > this.block.entriesEnd)
      throw this.block.corrupt(`entry ${i} key is malformed`);
    return compareInternalKeyAt(this.data, s.offset, s.offset + s.value, target);
  }

  /** Index of the first entry with key >= target (count if none). */
  private lowerBound(target: Buffer): number {
    let lo = 0;
    let hi = this.block.count;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.compareAt(mid, target) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
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
    return this.data.subarray(this.keyStart, this.keyEnd);
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
