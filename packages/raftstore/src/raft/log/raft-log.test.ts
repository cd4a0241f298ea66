import { type Entry, EntryType, emptyConfState, type Snapshot } from '@nokv/proto';
import { describe, expect, test } from 'vitest';
import { RaftAssertionError, RaftError } from '../errors.js';
import { MemoryStorage } from '../memory-storage.js';
import { entriesWithTerms } from '../testing/network.js';
import { RaftLog } from './raft-log.js';

const e = (index: number, term: number): Entry => ({
  index: BigInt(index),
  term: BigInt(term),
  type: EntryType.Normal,
  data: new Uint8Array(0),
});
const snap = (index: number, term: number): Snapshot => ({
  data: new Uint8Array(0),
  metadata: { index: BigInt(index), term: BigInt(term), confState: { ...emptyConfState(), voters: [1n] } },
});

/** A storage holding a snapshot at `snapIndex` (if > 0) and then `stored` entries. */
function storage(snapIndex = 0, snapTerm = 0, stored: Entry[] = []): MemoryStorage {
  const s = new MemoryStorage();
  if (snapIndex > 0) s.applySnapshot(snap(snapIndex, snapTerm));
  s.append(stored);
  return s;
}

/** A log over `storage()` with `unstable` entries appended in memory. */
function raftLog(stored: Entry[] = [], unstable: Entry[] = [], snapIndex = 0, snapTerm = 0): RaftLog {
  const log = new RaftLog(storage(snapIndex, snapTerm, stored));
  log.append(unstable);
  return log;
}

const ids = (es: readonly Entry[]) => es.map((x) => `${x.index}/${x.term}`);

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof RaftError) return err.code;
    throw err;
  }
  return undefined;
}

describe('RaftLog construction', () => {
  test('starts committed and applied at the storage snapshot, unstable after the stored log', () => {
    const log = new RaftLog(storage(10, 3, [e(11, 3), e(12, 4)]));
    expect(log.committed).toBe(10n);
    expect(log.applied).toBe(10n);
    expect(log.firstIndex()).toBe(11n);
    expect(log.lastIndex()).toBe(12n);
    expect(log.unstable.offset).toBe(13n);
    expect(log.lastTerm()).toBe(4n);
  });
});

describe('RaftLog.findConflict', () => {
  const prev = [e(1, 1), e(2, 2), e(3, 3)];
  test.each([
    // nothing conflicts
    { ents: [], want: 0 },
    { ents: [e(1, 1), e(2, 2), e(3, 3)], want: 0 },
    { ents: [e(2, 2), e(3, 3)], want: 0 },
    { ents: [e(3, 3)], want: 0 },
    // new entries
    { ents: [e(1, 1), e(2, 2), e(3, 3), e(4, 4), e(5, 4)], want: 4 },
    { ents: [e(2, 2), e(3, 3), e(4, 4), e(5, 4)], want: 4 },
    { ents: [e(3, 3), e(4, 4), e(5, 4)], want: 4 },
    { ents: [e(4, 4), e(5, 4)], want: 4 },
    // conflicting entries
    { ents: [e(1, 4), e(2, 4)], want: 1 },
    { ents: [e(2, 1), e(3, 4), e(4, 4)], want: 2 },
    { ents: [e(3, 1), e(4, 2), e(5, 4), e(6, 4)], want: 3 },
  ])('$ents.length entries -> first conflict at $want', ({ ents, want }) => {
    expect(raftLog([], prev).findConflict(ents)).toBe(BigInt(want));
  });
});

describe('RaftLog.findConflictByTerm', () => {
  // Log 1..5 with terms 2 2 5 5 5.
  const full = () => raftLog(entriesWithTerms([2, 2, 5, 5, 5]));
  // Snapshot at 10 (term 3), then 11..15 with terms 3 3 4 4 4.
  const compacted = () => raftLog(entriesWithTerms([3, 3, 4, 4, 4], 11n), [], 10, 3);
  test.each([
    { log: 'full', index: 100, term: 2, want: [100, 0] }, // beyond the end: unknown term
    { log: 'full', index: 5, term: 6, want: [5, 5] },
    { log: 'full', index: 5, term: 5, want: [5, 5] },
    { log: 'full', index: 5, term: 4, want: [2, 2] },
    { log: 'full', index: 5, term: 2, want: [2, 2] },
    { log: 'full', index: 5, term: 1, want: [0, 0] },
    { log: 'full', index: 1, term: 2, want: [1, 2] },
    { log: 'full', index: 1, term: 1, want: [0, 0] },
    { log: 'full', index: 0, term: 0, want: [0, 0] },
    { log: 'compacted', index: 30, term: 3, want: [30, 0] },
    { log: 'compacted', index: 14, term: 9, want: [14, 4] },
    { log: 'compacted', index: 14, term: 4, want: [14, 4] },
    { log: 'compacted', index: 14, term: 3, want: [12, 3] },
    { log: 'compacted', index: 14, term: 2, want: [9, 0] }, // runs into the compacted prefix
    { log: 'compacted', index: 11, term: 5, want: [11, 3] },
    { log: 'compacted', index: 10, term: 5, want: [10, 3] },
    { log: 'compacted', index: 10, term: 3, want: [10, 3] },
    { log: 'compacted', index: 10, term: 2, want: [9, 0] },
    { log: 'compacted', index: 9, term: 2, want: [9, 0] },
    { log: 'compacted', index: 4, term: 2, want: [4, 0] },
    { log: 'compacted', index: 0, term: 0, want: [0, 0] },
  ])('$log log: ($index, $term) -> $want', (tt) => {
    const log = tt.log === 'full' ? full() : compacted();
    const got = log.findConflictByTerm(BigInt(tt.index), BigInt(tt.term));
    expect([Number(got.index), Number(got.term)]).toEqual(tt.want);
  });
});

