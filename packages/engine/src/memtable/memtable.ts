/**
 * A memtable: the sorted in-memory home of recent writes, paired with the one WAL segment that
 * makes them durable.
 *
 * Layout, chosen for the two hot paths:
 * - Each distinct base key (column family + user key) has a `KeyEntry` holding its versions as a
 *   doubly linked list, newest first. A new version of a known key is an O(1) hash lookup and a
 *   list insert: updates of hot keys never touch the ordered index.
 * - A hash map (32-bit hash of the base key → entry) serves point lookups without comparisons.
 * - A B+tree of entries by base key gives ordered iteration and seeks. New keys reach it lazily,
 *   sorted in bulk when an iterator is created: a memtable that is only written, read by key and
 *   flushed (flush works from the WAL in a worker) never pays for ordering at all.
 * Range tombstones live in a list with a lazily rebuilt index (they are rare).
 */

import type { InternalIterator } from '../iterator/internal-iterator.js';
import { type Entry, entryKind, KIND_RANGE_DELETE } from '../keys/entry.js';
import {
  CF_DEFAULT,
  compareRange,
  internalKeyCf,
  internalKeyUserKey,
  internalKeyVersion,
  VERSION_SUFFIX_BYTES,
} from '../keys/internal-key.js';
import { type RangeTombstone, TombstoneIndex } from '../rangedel/tombstone-index.js';
import { bloomHash } from '../sstable/bloom.js';
import { BPlusTree, TreeCursor } from './bplus-tree.js';

/** Per-entry bookkeeping bytes counted on top of key and value (objects, links, map slots). */
const ENTRY_OVERHEAD_BYTES = 64;

/** One version of a key. */
export class VersionNode implements Entry {
  key: Buffer;
  meta: number;
  expiresAt: number;
  value: Buffer;
  readonly version: bigint;
  /** Next newer / older version of the same key. */
  newer: VersionNode | null = null;
  older: VersionNode | null = null;

  constructor(entry: Entry, version: bigint) {
    this.key = entry.key;
    this.meta = entry.meta;
    this.expiresAt = entry.expiresAt;
    this.value = entry.value;
    this.version = version;
  }
}

/** All versions of one base key. */
class KeyEntry {
  readonly base: Buffer;
  newest: VersionNode;
  oldest: VersionNode;

  constructor(base: Buffer, first: VersionNode) {
    this.base = base;
    this.newest = first;
    this.oldest = first;
  }

  /** Inserts `node` by version (newest first); returns the replaced node on an equal version. */
  insert(node: VersionNode): VersionNode | undefined {
    let cur: VersionNode | null = this.newest;
    // Versions usually arrive in increasing order: the common case stops at once.
    while (cur !== null && cur.version > node.version) cur = cur.older;
    if (cur !== null && cur.version === node.version) {
      const old = new VersionNode(cur, cur.version);
      cur.key = node.key;
      cur.meta = node.meta;
      cur.expiresAt = node.expiresAt;
      cur.value = node.value;
      return old;
    }
    // Link `node` just before `cur` (or at the old end when cur is null).
    const newer = cur === null ? this.oldest : cur.newer;
    node.older = cur;
    node.newer = newer;
    if (newer === null) this.newest = node;
    else newer.older = node;
    if (cur === null) this.oldest = node;
    else cur.newer = node;
    return undefined;
  }

  /** Newest version at or below `version`. */
  atOrBelow(version: bigint): VersionNode | undefined {
    let cur: VersionNode | null = this.newest;
    while (cur !== null && cur.version > version) cur = cur.older;
    return cur ?? undefined;
  }
}

