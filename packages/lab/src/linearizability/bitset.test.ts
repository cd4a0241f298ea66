import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Bitset } from './bitset.js';
import { Memo } from './memo.js';

describe('Bitset', () => {
  it('hashes equal sets equally whatever the order they were built in (property)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 99 }), { maxLength: 40 }),
        fc.integer({ min: 0, max: 99 }),
        (members, extra) => {
          const a = new Bitset(100);
          const b = new Bitset(100);
          for (const m of members) a.set(m);
          for (const m of members.slice().reverse()) b.set(m);
          // Adding and removing a non-member must leave no trace.
          if (!members.includes(extra)) {
            b.set(extra);
            b.clear(extra);
          }
          expect(b.hash).toBe(a.hash);
          expect(a.equalsWords(b.snapshot())).toBe(true);
          for (let i = 0; i < 100; i++) expect(a.has(i)).toBe(members.includes(i));
        },
      ),
    );
  });

  it('ignores repeated set and clear', () => {
    const s = new Bitset(40);
    s.set(33);
    const h = s.hash;
    s.set(33);
    expect(s.hash).toBe(h);
    s.clear(33);
    s.clear(33);
    expect(s.hash).toBe(0);
    expect(s.has(33)).toBe(false);
  });
});

describe('Memo', () => {
  it('records a configuration once, distinguishing sets and state keys', () => {
    const memo = new Memo();
    const bits = new Bitset(70);
    bits.set(1);
    bits.set(65);
    expect(memo.addIfAbsent(bits, 'a')).toBe(true);
    expect(memo.addIfAbsent(bits, 'a')).toBe(false);
    expect(memo.addIfAbsent(bits, 0)).toBe(true);
    bits.clear(65);
    expect(memo.addIfAbsent(bits, 'a')).toBe(true);
    expect(memo.size).toBe(3);
  });
});