describe('RaftLog.maybeAppend', () => {
  const last = 3;
  test.each([
    // no match: different term at prevIndex, or prevIndex beyond the log
    { logTerm: 2, index: 3, commit: 3, ents: [e(4, 4)], want: undefined, wCommit: 1 },
    { logTerm: 3, index: 4, commit: 3, ents: [e(5, 4)], want: undefined, wCommit: 1 },
    // match the last entry
    { logTerm: 3, index: 3, commit: 3, ents: [], want: 3, wCommit: 3 },
    { logTerm: 3, index: 3, commit: 4, ents: [], want: 3, wCommit: 3 }, // never beyond the last new entry
    { logTerm: 3, index: 3, commit: 2, ents: [], want: 3, wCommit: 2 },
    { logTerm: 3, index: 3, commit: 0, ents: [], want: 3, wCommit: 1 }, // commit never decreases
    { logTerm: 0, index: 0, commit: 3, ents: [], want: 0, wCommit: 1 },
    { logTerm: 3, index: 3, commit: 3, ents: [e(4, 4)], want: 4, wCommit: 3 },
    { logTerm: 3, index: 3, commit: 4, ents: [e(4, 4)], want: 4, wCommit: 4 },
    { logTerm: 3, index: 3, commit: 5, ents: [e(4, 4)], want: 4, wCommit: 4 },
    { logTerm: 3, index: 3, commit: 5, ents: [e(4, 4), e(5, 4)], want: 5, wCommit: 5 },
    // match an entry in the middle: the conflicting suffix is replaced
    { logTerm: 2, index: 2, commit: 3, ents: [e(3, 4)], want: 3, wCommit: 3 },
    { logTerm: 1, index: 1, commit: 3, ents: [e(2, 4)], want: 2, wCommit: 2 },
    { logTerm: 1, index: 1, commit: 3, ents: [e(2, 4), e(3, 4)], want: 3, wCommit: 3 },
    // match in the middle without conflicts: the longer log stays
    { logTerm: 1, index: 1, commit: 3, ents: [e(2, 2)], want: 2, wCommit: 2 },
  ])('append after $logTerm/$index with commit $commit -> $want', (tt) => {
    const log = raftLog([], [e(1, 1), e(2, 2), e(3, 3)]);
    log.committed = 1n;
    const got = log.maybeAppend(BigInt(tt.index), BigInt(tt.logTerm), BigInt(tt.commit), tt.ents);
    expect(got).toBe(tt.want === undefined ? undefined : BigInt(tt.want));
    expect(log.committed).toBe(BigInt(tt.wCommit));
    if (got !== undefined && tt.ents.length > 0) {
      expect(log.slice(BigInt(tt.index) + 1n, got + 1n, 1 << 20)).toEqual(tt.ents);
    }
    if (got === undefined || tt.ents.length === 0) expect(log.lastIndex()).toBe(BigInt(last));
  });

  test('a conflict with a committed entry is a broken invariant', () => {
    const log = raftLog([], [e(1, 1), e(2, 2), e(3, 3)]);
    log.committed = 1n;
    expect(() => log.maybeAppend(0n, 0n, 3n, [e(1, 4)])).toThrow(RaftAssertionError);
  });
});

