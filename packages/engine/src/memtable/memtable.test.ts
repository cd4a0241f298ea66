import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { InternalIterator } from '../iterator/internal-iterator.js';
import { type Entry, KIND_DELETE, KIND_PUT, KIND_RANGE_DELETE, META_HAS_EXPIRY } from '../keys/entry.js';
import {
  compareInternalKeys,
  encodeInternalKey,
  internalKeyVersion,
  MAX_VERSION,
  sameBaseKey,
} from '../keys/internal-key.js';
import { Memtable } from './memtable.js';

const ik = (user: string, version: bigint, cf = 0) => encodeInternalKey(cf, Buffer.from(user), version);

const put = (user: string, version: bigint, value: string, cf = 0): Entry => ({
  key: ik(user, version, cf),
  meta: KIND_PUT,
  expiresAt: 0,
  value: Buffer.from(value),
});

const del = (user: string, version: bigint, cf = 0): Entry => ({
  key: ik(user, version, cf),
  meta: KIND_DELETE,
  expiresAt: 0,
  value: Buffer.alloc(0),
});

const rangeDel = (start: string, end: string, version: bigint, cf = 0): Entry => ({
  key: ik(start, version, cf),
  meta: KIND_RANGE_DELETE,
  expiresAt: 0,
  value: Buffer.from(end),
});

function forward(it: InternalIterator): string[] {
  const out: string[] = [];
  for (it.seekToFirst(); it.valid(); it.next()) out.push(it.key().toString('hex'));
  return out;
}

function backward(it: InternalIterator): string[] {
  const out: string[] = [];
  for (it.seekToLast(); it.valid(); it.prev()) out.push(it.key().toString('hex'));
  return out;
}

