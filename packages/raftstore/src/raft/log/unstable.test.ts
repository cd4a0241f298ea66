import { type Entry, EntryType, emptyConfState, type Snapshot } from '@nokv/proto';
import { describe, expect, test } from 'vitest';
import { RaftAssertionError } from '../errors.js';
import { Unstable } from './unstable.js';

const e = (index: number, term: number): Entry => ({
  index: BigInt(index),
  term: BigInt(term),
  type: EntryType.Normal,
  data: new Uint8Array(0),
});
const snap = (index: number, term: number): Snapshot => ({
  data: new Uint8Array(0),
  metadata: { index: BigInt(index), term: BigInt(term), confState: emptyConfState() },
});

function unstable(offset: number, entries: Entry[], snapshot?: Snapshot): Unstable {
  const u = new Unstable(BigInt(offset));
  u.entries = entries;
  u.snapshot = snapshot;
  return u;
}

const ids = (u: Unstable) => u.entries.map((x) => `${x.index}/${x.term}`);

describe('Unstable index and term lookups', () => {
  test.each([
    { entries: [e(5, 1)], offset: 5, snapshot: undefined, first: undefined, last: 5n },
    { entries: [], offset: 5, snapshot: snap(4, 1), first: 5n, last: 4n },
    { entries: [e(5, 1)], offset: 5, snapshot: snap(4, 1), first: 5n, last: 5n },
    { entries: [], offset: 0, snapshot: undefined, first: undefined, last: undefined },
  ])('first/last index of $entries.length entries, snapshot $snapshot.metadata.index', (tt) => {
    const u = unstable(tt.offset, tt.entries, tt.snapshot);
    expect(u.maybeFirstIndex()).toBe(tt.first);
    expect(u.maybeLastIndex()).toBe(tt.last);
  });

  test.each([
    // entries only
    { entries: [e(5, 1)], offset: 5, snapshot: undefined, index: 5, want: 1n },
    { entries: [e(5, 1)], offset: 5, snapshot: undefined, index: 6, want: undefined },
    { entries: [e(5, 1)], offset: 5, snapshot: undefined, index: 4, want: undefined },
    // entries after a snapshot: the snapshot's own index is known too
    { entries: [e(5, 1)], offset: 5, snapshot: snap(4, 1), index: 5, want: 1n },
    { entries: [e(5, 1)], offset: 5, snapshot: snap(4, 1), index: 6, want: undefined },
    { entries: [e(5, 1)], offset: 5, snapshot: snap(4, 1), index: 4, want: 1n },
    { entries: [e(5, 1)], offset: 5, snapshot: snap(4, 1), index: 3, want: undefined },
    // snapshot only
    { entries: [], offset: 5, snapshot: snap(4, 1), index: 5, want: undefined },
    { entries: [], offset: 5, snapshot: snap(4, 1), index: 4, want: 1n },
    { entries: [], offset: 0, snapshot: undefined, index: 5, want: undefined },
  ])('term of $index -> $want', (tt) => {
    expect(unstable(tt.offset, tt.entries, tt.snapshot).maybeTerm(BigInt(tt.index))).toBe(tt.want);
  });
});

describe('Unstable.stableTo', () => {
  test.each([
    {
      name: 'nothing held',
      entries: [],
      offset: 0,
      snapshot: undefined,
      index: 5,
      term: 1,
      wOffset: 0n,
      wLen: 0,
    },
    {
      name: 'the only entry',
      entries: [e(5, 1)],
      offset: 5,
      snapshot: undefined,
      index: 5,
      term: 1,
      wOffset: 6n,
      wLen: 0,
    },
    {
      name: 'the first entry',
      entries: [e(5, 1), e(6, 1)],
      offset: 5,
      snapshot: undefined,
      index: 5,
      term: 1,
      wOffset: 6n,
      wLen: 1,
    },
    {
      name: 'a replaced entry (term mismatch)',
      entries: [e(6, 2)],
      offset: 6,
      snapshot: undefined,
      index: 6,
      term: 1,
      wOffset: 6n,
      wLen: 1,
    },
    {
      name: 'an older index',
      entries: [e(5, 1)],
      offset: 5,
      snapshot: undefined,
      index: 4,
      term: 1,
      wOffset: 5n,
      wLen: 1,
    },
    {
      name: 'an older index and term',
      entries: [e(5, 1)],
      offset: 5,
      snapshot: undefined,
      index: 4,
      term: 2,
      wOffset: 5n,
      wLen: 1,
    },
    {
      name: 'after a snapshot',
      entries: [e(5, 1)],
      offset: 5,
      snapshot: snap(4, 1),
      index: 5,
      term: 1,
      wOffset: 6n,
      wLen: 0,
    },
    {
      name: 'first after a snapshot',
      entries: [e(5, 1), e(6, 1)],
      offset: 5,
      snapshot: snap(4, 1),
      index: 5,
      term: 1,
      wOffset: 6n,
      wLen: 1,
    },
    {
      name: 'replaced after a snapshot',
      entries: [e(6, 2)],
      offset: 6,
      snapshot: snap(5, 1),
      index: 6,
      term: 1,
      wOffset: 6n,
      wLen: 1,
    },
    {
      name: "the snapshot's index",
      entries: [e(5, 1)],
      offset: 5,
      snapshot: snap(4, 1),
      index: 4,
      term: 1,
      wOffset: 5n,
      wLen: 1,
    },
    {
      name: 'an index beyond the end',
      entries: [e(5, 1)],
      offset: 5,
      snapshot: undefined,
      index: 6,
      term: 1,
      wOffset: 5n,
      wLen: 1,
    },
  ])('$name', (tt) => {
    const u = unstable(tt.offset, tt.entries, tt.snapshot);
    u.stableTo(BigInt(tt.index), BigInt(tt.term));
    expect(u.offset).toBe(tt.wOffset);
    expect(u.entries).toHaveLength(tt.wLen);
  });

  test('stableSnapTo clears only the matching snapshot', () => {
    const u = unstable(5, [], snap(4, 1));
    u.stableSnapTo(3n);
    expect(u.snapshot).toBeDefined();
    u.stableSnapTo(4n);
    expect(u.snapshot).toBeUndefined();
  });
});

