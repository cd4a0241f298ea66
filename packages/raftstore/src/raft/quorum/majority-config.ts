import { NO_LIMIT_INDEX, VoteResult } from './vote-result.js';

/** Looks up how far a voter's log is known to match the leader's; undefined if unknown. */
export type AckedIndexer = (id: bigint) => bigint | undefined;

/** Sorts bigints ascending (ids and indexes). */
export function sortIds(ids: Iterable<bigint>): bigint[] {
  return [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** A set of voters whose decisions need a strict majority. */
export class MajorityConfig {
  readonly ids: Set<bigint>;

  constructor(ids: Iterable<bigint> = []) {
    this.ids = new Set(ids);
  }

  get size(): number {
    return this.ids.size;
  }

  has(id: bigint): boolean {
    return this.ids.has(id);
  }

  /** The voters, ascending. */
  sorted(): bigint[] {
    return sortIds(this.ids);
  }

  /**
   * The largest index that a majority of voters have acknowledged. An empty config places no
   * constraint (returns NO_LIMIT_INDEX) so that it is neutral inside a joint config.
   */
  committedIndex(acked: AckedIndexer): bigint {
    const n = this.ids.size;
    if (n === 0) return NO_LIMIT_INDEX;
    const indexes: bigint[] = [];
    for (const id of this.ids) indexes.push(acked(id) ?? 0n);
    indexes.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    // With q = n/2+1 voters needed, the q-th largest value is acknowledged by a majority.
    return indexes[n - (Math.floor(n / 2) + 1)]!;
  }

  /** Won once a majority granted, Lost once a majority can no longer be reached, else Pending. */
  voteResult(votes: ReadonlyMap<bigint, boolean>): VoteResult {
    const n = this.ids.size;
    if (n === 0) return VoteResult.Won; // an empty config decides nothing, so it never blocks
    let granted = 0;
    let missing = 0;
    for (const id of this.ids) {
      const v = votes.get(id);
      if (v === undefined) missing++;
      else if (v) granted++;
    }
    const quorum = Math.floor(n / 2) + 1;
    if (granted >= quorum) return VoteResult.Won;
    if (granted + missing >= quorum) return VoteResult.Pending;
    return VoteResult.Lost;
  }

  /** `(1 2 3)`: the scenario tests' notation. */
  toString(): string {
    return `(${this.sorted().join(' ')})`;
  }
}
