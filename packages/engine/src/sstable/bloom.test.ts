import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeBaseKey } from '../keys/internal-key.js';
import { bloomHash, bloomMayContain, buildBloomFilter } from './bloom.js';

const hashOf = (s: string) => bloomHash(encodeBaseKey(0, Buffer.from(s)));

describe('bloomHash', () => {
  it("matches LevelDB's hash with seed 0xbc9f1d34 (stable: filters are stored on disk)", () => {
    // reference values computed with an independent implementation of LevelDB's Hash()
    const cases: [Buffer, number][] = [
      [Buffer.alloc(0), 0xbc9f1d34],
      [Buffer.from('a'), 0x286e9db0],
      [Buffer.from('ab'), 0x39aca330],
      [Buffer.from('abc'), 0x855d012f],
      [Buffer.from('abcd'), 0xb9c83353],
      [Buffer.from('hello world'), 0x008dfddb],
      // high-bit bytes: the word assembly must not go wrong on the sign bit
      [Buffer.alloc(7, 0xff), 0x581c1aab],
      [Buffer.from([0x80, 0x90, 0xa0, 0xb0, 0xc0]), 0xd030689d],
    ];
    for (const [data, want] of cases) expect(bloomHash(data)).toBe(want);
  });

  it('hashes a sub-range like the same bytes on their own', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 30 }),
        fc.uint8Array({ maxLength: 5 }),
        fc.uint8Array({ maxLength: 5 }),
        (mid, pre, post) => {
          const whole = Buffer.concat([pre, mid, post]);
          expect(bloomHash(whole, pre.length, pre.length + mid.length)).toBe(bloomHash(mid));
        },
      ),
    );
  });

  it('depends on every byte and on the length', () => {
    expect(bloomHash(Buffer.from('abc'))).not.toBe(bloomHash(Buffer.from('abd')));
    expect(bloomHash(Buffer.from('abcde'))).not.toBe(bloomHash(Buffer.from('abcdf')));
    expect(bloomHash(Buffer.from([0]))).not.toBe(bloomHash(Buffer.from([0, 0])));
  });
});

describe('bloom filter', () => {
  it('has no false negatives (property)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.string({ maxLength: 12 }), { maxLength: 200 }),
        fc.integer({ min: 1, max: 20 }),
        (keys, bitsPerKey) => {
          const hashes = keys.map(hashOf);
          const filter = buildBloomFilter(hashes, bitsPerKey);
          for (const h of hashes) expect(bloomMayContain(filter, h)).toBe(true);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('has no false negatives and under 2% false positives at 10 bits/key for 10k keys', () => {
    const n = 10_000;
    const hashes = Array.from({ length: n }, (_, i) => hashOf(`user:${i}`));
    const filter = buildBloomFilter(hashes, 10);
    // 10 bits per key, plus the probe-count byte
    expect(filter.length).toBe(Math.ceil((n * 10) / 8) + 1);
    expect(filter[filter.length - 1]).toBe(7);
    for (const h of hashes) expect(bloomMayContain(filter, h)).toBe(true);
    let falsePositives = 0;
    const probes = 20_000;
    for (let i = 0; i < probes; i++) if (bloomMayContain(filter, hashOf(`other:${i}`))) falsePositives++;
    const rate = falsePositives / probes;
    expect(rate).toBeLessThan(0.02);
  });

  it('the false-positive rate falls as bits per key grow', () => {
    const hashes = Array.from({ length: 2000 }, (_, i) => hashOf(`k${i}`));
    const rate = (bits: number) => {
      const f = buildBloomFilter(hashes, bits);
      let fp = 0;
      for (let i = 0; i < 10_000; i++) if (bloomMayContain(f, hashOf(`absent${i}`))) fp++;
      return fp / 10_000;
    };
    const r4 = rate(4);
    const r16 = rate(16);
    expect(r4).toBeGreaterThan(r16);
    expect(r16).toBeLessThan(0.005);
  });

  it('an empty key set still builds a (minimum-size) filter that rejects keys', () => {
    const filter = buildBloomFilter([], 10);
    expect(filter.length).toBe(8 + 1);
    let hits = 0;
    for (let i = 0; i < 100; i++) if (bloomMayContain(filter, hashOf(`x${i}`))) hits++;
    expect(hits).toBe(0);
  });

  it('treats filters it cannot interpret as "may contain" (never a false negative)', () => {
    const h = hashOf('anything');
    expect(bloomMayContain(Buffer.alloc(0), h)).toBe(true);
    expect(bloomMayContain(Buffer.alloc(1), h)).toBe(true);
    const zeroK = Buffer.alloc(9); // k = 0
    expect(bloomMayContain(zeroK, h)).toBe(true);
    const bigK = Buffer.alloc(9);
    bigK[8] = 31;
    expect(bloomMayContain(bigK, h)).toBe(true);
    const ok = Buffer.alloc(9);
    ok[8] = 6; // all bits clear, valid k: definitely absent
    expect(bloomMayContain(ok, h)).toBe(false);
  });

  it('clamps the probe count', () => {
    expect(buildBloomFilter([1], 1).at(-1)).toBe(1);
    expect(buildBloomFilter([1], 100).at(-1)).toBe(30);
  });
});
