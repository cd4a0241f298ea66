import { NO_LIMIT_INDEX, VoteResult } from '../quorum/vote-result.js';

// Brute-force definitions of the quorum rules, which the quorum tests compare the real
// implementations against.

/** An AckedIndexer over a plain record (ids absent from it are unknown). */
export function acked(acks: Partial<Record<number, number>>): (id: bigint) => bigint | undefined {
  return (id) => {
    const v = acks[Number(id)];
    return v === undefined ? undefined : BigInt(v);
  };
}

/** The largest index that more than half of the voters have acknowledged (unknown = 0). */
export function bruteCommitted(voters: readonly bigint[], ack: (id: bigint) => bigint | undefined): bigint {
  if (voters.length === 0) return NO_LIMIT_INDEX;
  const values = voters.map((id) => ack(id) ?? 0n);
  let best = 0n;
  for (const candidate of values) {
    const holders = values.filter((v) => v >= candidate).length;
    if (holders * 2 > voters.length && candidate > best) best = candidate;
  }
  return best;
}

/** Won with more than half granted, Lost once the grants can no longer get there, else Pending. */
export function bruteVote(voters: readonly bigint[], votes: ReadonlyMap<bigint, boolean>): VoteResult {
  if (voters.length === 0) return VoteResult.Won;
  const granted = voters.filter((id) => votes.get(id) === true).length;
  const missing = voters.filter((id) => !votes.has(id)).length;
  if (granted * 2 > voters.length) return VoteResult.Won;
  if ((granted + missing) * 2 > voters.length) return VoteResult.Pending;
  return VoteResult.Lost;
}
