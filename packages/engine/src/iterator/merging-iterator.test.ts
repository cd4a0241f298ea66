import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KIND_DELETE, KIND_PUT } from '../keys/entry.js';
import { compareInternalKeys, encodeInternalKey, MAX_VERSION } from '../keys/internal-key.js';
import { Memtable } from '../memtable/memtable.js';
import { AssertionError } from '../util/invariants.js';
import type { InternalIterator } from './internal-iterator.js';
import { MergingIterator } from './merging-iterator.js';

const ik = (user: string, version: bigint, cf = 0) => encodeInternalKey(cf, Buffer.from(user), version);

interface Item {
  key: Buffer;
  value: string;
  meta: number;
  expiresAt: number;
}

/** A source built from items; a Memtable is a real sorted source. */
function source(items: readonly Item[]): Memtable {
  const m = new Memtable(1);
  for (const it of items)
    m.add({ key: it.key, meta: it.meta, expiresAt: it.expiresAt, value: Buffer.from(it.value) });
  return m;
}

const item = (key: Buffer, value: string, meta = KIND_PUT, expiresAt = 0): Item => ({
  key,
  value,
  meta,
  expiresAt,
});

/** Expected merged stream: sorted union; for equal keys, the lowest-index child's item. */
function expected(children: readonly (readonly Item[])[]): Item[] {
  const byKey = new Map<string, Item>();
  for (let c = children.length - 1; c >= 0; c--) {
    // within one child a later item with the same key overwrites (memtable semantics)
    const own = new Map<string, Item>();
    for (const it of children[c]!) own.set(it.key.toString('hex'), it);
    for (const [k, v] of own) byKey.set(k, v);
  }
  return [...byKey.values()].sort((a, b) => compareInternalKeys(a.key, b.key));
}

function drain(it: InternalIterator, reverse: boolean): Item[] {
  const out: Item[] = [];
  while (it.valid()) {
    out.push({
      key: Buffer.from(it.key()),
      value: it.value().toString(),
      meta: it.meta(),
      expiresAt: it.expiresAt(),
    });
    if (reverse) it.prev();
    else it.next();
  }
  return out;
}

function merge(children: readonly (readonly Item[])[], reverse: boolean): MergingIterator {
  return new MergingIterator(
    children.map((c) => source(c).iterator()),
    reverse,
  );
}

function view(items: readonly Item[]): string[] {
  return items.map((i) => `${i.key.toString('hex')}=${i.value}/${i.meta}/${i.expiresAt}`);
}

