/**
 * Builds the uncompressed contents of a block (data, index and range-del blocks share it):
 *
 *     entry_0 … entry_{n-1} | u32le offset[n] | u32le n
 *     entry = varint keyLen | key | u8 meta | [varint expiresAt] | varint valueLen | value
 *
 * Keys are stored whole, not prefix-compressed: a reader can binary-search and compare keys in
 * place without rebuilding them, which matters more in JavaScript than the bytes saved (LZ4 takes
 * back most of the shared-prefix redundancy).
 */

import { META_HAS_EXPIRY } from '../keys/entry.js';
import { varintLength, writeVarint } from '../util/varint.js';

export class BlockBuilder {
  private buf: Buffer;
  private pos = 0;
  private readonly offsets: number[] = [];

  constructor(initialBytes = 16 * 1024) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  get count(): number {
    return this.offsets.length;
  }

  get isEmpty(): boolean {
    return this.offsets.length === 0;
  }

  /** Size of the contents if finished now. */
  get estimatedSize(): number {
    return this.pos + 4 * this.offsets.length + 4;
  }

  /** Size an entry would add. */
  static entrySize(key: Uint8Array, meta: number, expiresAt: number, value: Uint8Array): number {
    return (
      varintLength(key.length) +
      key.length +
      1 +
      (meta & META_HAS_EXPIRY ? varintLength(expiresAt) : 0) +
      varintLength(value.length) +
      value.length +
      4
    );
  }

  private reserve(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }

  add(key: Uint8Array, meta: number, expiresAt: number, value: Uint8Array): void {
    this.reserve(key.length + value.length + 32);
    this.offsets.push(this.pos);
    let p = writeVarint(this.buf, this.pos, key.length);
    this.buf.set(key, p);
    p += key.length;
    this.buf[p++] = meta;
    if (meta & META_HAS_EXPIRY) p = writeVarint(this.buf, p, expiresAt);
    p = writeVarint(this.buf, p, value.length);
    this.buf.set(value, p);
    this.pos = p + value.length;
  }

  /**
   * Finishes the block in the builder's own memory and returns a view of it, valid only until the
   * next `add` (which starts a new block): saves a copy when the caller copies it anyway.
   */
  finishView(): Buffer {
    const n = this.offsets.length;
    this.reserve(4 * n + 4);
    let p = this.pos;
    for (const off of this.offsets) {
      this.buf.writeUInt32LE(off, p);
      p += 4;
    }
    this.buf.writeUInt32LE(n, p);
    const view = this.buf.subarray(0, p + 4);
    this.pos = 0;
    this.offsets.length = 0;
    return view;
  }

  /** Returns the finished contents (a fresh buffer) and resets the builder. */
  finish(): Buffer {
    const n = this.offsets.length;
    const out = Buffer.allocUnsafe(this.pos + 4 * n + 4);
    this.buf.copy(out, 0, 0, this.pos);
    let p = this.pos;
    for (const off of this.offsets) {
      out.writeUInt32LE(off, p);
      p += 4;
    }
    out.writeUInt32LE(n, p);
    this.pos = 0;
    this.offsets.length = 0;
    return out;
  }
}