describe('Unstable.truncateAndAppend', () => {
  test.each([
    {
      name: 'append at the end',
      entries: [e(5, 1)],
      append: [e(6, 1), e(7, 1)],
      wOffset: 5n,
      want: ['5/1', '6/1', '7/1'],
    },
    {
      name: 'replace everything',
      entries: [e(5, 1)],
      append: [e(5, 2), e(6, 2)],
      wOffset: 5n,
      want: ['5/2', '6/2'],
    },
    {
      name: 'replace from before the offset',
      entries: [e(5, 1)],
      append: [e(4, 2), e(5, 2), e(6, 2)],
      wOffset: 4n,
      want: ['4/2', '5/2', '6/2'],
    },
    {
      name: 'truncate a suffix',
      entries: [e(5, 1), e(6, 1), e(7, 1)],
      append: [e(6, 2)],
      wOffset: 5n,
      want: ['5/1', '6/2'],
    },
    {
      name: 'truncate the last',
      entries: [e(5, 1), e(6, 1), e(7, 1)],
      append: [e(7, 2), e(8, 2)],
      wOffset: 5n,
      want: ['5/1', '6/1', '7/2', '8/2'],
    },
  ])('$name', (tt) => {
    const u = unstable(5, tt.entries);
    u.truncateAndAppend(tt.append);
    expect(u.offset).toBe(tt.wOffset);
    expect(ids(u)).toEqual(tt.want);
  });

  test('does not alias the caller array', () => {
    const given = [e(5, 2)];
    const u = unstable(5, [e(5, 1)]);
    u.truncateAndAppend(given);
    u.truncateAndAppend([e(6, 2)]);
    expect(given).toHaveLength(1);
  });

  test('refuses to leave a gap', () => {
    const u = unstable(5, [e(5, 1)]);
    expect(() => u.truncateAndAppend([e(7, 1)])).toThrow(RaftAssertionError);
    expect(ids(u)).toEqual(['5/1']);
  });
});

describe('Unstable.restore and slice', () => {
  test('restore replaces everything with the snapshot', () => {
    const u = unstable(5, [e(5, 1), e(6, 1)], snap(4, 1));
    u.restore(snap(9, 3));
    expect(u.offset).toBe(10n);
    expect(u.entries).toEqual([]);
    expect(u.snapshot?.metadata.index).toBe(9n);
    expect(u.maybeLastIndex()).toBe(9n);
    expect(u.maybeTerm(9n)).toBe(3n);
  });

  test('slice returns [lo, hi) and rejects bounds outside what is held', () => {
    const u = unstable(5, [e(5, 1), e(6, 1), e(7, 2)]);
    expect(u.slice(5n, 8n).map((x) => x.index)).toEqual([5n, 6n, 7n]);
    expect(u.slice(6n, 7n).map((x) => x.index)).toEqual([6n]);
    expect(u.slice(8n, 8n)).toEqual([]);
    expect(() => u.slice(4n, 6n)).toThrow(RaftAssertionError);
    expect(() => u.slice(6n, 9n)).toThrow(RaftAssertionError);
    expect(() => u.slice(7n, 6n)).toThrow(RaftAssertionError);
  });
});
