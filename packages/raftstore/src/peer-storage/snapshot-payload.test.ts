import { crc32c } from '@node-rs/crc32';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { CorruptSnapshotError } from './errors.js';
import { decodeSnapshotPayload, encodeSnapshotPayload, type SnapshotPayload } from './snapshot-payload.js';
import { testRegion } from './testing/support.js';

const b = (s: string) => Buffer.from(s);

function sample(): SnapshotPayload {
  return {
    region: testRegion(9n, { start: 'a', end: 'q', learners: 1 }),
    appliedIndex: 1234n,
    appliedTerm: 7n,
    pairs: [
      [b('a'), b('')],
      [b('apple'), b('red')],
      [b('b'), Buffer.alloc(3000, 7)],
      [b('p\xff'), b('last')],
    ],
  };
}

function corruptCode(bytes: Uint8Array): string | undefined {
  try {
    decodeSnapshotPayload(bytes);
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(CorruptSnapshotError);
    return (err as CorruptSnapshotError).code;
  }
}

/** Re-seals `body` (everything but the checksum) with a valid CRC, to reach the checks behind it. */
function seal(body: Uint8Array): Buffer {
  const out = Buffer.alloc(body.length + 4);
  out.set(body);
  out.writeUInt32BE(crc32c(Buffer.from(body)) >>> 0, body.length);
  return out;
}

describe('snapshot payload', () => {
  test('round-trips', () => {
    const p = sample();
    const bytes = encodeSnapshotPayload(p);
    expect(bytes.subarray(0, 4).toString()).toBe('NKVS');
    const d = decodeSnapshotPayload(bytes);
    expect(d.region).toEqual(p.region);
    expect(d.appliedIndex).toBe(1234n);
    expect(d.appliedTerm).toBe(7n);
    expect(d.pairs.map(([k, v]) => [Buffer.from(k), Buffer.from(v)])).toEqual(p.pairs);
  });

  test('an empty region round-trips', () => {
    const p = { ...sample(), pairs: [] };
    expect(decodeSnapshotPayload(encodeSnapshotPayload(p)).pairs).toEqual([]);
  });

  test('every flipped byte and every truncation is CorruptSnapshot', () => {
    const bytes = encodeSnapshotPayload(sample());
    for (let i = 0; i < bytes.length; i++) {
      for (const bit of [0x01, 0x80]) {
        const c = Buffer.from(bytes);
        c[i]! ^= bit;
        expect(corruptCode(c), `byte ${i} bit ${bit}`).toBe('CorruptSnapshot');
      }
    }
    for (let n = 0; n < bytes.length; n++) {
      expect(corruptCode(bytes.subarray(0, n)), `length ${n}`).toBe('CorruptSnapshot');
    }
    expect(corruptCode(Buffer.concat([bytes, Buffer.from([0])]))).toBe('CorruptSnapshot');
  });

  test('framing errors behind a valid checksum are caught too', () => {
    const bytes = encodeSnapshotPayload(sample());
    const body = bytes.subarray(0, bytes.length - 4);
    // trailing bytes after the pairs
    expect(() => decodeSnapshotPayload(seal(Buffer.concat([body, Buffer.from([1, 2])])))).toThrow(
      /trailing bytes/,
    );
    // the record section cut short, then a pair cut short
    expect(() => decodeSnapshotPayload(seal(body.subarray(0, body.length - 2)))).toThrow(/record count/);
    expect(() => decodeSnapshotPayload(seal(body.subarray(0, body.length - 10)))).toThrow(/value of pair 3/);
    // a forged huge pair count
    const regionLen = body.readUInt32BE(5);
    const countAt = 9 + regionLen + 16;
    const forged = Buffer.from(body);
    forged.writeBigUInt64BE(1n << 60n, countAt);
    expect(() => decodeSnapshotPayload(seal(forged))).toThrow(/pair count/);
    // another version
    const v9 = Buffer.from(body);
    v9[4] = 9;
    expect(() => decodeSnapshotPayload(seal(v9))).toThrow(/version 9/);
    // a version-1 payload (no record section) still decodes
    const v1 = Buffer.from(body.subarray(0, body.length - 8));
    v1[4] = 1;
    expect(decodeSnapshotPayload(seal(v1)).pairs.length).toBe(sample().pairs.length);
    // keys out of order or outside the region
    const unordered = encodeSnapshotPayload({
      ...sample(),
      pairs: [
        [b('b'), b('')],
        [b('a'), b('')],
      ],
    });
    expect(() => decodeSnapshotPayload(unordered)).toThrow(/ascending/);
    const outside = encodeSnapshotPayload({ ...sample(), pairs: [[b('z'), b('')]] });
    expect(() => decodeSnapshotPayload(outside)).toThrow(/outside the region/);
  });

  test('random bytes never crash the decoder', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (raw, withMagic) => {
        const bytes = withMagic ? seal(Buffer.concat([b('NKVS'), Buffer.from([1]), raw])) : raw;
        try {
          decodeSnapshotPayload(bytes);
        } catch (err) {
          expect(err).toBeInstanceOf(CorruptSnapshotError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  test('random pair sets round-trip', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.uint8Array({ maxLength: 12 }), { selector: (k) => Buffer.from(k).toString('hex') }),
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        (keys, index) => {
          const sorted = keys.map((k) => Buffer.from(k)).sort(Buffer.compare);
          const p: SnapshotPayload = {
            region: testRegion(1n),
            appliedIndex: index,
            appliedTerm: 3n,
            pairs: sorted.map((k) => [k, Buffer.concat([k, k])]),
          };
          const d = decodeSnapshotPayload(encodeSnapshotPayload(p));
          expect(d.appliedIndex).toBe(index);
          expect(d.pairs.map(([k, v]) => [Buffer.from(k), Buffer.from(v)])).toEqual(p.pairs);
        },
      ),
    );
  });
});