describe('RaftLog commit and apply marks', () => {
  test('commitTo moves forward only, and never beyond the last index', () => {
    const log = raftLog([], [e(1, 1), e(2, 2), e(3, 3)]);
    log.commitTo(2n);
    log.commitTo(1n);
    expect(log.committed).toBe(2n);
    log.commitTo(3n);
    expect(log.committed).toBe(3n);
    expect(() => log.commitTo(4n)).toThrow(RaftAssertionError);
    expect(log.committed).toBe(3n);
  });

  test('maybeCommit commits only an entry of the given term', () => {
    const log = raftLog([], [e(1, 1), e(2, 2)]);
    expect(log.maybeCommit(2n, 1n)).toBe(false);
    expect(log.maybeCommit(1n, 1n)).toBe(true);
    expect(log.maybeCommit(2n, 2n)).toBe(true);
    expect(log.committed).toBe(2n);
    expect(log.maybeCommit(1n, 1n)).toBe(false); // not above committed
    expect(log.maybeCommit(9n, 2n)).toBe(false); // beyond the log: term unknown
  });

  test('appliedTo stays within [applied, committed]', () => {
    const log = raftLog([], [e(1, 1), e(2, 1), e(3, 1)]);
    log.commitTo(2n);
    log.appliedTo(1n);
    expect(() => log.appliedTo(3n)).toThrow(RaftAssertionError);
    log.appliedTo(2n);
    expect(() => log.appliedTo(1n)).toThrow(RaftAssertionError);
    log.appliedTo(0n); // 0 means "nothing": ignored
    expect(log.applied).toBe(2n);
  });

  test('committed entries are handed out in order, within the size limit, once each', () => {
    const log = new RaftLog(storage(0, 0, entriesWithTerms([1, 1, 1])), 48);
    log.append(entriesWithTerms([2, 2], 4n));
    log.commitTo(5n);
    const batches: string[][] = [];
    while (log.hasNextCommittedEntries()) {
      const batch = log.nextCommittedEntries();
      batches.push(ids(batch));
      log.appliedTo(batch.at(-1)!.index);
    }
    // 24 bytes per empty entry: two per batch, across the storage/unstable boundary.
    expect(batches).toEqual([['1/1', '2/1'], ['3/1', '4/2'], ['5/2']]);
    expect(log.nextCommittedEntries()).toEqual([]);
  });

  test('append never overwrites committed entries', () => {
    const log = raftLog([], [e(1, 1), e(2, 2), e(3, 3)]);
    log.commitTo(2n);
    expect(() => log.append([e(2, 4)])).toThrow(RaftAssertionError);
    expect(log.append([e(3, 4)])).toBe(3n);
    expect(log.lastTerm()).toBe(4n);
  });
});

describe('RaftLog terms', () => {
  const offset = 100;
  const num = 100;
  // Snapshot at 100 (term 1), entries 101..199 with term = index - 100.
  const log = () =>
    new RaftLog(
      storage(
        offset,
        1,
        Array.from({ length: num - 1 }, (_, i) => e(offset + i + 1, i + 1)),
      ),
    );

  test.each([
    { index: offset - 1, term: undefined, code: 'Compacted' },
    { index: offset, term: 1n, code: undefined }, // the snapshot's term stays answerable
    { index: offset + num / 2, term: BigInt(num / 2), code: undefined },
    { index: offset + num - 1, term: BigInt(num - 1), code: undefined },
    { index: offset + num, term: undefined, code: 'Unavailable' },
  ])('term($index) -> $term $code', (tt) => {
    const l = log();
    expect(codeOf(() => l.term(BigInt(tt.index)))).toBe(tt.code);
    if (tt.term !== undefined) expect(l.term(BigInt(tt.index))).toBe(tt.term);
    expect(l.zeroTermOnOutOfBounds(BigInt(tt.index))).toBe(tt.term ?? 0n);
    expect(l.matchTerm(BigInt(tt.index), tt.term ?? 0n)).toBe(tt.term !== undefined);
  });

  test('with an unstable snapshot, only its index and later are answerable', () => {
    const l = log();
    l.restore(snap(offset + 105, 7));
    expect(codeOf(() => l.term(BigInt(offset)))).toBe('Compacted');
    expect(codeOf(() => l.term(BigInt(offset + 104)))).toBe('Compacted');
    expect(l.term(BigInt(offset + 105))).toBe(7n);
    expect(codeOf(() => l.term(BigInt(offset + 106)))).toBe('Unavailable');
  });

  test.each([
    { index: 2, term: 4, want: true }, // later last term
    { index: 3, term: 4, want: true },
    { index: 4, term: 4, want: true },
    { index: 2, term: 2, want: false }, // earlier last term
    { index: 3, term: 2, want: false },
    { index: 4, term: 2, want: false },
    { index: 2, term: 3, want: false }, // same term, shorter
    { index: 3, term: 3, want: true }, // same term, as long
    { index: 4, term: 3, want: true }, // same term, longer
  ])('isUpToDate($index, $term) against 1/1 2/2 3/3 -> $want', ({ index, term, want }) => {
    expect(raftLog([], [e(1, 1), e(2, 2), e(3, 3)]).isUpToDate(BigInt(index), BigInt(term))).toBe(want);
  });
});

