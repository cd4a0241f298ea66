import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { maxCoveringVersionOf, type RangeTombstone, TombstoneIndex } from './tombstone-index.js';

const t = (start: string, end: string, version: bigint, cf = 0): RangeTombstone => ({
  cf,
  start: Buffer.from(start),
  end: Buffer.from(end),
  version,
});

const key = (s: string) => Buffer.from(s);

/** Brute force: newest version <= readVersion of a tombstone in `cf` with start <= key < end. */
function model(list: readonly RangeTombstone[], cf: number, k: Buffer, readVersion: bigint): bigint {
  let best = -1n;
  for (const x of list) {
    if (x.cf !== cf || x.version > readVersion) continue;
    if (Buffer.compare(x.start, k) <= 0 && Buffer.compare(k, x.end) < 0 && x.version > best) best = x.version;
  }
  return best;
}

// Keys over a tiny alphabet so that boundaries coincide, nest and touch often; includes the empty key
// and prefix pairs ("a" < "aa" < "ab").
const ALPHABET = ['', 'a', 'aa', 'ab', 'b', 'ba', 'bb', 'c', '\u0000', 'a\u0000'];
const arbKey = fc.constantFrom(...ALPHABET).map((s) => Buffer.from(s, 'latin1'));
const arbTombstone = fc.record({
  cf: fc.integer({ min: 0, max: 2 }),
  start: arbKey,
  end: arbKey,
  version: fc.bigInt({ min: 0n, max: 10n }),
});