function baseLength(key: Buffer): number {
  return key.length - VERSION_SUFFIX_BYTES;
}

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
  /** Distinct point versions held (puts and deletes). */
  pointEntries = 0;
  deletions = 0;

  private readonly byHash = new Map<number, KeyEntry | KeyEntry[]>();
  private readonly tree = new BPlusTree<KeyEntry>();
  /** Keys not yet in the tree, in arrival order. */
  private pending: KeyEntry[] = [];
  private readonly tombstones: RangeTombstone[] = [];
  private index: TombstoneIndex | undefined = TombstoneIndex.EMPTY;

  constructor(walNumber: number) {
    this.walNumber = walNumber;
  }

  get isEmpty(): boolean {
    return this.pointEntries === 0 && this.tombstones.length === 0;
  }

  /** Distinct base keys. */
  get keys(): number {
    return this.tree.size + this.pending.length;
  }

  /** Moves pending keys into the tree (sorted first: in-order inserts touch few nodes). */
  private materialize(): void {
    if (this.pending.length === 0) return;
    const keys = this.pending;
    this.pending = [];
    keys.sort((a, b) => compareRange(a.base, 0, a.base.length, b.base, 0, b.base.length));
    for (const ke of keys) this.tree.insert(ke);
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
    if (entryKind(entry.meta) === KIND_RANGE_DELETE) {
      this.approxBytes += entry.key.length + entry.value.length + ENTRY_OVERHEAD_BYTES;
      this.tombstones.push({ cf, start: internalKeyUserKey(entry.key), end: entry.value, version });
      this.index = undefined;
      return;
    }
    const node = new VersionNode(entry, version);
    const hash = bloomHash(entry.key, 0, baseLength(entry.key));
    const existing = this.find(entry.key, hash);
    let replaced: VersionNode | undefined;
    if (existing === undefined) {
      const ke = new KeyEntry(entry.key.subarray(0, baseLength(entry.key)), node);
      const slot = this.byHash.get(hash);
      if (slot === undefined) this.byHash.set(hash, ke);
      else if (Array.isArray(slot)) slot.push(ke);
      else this.byHash.set(hash, [slot, ke]);
      this.pending.push(ke);
    } else {
      replaced = existing.insert(node);
    }
    this.approxBytes += entry.key.length + entry.value.length + ENTRY_OVERHEAD_BYTES;
    if (replaced === undefined) {
      this.pointEntries++;
      if (entryKind(entry.meta) !== 0) this.deletions++;
    } else {
      this.approxBytes -= replaced.key.length + replaced.value.length + ENTRY_OVERHEAD_BYTES;
      if (entryKind(replaced.meta) !== 0) this.deletions--;
      if (entryKind(entry.meta) !== 0) this.deletions++;
    }
  }

  /** The entry of `key`'s base key, given the base key's hash. */
  private find(key: Buffer, hash: number): KeyEntry | undefined {
    const slot = this.byHash.get(hash);
    if (slot === undefined) return undefined;
    const n = baseLength(key);
    if (!Array.isArray(slot)) {
      return slot.base.length === n && compareRange(slot.base, 0, n, key, 0, n) === 0 ? slot : undefined;
    }
    for (const ke of slot)
      if (ke.base.length === n && compareRange(ke.base, 0, n, key, 0, n) === 0) return ke;
    return undefined;
  }

  /**
   * Newest point entry of `seekKey`'s base key with version <= the version in `seekKey`, or
   * undefined. `hash` is `bloomHash` of the base key (callers compute it once per lookup).
   * Range tombstones are not consulted here.
   */
  get(seekKey: Buffer, hash = bloomHash(seekKey, 0, baseLength(seekKey))): VersionNode | undefined {
    const ke = this.find(seekKey, hash);
    if (ke === undefined) return undefined;
    return ke.atOrBelow(internalKeyVersion(seekKey));
  }

  tombstoneIndex(): TombstoneIndex {
    if (this.index === undefined) this.index = TombstoneIndex.build(this.tombstones);
    return this.index;
  }

  iterator(): InternalIterator {
    this.materialize();
    return new MemtableIterator(this.tree, () => this.materialize());
  }
}

/** Walks versions of each key, keys in order: exactly internal-key order. */
class MemtableIterator implements InternalIterator {
  private readonly cursor: TreeCursor<KeyEntry>;
  private node: VersionNode | null = null;

  /**
   * `materialize` brings keys written since the iterator was made into the tree before a seek
   * (steps between seeks may miss them: they are newer than any reader's view anyway).
   */
  constructor(
    tree: BPlusTree<KeyEntry>,
    private readonly materialize: () => void,
  ) {
    this.cursor = new TreeCursor(tree);
  }

  valid(): boolean {
    return this.node !== null;
  }
  seekToFirst(): void {
    this.materialize();
    this.cursor.seekToFirst();
    this.node = this.cursor.item?.newest ?? null;
  }
  seekToLast(): void {
    this.materialize();
    this.cursor.seekToLast();
    this.node = this.cursor.item?.oldest ?? null;
  }
  seek(target: Buffer): void {
    this.materialize();
    const base = target.subarray(0, baseLength(target));
    this.cursor.seek(base);
    const ke = this.cursor.item;
    if (ke === undefined) {
      this.node = null;
      return;
    }
    if (compareRange(ke.base, 0, ke.base.length, base, 0, base.length) === 0) {
      // Same key: the first version at or below the target's version, else the next key.
      const found = ke.atOrBelow(internalKeyVersion(target));
      if (found !== undefined) {
        this.node = found;
        return;
      }
      this.cursor.next();
    }
    this.node = this.cursor.item?.newest ?? null;
  }
  seekForPrev(target: Buffer): void {
    this.materialize();
    const base = target.subarray(0, baseLength(target));
    this.cursor.seekForPrev(base);
    const ke = this.cursor.item;
    if (ke === undefined) {
      this.node = null;
      return;
    }
    if (compareRange(ke.base, 0, ke.base.length, base, 0, base.length) === 0) {
      // Same key: the oldest version at or above the target's version, else the previous key.
      const targetVersion = internalKeyVersion(target);
      let cur: VersionNode | null = ke.oldest;
      while (cur !== null && cur.version < targetVersion) cur = cur.newer;
      if (cur !== null) {
        this.node = cur;
        return;
      }
      this.cursor.prev();
    }
    this.node = this.cursor.item?.oldest ?? null;
  }
  next(): void {
    const older = this.node!.older;
    if (older !== null) {
      this.node = older;
      return;
    }
    this.cursor.next();
    this.node = this.cursor.item?.newest ?? null;
  }
  prev(): void {
    const newer = this.node!.newer;
    if (newer !== null) {
      this.node = newer;
      return;
    }
    this.cursor.prev();
    this.node = this.cursor.item?.oldest ?? null;
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
