import { type Entry, EntryType, type Snapshot } from '@nokv/proto';
import { invariant, RaftError } from '../errors.js';
import { limitSize, type Storage } from '../storage.js';
import { Unstable } from './unstable.js';

const NO_LIMIT = Number.MAX_SAFE_INTEGER;

/**
 * The node's log: persisted entries (Storage) followed by unstable ones, with the commit and
 * applied marks. Indexes satisfy applied <= committed <= lastIndex at all times.
 */
export class RaftLog {
  readonly unstable: Unstable;
  /** Highest index known to be committed by a quorum. */
  committed: bigint;
  /** Highest index the caller has applied to its state machine. */
  applied: bigint;

  constructor(
    readonly storage: Storage,
    /** Byte limit of committed entries handed out per Ready. */
    readonly maxApplyingSizeBytes: number = NO_LIMIT,
  ) {
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1n);
    // The snapshot before the first index is, by definition, committed and applied.
    this.committed = first - 1n;
    this.applied = first - 1n;
  }

  toString(): string {
    return `committed=${this.committed}, applied=${this.applied}, unstable.offset=${this.unstable.offset}, len(unstable.entries)=${this.unstable.entries.length}`;
  }

  firstIndex(): bigint {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): bigint {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /**
   * Term of the entry at `index`.
   * @throws RaftError `Compacted` below firstIndex - 1, `Unavailable` above lastIndex.
   */
  term(index: bigint): bigint {
    const dummy = this.firstIndex() - 1n;
    if (index < dummy) throw new RaftError('Compacted', `term(${index}): compacted up to ${dummy}`);
    if (index > this.lastIndex()) {
      throw new RaftError('Unavailable', `term(${index}): last index is ${this.lastIndex()}`);
    }
    return this.unstable.maybeTerm(index) ?? this.storage.term(index);
  }

  /** Term at `index`, or 0 if it is out of range (compacted or beyond the end). */
  zeroTermOnOutOfBounds(index: bigint): bigint {
    try {
      return this.term(index);
    } catch (err) {
      if (err instanceof RaftError && (err.code === 'Compacted' || err.code === 'Unavailable')) return 0n;
      throw err;
    }
  }

  lastTerm(): bigint {
    return this.term(this.lastIndex());
  }

  /** True if our log holds an entry at `index` with term `term` (false if out of range). */
  matchTerm(index: bigint, term: bigint): boolean {
    try {
      return this.term(index) === term;
    } catch (err) {
      if (err instanceof RaftError && (err.code === 'Compacted' || err.code === 'Unavailable')) return false;
      throw err;
    }
  }

  /** A candidate's log (last index/term) is at least as up to date as ours (Raft §5.4.1). */
  isUpToDate(lastIndex: bigint, term: bigint): boolean {
    const ourTerm = this.lastTerm();
    return term > ourTerm || (term === ourTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Appends a leader's entries following (prevIndex, prevTerm), if our log matches there. Returns
   * the last index of the new entries, or undefined if the logs do not match at prevIndex.
   */
  maybeAppend(
    prevIndex: bigint,
    prevTerm: bigint,
    leaderCommit: bigint,
    ents: readonly Entry[],
  ): bigint | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNew = prevIndex + BigInt(ents.length);
    const conflict = this.findConflict(ents);
    if (conflict !== 0n) {
      invariant(
        conflict > this.committed,
        () => `entry ${conflict} conflicts with committed entry [committed(${this.committed})]`,
      );
      this.append(ents.slice(Number(conflict - (prevIndex + 1n))));
    }
    this.commitTo(leaderCommit < lastNew ? leaderCommit : lastNew);
    return lastNew;
  }

  /**
   * Index of the first entry in `ents` that is new or disagrees with our log (0 if all are
   * already present with the same terms).
   */
  findConflict(ents: readonly Entry[]): bigint {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0n;
  }

  /**
   * Fast backtracking: the largest index <= `index` whose term is <= `term`, with that term. The
   * leader and follower each use it to skip a whole term of divergent entries per round trip.
   */
  findConflictByTerm(index: bigint, term: bigint): { index: bigint; term: bigint } {
    for (let i = index; ; i--) {
      let ourTerm: bigint;
      try {
        ourTerm = this.term(i);
      } catch (err) {
        if (err instanceof RaftError) return { index: i, term: 0n };
        throw err;
      }
      if (ourTerm <= term) return { index: i, term: ourTerm };
      if (i === 0n) return { index: 0n, term: 0n };
    }
  }

  /** Appends entries (never over committed ones); returns the new last index. */
  append(ents: readonly Entry[]): bigint {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0]!.index - 1n;
    invariant(
      after >= this.committed,
      () => `after(${after}) is out of range [committed(${this.committed})]`,
    );
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  unstableEntries(): Entry[] {
    return this.unstable.entries.slice();
  }

  /** Committed entries not yet handed to the application, within the per-Ready byte limit. */
  nextCommittedEntries(): Entry[] {
    const lo = this.applied + 1n;
    const hi = this.committed + 1n;
    if (lo >= hi) return [];
    const first = this.firstIndex();
    if (lo < first) return []; // a snapshot covers them; it is applied instead
    return this.slice(lo, hi, this.maxApplyingSizeBytes);
  }

  hasNextCommittedEntries(): boolean {
    const lo = this.applied + 1n;
    return lo <= this.committed && lo >= this.firstIndex();
  }

  /** True if a snapshot waits to be persisted. */
  hasPendingSnapshot(): boolean {
    return this.unstable.snapshot !== undefined;
  }

  /** The latest snapshot: a pending one, else Storage's. */
  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  /** Moves the commit mark forward (never back). */
  commitTo(toCommit: bigint): void {
    if (this.committed >= toCommit) return;
    invariant(
      this.lastIndex() >= toCommit,
      () =>
        `tocommit(${toCommit}) is out of range [lastIndex(${this.lastIndex()})]. Was the raft log corrupted, truncated, or lost?`,
    );
    this.committed = toCommit;
  }

  appliedTo(index: bigint): void {
    if (index === 0n) return;
    invariant(
      index >= this.applied && index <= this.committed,
      () => `applied(${index}) is out of range [prevApplied(${this.applied}), committed(${this.committed})]`,
    );
    this.applied = index;
  }

  stableTo(index: bigint, term: bigint): void {
    this.unstable.stableTo(index, term);
  }

  stableSnapTo(index: bigint): void {
    this.unstable.stableSnapTo(index);
  }

  /** Commits `maxIndex` if its entry is from `term` (a leader commits only its own term's entries, §5.4.2). */
  maybeCommit(maxIndex: bigint, term: bigint): boolean {
    if (maxIndex > this.committed && this.zeroTermOnOutOfBounds(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  /** Replaces the log with a snapshot received from the leader. */
  restore(snap: Snapshot): void {
    this.committed = snap.metadata.index;
    this.unstable.restore(snap);
  }

  /**
   * Entries from `index` to the end, within `maxSizeBytes`.
   * @throws RaftError `Compacted` if `index` was compacted away.
   */
  entries(index: bigint, maxSizeBytes: number): Entry[] {
    if (index > this.lastIndex()) return [];
    return this.slice(index, this.lastIndex() + 1n, maxSizeBytes);
  }

  /** Every entry from the first held one (tests and status). */
  allEntries(): Entry[] {
    return this.entries(this.firstIndex(), NO_LIMIT);
  }

  /**
   * Entries in [lo, hi) from storage and the unstable tail, within `maxSizeBytes`.
   * @throws RaftError `Compacted` if lo is below the first index.
   */
  slice(lo: bigint, hi: bigint, maxSizeBytes: number): Entry[] {
    invariant(lo <= hi, () => `invalid slice ${lo} > ${hi}`);
    const first = this.firstIndex();
    if (lo < first) throw new RaftError('Compacted', `slice from ${lo}: compacted up to ${first - 1n}`);
    const length = this.lastIndex() + 1n - first;
    invariant(hi <= first + length, () => `slice[${lo},${hi}) out of bound [${first},${this.lastIndex()}]`);
    if (lo === hi) return [];
    let out: Entry[] = [];
    const unstableFrom = this.unstable.offset;
    if (lo < unstableFrom) {
      const stored = this.storage.entries(lo, hi < unstableFrom ? hi : unstableFrom, maxSizeBytes);
      const wanted = (hi < unstableFrom ? hi : unstableFrom) - lo;
      // Storage stopped early (size limit): the unstable tail cannot follow.
      if (BigInt(stored.length) < wanted) return stored;
      out = stored;
    }
    if (hi > unstableFrom) {
      const tail = this.unstable.slice(lo > unstableFrom ? lo : unstableFrom, hi);
      out = out.length > 0 ? out.concat(tail) : tail;
    }
    return limitSize(out, maxSizeBytes);
  }

  /** True if any committed-but-unapplied entry is a membership change. */
  hasUnappliedConfChanges(): boolean {
    if (this.applied >= this.committed) return false;
    const lo = this.applied + 1n;
    if (lo < this.firstIndex()) return false;
    for (const e of this.slice(lo, this.committed + 1n, NO_LIMIT)) {
      if (e.type === EntryType.ConfChange || e.type === EntryType.ConfChangeV2) return true;
    }
    return false;
  }
}