describe('TombstoneIndex', () => {
  it('the empty index covers nothing', () => {
    const idx = TombstoneIndex.build([]);
    expect(idx).toBe(TombstoneIndex.EMPTY);
    expect(idx.isEmpty).toBe(true);
    expect(idx.maxCoveringVersion(0, key('a'), 100n)).toBe(-1n);
    expect(idx.hides(0, key('a'), 0n, 100n)).toBe(false);
  });

  it('covers [start, end) at or below the read version', () => {
    const idx = TombstoneIndex.build([t('b', 'd', 5n)]);
    expect(idx.isEmpty).toBe(false);
    expect(idx.maxCoveringVersion(0, key('a'), 10n)).toBe(-1n);
    expect(idx.maxCoveringVersion(0, key('b'), 10n)).toBe(5n); // start inclusive
    expect(idx.maxCoveringVersion(0, key('c'), 10n)).toBe(5n);
    expect(idx.maxCoveringVersion(0, key('czzz'), 10n)).toBe(5n);
    expect(idx.maxCoveringVersion(0, key('d'), 10n)).toBe(-1n); // end exclusive
    expect(idx.maxCoveringVersion(0, key('b'), 5n)).toBe(5n);
    expect(idx.maxCoveringVersion(0, key('b'), 4n)).toBe(-1n); // invisible to older readers
    expect(idx.maxCoveringVersion(1, key('c'), 10n)).toBe(-1n); // other column family
  });

  it('hides only versions older than the covering tombstone', () => {
    const idx = TombstoneIndex.build([t('a', 'z', 5n)]);
    expect(idx.hides(0, key('m'), 4n, 10n)).toBe(true);
    expect(idx.hides(0, key('m'), 5n, 10n)).toBe(false);
    expect(idx.hides(0, key('m'), 6n, 10n)).toBe(false);
    expect(idx.hides(0, key('m'), 4n, 4n)).toBe(false);
  });

  it('overlapping tombstones: the newest visible one wins per key', () => {
    const idx = TombstoneIndex.build([t('a', 'e', 3n), t('c', 'g', 7n), t('b', 'd', 5n), t('f', 'h', 1n)]);
    expect(idx.maxCoveringVersion(0, key('a'), 100n)).toBe(3n);
    expect(idx.maxCoveringVersion(0, key('b'), 100n)).toBe(5n);
    expect(idx.maxCoveringVersion(0, key('c'), 100n)).toBe(7n);
    expect(idx.maxCoveringVersion(0, key('c'), 6n)).toBe(5n);
    expect(idx.maxCoveringVersion(0, key('c'), 4n)).toBe(3n);
    expect(idx.maxCoveringVersion(0, key('c'), 2n)).toBe(-1n);
    expect(idx.maxCoveringVersion(0, key('e'), 100n)).toBe(7n);
    expect(idx.maxCoveringVersion(0, key('f'), 100n)).toBe(7n);
    expect(idx.maxCoveringVersion(0, key('f'), 6n)).toBe(1n);
    expect(idx.maxCoveringVersion(0, key('g'), 100n)).toBe(1n);
    expect(idx.maxCoveringVersion(0, key('h'), 100n)).toBe(-1n);
  });

  it('gaps between tombstones are not covered', () => {
    const idx = TombstoneIndex.build([t('a', 'b', 1n), t('d', 'e', 2n)]);
    expect(idx.maxCoveringVersion(0, key('b'), 9n)).toBe(-1n);
    expect(idx.maxCoveringVersion(0, key('c'), 9n)).toBe(-1n);
    expect(idx.maxCoveringVersion(0, key('dz'), 9n)).toBe(2n);
  });

  it('ignores empty and inverted ranges', () => {
    const idx = TombstoneIndex.build([t('c', 'c', 5n), t('d', 'a', 6n)]);
    expect(idx.isEmpty).toBe(true);
    for (const k of ['a', 'b', 'c', 'd']) expect(idx.maxCoveringVersion(0, key(k), 100n)).toBe(-1n);
  });

  it('handles the empty user key as a start', () => {
    const idx = TombstoneIndex.build([t('', 'b', 4n)]);
    expect(idx.maxCoveringVersion(0, key(''), 9n)).toBe(4n);
    expect(idx.maxCoveringVersion(0, key('a'), 9n)).toBe(4n);
    expect(idx.maxCoveringVersion(0, key('b'), 9n)).toBe(-1n);
  });

  it('matches a brute-force model (property)', () => {
    fc.assert(
      fc.property(
        fc.array(arbTombstone, { maxLength: 12 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 2 }), arbKey, fc.bigInt({ min: 0n, max: 11n })), {
          minLength: 1,
          maxLength: 40,
        }),
        (tombstones, probes) => {
          const idx = TombstoneIndex.build(tombstones);
          for (const [cf, k, rv] of probes) {
            expect(idx.maxCoveringVersion(cf, k, rv)).toBe(model(tombstones, cf, k, rv));
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('matches the model on every key and read version of the space (property)', () => {
    fc.assert(
      fc.property(fc.array(arbTombstone, { maxLength: 8 }), (tombstones) => {
        const idx = TombstoneIndex.build(tombstones);
        for (let cf = 0; cf < 3; cf++) {
          for (const s of ALPHABET) {
            const k = Buffer.from(s, 'latin1');
            for (let rv = 0n; rv <= 11n; rv++) {
              expect(idx.maxCoveringVersion(cf, k, rv)).toBe(model(tombstones, cf, k, rv));
            }
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  it('does not depend on the order tombstones are given in (property)', () => {
    fc.assert(
      fc.property(fc.array(arbTombstone, { maxLength: 10 }), arbKey, (tombstones, k) => {
        const a = TombstoneIndex.build(tombstones);
        const b = TombstoneIndex.build([...tombstones].reverse());
        for (let cf = 0; cf < 3; cf++) {
          expect(a.maxCoveringVersion(cf, k, 20n)).toBe(b.maxCoveringVersion(cf, k, 20n));
        }
      }),
    );
  });
});

describe('maxCoveringVersionOf', () => {
  it('takes the newest covering version over several indexes (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(arbTombstone, { maxLength: 6 }), { maxLength: 4 }),
        fc.integer({ min: 0, max: 2 }),
        arbKey,
        fc.bigInt({ min: 0n, max: 11n }),
        (groups, cf, k, rv) => {
          const indexes = groups.map((g) => TombstoneIndex.build(g));
          expect(maxCoveringVersionOf(indexes, cf, k, rv)).toBe(model(groups.flat(), cf, k, rv));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('is -1 with no indexes', () => {
    expect(maxCoveringVersionOf([], 0, key('a'), 5n)).toBe(-1n);
    expect(maxCoveringVersionOf([TombstoneIndex.EMPTY], 0, key('a'), 5n)).toBe(-1n);
  });
});