describe('RaftLog.slice', () => {
  // Snapshot at 100; 101..149 in storage, 150..199 unstable; term = index; 24 bytes per entry.
  const log = () => {
    const l = new RaftLog(
      storage(
        100,
        100,
        Array.from({ length: 49 }, (_, i) => e(101 + i, 101 + i)),
      ),
    );
    l.append(Array.from({ length: 50 }, (_, i) => e(150 + i, 150 + i)));
    return l;
  };
  const range = (from: number, to: number) =>
    Array.from({ length: to - from + 1 }, (_, i) => `${from + i}/${from + i}`);
  const NO_LIMIT = Number.MAX_SAFE_INTEGER;

  test.each([
    { lo: 101, hi: 101, max: NO_LIMIT, want: [] as string[] },
    { lo: 101, hi: 150, max: NO_LIMIT, want: range(101, 149) }, // storage only
    { lo: 149, hi: 151, max: NO_LIMIT, want: range(149, 150) }, // across the boundary
    { lo: 150, hi: 200, max: NO_LIMIT, want: range(150, 199) }, // unstable only
    { lo: 199, hi: 200, max: NO_LIMIT, want: range(199, 199) },
    // size limits: at least one entry, then as many as fit
    { lo: 101, hi: 200, max: 0, want: range(101, 101) },
    { lo: 148, hi: 152, max: 72, want: range(148, 150) },
    { lo: 148, hi: 152, max: 71, want: range(148, 149) },
    { lo: 148, hi: 152, max: 24, want: range(148, 148) },
    { lo: 149, hi: 152, max: 48, want: range(149, 150) },
    { lo: 150, hi: 153, max: 47, want: range(150, 150) },
    { lo: 101, hi: 200, max: 24 * 99, want: range(101, 199) },
  ])('slice($lo, $hi, max $max)', ({ lo, hi, max, want }) => {
    expect(ids(log().slice(BigInt(lo), BigInt(hi), max))).toEqual(want);
  });

  test('below the first index is Compacted; beyond the end or reversed is a broken invariant', () => {
    const l = log();
    expect(codeOf(() => l.slice(99n, 101n, NO_LIMIT))).toBe('Compacted');
    expect(codeOf(() => l.slice(100n, 101n, NO_LIMIT))).toBe('Compacted');
    expect(() => l.slice(150n, 201n, NO_LIMIT)).toThrow(RaftAssertionError);
    expect(() => l.slice(151n, 150n, NO_LIMIT)).toThrow(RaftAssertionError);
    expect(l.entries(200n, NO_LIMIT)).toEqual([]);
    expect(codeOf(() => l.entries(50n, NO_LIMIT))).toBe('Compacted');
  });
});

describe('RaftLog persistence bookkeeping', () => {
  test('restore installs a snapshot as the whole log', () => {
    const log = raftLog(entriesWithTerms([1, 1]), [e(3, 2)]);
    log.restore(snap(200, 5));
    expect(log.committed).toBe(200n);
    expect(log.firstIndex()).toBe(201n);
    expect(log.lastIndex()).toBe(200n);
    expect(log.lastTerm()).toBe(5n);
    expect(log.hasPendingSnapshot()).toBe(true);
    expect(log.unstableEntries()).toEqual([]);
    expect(log.snapshot().metadata.index).toBe(200n);
    // Committed entries before the snapshot are never handed out: the snapshot replaces them.
    expect(log.nextCommittedEntries()).toEqual([]);
    expect(log.hasNextCommittedEntries()).toBe(false);
    log.stableSnapTo(200n);
    expect(log.hasPendingSnapshot()).toBe(false);
  });

  test('stableTo ignores entries replaced while they were being persisted', () => {
    const log = raftLog([], [e(1, 1), e(2, 1)]);
    const writing = log.unstableEntries();
    // A new leader replaces index 2 before the write of [1/1 2/1] completes.
    log.append([e(2, 2)]);
    const last = writing.at(-1)!;
    log.stableTo(last.index, last.term);
    expect(ids(log.unstableEntries())).toEqual(['1/1', '2/2']);
    log.stableTo(1n, 1n);
    expect(ids(log.unstableEntries())).toEqual(['2/2']);
    expect(log.unstable.offset).toBe(2n);
  });

  test('hasUnappliedConfChanges looks only at committed, unapplied entries', () => {
    const cc: Entry = { ...e(3, 1), type: EntryType.ConfChangeV2 };
    const log = raftLog([], [e(1, 1), e(2, 1), cc, e(4, 1)]);
    expect(log.hasUnappliedConfChanges()).toBe(false); // not committed yet
    log.commitTo(4n);
    expect(log.hasUnappliedConfChanges()).toBe(true);
    log.appliedTo(3n);
    expect(log.hasUnappliedConfChanges()).toBe(false);
  });
});
