/**
 * Builds one SSTable (layout in `format.ts`). Pure CPU: finished bytes accumulate as chunks the
 * caller drains with `takeOutput()` and writes, so the same builder can run where there is no file
 * (a worker thread) and the write path stays in one place.
 */

import { entryKind, KIND_DELETE, KIND_RANGE_DELETE } from '../keys/entry.js';
import {
  compareInternalKeys,
  encodeInternalKey,
  internalKeyVersion,
  MAX_VERSION,
  VERSION_SUFFIX_BYTES,
} from '../keys/internal-key.js';
import type { RangeTombstone } from '../rangedel/tombstone-index.js';
import { assert, invariantsEnabled } from '../util/invariants.js';
import { varintLength, writeVarint } from '../util/varint.js';
import { BlockBuilder } from './block-builder.js';
import { bloomHash, buildBloomFilter } from './bloom.js';
import { type BlockHandle, COMPRESSION_NONE, type Compression, encodeBlock, encodeFooter } from './format.js';
import { encodeProperties, type TableProperties } from './properties.js';

export interface TableBuilderOptions {
  /** Target uncompressed size of a data block. */
  blockBytes: number;
  bloomBitsPerKey: number;
  compression: Compression;
}

export class TableBuilder {
  private readonly options: TableBuilderOptions;
  private readonly dataBlock = new BlockBuilder();
  private readonly indexBlock = new BlockBuilder(4096);
  private readonly hashes: number[] = [];
  private readonly tombstones: RangeTombstone[] = [];
  private output: Buffer[] = [];
  private offset = 0;
  private lastKey: Buffer | undefined;
  private firstKey: Buffer | undefined;
  private minVersion = MAX_VERSION;
  private maxVersion = 0n;
  private entries = 0;
  private deletions = 0;
  private dataBlocks = 0;
  private rawKeyBytes = 0;
  private rawValueBytes = 0;
  private finished = false;
  /** The last data block, waiting for the next block's first key to pick its index key. */
  private pendingIndex: { lastKey: Buffer; handle: BlockHandle } | undefined;
  /** Consecutive data blocks compression did not shrink. */
  private compressionMisses = 0;
  private blocksSinceTry = 0;

  constructor(options: TableBuilderOptions) {
    this.options = options;
  }

  /** Bytes the file would have if the current block were closed now (excluding meta blocks). */
  get estimatedFileSize(): number {
    return this.offset + this.dataBlock.estimatedSize;
  }

  get isEmpty(): boolean {
    return this.entries === 0 && this.tombstones.length === 0;
  }

  get pointEntries(): number {
    return this.entries;
  }

  /** The last point key added, if any. */
  get lastPointKey(): Buffer | undefined {
    return this.lastKey;
  }

  /** Adds a point entry; keys must arrive in strictly increasing internal-key order. */
  add(key: Buffer, meta: number, expiresAt: number, value: Buffer): void {
    assert(!this.finished, 'add after finish');
    if (invariantsEnabled && this.lastKey !== undefined) {
      assert(compareInternalKeys(this.lastKey, key) < 0, 'table keys out of order');
    }
    assert(entryKind(meta) !== KIND_RANGE_DELETE, 'range tombstones go through addTombstone');
    if (
      !this.dataBlock.isEmpty &&
      this.dataBlock.estimatedSize + BlockBuilder.entrySize(key, meta, expiresAt, value) >
        this.options.blockBytes
    ) {
      this.flushDataBlock();
    }
    if (this.pendingIndex !== undefined) {
      // The block before ended with `pendingIndex.lastKey`; now that the next key is known, index
      // it by the shortest key between the two.
      this.addIndexEntry(shortestSeparator(this.pendingIndex.lastKey, key), this.pendingIndex.handle);
      this.pendingIndex = undefined;
    }
    const baseLen = key.length - VERSION_SUFFIX_BYTES;
    if (
      this.lastKey === undefined ||
      this.lastKey.length !== key.length ||
      this.lastKey.compare(key, 0, baseLen, 0, baseLen) !== 0
    ) {
      this.hashes.push(bloomHash(key, 0, baseLen));
    }
    this.dataBlock.add(key, meta, expiresAt, value);
    const version = internalKeyVersion(key);
    if (version < this.minVersion) this.minVersion = version;
    if (version > this.maxVersion) this.maxVersion = version;
    if (this.firstKey === undefined) this.firstKey = key;
    this.lastKey = key;
    this.entries++;
    if (entryKind(meta) === KIND_DELETE) this.deletions++;
    this.rawKeyBytes += key.length;
    this.rawValueBytes += value.length;
  }

  addTombstone(t: RangeTombstone): void {
    assert(!this.finished, 'addTombstone after finish');
    this.tombstones.push(t);
    if (t.version < this.minVersion) this.minVersion = t.version;
    if (t.version > this.maxVersion) this.maxVersion = t.version;
  }

  private emit(chunk: Buffer): BlockHandle {
    const handle = { offset: this.offset, size: chunk.length - 5 };
    this.output.push(chunk);
    this.offset += chunk.length;
    return handle;
  }

  /**
   * Whether to try compressing the next block. After a run of blocks that did not compress
   * (random or already compressed values), only every 16th is tried: a failed LZ4 attempt costs
   * as much CPU as a successful one, and flush speed is what writes wait on.
   */
  private tryCompression(): boolean {
    if (this.compressionMisses < 8) return true;
    this.blocksSinceTry = (this.blocksSinceTry + 1) % 16;
    return this.blocksSinceTry === 0;
  }

