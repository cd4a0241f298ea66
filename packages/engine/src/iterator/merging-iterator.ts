/**
 * Merges child iterators into one internal-key ordered stream, in one direction fixed at
 * construction (the public iterators never switch direction, which keeps this simple).
 *
 * Children are ordered newest source first. When several children hold the same internal key (a
 * rewrite of the same version), only the newest child's entry is produced; the older duplicates
 * are stepped over.
 */

import { compareInternalKeys } from '../keys/internal-key.js';
import { assert } from '../util/invariants.js';
import type { InternalIterator } from './internal-iterator.js';

export class MergingIterator implements InternalIterator {
  private readonly children: InternalIterator[];
  private readonly reverse: boolean;
  /** Heap of child indexes; the root is the current child. */
  private heap: number[] = [];

  constructor(children: InternalIterator[], reverse: boolean) {
    this.children = children;
    this.reverse = reverse;
  }

  /** True when child `a` should come before child `b`. */
  private before(a: number, b: number): boolean {
    const c = compareInternalKeys(this.children[a]!.key(), this.children[b]!.key());
    if (c !== 0) return this.reverse ? c > 0 : c < 0;
    return a < b;
  }

  private siftDown(i: number): void {
    const heap = this.heap;
    const n = heap.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) return;
      const r = l + 1;
      let best = l;
      if (r < n && this.before(heap[r]!, heap[l]!)) best = r;
      if (!this.before(heap[best]!, heap[i]!)) return;
      const tmp = heap[i]!;
      heap[i] = heap[best]!;
      heap[best] = tmp;
      i = best;
    }
  }

  private rebuild(): void {
    this.heap = [];
    for (let i = 0; i < this.children.length; i++) if (this.children[i]!.valid()) this.heap.push(i);
    for (let i = (this.heap.length >>> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  /** Moves the root child one step in the iteration direction and restores the heap. */
  private stepRoot(): void {
    const child = this.children[this.heap[0]!]!;
    if (this.reverse) child.prev();
    else child.next();
    if (!child.valid()) {
      const last = this.heap.pop()!;
      if (this.heap.length === 0) return;
      this.heap[0] = last;
    }
    this.siftDown(0);
  }

  private advance(): void {
    // Keys are views of immutable memory (memtable nodes, cached blocks), so holding one across
    // the step is safe without a copy.
    const current = this.key();
    this.stepRoot();
    while (this.heap.length > 0 && compareInternalKeys(this.key(), current) === 0) this.stepRoot();
  }

  valid(): boolean {
    return this.heap.length > 0;
  }
  seekToFirst(): void {
    assert(!this.reverse, 'seekToFirst on a reverse merging iterator');
    for (const c of this.children) c.seekToFirst();
    this.rebuild();
  }
  seekToLast(): void {
    assert(this.reverse, 'seekToLast on a forward merging iterator');
    for (const c of this.children) c.seekToLast();
    this.rebuild();
  }
  seek(target: Buffer): void {
    assert(!this.reverse, 'seek on a reverse merging iterator');
    for (const c of this.children) c.seek(target);
    this.rebuild();
  }
  seekForPrev(target: Buffer): void {
    assert(this.reverse, 'seekForPrev on a forward merging iterator');
    for (const c of this.children) c.seekForPrev(target);
    this.rebuild();
  }
  next(): void {
    assert(!this.reverse, 'next on a reverse merging iterator');
    this.advance();
  }
  prev(): void {
    assert(this.reverse, 'prev on a forward merging iterator');
    this.advance();
  }
  key(): Buffer {
    return this.children[this.heap[0]!]!.key();
  }
  meta(): number {
    return this.children[this.heap[0]!]!.meta();
  }
  expiresAt(): number {
    return this.children[this.heap[0]!]!.expiresAt();
  }
  value(): Buffer {
    return this.children[this.heap[0]!]!.value();
  }
}
