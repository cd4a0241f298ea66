/**
 * Read side of an SSTable. Opening verifies the footer and loads the index, filter, range
 * tombstones and properties (each checksummed); data blocks are verified when read and kept
 * decoded in the shared block cache.
 */

import { type BlockCache, blockCacheKey, MAX_BLOCKS_PER_TABLE } from '../cache/block-cache.js';
import { CorruptionError, IoError } from '../errors.js';
import type { InternalIterator } from '../iterator/internal-iterator.js';
import { KIND_RANGE_DELETE } from '../keys/entry.js';
import {
  compareInternalKeys,
  compareRange,
  internalKeyCf,
  internalKeyUserKey,
  internalKeyVersion,
  VERSION_SUFFIX_BYTES,
} from '../keys/internal-key.js';
import type { RangeTombstone } from '../rangedel/tombstone-index.js';
import { readVarint, VarintError } from '../util/varint.js';
import type { Vfs, VfsFile } from '../vfs/vfs.js';
import { Block, type BlockIterator } from './block.js';
import { bloomMayContain } from './bloom.js';
import { BLOCK_TRAILER_BYTES, type BlockHandle, decodeBlock, decodeFooter, FOOTER_BYTES } from './format.js';
import { decodeProperties, type TableProperties } from './properties.js';

/** Bytes an iterator reads at once when it walks from block to block. */
const READAHEAD_BYTES = 64 * 1024;

/** An iterator's readahead state (see `TableReader.readAhead`). */
export interface Readahead {
  window: Buffer | undefined;
  start: number;
  lastBlock: number;
}

export interface PointResult {
  key: Buffer;
  meta: number;
  expiresAt: number;
  value: Buffer;
}

export class TableReader {
  readonly fileNumber: number;
  readonly path: string;
  readonly fileSize: number;
  readonly props: TableProperties;
  readonly tombstones: readonly RangeTombstone[];
  private readonly file: VfsFile;
  private readonly index: Block;
  private readonly filter: Buffer;
  private readonly cache: BlockCache;
  /** Index entry → block handle, decoded once. */
  private readonly handles: BlockHandle[];
  blockReads = 0;

  private constructor(
    fileNumber: number,
    file: VfsFile,
    fileSize: number,
    index: Block,
    filter: Buffer,
    tombstones: RangeTombstone[],
    props: TableProperties,
    cache: BlockCache,
  ) {
    this.fileNumber = fileNumber;
    this.path = file.path;
    this.file = file;
    this.fileSize = fileSize;
    this.index = index;
    this.filter = filter;
    this.tombstones = tombstones;
    this.props = props;
    this.cache = cache;
    this.handles = [];
    if (index.count > MAX_BLOCKS_PER_TABLE) {
      throw new CorruptionError(
        this.path,
        index.fileOffset,
        `index lists ${index.count} blocks; at most ${MAX_BLOCKS_PER_TABLE} are supported`,
      );
    }
    const it = index.iterator();
    for (it.seekToFirst(); it.valid(); it.next()) {
      try {
        const [offset, p] = readVarint(it.value(), 0);
        const [size, end] = readVarint(it.value(), p);
        if (end !== it.value().length || offset + size + BLOCK_TRAILER_BYTES > fileSize) {
          throw new CorruptionError(this.path, index.fileOffset, 'index entry points outside the table');
        }
        this.handles.push({ offset, size });
      } catch (err) {
        if (err instanceof VarintError) throw new CorruptionError(this.path, index.fileOffset, err.message);
        throw err;
      }
    }
  }

