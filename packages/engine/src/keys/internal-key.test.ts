import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AssertionError } from '../util/invariants.js';
import {
  CF_COUNT,
  CF_DEFAULT,
  COLUMN_FAMILIES,
  type ColumnFamily,
  cfId,
  cfName,
  compareBaseKeys,
  compareBaseKeyTo,
  compareInternalKeyAt,
  compareInternalKeys,
  encodeBaseKey,
  encodeInternalKey,
  INTERNAL_KEY_OVERHEAD,
  internalKeyBase,
  internalKeyCf,
  internalKeyUserKey,
  internalKeyVersion,
  isValidInternalKey,
  MAX_VERSION,
  sameBaseKey,
  VERSION_SUFFIX_BYTES,
} from './internal-key.js';

const ik = (cf: number, user: string | Buffer, version: bigint) =>
  encodeInternalKey(cf, typeof user === 'string' ? Buffer.from(user) : user, version);

const sign = (n: number) => (n < 0 ? -1 : n > 0 ? 1 : 0);

/** Reference order: column family, then user key bytewise, then version descending. */
function modelCompare(
  a: { cf: number; user: Buffer; version: bigint },
  b: { cf: number; user: Buffer; version: bigint },
): number {
  if (a.cf !== b.cf) return a.cf < b.cf ? -1 : 1;
  const c = Buffer.compare(a.user, b.user);
  if (c !== 0) return c;
  return a.version === b.version ? 0 : a.version > b.version ? -1 : 1;
}

const arbKeyParts = fc.record({
  cf: fc.integer({ min: 0, max: CF_COUNT - 1 }),
  user: fc.uint8Array({ maxLength: 6 }).map((u) => Buffer.from(u.map((x) => (x % 4 === 0 ? 0xff : x % 3)))),
  version: fc.oneof(
    fc.bigInt({ min: 0n, max: 5n }),
    fc.constantFrom(0n, 1n, 255n, 256n, 2n ** 56n, MAX_VERSION - 1n, MAX_VERSION),
    fc.bigInt({ min: 0n, max: MAX_VERSION }),
  ),
});

