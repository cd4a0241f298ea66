import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Entry, KIND_DELETE, KIND_PUT } from '../keys/entry.js';
import { compareInternalKeys, encodeInternalKey, MAX_VERSION } from '../keys/internal-key.js';
import { SkipList, type SkipNode } from './skiplist.js';

const ik = (user: string, version: bigint, cf = 0) => encodeInternalKey(cf, Buffer.from(user), version);

const entry = (key: Buffer, value: string, meta = KIND_PUT, expiresAt = 0): Entry => ({
  key,
  meta,
  expiresAt,
  value: Buffer.from(value),
});

/** Sorted-array model of the skiplist. */
class Model {
  readonly items: Entry[] = [];

  insert(e: Entry): boolean {
    const i = this.lowerBound(e.key);
    const hit = this.items[i];
    if (hit !== undefined && compareInternalKeys(hit.key, e.key) === 0) {
      this.items[i] = { ...e, key: hit.key };
      return true;
    }
    this.items.splice(i, 0, e);
    return false;
  }
  lowerBound(key: Buffer): number {
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareInternalKeys(this.items[mid]!.key, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
  seekGE(key: Buffer): Entry | undefined {
    return this.items[this.lowerBound(key)];
  }
  seekLT(key: Buffer): Entry | undefined {
    return this.items[this.lowerBound(key) - 1];
  }
  seekLE(key: Buffer): Entry | undefined {
    const i = this.lowerBound(key);
    const hit = this.items[i];
    if (hit !== undefined && compareInternalKeys(hit.key, key) === 0) return hit;
    return this.items[i - 1];
  }
}

function same(node: SkipNode | null, want: Entry | undefined): void {
  if (want === undefined) {
    expect(node).toBeNull();
    return;
  }
  expect(node).not.toBeNull();
  expect(node!.key.equals(want.key)).toBe(true);
  expect(node!.value.equals(want.value)).toBe(true);
  expect(node!.meta).toBe(want.meta);
  expect(node!.expiresAt).toBe(want.expiresAt);
}

function walk(list: SkipList): SkipNode[] {
  const out: SkipNode[] = [];
  for (let n = list.first(); n !== null; n = n.next[0]!) out.push(n);
  return out;
}

// Small key space so that duplicates, shared prefixes and equal keys happen often.
const arbKey = fc
  .record({
    cf: fc.integer({ min: 0, max: 2 }),
    user: fc.constantFrom('', 'a', 'ab', 'abc', 'b', 'ba', 'c', '\u00ff'),
    version: fc.bigInt({ min: 0n, max: 6n }),
  })
  .map(({ cf, user, version }) => ik(user, version, cf));

describe('SkipList', () => {
  it('is empty at first', () => {
    const list = new SkipList();
    expect(list.size).toBe(0);
    expect(list.first()).toBeNull();
    expect(list.last()).toBeNull();
    expect(list.seekGE(ik('a', 1n))).toBeNull();
    expect(list.seekLT(ik('a', 1n))).toBeNull();
    expect(list.seekLE(ik('a', 1n))).toBeNull();
  });

  it('keeps entries in internal-key order ("a" before "ab", newer versions first)', () => {
    const list = new SkipList();
    const keys = [
      ik('ab', 9n),
      ik('a', 0n),
      ik('a', 5n),
      ik('b', 1n, 0),
      ik('', 3n, 1),
      ik('a', MAX_VERSION - 1n),
    ];
    for (const k of keys) list.insert(entry(k, 'v'));
    const order = walk(list).map((n) => n.key);
    expect(order).toEqual([...keys].sort(compareInternalKeys));
    expect(order[0]!.equals(ik('a', MAX_VERSION - 1n))).toBe(true);
    expect(order[2]!.equals(ik('a', 0n))).toBe(true);
    expect(order[3]!.equals(ik('ab', 9n))).toBe(true);
    expect(list.size).toBe(keys.length);
  });

  it('overwrites an equal internal key in place', () => {
    const list = new SkipList();
    const first = list.insert(entry(ik('k', 1n), 'old'));
    expect(first.replaced).toBe(false);
    list.insert(entry(ik('k', 2n), 'other version'));
    const again = list.insert(entry(Buffer.from(ik('k', 1n)), 'new', KIND_DELETE, 77));
    expect(again.replaced).toBe(true);
    expect(again.node).toBe(first.node);
    expect(list.size).toBe(2);
    const node = list.seekGE(ik('k', 1n))!;
    expect(node.value.toString()).toBe('new');
    expect(node.meta).toBe(KIND_DELETE);
    expect(node.expiresAt).toBe(77);
    expect(walk(list).map((n) => n.value.toString())).toEqual(['other version', 'new']);
  });

  it('seeks exactly at, between, before and after keys', () => {
    const list = new SkipList();
    for (const u of ['b', 'd', 'f']) list.insert(entry(ik(u, 1n), u));
    expect(list.seekGE(ik('b', 1n))!.value.toString()).toBe('b');
    expect(list.seekGE(ik('c', 1n))!.value.toString()).toBe('d');
    expect(list.seekGE(ik('a', 1n))!.value.toString()).toBe('b');
    expect(list.seekGE(ik('g', 1n))).toBeNull();
    // a newer seek version sorts before the stored one: seekGE lands on it
    expect(list.seekGE(ik('d', 5n))!.value.toString()).toBe('d');
    // an older one sorts after it
    expect(list.seekGE(ik('d', 0n))!.value.toString()).toBe('f');
    expect(list.seekLT(ik('d', 1n))!.value.toString()).toBe('b');
    expect(list.seekLT(ik('b', 1n))).toBeNull();
    expect(list.seekLE(ik('d', 1n))!.value.toString()).toBe('d');
    expect(list.seekLE(ik('e', 1n))!.value.toString()).toBe('d');
    expect(list.seekLE(ik('a', 1n))).toBeNull();
    expect(list.seekLE(ik('z', 1n))!.value.toString()).toBe('f');
    expect(list.first()!.value.toString()).toBe('b');
    expect(list.last()!.value.toString()).toBe('f');
  });

  it('matches a sorted-array model under random inserts and seeks (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(arbKey, fc.nat({ max: 999 })), { maxLength: 120 }),
        fc.array(arbKey, { minLength: 1, maxLength: 30 }),
        (inserts, probes) => {
          const list = new SkipList();
          const model = new Model();
          for (const [key, n] of inserts) {
            const e = entry(key, `v${n}`, n % 2 === 0 ? KIND_PUT : KIND_DELETE, n % 3 === 0 ? n : 0);
            const { replaced } = list.insert(e);
            expect(replaced).toBe(model.insert(e));
          }
          expect(list.size).toBe(model.items.length);
          const nodes = walk(list);
          expect(nodes.length).toBe(model.items.length);
          for (let i = 0; i < nodes.length; i++) same(nodes[i]!, model.items[i]);
          same(list.first(), model.items[0]);
          same(list.last(), model.items[model.items.length - 1]);
          for (const p of probes) {
            same(list.seekGE(p), model.seekGE(p));
            same(list.seekLT(p), model.seekLT(p));
            same(list.seekLE(p), model.seekLE(p));
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('stays correct with thousands of entries (towers of many heights)', () => {
    const list = new SkipList();
    const model = new Model();
    let seed = 12345;
    const rnd = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed;
    };
    for (let i = 0; i < 5000; i++) {
      const e = entry(ik(`k${rnd() % 3000}`, BigInt(rnd() % 4)), `v${i}`);
      list.insert(e);
      model.insert(e);
    }
    expect(list.size).toBe(model.items.length);
    const nodes = walk(list);
    for (let i = 0; i < nodes.length; i++) same(nodes[i]!, model.items[i]);
    // at least one node is taller than level 0 (otherwise the skiplist degenerated into a list)
    expect(nodes.some((n) => n.next.length > 2)).toBe(true);
    for (let i = 0; i < 500; i++) {
      const p = ik(`k${rnd() % 3100}`, BigInt(rnd() % 5));
      same(list.seekGE(p), model.seekGE(p));
      same(list.seekLT(p), model.seekLT(p));
      same(list.seekLE(p), model.seekLE(p));
    }
  });
});
