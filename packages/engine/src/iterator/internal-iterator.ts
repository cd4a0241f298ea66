/**
 * The iterator every source implements (memtables, blocks, tables, levels, merges): positioned over
 * internal keys in internal-key order, synchronous, moved by seeks and steps. Accessors are only
 * valid while `valid()` is true. Keys and values may be views into shared memory (a cached block):
 * callers copy what they keep.
 */
export interface InternalIterator {
  valid(): boolean;
  seekToFirst(): void;
  seekToLast(): void;
  /** Positions at the first entry with key >= `target`. */
  seek(target: Buffer): void;
  /** Positions at the last entry with key <= `target`. */
  seekForPrev(target: Buffer): void;
  next(): void;
  prev(): void;
  key(): Buffer;
  meta(): number;
  expiresAt(): number;
  value(): Buffer;
}
