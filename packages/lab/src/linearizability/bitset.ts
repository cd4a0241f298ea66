/**
 * A fixed-size set of small integers (the operations linearized so far) with an incrementally
 * maintained hash, so the memo table can be probed in O(1) per search step instead of rehashing
 * every word.
 */

/** splitmix32: a cheap, well-mixed, deterministic source of per-bit hash values. */
function mix32(seed: number): number {
  let z = (seed + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/**
 * The hash is the XOR of a random value per member (Zobrist hashing): adding or removing one member
 * toggles one value, and equal sets always hash equally whatever the order they were built in.
 */
export class Bitset {
  readonly words: Uint32Array;
  private readonly zobrist: Uint32Array;
  /** Hash of the current members; kept within the small-integer range so Map keys stay cheap. */
  hash = 0;

  constructor(size: number) {
    this.words = new Uint32Array(Math.max(1, Math.ceil(size / 32)));
    this.zobrist = new Uint32Array(size);
    for (let i = 0; i < size; i++) this.zobrist[i] = mix32(i * 0x632be5ab);
  }

  /** Whether `i` is a member. */
  has(i: number): boolean {
    return (this.words[i >>> 5]! & (1 << (i & 31))) !== 0;
  }

  /** Adds `i`; a no-op when already present (so the hash stays consistent). */
  set(i: number): void {
    const w = i >>> 5;
    const bit = 1 << (i & 31);
    const word = this.words[w]!;
    if ((word & bit) !== 0) return;
    this.words[w] = word | bit;
    this.hash = (this.hash ^ this.zobrist[i]!) & 0x3fffffff;
  }

  /** Removes `i`; a no-op when absent. */
  clear(i: number): void {
    const w = i >>> 5;
    const bit = 1 << (i & 31);
    const word = this.words[w]!;
    if ((word & bit) === 0) return;
    this.words[w] = word & ~bit;
    this.hash = (this.hash ^ this.zobrist[i]!) & 0x3fffffff;
  }

  /** Whether the members equal those recorded in `words` (a snapshot of a same-size set). */
  equalsWords(words: Uint32Array): boolean {
    const own = this.words;
    for (let i = 0; i < own.length; i++) if (own[i] !== words[i]) return false;
    return true;
  }

  /** A copy of the members, for storing in the memo table. */
  snapshot(): Uint32Array {
    return this.words.slice();
  }
}