describe('Memtable', () => {
  it('starts empty', () => {
    const m = new Memtable(7);
    expect(m.walNumber).toBe(7);
    expect(m.isEmpty).toBe(true);
    expect(m.get(ik('a', MAX_VERSION))).toBeUndefined();
    expect(m.iterator().valid()).toBe(false);
    const it = m.iterator();
    it.seekToFirst();
    expect(it.valid()).toBe(false);
    it.seekToLast();
    expect(it.valid()).toBe(false);
    expect(m.tombstoneIndex().isEmpty).toBe(true);
    expect(m.minVersion).toBeUndefined();
  });

  it('get returns the newest version at or below the seek version', () => {
    const m = new Memtable(1);
    m.add(put('k', 3n, 'v3'));
    m.add(put('k', 7n, 'v7'));
    m.add(del('k', 9n));
    m.add(put('k', 12n, 'v12'));
    m.add(put('j', 100n, 'other key'));
    m.add(put('kk', 1n, 'longer key'));
    m.add(put('k', 5n, 'other cf', 1));
    const at = (v: bigint) => m.get(ik('k', v));
    expect(at(MAX_VERSION)!.value.toString()).toBe('v12');
    expect(at(12n)!.value.toString()).toBe('v12');
    expect(at(11n)!.meta).toBe(KIND_DELETE);
    expect(internalKeyVersion(at(11n)!.key)).toBe(9n);
    expect(at(8n)!.value.toString()).toBe('v7');
    expect(at(7n)!.value.toString()).toBe('v7');
    expect(at(6n)!.value.toString()).toBe('v3');
    expect(at(3n)!.value.toString()).toBe('v3');
    // below every version: must not leak into the next user key ("kk")
    expect(at(2n)).toBeUndefined();
    expect(m.get(ik('kk', 0n))).toBeUndefined();
    expect(m.get(ik('kk', 1n))!.value.toString()).toBe('longer key');
    expect(m.get(ik('a', MAX_VERSION))).toBeUndefined();
    expect(m.get(ik('z', MAX_VERSION))).toBeUndefined();
    // column families are separate
    expect(m.get(ik('k', MAX_VERSION, 1))!.value.toString()).toBe('other cf');
    expect(m.get(ik('k', MAX_VERSION, 2))).toBeUndefined();
  });

  it('get agrees with a brute-force model (property)', () => {
    const arbEntry = fc.record({
      cf: fc.integer({ min: 0, max: 1 }),
      user: fc.constantFrom('', 'a', 'ab', 'b', 'ba'),
      version: fc.bigInt({ min: 1n, max: 8n }),
      del: fc.boolean(),
      n: fc.nat({ max: 99 }),
    });
    fc.assert(
      fc.property(fc.array(arbEntry, { maxLength: 40 }), (list) => {
        const m = new Memtable(1);
        const model = new Map<string, { version: bigint; del: boolean; value: string }>();
        for (const e of list) {
          m.add(e.del ? del(e.user, e.version, e.cf) : put(e.user, e.version, `v${e.n}`, e.cf));
          model.set(`${e.cf}/${e.user}/${e.version}`, { version: e.version, del: e.del, value: `v${e.n}` });
        }
        for (const cf of [0, 1]) {
          for (const user of ['', 'a', 'ab', 'b', 'ba', 'c']) {
            for (let rv = 0n; rv <= 9n; rv++) {
              let best: { version: bigint; del: boolean; value: string } | undefined;
              for (const [k, v] of model) {
                if (k.startsWith(`${cf}/${user}/`) && v.version <= rv && (!best || v.version > best.version))
                  best = v;
              }
              const got = m.get(ik(user, rv, cf));
              if (best === undefined) {
                expect(got).toBeUndefined();
              } else {
                expect(got).toBeDefined();
                expect(internalKeyVersion(got!.key)).toBe(best.version);
                expect(got!.meta).toBe(best.del ? KIND_DELETE : KIND_PUT);
                if (!best.del) expect(got!.value.toString()).toBe(best.value);
              }
            }
          }
        }
      }),
      { numRuns: 200 },
    );
  });

  it('iterates forward and backward in internal-key order, with seek and seekForPrev', () => {
    const m = new Memtable(1);
    const entries = [
      put('b', 2n, 'b2'),
      put('a', 1n, 'a1'),
      put('ab', 5n, 'ab5'),
      put('a', 3n, 'a3'),
      del('c', 4n),
      put('a', 0n, 'a0', 2),
    ];
    for (const e of entries) m.add(e);
    const sorted = entries.map((e) => e.key).sort(compareInternalKeys);
    const hex = sorted.map((k) => k.toString('hex'));
    expect(forward(m.iterator())).toEqual(hex);
    expect(backward(m.iterator())).toEqual([...hex].reverse());

    const it = m.iterator();
    it.seek(ik('a', 2n));
    expect(it.value().toString()).toBe('a1');
    it.next();
    expect(it.value().toString()).toBe('ab5');
    it.prev();
    expect(it.value().toString()).toBe('a1');
    it.prev();
    expect(it.value().toString()).toBe('a3');
    it.prev();
    expect(it.valid()).toBe(false);

    it.seekForPrev(ik('a', 2n));
    expect(it.value().toString()).toBe('a3');
    it.seekForPrev(ik('a', 1n));
    expect(it.value().toString()).toBe('a1');
    it.seekForPrev(ik('c', 4n));
    expect(it.meta()).toBe(KIND_DELETE);
    it.seekForPrev(ik('a', MAX_VERSION));
    expect(it.valid()).toBe(false);
    it.seek(ik('c', 3n));
    expect(it.value().toString()).toBe('a0'); // next cf
    it.next();
    expect(it.valid()).toBe(false);
    it.seek(ik('z', 0n, 3));
    expect(it.valid()).toBe(false);
  });

  it('exposes meta and expiry through the iterator', () => {
    const m = new Memtable(1);
    m.add({ key: ik('t', 1n), meta: KIND_PUT | META_HAS_EXPIRY, expiresAt: 5000, value: Buffer.from('ttl') });
    const it = m.iterator();
    it.seekToFirst();
    expect(it.meta()).toBe(KIND_PUT | META_HAS_EXPIRY);
    expect(it.expiresAt()).toBe(5000);
    expect(it.value().toString()).toBe('ttl');
  });

  it('overwriting an equal internal key keeps one entry with the new value', () => {
    const m = new Memtable(1);
    m.add(put('k', 1n, 'first'));
    m.add(put('k', 1n, 'second'));
    expect(m.pointEntries).toBe(1);
    expect(m.get(ik('k', 1n))!.value.toString()).toBe('second');
    expect(forward(m.iterator()).length).toBe(1);
  });

  it('tracks counters and version bounds', () => {
    const m = new Memtable(1);
    m.add(put('a', 5n, 'x'));
    m.add(del('b', 9n));
    m.add(put('c', 20n, 'y', 1)); // not the default cf
    m.add(rangeDel('d', 'e', 2n));
    expect(m.isEmpty).toBe(false);
    expect(m.pointEntries).toBe(3);
    expect(m.deletions).toBe(1);
    expect(m.minVersion).toBe(2n);
    expect(m.maxVersion).toBe(20n);
    expect(m.maxDefaultVersion).toBe(9n);
    expect(m.approxBytes).toBeGreaterThan(0);
  });

  it('keeps range tombstones out of the point entries and indexes them', () => {
    const m = new Memtable(1);
    m.add(put('b', 1n, 'under'));
    m.add(rangeDel('a', 'c', 5n));
    expect(m.isEmpty).toBe(false);
    expect(m.pointEntries).toBe(1);
    // the tombstone is not a point entry: get and iteration see only the put
    expect(m.get(ik('a', MAX_VERSION))).toBeUndefined();
    expect(forward(m.iterator())).toEqual([ik('b', 1n).toString('hex')]);
    expect(m.rangeTombstones).toHaveLength(1);
    const t = m.rangeTombstones[0]!;
    expect(t.cf).toBe(0);
    expect(t.start.toString()).toBe('a');
    expect(t.end.toString()).toBe('c');
    expect(t.version).toBe(5n);

    const idx = m.tombstoneIndex();
    expect(idx.maxCoveringVersion(0, Buffer.from('b'), MAX_VERSION)).toBe(5n);
    expect(idx.maxCoveringVersion(0, Buffer.from('b'), 4n)).toBe(-1n);
    expect(idx.maxCoveringVersion(0, Buffer.from('c'), MAX_VERSION)).toBe(-1n);
    expect(idx.maxCoveringVersion(1, Buffer.from('b'), MAX_VERSION)).toBe(-1n);
    expect(m.tombstoneIndex()).toBe(idx); // cached until the next tombstone

    // a later tombstone invalidates the cached index
    m.add(rangeDel('b', 'd', 8n, 0));
    const idx2 = m.tombstoneIndex();
    expect(idx2).not.toBe(idx);
    expect(idx2.maxCoveringVersion(0, Buffer.from('b'), MAX_VERSION)).toBe(8n);
    expect(idx2.maxCoveringVersion(0, Buffer.from('b'), 7n)).toBe(5n);
    expect(idx2.maxCoveringVersion(0, Buffer.from('c'), MAX_VERSION)).toBe(8n);
    expect(idx2.hides(0, Buffer.from('b'), 1n, MAX_VERSION)).toBe(true);
    // point adds do not disturb the index
    m.add(put('z', 10n, 'z'));
    expect(m.tombstoneIndex()).toBe(idx2);
  });

  it('a memtable holding only a tombstone is not empty', () => {
    const m = new Memtable(1);
    m.add(rangeDel('a', 'b', 1n));
    expect(m.isEmpty).toBe(false);
    expect(m.pointEntries).toBe(0);
  });

  it('iterator steps agree with a sorted model after random inserts (property)', () => {
    const arbKey = fc
      .record({
        cf: fc.integer({ min: 0, max: 1 }),
        user: fc.constantFrom('', 'a', 'ab', 'b'),
        version: fc.bigInt({ min: 0n, max: 4n }),
      })
      .map(({ cf, user, version }) => ik(user, version, cf));
    fc.assert(
      fc.property(fc.array(arbKey, { maxLength: 30 }), arbKey, (keys, probe) => {
        const m = new Memtable(1);
        for (const k of keys) m.add({ key: k, meta: KIND_PUT, expiresAt: 0, value: Buffer.alloc(0) });
        const uniq: Buffer[] = [];
        for (const k of [...keys].sort(compareInternalKeys)) {
          if (uniq.length === 0 || compareInternalKeys(uniq[uniq.length - 1]!, k) !== 0) uniq.push(k);
        }
        const hex = uniq.map((k) => k.toString('hex'));
        expect(forward(m.iterator())).toEqual(hex);
        expect(backward(m.iterator())).toEqual([...hex].reverse());
        const it = m.iterator();
        it.seek(probe);
        const ge = uniq.findIndex((k) => compareInternalKeys(k, probe) >= 0);
        if (ge < 0) expect(it.valid()).toBe(false);
        else expect(it.key().equals(uniq[ge]!)).toBe(true);
        it.seekForPrev(probe);
        let le = -1;
        uniq.forEach((k, i) => {
          if (compareInternalKeys(k, probe) <= 0) le = i;
        });
        if (le < 0) expect(it.valid()).toBe(false);
        else expect(it.key().equals(uniq[le]!)).toBe(true);
        // get: the first entry at or after the probe, if it has the probe's base key
        const got = m.get(probe);
        if (ge >= 0 && sameBaseKey(uniq[ge]!, probe)) expect(got?.key.equals(uniq[ge]!)).toBe(true);
        else expect(got).toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });
});
