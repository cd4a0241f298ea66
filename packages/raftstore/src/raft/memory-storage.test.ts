import { type Entry, EntryType, emptyConfState, type Snapshot } from '@nokv/proto';
import { describe, expect, test } from 'vitest';
import { RaftAssertionError, RaftError } from './errors.js';
import { MemoryStorage } from './memory-storage.js';
import { entrySizeBytes } from './storage.js';
import { confState } from './testing/network.js';

const e = (index: number, term: number, data = ''): Entry => ({
  index: BigInt(index),
  term: BigInt(term),
  type: EntryType.Normal,
  data: new TextEncoder().encode(data),
});
const snap = (index: number, term: number): Snapshot => ({
  data: new Uint8Array(0),
  metadata: { index: BigInt(index), term: BigInt(term), confState: confState([1n, 2n]) },
});

/** Snapshot at 3 (term 3), then entries 4/4, 5/5, 6/6 (6 carries a payload). */
function storage(): MemoryStorage {
  const s = new MemoryStorage();
  s.applySnapshot(snap(3, 3));
  s.append([e(4, 4), e(5, 5), e(6, 6, 'payload')]);
  return s;
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

describe('MemoryStorage bounds', () => {
  test('first and last index', () => {
    const s = storage();
    expect(s.firstIndex()).toBe(4n);
    expect(s.lastIndex()).toBe(6n);
    s.append([e(7, 6)]);
    expect(s.lastIndex()).toBe(7n);
    const fresh = new MemoryStorage();
    expect(fresh.firstIndex()).toBe(1n);
    expect(fresh.lastIndex()).toBe(0n);
  });

  test.each([
    { index: 2, term: undefined, code: 'Compacted' },
    { index: 3, term: 3n, code: undefined }, // firstIndex - 1 stays answerable
    { index: 4, term: 4n, code: undefined },
    { index: 6, term: 6n, code: undefined },
    { index: 7, term: undefined, code: 'Unavailable' },
  ])('term($index)', ({ index, term, code }) => {
    const s = storage();
    expect(codeOf(() => s.term(BigInt(index)))).toBe(code);
    if (term !== undefined) expect(s.term(BigInt(index))).toBe(term);
  });
});

describe('MemoryStorage.entries', () => {
  const size = (...indexes: number[]) =>
    indexes.reduce((n, i) => n + entrySizeBytes(e(i, i, i === 6 ? 'payload' : '')), 0);
  test.each([
    { lo: 2, hi: 6, max: Infinity, code: 'Compacted', want: [] as string[] },
    { lo: 3, hi: 4, max: Infinity, code: 'Compacted', want: [] },
    { lo: 4, hi: 5, max: Infinity, code: undefined, want: ['4/4'] },
    { lo: 4, hi: 7, max: Infinity, code: undefined, want: ['4/4', '5/5', '6/6'] },
    { lo: 5, hi: 5, max: Infinity, code: undefined, want: [] },
    // size limits: at least one entry, then as many as fit entirely
    { lo: 4, hi: 7, max: 0, code: undefined, want: ['4/4'] },
    { lo: 4, hi: 7, max: size(4, 5), code: undefined, want: ['4/4', '5/5'] },
    { lo: 4, hi: 7, max: size(4, 5, 6) - 1, code: undefined, want: ['4/4', '5/5'] },
    { lo: 4, hi: 7, max: size(4, 5, 6), code: undefined, want: ['4/4', '5/5', '6/6'] },
    { lo: 6, hi: 7, max: 1, code: undefined, want: ['6/6'] },
  ])('entries($lo, $hi, max $max)', ({ lo, hi, max, code, want }) => {
    const s = storage();
    expect(codeOf(() => s.entries(BigInt(lo), BigInt(hi), max))).toBe(code);
    if (code === undefined) expect(ids(s.entries(BigInt(lo), BigInt(hi), max))).toEqual(want);
  });

  test('beyond the last index is a broken invariant; an empty log is Unavailable', () => {
    expect(() => storage().entries(4n, 8n, Infinity)).toThrow(RaftAssertionError);
    const s = new MemoryStorage();
    s.applySnapshot(snap(5, 2));
    expect(codeOf(() => s.entries(6n, 6n, Infinity))).toBe('Unavailable');
  });
});

describe('MemoryStorage.append', () => {
  test.each([
    { name: 'entirely compacted: ignored', ents: [e(1, 1), e(2, 2)], want: ['4/4', '5/5', '6/6'] },
    { name: 'identical entries', ents: [e(4, 4), e(5, 5), e(6, 6)], want: ['4/4', '5/5', '6/6'] },
    {
      name: 'overlapping the snapshot, conflicting',
      ents: [e(3, 3), e(4, 6), e(5, 6)],
      want: ['4/6', '5/6'],
    },
    { name: 'extending', ents: [e(4, 4), e(5, 5), e(6, 6), e(7, 6)], want: ['4/4', '5/5', '6/6', '7/6'] },
    {
      name: 'compacted prefix skipped, conflicting tail replaced',
      ents: [e(2, 3), e(3, 3), e(4, 5)],
      want: ['4/5'],
    },
    { name: 'truncating at a conflict', ents: [e(5, 7)], want: ['4/4', '5/7'] },
    { name: 'directly after the end', ents: [e(7, 7)], want: ['4/4', '5/5', '6/6', '7/7'] },
    { name: 'nothing', ents: [], want: ['4/4', '5/5', '6/6'] },
  ])('$name', ({ ents, want }) => {
    const s = storage();
    s.append(ents);
    expect(ids(s.allEntries())).toEqual(want);
    expect(s.lastIndex()).toBe(want.length > 0 ? BigInt(want.at(-1)!.split('/')[0]!) : 3n);
    expect(s.term(3n)).toBe(3n); // the snapshot placeholder is never rewritten
  });

  test('a gap after the last entry is a broken invariant', () => {
    const s = storage();
    expect(() => s.append([e(8, 7)])).toThrow(RaftAssertionError);
    expect(ids(s.allEntries())).toEqual(['4/4', '5/5', '6/6']);
  });
});

describe('MemoryStorage compaction and snapshots', () => {
  test('compact drops entries up to the index but keeps its term', () => {
    const s = storage();
    expect(codeOf(() => s.compact(2n))).toBe('Compacted');
    expect(codeOf(() => s.compact(3n))).toBe('Compacted');
    s.compact(5n);
    expect(s.firstIndex()).toBe(6n);
    expect(s.lastIndex()).toBe(6n);
    expect(s.term(5n)).toBe(5n);
    expect(codeOf(() => s.term(4n))).toBe('Compacted');
    expect(ids(s.allEntries())).toEqual(['6/6']);
    expect(() => s.compact(7n)).toThrow(RaftAssertionError);
    s.compact(6n);
    expect(s.allEntries()).toEqual([]);
    expect(s.lastIndex()).toBe(6n);
  });

  test('createSnapshot records the applied index, its term and the configuration', () => {
    const s = storage();
    const cs = confState([1n, 2n, 3n]);
    const data = new Uint8Array([1, 2, 3]);
    const taken = s.createSnapshot(5n, cs, data);
    expect(taken.metadata).toEqual({ index: 5n, term: 5n, confState: cs });
    expect(taken.data).toBe(data);
    expect(s.snapshot()).toBe(taken);
    // The log is not compacted by taking a snapshot.
    expect(s.firstIndex()).toBe(4n);
    // Without a new configuration the previous one is kept.
    expect(s.createSnapshot(6n, undefined, data).metadata.confState).toEqual(cs);
  });

  test('createSnapshot refuses old or future indexes', () => {
    const s = storage();
    expect(codeOf(() => s.createSnapshot(3n, undefined, new Uint8Array()))).toBe('SnapOutOfDate');
    expect(codeOf(() => s.createSnapshot(2n, undefined, new Uint8Array()))).toBe('SnapOutOfDate');
    expect(() => s.createSnapshot(7n, undefined, new Uint8Array())).toThrow(RaftAssertionError);
  });

  test('applySnapshot replaces the log, and refuses snapshots that are not newer', () => {
    const s = storage();
    expect(codeOf(() => s.applySnapshot(snap(3, 3)))).toBe('SnapOutOfDate');
    expect(codeOf(() => s.applySnapshot(snap(2, 2)))).toBe('SnapOutOfDate');
    expect(ids(s.allEntries())).toEqual(['4/4', '5/5', '6/6']);
    s.applySnapshot(snap(10, 8));
    expect(s.firstIndex()).toBe(11n);
    expect(s.lastIndex()).toBe(10n);
    expect(s.term(10n)).toBe(8n);
    expect(s.allEntries()).toEqual([]);
    expect(s.snapshot().metadata.index).toBe(10n);
    expect(s.initialState().confState).toEqual(confState([1n, 2n]));
  });
});

describe('MemoryStorage state', () => {
  test('hard state is stored by value', () => {
    const s = new MemoryStorage();
    const hs = { term: 2n, vote: 1n, commit: 0n };
    s.setHardState(hs);
    hs.term = 9n;
    expect(s.initialState().hardState).toEqual({ term: 2n, vote: 1n, commit: 0n });
    const got = s.currentHardState();
    got.commit = 5n;
    expect(s.currentHardState().commit).toBe(0n);
  });

  test('withConfState bootstraps an empty log with a configuration', () => {
    const s = MemoryStorage.withConfState(confState([1n, 2n], [3n]));
    expect(s.initialState()).toEqual({
      hardState: { term: 0n, vote: 0n, commit: 0n },
      confState: { ...emptyConfState(), voters: [1n, 2n], learners: [3n] },
    });
    expect(s.firstIndex()).toBe(1n);
    expect(s.lastIndex()).toBe(0n);
    expect(s.term(0n)).toBe(0n);
  });
});