describe('internal key encoding', () => {
  it('lays out cf | userKey | u64be(MAX_VERSION - version)', () => {
    const key = ik(2, 'ab', 5n);
    expect(key.length).toBe(2 + INTERNAL_KEY_OVERHEAD);
    expect(key[0]).toBe(2);
    expect(key.subarray(1, 3).toString()).toBe('ab');
    expect(key.readBigUInt64BE(3)).toBe(MAX_VERSION - 5n);
    // MAX_VERSION encodes as an all-zero suffix, version 0 as all ones
    expect(ik(0, 'x', MAX_VERSION).subarray(2).equals(Buffer.alloc(8))).toBe(true);
    expect(ik(0, 'x', 0n).subarray(2).equals(Buffer.alloc(8, 0xff))).toBe(true);
  });

  it('decodes what it encodes (property)', () => {
    fc.assert(
      fc.property(arbKeyParts, ({ cf, user, version }) => {
        const key = encodeInternalKey(cf, user, version);
        expect(isValidInternalKey(key)).toBe(true);
        expect(internalKeyCf(key)).toBe(cf);
        expect(internalKeyUserKey(key).equals(user)).toBe(true);
        expect(internalKeyVersion(key)).toBe(version);
        expect(internalKeyBase(key).equals(encodeBaseKey(cf, user))).toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('user key and base key are views, not copies', () => {
    const key = ik(1, 'abc', 9n);
    const user = internalKeyUserKey(key);
    const base = internalKeyBase(key);
    key[1] = 0x7a;
    expect(user.toString()).toBe('zbc');
    expect(base[1]).toBe(0x7a);
  });

  it('handles an empty user key', () => {
    const key = ik(3, '', 7n);
    expect(key.length).toBe(INTERNAL_KEY_OVERHEAD);
    expect(internalKeyUserKey(key).length).toBe(0);
    expect(internalKeyVersion(key)).toBe(7n);
    expect(internalKeyCf(key)).toBe(3);
  });

  it('isValidInternalKey rejects short keys and unknown column families', () => {
    expect(isValidInternalKey(Buffer.alloc(VERSION_SUFFIX_BYTES))).toBe(false);
    expect(isValidInternalKey(Buffer.alloc(0))).toBe(false);
    expect(isValidInternalKey(Buffer.alloc(INTERNAL_KEY_OVERHEAD))).toBe(true);
    const bad = ik(0, 'k', 1n);
    bad[0] = CF_COUNT;
    expect(isValidInternalKey(bad)).toBe(false);
  });

  it('maps column family names and ids both ways', () => {
    expect(CF_DEFAULT).toBe(0);
    COLUMN_FAMILIES.forEach((name, id) => {
      expect(cfId(name)).toBe(id);
      expect(cfName(id)).toBe(name);
    });
    expect(() => cfName(CF_COUNT)).toThrow(AssertionError);
    expect(() => cfId('nope' as ColumnFamily)).toThrow(AssertionError);
  });
});

describe('compareInternalKeys', () => {
  it('orders "a"+suffix before "ab"+suffix even when whole-buffer compare disagrees', () => {
    // version 0 has suffix ff…ff, which a whole-buffer compare would place after 'b' (0x62)
    const a = ik(0, 'a', 0n);
    const ab = ik(0, 'ab', MAX_VERSION - 1n);
    expect(Buffer.compare(a, ab)).toBeGreaterThan(0); // the trap
    expect(compareInternalKeys(a, ab)).toBeLessThan(0);
    expect(compareInternalKeys(ab, a)).toBeGreaterThan(0);
    // and with an empty user key against a 1-byte one
    const empty = ik(0, '', 0n);
    const zero = ik(0, Buffer.from([0x00]), 5n);
    expect(Buffer.compare(empty, zero)).toBeGreaterThan(0);
    expect(compareInternalKeys(empty, zero)).toBeLessThan(0);
  });

  it('sorts newer versions of the same user key first', () => {
    expect(compareInternalKeys(ik(0, 'k', 10n), ik(0, 'k', 9n))).toBeLessThan(0);
    expect(compareInternalKeys(ik(0, 'k', 9n), ik(0, 'k', 10n))).toBeGreaterThan(0);
    expect(compareInternalKeys(ik(0, 'k', MAX_VERSION), ik(0, 'k', MAX_VERSION - 1n))).toBeLessThan(0);
    expect(compareInternalKeys(ik(0, 'k', 1n), ik(0, 'k', 0n))).toBeLessThan(0);
    expect(compareInternalKeys(ik(0, 'k', 42n), ik(0, 'k', 42n))).toBe(0);
  });

  it('orders by column family before user key', () => {
    expect(compareInternalKeys(ik(0, 'zzz', 1n), ik(1, 'a', 1n))).toBeLessThan(0);
    expect(compareInternalKeys(ik(3, '', 1n), ik(2, Buffer.alloc(5, 0xff), 1n))).toBeGreaterThan(0);
    expect(compareInternalKeys(ik(1, 'a', 0n), ik(2, 'a', MAX_VERSION))).toBeLessThan(0);
  });

  it('agrees with the reference order (property)', () => {
    fc.assert(
      fc.property(arbKeyParts, arbKeyParts, (a, b) => {
        const ka = encodeInternalKey(a.cf, a.user, a.version);
        const kb = encodeInternalKey(b.cf, b.user, b.version);
        expect(sign(compareInternalKeys(ka, kb))).toBe(modelCompare(a, b));
        expect(sign(compareInternalKeys(kb, ka))).toBe(modelCompare(b, a));
      }),
      { numRuns: 2000 },
    );
  });

  it('sorting with it matches the reference order (property)', () => {
    fc.assert(
      fc.property(fc.array(arbKeyParts, { maxLength: 30 }), (parts) => {
        const byModel = [...parts].sort(modelCompare).map((p) => encodeInternalKey(p.cf, p.user, p.version));
        const byKey = parts.map((p) => encodeInternalKey(p.cf, p.user, p.version)).sort(compareInternalKeys);
        expect(byKey).toEqual(byModel);
      }),
      { numRuns: 300 },
    );
  });
});

describe('compareInternalKeyAt', () => {
  it('compares a key embedded in a larger buffer like compareInternalKeys (property)', () => {
    fc.assert(
      fc.property(
        arbKeyParts,
        arbKeyParts,
        fc.uint8Array({ maxLength: 5 }),
        fc.uint8Array({ maxLength: 5 }),
        (a, b, before, after) => {
          const ka = encodeInternalKey(a.cf, a.user, a.version);
          const kb = encodeInternalKey(b.cf, b.user, b.version);
          const host = Buffer.concat([before, ka, after]);
          const got = compareInternalKeyAt(host, before.length, before.length + ka.length, kb);
          expect(sign(got)).toBe(sign(compareInternalKeys(ka, kb)));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('does not read the bytes around the embedded key', () => {
    const key = ik(0, 'a', 0n);
    const target = ik(0, 'ab', 3n);
    // trailing 0x00 bytes would make a sloppy compare see "a\0…" instead of "a"
    const host = Buffer.concat([Buffer.from([0xff, 0xff]), key, Buffer.from([0x00, 0x00])]);
    expect(compareInternalKeyAt(host, 2, 2 + key.length, target)).toBeLessThan(0);
    expect(compareInternalKeyAt(host, 2, 2 + key.length, key)).toBe(0);
  });
});

describe('base-key helpers', () => {
  it('compareBaseKeys and sameBaseKey ignore the version', () => {
    expect(compareBaseKeys(ik(0, 'k', 1n), ik(0, 'k', 99n))).toBe(0);
    expect(sameBaseKey(ik(0, 'k', 1n), ik(0, 'k', 99n))).toBe(true);
    expect(sameBaseKey(ik(0, 'k', 1n), ik(1, 'k', 1n))).toBe(false);
    expect(sameBaseKey(ik(0, 'k', 1n), ik(0, 'kk', 1n))).toBe(false);
    expect(sameBaseKey(ik(0, 'ab', 1n), ik(0, 'ac', 1n))).toBe(false);
    expect(compareBaseKeys(ik(0, 'a', 0n), ik(0, 'ab', MAX_VERSION))).toBeLessThan(0);
    expect(compareBaseKeys(ik(1, 'a', 0n), ik(0, 'ab', MAX_VERSION))).toBeGreaterThan(0);
  });

  it('compareBaseKeyTo compares with a bare base key', () => {
    const key = ik(0, 'b', 5n);
    expect(compareBaseKeyTo(key, encodeBaseKey(0, Buffer.from('b')))).toBe(0);
    expect(compareBaseKeyTo(key, encodeBaseKey(0, Buffer.from('a')))).toBeGreaterThan(0);
    expect(compareBaseKeyTo(key, encodeBaseKey(0, Buffer.from('bb')))).toBeLessThan(0);
    expect(compareBaseKeyTo(key, encodeBaseKey(1, Buffer.from('')))).toBeLessThan(0);
  });

  it('base-key helpers agree with the model on cf and user key (property)', () => {
    fc.assert(
      fc.property(arbKeyParts, arbKeyParts, (a, b) => {
        const ka = encodeInternalKey(a.cf, a.user, a.version);
        const kb = encodeInternalKey(b.cf, b.user, b.version);
        const expected = modelCompare({ ...a, version: 0n }, { ...b, version: 0n });
        expect(sign(compareBaseKeys(ka, kb))).toBe(expected);
        expect(sameBaseKey(ka, kb)).toBe(expected === 0);
        expect(sign(compareBaseKeyTo(ka, encodeBaseKey(b.cf, b.user)))).toBe(expected);
      }),
      { numRuns: 1000 },
    );
  });
});
