import type { Entry, HardState } from '@nokv/proto';

/** A broken safety property, with the numbers that show it. */
export interface Violation {
  time: number;
  property:
    | 'ElectionSafety'
    | 'LogMatching'
    | 'LeaderCompleteness'
    | 'StateMachineSafety'
    | 'DurableState'
    | 'Liveness'
    | 'Assertion';
  detail: string;
}

function dataHash(data: Uint8Array): string {
  let h = 0x811c9dc5;
  for (const b of data) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return `${data.length}:${h.toString(16)}`;
}

/**
 * The Raft paper's safety properties, checked incrementally as the simulation runs:
 * - Election Safety: at most one leader per term.
 * - Log Matching: an (index, term) pair identifies one entry and the term of the entry before
 *   it, so two logs sharing an (index, term) agree on everything up to it.
 * - Leader Completeness: a new leader's log holds every entry committed before its election.
 * - State Machine Safety: every replica applies the same entry at an index, reaching the same
 *   state (compared by digest, also across snapshot installs).
 * - Durable state: a node's persisted term never decreases, and it never persists two different
 *   votes in one term.
 */
export class InvariantChecker {
  readonly violations: Violation[] = [];
  private readonly leaders = new Map<bigint, bigint>();
  private readonly entries = new Map<string, { hash: string; prevTerm: bigint }>();
  /** Entries known committed (some node's commit index covers them), by index. */
  private readonly committed = new Map<bigint, { term: bigint; hash: string; commitTerm: bigint }>();
  private maxCommitted = 0n;
  private readonly digests = new Map<bigint, string>();
  private readonly durableTerm = new Map<bigint, bigint>();
  private readonly votes = new Map<bigint, Map<bigint, bigint>>();
  now = 0;

  private fail(property: Violation['property'], detail: string): void {
    if (this.violations.length < 20) this.violations.push({ time: this.now, property, detail });
  }

  /** A node is leader of `term` right now. */
  observeLeader(id: bigint, term: bigint): void {
    const other = this.leaders.get(term);
    if (other === undefined) this.leaders.set(term, id);
    else if (other !== id)
      this.fail('ElectionSafety', `nodes ${other} and ${id} were both leader in term ${term}`);
  }

  /**
   * A node became leader of `term`: it must hold every entry committed in an earlier term above
   * its snapshot. (An entry committed in a later term by another leader need not be there: a
   * candidate's delayed votes can make it leader of an older term after that.)
   */
  checkLeaderCompleteness(
    id: bigint,
    term: bigint,
    termAt: (index: bigint) => bigint | undefined,
    snapshotIndex: bigint,
  ): void {
    for (let i = snapshotIndex + 1n; i <= this.maxCommitted; i++) {
      const c = this.committed.get(i);
      if (!c || c.commitTerm >= term) continue;
      const t = termAt(i);
      if (t !== c.term) {
        this.fail(
          'LeaderCompleteness',
          `leader ${id} of term ${term} has term ${t ?? 'none'} at index ${i}, but the entry committed there has term ${c.term}`,
        );
        return;
      }
    }
  }

  /** New entries a node persisted; `prevTermOf(e)` is the term before `e` in that node's log. */
  observeEntries(id: bigint, entries: readonly Entry[], prevTermOf: (e: Entry) => bigint | undefined): void {
    for (const e of entries) {
      const key = `${e.index}/${e.term}`;
      const hash = dataHash(e.data);
      const prevTerm = prevTermOf(e);
      const seen = this.entries.get(key);
      if (!seen) {
        if (prevTerm !== undefined) this.entries.set(key, { hash, prevTerm });
        continue;
      }
      if (seen.hash !== hash) {
        this.fail(
          'LogMatching',
          `node ${id} holds a different entry at ${key} (payload ${hash} vs ${seen.hash})`,
        );
      } else if (prevTerm !== undefined && seen.prevTerm !== prevTerm) {
        this.fail(
          'LogMatching',
          `node ${id} has entry ${key} after term ${prevTerm}, another log has it after term ${seen.prevTerm}`,
        );
      }
    }
  }

  /**
   * Entries up to a node's commit index are committed; they must agree with what others committed.
   * `term` is the reporting node's term: the first report comes from the leader that committed
   * them (its Ready is handled before any follower hears of the commit), so it is the commit term.
   */
  observeCommitted(id: bigint, entries: readonly Entry[], term: bigint): void {
    for (const e of entries) {
      const hash = dataHash(e.data);
      const c = this.committed.get(e.index);
      if (!c) {
        this.committed.set(e.index, { term: e.term, hash, commitTerm: term });
        if (e.index > this.maxCommitted) this.maxCommitted = e.index;
      } else if (c.term !== e.term || c.hash !== hash) {
        this.fail(
          'StateMachineSafety',
          `node ${id} committed ${e.term}/${e.index} (${hash}) where ${c.term}/${e.index} (${c.hash}) was committed`,
        );
      }
    }
  }

  /** A node's state machine digest after applying index `index` (or installing a snapshot at it). */
  observeApplied(id: bigint, index: bigint, digest: string, via: 'entry' | 'snapshot'): void {
    const seen = this.digests.get(index);
    if (seen === undefined) this.digests.set(index, digest);
    else if (seen !== digest) {
      this.fail(
        'StateMachineSafety',
        `node ${id} reached state ${digest} at index ${index} by ${via}, others reached ${seen}`,
      );
    }
  }

  /** A node's hard state became durable. */
  observeDurable(id: bigint, hs: HardState): void {
    const prev = this.durableTerm.get(id) ?? 0n;
    if (hs.term < prev) this.fail('DurableState', `node ${id} persisted term ${hs.term} after term ${prev}`);
    this.durableTerm.set(id, hs.term > prev ? hs.term : prev);
    if (hs.vote === 0n) return;
    let byTerm = this.votes.get(id);
    if (!byTerm) {
      byTerm = new Map();
      this.votes.set(id, byTerm);
    }
    const v = byTerm.get(hs.term);
    if (v === undefined) byTerm.set(hs.term, hs.vote);
    else if (v !== hs.vote)
      this.fail('DurableState', `node ${id} persisted votes for ${v} and ${hs.vote} in term ${hs.term}`);
  }

  liveness(detail: string): void {
    this.fail('Liveness', detail);
  }

  /** The library itself detected a broken invariant (and would have stopped the process). */
  assertion(detail: string): void {
    this.fail('Assertion', detail);
  }

  get committedCount(): number {
    return this.committed.size;
  }

  get maxTerm(): bigint {
    let m = 0n;
    for (const t of this.leaders.keys()) if (t > m) m = t;
    return m;
  }
}
