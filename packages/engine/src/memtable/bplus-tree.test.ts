import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BPlusTree, type Keyed, TreeCursor } from './bplus-tree.js';

const item = (s: string): Keyed => ({ base: Buffer.from(s, 'latin1') });
const str = (k: Keyed | undefined) => k?.base.toString('latin1');

describe('BPlusTree', () => {
  it('keeps items ordered through many splits', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.string({ minLength: 1, maxLength: 6 }), { maxLength: 3000 }), (keys) => {
        const tree = new BPlusTree<Keyed>();
        for (const k of keys) tree.insert(item(k));
        const expected = keys
          .map((k) => Buffer.from(k, 'latin1'))
          .sort(Buffer.compare)
          .map((b) => b.toString('latin1'));
        expect([...tree.items()].map(str)).toEqual(expected);
        expect(tree.size).toBe(keys.length);
      }),
      { numRuns: 40 },
    );
  });

  it('seeks like lower bound / upper bound on a sorted array', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 5000 }), { minLength: 1, maxLength: 800 }),
        fc.array(fc.integer({ min: -1, max: 5001 }), { maxLength: 50 }),
        (nums, probes) => {
          const key = (n: number) => String(n).padStart(5, '0');
          const tree = new BPlusTree<Keyed>();
          for (const n of nums) tree.insert(item(key(n)));
          const sorted = [...nums].sort((a, b) => a - b);
          const cursor = new TreeCursor(tree);
          for (const p of probes) {
            cursor.seek(Buffer.from(key(p)));
            expect(str(cursor.item)).toBe(
              sorted.find((n) => n >= p) === undefined ? undefined : key(sorted.find((n) => n >= p)!),
            );
            cursor.seekForPrev(Buffer.from(key(p)));
            const le = [...sorted].reverse().find((n) => n <= p);
            expect(str(cursor.item)).toBe(le === undefined ? undefined : key(le));
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('cursors keep their place while inserts shift and split leaves around them', () => {
    const tree = new BPlusTree<Keyed>();
    for (let i = 0; i < 1000; i += 2) tree.insert(item(String(i).padStart(4, '0')));
    const cursor = new TreeCursor(tree);
    cursor.seekToFirst();
    const seen: string[] = [];
    let odd = 1;
    while (cursor.item !== undefined) {
      seen.push(str(cursor.item)!);
      // Insert keys before and after the cursor, forcing shifts and splits.
      if (odd < 1000) {
        tree.insert(item(String(odd).padStart(4, '0')));
        odd += 2;
      }
      cursor.next();
    }
    // Every original key is seen once, in order; inserted keys after the cursor may be seen too.
    expect(seen).toEqual([...seen].sort());
    expect(new Set(seen).size).toBe(seen.length);
    for (let i = 0; i < 1000; i += 2) expect(seen).toContain(String(i).padStart(4, '0'));
    cursor.seekToLast();
    const back: string[] = [];
    while (cursor.item !== undefined) {
      back.push(str(cursor.item)!);
      cursor.prev();
    }
    expect(back).toEqual([...tree.items()].map(str).reverse());
  });

  it('handles an empty tree', () => {
    const tree = new BPlusTree<Keyed>();
    const cursor = new TreeCursor(tree);
    cursor.seekToFirst();
    expect(cursor.item).toBeUndefined();
    cursor.seekToLast();
    expect(cursor.item).toBeUndefined();
    cursor.seek(Buffer.from('a'));
    expect(cursor.item).toBeUndefined();
  });
});
