import type { ConfState } from '@nokv/proto';
import { JointConfig } from '../quorum/joint-config.js';
import { MajorityConfig, sortIds } from '../quorum/majority-config.js';
import { VoteResult } from '../quorum/vote-result.js';
import type { Progress } from './progress.js';

/** Who votes, who learns, and how a joint configuration will be left. */
export class TrackerConfig {
  constructor(
    readonly voters: JointConfig = new JointConfig(),
    /** Non-voting members. Never overlaps either voter half. */
    readonly learners: Set<bigint> = new Set(),
    /**
     * Voters of the outgoing half that become learners when the joint config is left (they cannot
     * be learners and voters at once in the meantime).
     */
    readonly learnersNext: Set<bigint> = new Set(),
    /** Leave the joint config automatically once the entering change is applied. */
    public autoLeave = false,
  ) {}

  clone(): TrackerConfig {
    return new TrackerConfig(
      new JointConfig(
        new MajorityConfig(this.voters.incoming.ids),
        new MajorityConfig(this.voters.outgoing.ids),
      ),
      new Set(this.learners),
      new Set(this.learnersNext),
      this.autoLeave,
    );
  }

  /** `voters=(1 2 3)&&(1 2) learners=(4) learners_next=(3) autoleave`. */
  toString(): string {
    let s = `voters=${this.voters}`;
    if (this.learners.size > 0) s += ` learners=(${sortIds(this.learners).join(' ')})`;
    if (this.learnersNext.size > 0) s += ` learners_next=(${sortIds(this.learnersNext).join(' ')})`;
    if (this.autoLeave) s += ' autoleave';
    return s;
  }
}

/** The active configuration and the leader's progress for every member. */
export class ProgressTracker {
  config: TrackerConfig = new TrackerConfig();
  progress: Map<bigint, Progress> = new Map();
  /** Votes received in the current election, by voter id. */
  votes: Map<bigint, boolean> = new Map();

  constructor(
    readonly maxInflight: number,
    readonly maxInflightBytes: number,
  ) {}

  /** The configuration in wire form. */
  confState(): ConfState {
    return {
      voters: this.config.voters.incoming.sorted(),
      votersOutgoing: this.config.voters.outgoing.sorted(),
      learners: sortIds(this.config.learners),
      learnersNext: sortIds(this.config.learnersNext),
      autoLeave: this.config.autoLeave,
    };
  }

  /** One voter and no joint change: the leader alone is a quorum. */
  isSingleton(): boolean {
    return this.config.voters.incoming.size === 1 && !this.config.voters.isJoint();
  }

  /** The largest index a quorum has acknowledged. */
  committed(): bigint {
    return this.config.voters.committedIndex((id) => this.progress.get(id)?.match);
  }

  /** Calls `fn` for every tracked member in ascending id order (so output is deterministic). */
  visit(fn: (id: bigint, progress: Progress) => void): void {
    for (const id of sortIds(this.progress.keys())) fn(id, this.progress.get(id)!);
  }

  /** True if a quorum of voters has been heard from since the last check. */
  quorumActive(): boolean {
    const votes = new Map<bigint, boolean>();
    this.visit((id, pr) => {
      if (!pr.isLearner) votes.set(id, pr.recentActive);
    });
    return this.config.voters.voteResult(votes) === VoteResult.Won;
  }

  voterNodes(): bigint[] {
    return this.config.voters.ids();
  }

  learnerNodes(): bigint[] {
    return sortIds(this.config.learners);
  }

  resetVotes(): void {
    this.votes = new Map();
  }

  /** Records a vote; a voter's first answer in an election is the one that counts. */
  recordVote(id: bigint, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  /** Counts the recorded votes of current voters. */
  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const [id, pr] of this.progress) {
      if (pr.isLearner) continue;
      const v = this.votes.get(id);
      if (v === undefined) continue;
      if (v) granted++;
      else rejected++;
    }
    return { granted, rejected, result: this.config.voters.voteResult(this.votes) };
  }
}
