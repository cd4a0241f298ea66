/**
 * A skiplist of entries ordered by internal key. Single-threaded (the event loop), so nodes are
 * linked without atomics; iterators stay valid across inserts because nodes are never removed.
 */

import type { Entry } from '../keys/entry.js';
import { compareInternalKeys } from '../keys/internal-key.js';

const MAX_HEIGHT = 16;
/** One level up with probability 1/4, as in LevelDB. */
const BRANCHING = 4;

export class SkipNode implements Entry {
  key: Buffer;
  meta: number;
  expiresAt: number;
  value: Buffer;
  readonly next: (SkipNode | null)[];

  constructor(entry: Entry, height: number) {
    this.key = entry.key;
    this.meta = entry.meta;
    this.expiresAt = entry.expiresAt;
    this.value = entry.value;
    this.next = new Array<SkipNode | null>(height).fill(null);
  }
}

export class SkipList {
  private readonly head = new SkipNode(
    { key: Buffer.alloc(0), meta: 0, expiresAt: 0, value: Buffer.alloc(0) },
    MAX_HEIGHT,
  );
  private height = 1;
  private seed = 0x2545f491;
  private readonly prevScratch: SkipNode[] = new Array<SkipNode>(MAX_HEIGHT);
  /** Number of distinct keys. */
  size = 0;

  private randomHeight(): number {
    let h = 1;
    // xorshift32: cheap and good enough for level choice
    while (h < MAX_HEIGHT) {
      this.seed ^= this.seed << 13;
      this.seed ^= this.seed >>> 17;
      this.seed ^= this.seed << 5;
      if ((this.seed >>> 0) % BRANCHING !== 0) break;
      h++;
    }
    return h;
  }

  /** Inserts `entry`, or overwrites the node with the same internal key. Returns the node. */
  insert(entry: Entry): { node: SkipNode; replaced: boolean } {
    const prev = this.prevScratch;
    let x = this.head;
    for (let level = this.height - 1; level >= 0; level--) {
      for (;;) {
        const nxt = x.next[level]!;
        if (nxt !== null && compareInternalKeys(nxt.key, entry.key) < 0) x = nxt;
        else break;
      }
      prev[level] = x;
    }
    const found = x.next[0]!;
    if (found !== null && compareInternalKeys(found.key, entry.key) === 0) {
      found.meta = entry.meta;
      found.expiresAt = entry.expiresAt;
      found.value = entry.value;
      return { node: found, replaced: true };
    }
    const h = this.randomHeight();
    if (h > this.height) {
      for (let level = this.height; level < h; level++) prev[level] = this.head;
      this.height = h;
    }
    const node = new SkipNode(entry, h);
    for (let level = 0; level < h; level++) {
      const p = prev[level]!;
      node.next[level] = p.next[level]!;
      p.next[level] = node;
    }
    this.size++;
    return { node, replaced: false };
  }

  /** First node with key >= `key`, or null. */
  seekGE(key: Buffer): SkipNode | null {
    let x = this.head;
    for (let level = this.height - 1; level >= 0; level--) {
      for (;;) {
        const nxt = x.next[level]!;
        if (nxt !== null && compareInternalKeys(nxt.key, key) < 0) x = nxt;
        else break;
      }
    }
    return x.next[0]!;
  }

  /** Last node with key < `key`, or null. */
  seekLT(key: Buffer): SkipNode | null {
    let x = this.head;
    for (let level = this.height - 1; level >= 0; level--) {
      for (;;) {
        const nxt = x.next[level]!;
        if (nxt !== null && compareInternalKeys(nxt.key, key) < 0) x = nxt;
        else break;
      }
    }
    return x === this.head ? null : x;
  }

  /** Last node with key <= `key`, or null. */
  seekLE(key: Buffer): SkipNode | null {
    const ge = this.seekGE(key);
    if (ge !== null && compareInternalKeys(ge.key, key) === 0) return ge;
    return this.seekLT(key);
  }

  first(): SkipNode | null {
    return this.head.next[0]!;
  }

  last(): SkipNode | null {
    let x = this.head;
    for (let level = this.height - 1; level >= 0; level--) {
      for (;;) {
        const nxt = x.next[level]!;
        if (nxt !== null) x = nxt;
        else break;
      }
    }
    return x === this.head ? null : x;
  }
}