  /** Opens table `fileNumber` at `path`; throws `CorruptionError` or `IoError`. */
  static async open(vfs: Vfs, path: string, fileNumber: number, cache: BlockCache): Promise<TableReader> {
    let file: VfsFile;
    try {
      file = await vfs.open(path, 'read');
    } catch (err) {
      throw new IoError('open', path, err);
    }
    try {
      return TableReader.fromFile(file, fileNumber, cache);
    } catch (err) {
      await file.close().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Opens a table over an already open file (synchronously: reads are positioned and sync).
   * The caller keeps ownership of `file` if this throws. Throws `CorruptionError` or `IoError`.
   */
  static fromFile(file: VfsFile, fileNumber: number, cache: BlockCache): TableReader {
    const path = file.path;
    const size = file.size();
    if (size < FOOTER_BYTES)
      throw new CorruptionError(path, 0, `table of ${size} bytes is shorter than its footer`);
    const footer = decodeFooter(readExact(file, size - FOOTER_BYTES, FOOTER_BYTES), path, size);
    const load = (h: BlockHandle): Buffer =>
      decodeBlock(readExact(file, h.offset, h.size + BLOCK_TRAILER_BYTES), path, h.offset);
    const index = new Block(load(footer.index), path, footer.index.offset);
    const filter = load(footer.filter);
    let props: TableProperties;
    try {
      props = decodeProperties(load(footer.properties));
    } catch (err) {
      if (err instanceof CorruptionError) throw err;
      throw new CorruptionError(path, footer.properties.offset, `bad properties: ${(err as Error).message}`);
    }
    const rangeDel = new Block(load(footer.rangeDel), path, footer.rangeDel.offset);
    const tombstones: RangeTombstone[] = [];
    const it = rangeDel.iterator();
    for (it.seekToFirst(); it.valid(); it.next()) {
      if (it.meta() !== KIND_RANGE_DELETE) {
        throw new CorruptionError(path, footer.rangeDel.offset, 'range-del block holds a non-tombstone');
      }
      const key = Buffer.from(it.key());
      tombstones.push({
        cf: internalKeyCf(key),
        start: internalKeyUserKey(key),
        end: Buffer.from(it.value()),
        version: internalKeyVersion(key),
      });
    }
    return new TableReader(fileNumber, file, size, index, filter, tombstones, props, cache);
  }

  /** Bloom check: false means no version of the key with this base-key hash is in the table. */
  mayContain(baseKeyHash: number): boolean {
    return bloomMayContain(this.filter, baseKeyHash);
  }

  /** Reads data block `i` through the cache. */
  readBlock(i: number, readahead?: Readahead): Block {
    const h = this.handles[i]!;
    const key = blockCacheKey(this.fileNumber, i);
    let block = this.cache.get(key);
    if (block === undefined) {
      this.blockReads++;
      const raw = readahead === undefined ? undefined : this.readAhead(i, readahead);
      block = new Block(
        decodeBlock(raw ?? readExact(this.file, h.offset, h.size + BLOCK_TRAILER_BYTES), this.path, h.offset),
        this.path,
        h.offset,
      );
      this.cache.set(key, block);
    }
    if (readahead !== undefined) readahead.lastBlock = i;
    return block;
  }

  /**
   * Block `i` for a point lookup, which uses the block only until it returns. A block seen for
   * the first time is read into a scratch buffer and not cached: most blocks a point read misses
   * on are never asked for again (the row cache keeps hot keys), and caching them costs an
   * allocation each and pushes out blocks that are. A block asked for again is cached.
   */
  private readBlockForLookup(i: number): Block {
    const key = blockCacheKey(this.fileNumber, i);
    const cached = this.cache.get(key);
    if (cached !== undefined) return cached;
    if (this.cache.admit(key)) return this.readBlock(i);
    const h = this.handles[i]!;
    this.blockReads++;
    const raw = this.cache.scratch(h.size + BLOCK_TRAILER_BYTES);
    readInto(this.file, raw, h.offset);
    return new Block(decodeBlock(raw, this.path, h.offset), this.path, h.offset);
  }

  /**
   * Block `i`'s stored bytes from the iterator's readahead window, reading a new window when a
   * walk reaches a block past the current one: one read call for several blocks instead of one
   * each. Blocks cut from a window share its memory, and adjacent blocks of a scan tend to stay
   * in (and leave) the cache together.
   */
  private readAhead(i: number, ra: Readahead): Buffer | undefined {
    const h = this.handles[i]!;
    const end = h.offset + h.size + BLOCK_TRAILER_BYTES;
    if (ra.window !== undefined && h.offset >= ra.start && end <= ra.start + ra.window.length) {
      return ra.window.subarray(h.offset - ra.start, end - ra.start);
    }
    if (ra.lastBlock !== i - 1 && ra.lastBlock !== i + 1) return undefined;
    const from = i === ra.lastBlock + 1 ? h.offset : Math.max(0, end - READAHEAD_BYTES);
    const to = Math.min(this.fileSize, Math.max(end, from + READAHEAD_BYTES));
    ra.window = readExact(this.file, from, to - from);
    ra.start = from;
    return ra.window.subarray(h.offset - from, end - from);
  }

  get blockCount(): number {
    return this.handles.length;
  }

  /**
   * Newest entry with the base key of `seekKey` and a version <= the version in `seekKey`, or
   * undefined. Callers check the bloom filter first. The result holds views into a cached block.
   */
  get(seekKey: Buffer): PointResult | undefined {
    const blockIndex = this.index.lowerBound(seekKey);
    if (blockIndex >= this.handles.length) return undefined;
    const block = this.readBlockForLookup(blockIndex);
    const i = block.lowerBound(seekKey);
    if (i >= block.count) return undefined;
    const start = block.keyStart[i]!;
    const end = block.keyEnd[i]!;
    const base = seekKey.length - VERSION_SUFFIX_BYTES;
    if (
      end - start !== seekKey.length ||
      compareRange(block.data, start, start + base, seekKey, 0, base) !== 0
    ) {
      return undefined;
    }
    const it = block.iterator();
    it.moveToEntry(i);
    return { key: it.key(), meta: it.meta(), expiresAt: it.expiresAt(), value: it.value() };
  }

  iterator(): InternalIterator {
    return new TableIterator(this);
  }

  /** @internal for TableIterator */
  indexIterator(): BlockIterator {
    return this.index.iterator();
  }

  /** Reads and verifies every block; throws `CorruptionError` at the first bad one. */
  verify(): { blocks: number; entries: number } {
    let entries = 0;
    for (const _ of this.verifiedEntries()) entries++;
    return { blocks: this.handles.length, entries };
  }

  /**
   * Every point entry in order, read straight from the file (not through the block cache) with
   * each block's checksum and the key order verified; the entry count is checked against the
   * properties once the walk ends. Throws `CorruptionError` at the first bad block. Entries are
   * views into freshly read blocks and stay valid.
   */
  *verifiedEntries(): Generator<PointResult> {
    let entries = 0;
    let last: Buffer | undefined;
    for (let i = 0; i < this.handles.length; i++) {
      const h = this.handles[i]!;
      const block = new Block(
        decodeBlock(readExact(this.file, h.offset, h.size + BLOCK_TRAILER_BYTES), this.path, h.offset),
        this.path,
        h.offset,
      );
      const it = block.iterator();
      for (it.seekToFirst(); it.valid(); it.next()) {
        const key = it.key();
        if (last !== undefined && compareInternalKeys(last, key) >= 0) {
          throw new CorruptionError(this.path, h.offset, 'keys out of order');
        }
        last = key;
        entries++;
        yield { key, meta: it.meta(), expiresAt: it.expiresAt(), value: it.value() };
      }
    }
    if (entries !== this.props.entries) {
      throw new CorruptionError(
        this.path,
        0,
        `table holds ${entries} entries; properties say ${this.props.entries}`,
      );
    }
  }

  async close(): Promise<void> {
    await this.file.close();
  }
}

function readExact(file: VfsFile, offset: number, length: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  readInto(file, buf, offset);
  return buf;
}

/** Fills all of `buf` from `file` at `offset`; a short read means the file is damaged. */
function readInto(file: VfsFile, buf: Buffer, offset: number): void {
  let n: number;
  try {
    n = file.readAt(buf, offset);
  } catch (err) {
    throw new IoError('read', file.path, err);
  }
  if (n !== buf.length) {
    throw new CorruptionError(
      file.path,
      offset,
      `short read: wanted ${buf.length} bytes, file ends after ${n}`,
    );
  }
}

/** Two-level iterator: the index picks a data block, the block iterator walks it. */
class TableIterator implements InternalIterator {
  private readonly table: TableReader;
  private readonly count: number;
  private blockIdx = -1;
  private data: BlockIterator | undefined;
  private readonly index: BlockIterator;
  private readonly readahead: Readahead = { window: undefined, start: 0, lastBlock: -2 };

  constructor(table: TableReader) {
    this.table = table;
    this.count = table.blockCount;
    this.index = table.indexIterator();
  }

  private load(i: number): void {
    this.blockIdx = i;
    this.data = i >= 0 && i < this.count ? this.table.readBlock(i, this.readahead).iterator() : undefined;
  }

  /** Moves forward past exhausted blocks. */
  private skipForward(): void {
    while (this.data !== undefined && !this.data.valid()) {
      if (this.blockIdx + 1 >= this.count) {
        this.data = undefined;
        return;
      }
      this.load(this.blockIdx + 1);
      this.data!.seekToFirst();
    }
  }

  private skipBackward(): void {
    while (this.data !== undefined && !this.data.valid()) {
      if (this.blockIdx - 1 < 0) {
        this.data = undefined;
        return;
      }
      this.load(this.blockIdx - 1);
      this.data!.seekToLast();
    }
  }

  valid(): boolean {
    return this.data?.valid() === true;
  }
  seekToFirst(): void {
    this.load(0);
    this.data?.seekToFirst();
    this.skipForward();
  }
  seekToLast(): void {
    this.load(this.count - 1);
    this.data?.seekToLast();
    this.skipBackward();
  }
  seek(target: Buffer): void {
    this.index.seek(target);
    if (!this.index.valid()) {
      this.data = undefined;
      return;
    }
    this.load(this.index.position);
    this.data!.seek(target);
    this.skipForward();
  }
  seekForPrev(target: Buffer): void {
    this.index.seek(target);
    if (!this.index.valid()) {
      this.seekToLast();
      return;
    }
    this.load(this.index.position);
    this.data!.seekForPrev(target);
    this.skipBackward();
  }
  next(): void {
    this.data!.next();
    this.skipForward();
  }
  prev(): void {
    this.data!.prev();
    this.skipBackward();
  }
  key(): Buffer {
    return this.data!.key();
  }
  meta(): number {
    return this.data!.meta();
  }
  expiresAt(): number {
    return this.data!.expiresAt();
  }
  value(): Buffer {
    return this.data!.value();
  }
}
