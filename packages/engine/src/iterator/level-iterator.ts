/**
 * Iterates one sorted, non-overlapping level (1..6) as a single stream, opening each table's
 * iterator only when the walk reaches it.
 */

import { compareInternalKeys } from '../keys/internal-key.js';
import type { FileMetadata } from '../manifest/version-edit.js';
import type { TableReader } from '../sstable/table-reader.js';
import type { InternalIterator } from './internal-iterator.js';

export class LevelIterator implements InternalIterator {
  private readonly files: readonly FileMetadata[];
  private readonly open: (fileNumber: number) => TableReader;
  private fileIdx = -1;
  private current: InternalIterator | undefined;

  constructor(files: readonly FileMetadata[], open: (fileNumber: number) => TableReader) {
    this.files = files;
    this.open = open;
  }

  private load(i: number): void {
    this.fileIdx = i;
    this.current = i >= 0 && i < this.files.length ? this.open(this.files[i]!.number).iterator() : undefined;
  }

  private skipForward(): void {
    while (this.current !== undefined && !this.current.valid()) {
      this.load(this.fileIdx + 1);
      this.current?.seekToFirst();
    }
  }

  private skipBackward(): void {
    while (this.current !== undefined && !this.current.valid()) {
      this.load(this.fileIdx - 1);
      this.current?.seekToLast();
    }
  }

  valid(): boolean {
    return this.current?.valid() === true;
  }
  seekToFirst(): void {
    this.load(0);
    this.current?.seekToFirst();
    this.skipForward();
  }
  seekToLast(): void {
    this.load(this.files.length - 1);
    this.current?.seekToLast();
    this.skipBackward();
  }
  seek(target: Buffer): void {
    // first table whose largest key is >= target
    let lo = 0;
    let hi = this.files.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareInternalKeys(this.files[mid]!.largest, target) < 0) lo = mid + 1;
      else hi = mid;
    }
    this.load(lo);
    this.current?.seek(target);
    this.skipForward();
  }
  seekForPrev(target: Buffer): void {
    // last table whose smallest key is <= target
    let lo = 0;
    let hi = this.files.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareInternalKeys(this.files[mid]!.smallest, target) <= 0) lo = mid + 1;
      else hi = mid;
    }
    this.load(lo - 1);
    this.current?.seekForPrev(target);
    this.skipBackward();
  }
  next(): void {
    this.current!.next();
    this.skipForward();
  }
  prev(): void {
    this.current!.prev();
    this.skipBackward();
  }
  key(): Buffer {
    return this.current!.key();
  }
  meta(): number {
    return this.current!.meta();
  }
  expiresAt(): number {
    return this.current!.expiresAt();
  }
  value(): Buffer {
    return this.current!.value();
  }
}
