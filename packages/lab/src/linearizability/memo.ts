import type { Bitset } from './bitset.js';

/**
 * Lowe's memo table: the (linearized set, model state) configurations the search has already
 * entered. The rest of the search from a configuration depends on nothing else, so entering one a
 * second time can only repeat work that is either under way or already failed.
 *
 * Indexed by the state key first (JS Maps hash strings once and cache the hash in the string), then
 * by the bitset's incremental hash; a bucket holds the snapshots sharing that hash, compared word by
 * word, so hash collisions cost time but never correctness.
 */
export class Memo {
  private readonly byState = new Map<string | number, Map<number, Uint32Array[]>>();
  private count = 0;

  /** Configurations recorded so far. */
  get size(): number {
    return this.count;
  }

  /** Records the configuration (`bits`, `stateKey`); false if it was already recorded. */
  addIfAbsent(bits: Bitset, stateKey: string | number): boolean {
    let byHash = this.byState.get(stateKey);
    if (byHash === undefined) {
      byHash = new Map();
      this.byState.set(stateKey, byHash);
    }
    const bucket = byHash.get(bits.hash);
    if (bucket === undefined) {
      byHash.set(bits.hash, [bits.snapshot()]);
    } else {
      for (const words of bucket) if (bits.equalsWords(words)) return false;
      bucket.push(bits.snapshot());
    }
    this.count++;
    return true;
  }
}