  private flushDataBlock(): void {
    if (this.dataBlock.isEmpty) return;
    const lastKey = this.lastKey!;
    // encodeBlock copies the contents, so the builder's own memory can be reused for the next block.
    const stored = encodeBlock(
      this.dataBlock.finishView(),
      this.tryCompression() ? this.options.compression : 'none',
    );
    if (this.options.compression !== 'none') {
      this.compressionMisses =
        stored[stored.length - 5] === COMPRESSION_NONE ? this.compressionMisses + 1 : 0;
    }
    this.pendingIndex = { lastKey, handle: this.emit(stored) };
    this.dataBlocks++;
  }

  private addIndexEntry(key: Buffer, handle: BlockHandle): void {
    const value = Buffer.allocUnsafe(varintLength(handle.offset) + varintLength(handle.size));
    writeVarint(value, writeVarint(value, 0, handle.offset), handle.size);
    this.indexBlock.add(key, 0, 0, value);
  }

  /** Drains finished bytes, in file order. */
  takeOutput(): Buffer[] {
    const out = this.output;
    this.output = [];
    return out;
  }

  /**
   * Closes the table: writes the meta blocks and footer. Returns its properties.
   * `allowEmpty`: an external table (see `external/`) may hold nothing; its bounds are then empty.
   * Tables of the LSM tree are never empty.
   */
  finish(createdAtMs: number, opts?: { allowEmpty?: boolean }): TableProperties {
    assert(!this.finished, 'finish twice');
    assert(!this.isEmpty || opts?.allowEmpty === true, 'an empty table cannot be finished');
    this.flushDataBlock();
    if (this.pendingIndex !== undefined)
      this.addIndexEntry(this.pendingIndex.lastKey, this.pendingIndex.handle);
    this.pendingIndex = undefined;
    this.finished = true;

    const filter = this.emit(
      encodeBlock(buildBloomFilter(this.hashes, this.options.bloomBitsPerKey), 'none'),
    );

    const sorted = this.tombstones
      .map((t) => ({ t, key: encodeInternalKey(t.cf, t.start, t.version) }))
      .sort((a, b) => compareInternalKeys(a.key, b.key));
    const rangeDelBlock = new BlockBuilder(1024);
    for (const { t, key } of sorted) rangeDelBlock.add(key, KIND_RANGE_DELETE, 0, t.end);
    const rangeDel = this.emit(encodeBlock(rangeDelBlock.finish(), 'none'));

    let smallest = this.firstKey;
    let largest = this.lastKey;
    for (const { t, key } of sorted) {
      if (smallest === undefined || compareInternalKeys(key, smallest) < 0) smallest = key;
      const endSentinel = encodeInternalKey(t.cf, t.end, MAX_VERSION);
      if (largest === undefined || compareInternalKeys(endSentinel, largest) > 0) largest = endSentinel;
    }
    const props: TableProperties = {
      smallest: Buffer.from(smallest ?? EMPTY_KEY),
      largest: Buffer.from(largest ?? EMPTY_KEY),
      minVersion: this.minVersion,
      maxVersion: this.maxVersion,
      entries: this.entries,
      deletions: this.deletions,
      rangeDeletions: this.tombstones.length,
      dataBlocks: this.dataBlocks,
      rawKeyBytes: this.rawKeyBytes,
      rawValueBytes: this.rawValueBytes,
      createdAtMs,
    };
    const properties = this.emit(encodeBlock(encodeProperties(props), 'none'));
    const index = this.emit(encodeBlock(this.indexBlock.finish(), 'none'));
    const footer = encodeFooter({ index, filter, rangeDel, properties });
    this.output.push(footer);
    this.offset += footer.length;
    return props;
  }

  /** Total bytes produced (valid after finish). */
  get fileSize(): number {
    return this.offset;
  }
}

const EMPTY_KEY = Buffer.alloc(0);

/** Suffix of version 0: sorts after every other version of the same user key. */
const LOWEST_VERSION_SUFFIX = Buffer.alloc(VERSION_SUFFIX_BYTES, 0xff);

/**
 * A short internal key S with `a <= S < b`, to index the block ending with `a` when the next block
 * starts with `b`: the index is searched on every point read, and short keys compare faster (and
 * take less space). When the user keys first differ at byte d and a's byte can be raised there
 * while staying below b's, S is that prefix of a with the byte raised, at the lowest version;
 * otherwise it is `a` itself.
 */
export function shortestSeparator(a: Buffer, b: Buffer): Buffer {
  const aBase = a.length - VERSION_SUFFIX_BYTES;
  const bBase = b.length - VERSION_SUFFIX_BYTES;
  const n = Math.min(aBase, bBase);
  let d = 0;
  while (d < n && a[d] === b[d]) d++;
  if (d >= n) return a; // one base key is a prefix of the other (or they are equal)
  const byte = a[d]!;
  if (byte === 0xff || byte + 1 >= b[d]!) return a;
  const sep = Buffer.allocUnsafe(d + 1 + VERSION_SUFFIX_BYTES);
  a.copy(sep, 0, 0, d);
  sep[d] = byte + 1;
  LOWEST_VERSION_SUFFIX.copy(sep, d + 1);
  return sep;
}
