import { type AckedIndexer, MajorityConfig, sortIds } from './majority-config.js';
import { VoteResult } from './vote-result.js';

/**
 * Two majority configs that must both agree: `incoming` is the configuration being moved to and
 * `outgoing` the one being left (empty when not in a joint change).
 */
export class JointConfig {
  constructor(
    readonly incoming: MajorityConfig = new MajorityConfig(),
    readonly outgoing: MajorityConfig = new MajorityConfig(),
  ) {}

  isJoint(): boolean {
    return this.outgoing.size > 0;
  }

  /** Every voter of either half, ascending. */
  ids(): bigint[] {
    return sortIds(new Set([...this.incoming.ids, ...this.outgoing.ids]));
  }

  has(id: bigint): boolean {
    return this.incoming.has(id) || this.outgoing.has(id);
  }

  /** The largest index both majorities have acknowledged. */
  committedIndex(acked: AckedIndexer): bigint {
    const a = this.incoming.committedIndex(acked);
    const b = this.outgoing.committedIndex(acked);
    return a < b ? a : b;
  }

  /** Won only if both halves won; Lost if either lost. */
  voteResult(votes: ReadonlyMap<bigint, boolean>): VoteResult {
    const a = this.incoming.voteResult(votes);
    const b = this.outgoing.voteResult(votes);
    if (a === b) return a;
    if (a === VoteResult.Lost || b === VoteResult.Lost) return VoteResult.Lost;
    return VoteResult.Pending;
  }

  toString(): string {
    return this.isJoint() ? `${this.incoming}&&${this.outgoing}` : this.incoming.toString();
  }
}