describe('MergingIterator', () => {
  const children: Item[][] = [
    [item(ik('b', 5n), 'new-b5'), item(ik('d', 1n), 'd1')],
    [item(ik('a', 1n), 'a1'), item(ik('b', 5n), 'old-b5'), item(ik('b', 3n), 'b3')],
    [],
    [item(ik('ab', 2n), 'ab2'), item(ik('b', 5n), 'oldest-b5', KIND_DELETE), item(ik('c', 9n, 1), 'cf1')],
  ];

  it('merges sorted sources forward, producing duplicates once from the newest child', () => {
    const it = merge(children, false);
    it.seekToFirst();
    const got = drain(it, false);
    expect(got.map((i) => i.value)).toEqual(['a1', 'ab2', 'new-b5', 'b3', 'd1', 'cf1']);
    expect(view(got)).toEqual(view(expected(children)));
  });

  it('merges in reverse with the same duplicate rule', () => {
    const it = merge(children, true);
    it.seekToLast();
    const got = drain(it, true);
    expect(got.map((i) => i.value)).toEqual(['cf1', 'd1', 'b3', 'new-b5', 'ab2', 'a1']);
  });

  it('takes the duplicate from the lowest-index child even when it is not first to be visited', () => {
    // children 1 and 2 both hold k@1; child 1 is the newer source, whichever direction we walk
    const kids: Item[][] = [
      [item(ik('z', 1n), 'z')],
      [item(ik('k', 1n), 'winner')],
      [item(ik('k', 1n), 'loser')],
    ];
    for (const reverse of [false, true]) {
      const it = merge(kids, reverse);
      if (reverse) it.seekToLast();
      else it.seekToFirst();
      const values = drain(it, reverse).map((i) => i.value);
      expect(values).toContain('winner');
      expect(values).not.toContain('loser');
      expect(values).toHaveLength(2);
    }
  });

  it('produces a key held by every child once', () => {
    const kids = Array.from({ length: 6 }, (_, i) => [item(ik('same', 7n), `child${i}`)]);
    const it = merge(kids, false);
    it.seekToFirst();
    expect(drain(it, false).map((i) => i.value)).toEqual(['child0']);
    const rev = merge(kids, true);
    rev.seekToLast();
    expect(drain(rev, true).map((i) => i.value)).toEqual(['child0']);
  });

  it('passes meta and expiry through from the winning child', () => {
    const kids: Item[][] = [
      [item(ik('k', 1n), 'x', KIND_DELETE, 0)],
      [item(ik('k', 1n), 'y', KIND_PUT | 4, 99)],
    ];
    const it = merge(kids, false);
    it.seekToFirst();
    expect(it.meta()).toBe(KIND_DELETE);
    expect(it.expiresAt()).toBe(0);
    expect(it.value().toString()).toBe('x');
  });

  it('seek and seekForPrev position at the first >= / last <= target', () => {
    const fwd = merge(children, false);
    fwd.seek(ik('b', 4n)); // between b@5 and b@3
    expect(fwd.value().toString()).toBe('b3');
    fwd.seek(ik('b', 5n));
    expect(fwd.value().toString()).toBe('new-b5');
    fwd.next();
    expect(fwd.value().toString()).toBe('b3');
    fwd.seek(ik('a', MAX_VERSION));
    expect(fwd.value().toString()).toBe('a1');
    fwd.seek(ik('zz', 0n, 3));
    expect(fwd.valid()).toBe(false);

    const rev = merge(children, true);
    rev.seekForPrev(ik('b', 4n));
    expect(rev.value().toString()).toBe('new-b5');
    rev.prev();
    expect(rev.value().toString()).toBe('ab2');
    rev.seekForPrev(ik('b', 5n));
    expect(rev.value().toString()).toBe('new-b5');
    rev.seekForPrev(ik('a', 2n));
    expect(rev.valid()).toBe(false);
    rev.seekForPrev(ik('', 0n, 3));
    expect(rev.value().toString()).toBe('cf1');
  });

  it('is invalid with no children or only empty ones', () => {
    const none = new MergingIterator([], false);
    none.seekToFirst();
    expect(none.valid()).toBe(false);
    const empties = merge([[], []], true);
    empties.seekToLast();
    expect(empties.valid()).toBe(false);
  });

  it('refuses calls against its fixed direction', () => {
    const fwd = merge(children, false);
    expect(() => fwd.seekToLast()).toThrow(AssertionError);
    expect(() => fwd.seekForPrev(ik('a', 1n))).toThrow(AssertionError);
    fwd.seekToFirst();
    expect(() => fwd.prev()).toThrow(AssertionError);
    const rev = merge(children, true);
    expect(() => rev.seekToFirst()).toThrow(AssertionError);
    expect(() => rev.seek(ik('a', 1n))).toThrow(AssertionError);
    rev.seekToLast();
    expect(() => rev.next()).toThrow(AssertionError);
  });

  const arbItem = fc
    .record({
      cf: fc.integer({ min: 0, max: 1 }),
      user: fc.constantFrom('', 'a', 'ab', 'b', 'c'),
      version: fc.bigInt({ min: 0n, max: 4n }),
      n: fc.nat({ max: 999 }),
    })
    .map(({ cf, user, version, n }) => item(ik(user, version, cf), `v${n}`, n % 2, n % 3 === 0 ? n : 0));
  const arbChildren = fc.array(fc.array(arbItem, { maxLength: 15 }), { maxLength: 6 });
  const arbTarget = fc
    .record({
      cf: fc.integer({ min: 0, max: 2 }),
      user: fc.constantFrom('', 'a', 'aa', 'ab', 'b', 'bb', 'c', 'd'),
      version: fc.bigInt({ min: 0n, max: 5n }),
    })
    .map(({ cf, user, version }) => ik(user, version, cf));

  it('matches the sorted, de-duplicated union in both directions (property)', () => {
    fc.assert(
      fc.property(arbChildren, (kids) => {
        const want = view(expected(kids));
        const fwd = merge(kids, false);
        fwd.seekToFirst();
        expect(view(drain(fwd, false))).toEqual(want);
        const rev = merge(kids, true);
        rev.seekToLast();
        expect(view(drain(rev, true))).toEqual([...want].reverse());
      }),
      { numRuns: 400 },
    );
  });

  it('seek / seekForPrev then stepping matches the model (property)', () => {
    fc.assert(
      fc.property(arbChildren, arbTarget, (kids, target) => {
        const all = expected(kids);
        const fwd = merge(kids, false);
        fwd.seek(target);
        expect(view(drain(fwd, false))).toEqual(
          view(all.filter((i) => compareInternalKeys(i.key, target) >= 0)),
        );
        const rev = merge(kids, true);
        rev.seekForPrev(target);
        expect(view(drain(rev, true))).toEqual(
          view(all.filter((i) => compareInternalKeys(i.key, target) <= 0).reverse()),
        );
      }),
      { numRuns: 400 },
    );
  });

  it('can be re-positioned after being exhausted', () => {
    const it = merge(children, false);
    it.seekToFirst();
    drain(it, false);
    expect(it.valid()).toBe(false);
    it.seekToFirst();
    expect(it.value().toString()).toBe('a1');
    it.seek(ik('d', 1n));
    expect(drain(it, false).map((i) => i.value)).toEqual(['d1', 'cf1']);
  });
});
