/**
 * An insert-only B+tree of items ordered by a byte key, for the memtable's ordered index. Leaves
 * are linked both ways for iteration. Items are never removed, which keeps cursors simple: a
 * cursor remembers its item, and when an insert has moved it (shifted within its leaf, or split
 * into another) it finds the item again by key.
 */

import { compareRange } from '../keys/internal-key.js';

export interface Keyed {
  /** The ordering key; must not change once inserted. */
  readonly base: Buffer;
}

/** Items per node before a split: large enough for shallow trees, small enough for cheap splices. */
const MAX_ITEMS = 64;

interface Leaf<T> {
  leaf: true;
  items: T[];
  next: Leaf<T> | null;
  prev: Leaf<T> | null;
}

interface Inner<T> {
  leaf: false;
  /** keys[i] is the smallest key under children[i + 1]. */
  keys: Buffer[];
  children: Node<T>[];
}

type Node<T> = Leaf<T> | Inner<T>;

function cmp(a: Buffer, b: Buffer): number {
  return compareRange(a, 0, a.length, b, 0, b.length);
}

export class BPlusTree<T extends Keyed> {
  private root: Node<T> = { leaf: true, items: [], next: null, prev: null };
  size = 0;

  /** Inserts `item`; its key must not be in the tree yet. */
  insert(item: T): void {
    const split = this.insertInto(this.root, item);
    if (split !== undefined) {
      this.root = { leaf: false, keys: [split.key], children: [this.root, split.node] };
    }
    this.size++;
  }

  private insertInto(node: Node<T>, item: T): { key: Buffer; node: Node<T> } | undefined {
    if (node.leaf) {
      const i = leafLowerBound(node.items, item.base);
      node.items.splice(i, 0, item);
      if (node.items.length <= MAX_ITEMS) return undefined;
      const right: Leaf<T> = {
        leaf: true,
        items: node.items.splice(MAX_ITEMS >>> 1),
        next: node.next,
        prev: node,
      };
      if (node.next !== null) node.next.prev = right;
      node.next = right;
      return { key: right.items[0]!.base, node: right };
    }
    const c = childIndex(node.keys, item.base);
    const split = this.insertInto(node.children[c]!, item);
    if (split === undefined) return undefined;
    node.keys.splice(c, 0, split.key);
    node.children.splice(c + 1, 0, split.node);
    if (node.children.length <= MAX_ITEMS) return undefined;
    const half = node.children.length >>> 1;
    const right: Inner<T> = {
      leaf: false,
      keys: node.keys.splice(half),
      children: node.children.splice(half),
    };
    const up = node.keys.pop()!;
    return { key: up, node: right };
  }

  /** Position of the first item with key >= `key` (the leaf may be exhausted: index = length). */
  lowerBound(key: Buffer): { leaf: Leaf<T>; index: number } {
    let node = this.root;
    while (!node.leaf) node = node.children[childIndex(node.keys, key)]!;
    return { leaf: node, index: leafLowerBound(node.items, key) };
  }

  firstLeaf(): Leaf<T> {
    let node = this.root;
    while (!node.leaf) node = node.children[0]!;
    return node;
  }

  lastLeaf(): Leaf<T> {
    let node = this.root;
    while (!node.leaf) node = node.children[node.children.length - 1]!;
    return node;
  }

  /** In-order items (for tests and invariant checks). */
  *items(): Generator<T> {
    for (let leaf: Leaf<T> | null = this.firstLeaf(); leaf !== null; leaf = leaf.next) yield* leaf.items;
  }
}

function leafLowerBound<T extends Keyed>(items: readonly T[], key: Buffer): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cmp(items[mid]!.base, key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Child of an inner node whose range holds `key`. */
function childIndex(keys: readonly Buffer[], key: Buffer): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cmp(keys[mid]!, key) <= 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** A position in the tree that survives inserts (see the module comment). */
export class TreeCursor<T extends Keyed> {
  private leaf: Leaf<T> | null = null;
  private index = 0;

  constructor(private readonly tree: BPlusTree<T>) {}

  /** The current item, or undefined when off either end. */
  item: T | undefined;

  private set(leaf: Leaf<T> | null, index: number): void {
    // Skip empty leaves and fall off the ends cleanly.
    while (leaf !== null && index >= leaf.items.length) {
      leaf = leaf.next;
      index = 0;
    }
    while (leaf !== null && index < 0) {
      leaf = leaf.prev;
      index = leaf === null ? 0 : leaf.items.length - 1;
    }
    this.leaf = leaf;
    this.index = index;
    this.item = leaf === null ? undefined : leaf.items[index];
  }

  private refresh(): void {
    if (this.item === undefined || this.leaf?.items[this.index] === this.item) return;
    const at = this.tree.lowerBound(this.item.base);
    this.set(at.leaf, at.index);
  }

  /** First item with key >= `key`. */
  seek(key: Buffer): void {
    const at = this.tree.lowerBound(key);
    this.set(at.leaf, at.index);
  }

  /** Last item with key <= `key`. */
  seekForPrev(key: Buffer): void {
    this.seek(key);
    if (this.item === undefined) {
      this.seekToLast();
      return;
    }
    if (cmp(this.item.base, key) > 0) this.prev();
  }

  seekToFirst(): void {
    this.set(this.tree.firstLeaf(), 0);
  }

  seekToLast(): void {
    const leaf = this.tree.lastLeaf();
    this.set(leaf, leaf.items.length - 1);
  }

  next(): void {
    this.refresh();
    if (this.leaf !== null) this.set(this.leaf, this.index + 1);
  }

  prev(): void {
    this.refresh();
    if (this.leaf !== null) this.set(this.leaf, this.index - 1);
  }
}
