/**
 * A memtable: the sorted in-memory home of recent writes, paired with the one WAL segment that
 * makes them durable. Point entries live in a skiplist; range tombstones in a list with a lazily
 * rebuilt index (they are rare and read through the index).
 */

import type { InternalIterator } from '../iterator/internal-iterator.js';
import { type Entry, entryKind, KIND_RANGE_DELETE } from '../keys/entry.js';
import {
  CF_DEFAULT,
  internalKeyCf,
  internalKeyUserKey,
  internalKeyVersion,
  sameBaseKey,
} from '../keys/internal-key.js';
import { type RangeTombstone, TombstoneIndex } from '../rangedel/tombstone-index.js';
import { SkipList, type SkipNode } from './skiplist.js';

/** Per-entry bookkeeping bytes counted on top of key and value (node, pointers, fields). */
const ENTRY_OVERHEAD_BYTES = 64;

export class Memtable {
  /** Number of the WAL segment holding this memtable's writes. */
  readonly walNumber: number;
  /** Bytes appended to the WAL segment for this memtable (the rotation budget). */
  walBytes = 0;
  /** Approximate memory held. */
  approxBytes = 0;
  /** Highest version written to the default column family (seeds the version counter). */
  maxDefaultVersion = 0n;
  minVersion: bigint | undefined;
  maxVersion: bigint | undefined;
  pointEntries = 0;
  deletions = 0;

  private readonly list = new SkipList();
  private readonly tombstones: RangeTombstone[] = [];
  private index: TombstoneIndex | undefined = TombstoneIndex.EMPTY;

  constructor(walNumber: number) {
    this.walNumber = walNumber;
  }

  get isEmpty(): boolean {
    return this.list.size === 0 && this.tombstones.length === 0;
  }

  get rangeTombstones(): readonly RangeTombstone[] {
    return this.tombstones;
  }

  /** Adds one entry. `entry.key` and `entry.value` must not be modified afterwards. */
  add(entry: Entry): void {
    const version = internalKeyVersion(entry.key);
    if (this.minVersion === undefined || version < this.minVersion) this.minVersion = version;
    if (this.maxVersion === undefined || version > this.maxVersion) this.maxVersion = version;
    const cf = internalKeyCf(entry.key);
    if (cf === CF_DEFAULT && version > this.maxDefaultVersion) this.maxDefaultVersion = version;
    this.approxBytes += entry.key.length + entry.value.length + ENTRY_OVERHEAD_BYTES;
    if (entryKind(entry.meta) === KIND_RANGE_DELETE) {
      this.tombstones.push({ cf, start: internalKeyUserKey(entry.key), end: entry.value, version });
      this.index = undefined;
      return;
    }
    const { replaced } = this.list.insert(entry);
    if (!replaced) {
      this.pointEntries++;
      if (entryKind(entry.meta) !== 0) this.deletions++;
    }
  }

  /**
   * Newest point entry of `seekKey`'s base key with version <= the version in `seekKey`, or
   * undefined. Range tombstones are not consulted here.
   */
  get(seekKey: Buffer): SkipNode | undefined {
    const node = this.list.seekGE(seekKey);
    if (node !== null && sameBaseKey(node.key, seekKey)) return node;
    return undefined;
  }

  tombstoneIndex(): TombstoneIndex {
    if (this.index === undefined) this.index = TombstoneIndex.build(this.tombstones);
    return this.index;
  }

  iterator(): InternalIterator {
    return new MemtableIterator(this.list);
  }
}

class MemtableIterator implements InternalIterator {
  private node: SkipNode | null = null;

  constructor(private readonly list: SkipList) {}

  valid(): boolean {
    return this.node !== null;
  }
  seekToFirst(): void {
    this.node = this.list.first();
  }
  seekToLast(): void {
    this.node = this.list.last();
  }
  seek(target: Buffer): void {
    this.node = this.list.seekGE(target);
  }
  seekForPrev(target: Buffer): void {
    this.node = this.list.seekLE(target);
  }
  next(): void {
    this.node = this.node!.next[0]!;
  }
  prev(): void {
    this.node = this.list.seekLT(this.node!.key);
  }
  key(): Buffer {
    return this.node!.key;
  }
  meta(): number {
    return this.node!.meta;
  }
  expiresAt(): number {
    return this.node!.expiresAt;
  }
  value(): Buffer {
    return this.node!.value;
  }
}
