import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Entry,
  KIND_DELETE,
  KIND_PUT,
  KIND_RANGE_DELETE,
  META_HAS_EXPIRY,
  META_VALUE_POINTER,
  makeMeta,
} from '../keys/entry.js';
import { CF_COUNT, encodeInternalKey } from '../keys/internal-key.js';
import { writeVarint } from '../util/varint.js';
import {
  BatchDecodeError,
  decodeBatch,
  encodedBatchSize,
  encodedEntrySize,
  WAL_RECORD_WRITE_BATCH,
  writeBatch,
} from './batch-codec.js';

const ik = (user: string, version: bigint, cf = 0) => encodeInternalKey(cf, Buffer.from(user), version);

function encode(entries: readonly Entry[]): Buffer {
  const size = encodedBatchSize(entries);
  const out = Buffer.alloc(size + 10, 0xee);
  const end = writeBatch(out, 3, entries);
  expect(end - 3).toBe(size);
  return Buffer.from(out.subarray(3, end));
}

function expectEntries(got: readonly Entry[], want: readonly Entry[]): void {
  expect(got.length).toBe(want.length);
  got.forEach((e, i) => {
    const w = want[i]!;
    expect(e.key.equals(w.key)).toBe(true);
    expect(e.meta).toBe(w.meta);
    expect(e.expiresAt).toBe(w.meta & META_HAS_EXPIRY ? w.expiresAt : 0);
    expect(e.value.equals(w.value)).toBe(true);
  });
}

function rejects(payload: Buffer, detail: RegExp): void {
  let caught: unknown;
  try {
    decodeBatch(payload);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(BatchDecodeError);
  expect((caught as Error).message).toMatch(detail);
}

/** Hand-assembles an entry: meta | varint keyLen | key | [varint expiresAt] | varint valueLen | value. */
function rawEntry(meta: number, key: Buffer, value: Buffer, expiresAt?: number): Buffer {
  const out = Buffer.alloc(32 + key.length + value.length);
  let p = 0;
  out[p++] = meta;
  p = writeVarint(out, p, key.length);
  p += key.copy(out, p);
  if (expiresAt !== undefined) p = writeVarint(out, p, expiresAt);
  p = writeVarint(out, p, value.length);
  p += value.copy(out, p);
  return out.subarray(0, p);
}

function withCount(count: number, ...entries: Buffer[]): Buffer {
  const head = Buffer.alloc(10);
  return Buffer.concat([head.subarray(0, writeVarint(head, 0, count)), ...entries]);
}

const put = (user: string, version: bigint, value: string, expiresAt = 0): Entry => ({
  key: ik(user, version),
  meta: makeMeta(KIND_PUT, expiresAt),
  expiresAt,
  value: Buffer.from(value),
});

describe('batch codec round trip', () => {
  it('round-trips puts with and without expiry, deletes and range deletes', () => {
    const entries: Entry[] = [
      put('a', 1n, 'one'),
      put('b', 2n, 'two, expiring', 1_700_000_000_000),
      put('empty-value', 3n, ''),
      { key: ik('c', 4n), meta: makeMeta(KIND_DELETE, 0), expiresAt: 0, value: Buffer.alloc(0) },
      { key: ik('d', 5n), meta: makeMeta(KIND_RANGE_DELETE, 0), expiresAt: 0, value: Buffer.from('m') },
      { key: ik('', 6n, 3), meta: KIND_PUT, expiresAt: 0, value: Buffer.alloc(1000, 7) },
      put('big-expiry', 7n, 'x', Number.MAX_SAFE_INTEGER),
    ];
    expect(WAL_RECORD_WRITE_BATCH).toBe(1);
    const payload = encode(entries);
    expectEntries(decodeBatch(payload), entries);
  });

  it('does not write expiresAt unless the meta has the expiry bit', () => {
    const plain = put('k', 1n, 'v');
    const expiring = put('k', 1n, 'v', 300);
    // 300 takes two varint bytes
    expect(encodedEntrySize(expiring) - encodedEntrySize(plain)).toBe(2);
    // an entry object carrying an expiresAt but no expiry bit decodes with expiresAt 0
    const stray: Entry = { ...plain, expiresAt: 12345 };
    expect(encodedEntrySize(stray)).toBe(encodedEntrySize(plain));
    expect(decodeBatch(encode([stray]))[0]!.expiresAt).toBe(0);
  });

  it('decoded keys and values are views into the payload', () => {
    const payload = encode([put('key', 1n, 'value')]);
    const [e] = decodeBatch(payload);
    expect(e!.key.buffer).toBe(payload.buffer);
    expect(e!.value.buffer).toBe(payload.buffer);
  });

  it('round-trips arbitrary batches (property)', () => {
    const arbEntry = fc
      .record({
        cf: fc.integer({ min: 0, max: CF_COUNT - 1 }),
        user: fc.uint8Array({ maxLength: 20 }),
        version: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        kind: fc.constantFrom(KIND_PUT, KIND_DELETE, KIND_RANGE_DELETE),
        expiresAt: fc.oneof(fc.constant(0), fc.nat({ max: Number.MAX_SAFE_INTEGER })),
        pointer: fc.boolean(),
        value: fc.uint8Array({ maxLength: 300 }),
      })
      .map(
        (r): Entry => ({
          key: encodeInternalKey(r.cf, r.user, r.version),
          meta: makeMeta(r.kind, r.expiresAt) | (r.pointer ? META_VALUE_POINTER : 0),
          expiresAt: r.expiresAt,
          value: Buffer.from(r.value),
        }),
      );
    fc.assert(
      fc.property(fc.array(arbEntry, { minLength: 1, maxLength: 20 }), (entries) => {
        expectEntries(decodeBatch(encode(entries)), entries);
      }),
      { numRuns: 300 },
    );
  });

  it('round-trips a batch of 200 entries (multi-byte count)', () => {
    const entries = Array.from({ length: 200 }, (_, i) => put(`key-${i}`, BigInt(i), `v${i}`));
    const payload = encode(entries);
    expect(payload[0]! & 0x80).toBe(0x80);
    expectEntries(decodeBatch(payload), entries);
  });
});

describe('decodeBatch rejects malformed payloads', () => {
  const good = rawEntry(KIND_PUT, ik('k', 1n), Buffer.from('v'));

  it('accepts the hand-built control payload', () => {
    expect(decodeBatch(withCount(1, good)).length).toBe(1);
    expect(decodeBatch(withCount(2, good, good)).length).toBe(2);
  });

  it('an empty payload and an empty batch', () => {
    rejects(Buffer.alloc(0), /truncated/);
    rejects(withCount(0), /empty batch/);
    rejects(withCount(0, good), /empty batch/);
  });

  it('a count larger than what fits', () => {
    rejects(withCount(2, good), /cannot fit/);
    rejects(withCount(1_000_000, good), /cannot fit/);
    rejects(withCount(Number.MAX_SAFE_INTEGER, good), /cannot fit/);
  });

  it('a count that fits the size check but names a missing entry', () => {
    // two entries claimed; bytes enough for two minimal entries, but the first one is long
    const long = rawEntry(KIND_PUT, ik('k', 1n), Buffer.alloc(20));
    rejects(withCount(2, long), /missing|truncated|past the payload|malformed/);
  });

  it('trailing bytes after the last entry', () => {
    rejects(Buffer.concat([withCount(1, good), Buffer.from([0])]), /trailing/);
    rejects(withCount(1, good, good), /trailing/);
  });

  it('unknown meta bits or kinds', () => {
    for (const meta of [0x03, 0x10, 0x20, 0x80, KIND_PUT | 0x40]) {
      rejects(withCount(1, rawEntry(meta, ik('k', 1n), Buffer.from('v'))), /unknown meta/);
    }
    // the second entry's meta is checked too
    rejects(withCount(2, good, rawEntry(0x13, ik('k', 2n), Buffer.from('v'))), /entry 1 has unknown meta/);
  });

  it('a malformed internal key (too short, or unknown column family)', () => {
    rejects(
      withCount(1, rawEntry(KIND_PUT, Buffer.alloc(8), Buffer.from('value'))),
      /malformed internal key/,
    );
    rejects(withCount(1, rawEntry(KIND_PUT, Buffer.alloc(0), Buffer.alloc(12))), /malformed internal key/);
    const badCf = ik('k', 1n);
    badCf[0] = CF_COUNT;
    rejects(withCount(1, rawEntry(KIND_PUT, badCf, Buffer.from('v'))), /malformed internal key/);
  });

  it('a key or value that runs past the payload', () => {
    const entry = rawEntry(KIND_PUT, ik('k', 1n), Buffer.from('value'));
    rejects(withCount(1, entry.subarray(0, entry.length - 1)), /value runs past/);
    // key length larger than the payload
    const key = ik('key', 1n);
    const lie = Buffer.from(rawEntry(KIND_PUT, key, Buffer.alloc(10)));
    lie[1] = 100;
    rejects(withCount(1, lie), /key runs past/);
  });

  it('truncated varints (count, key length, expiresAt, value length)', () => {
    rejects(Buffer.from([0x80]), /truncated/);
    rejects(Buffer.from([0xff, 0xff]), /truncated/);
    const key = ik('k', 1n);
    // key length varint cut off at the end of the payload (a long first entry passes the size check)
    const first = rawEntry(KIND_PUT, key, Buffer.alloc(30));
    rejects(withCount(2, first, Buffer.from([KIND_PUT, 0x80])), /truncated/);
    // expiresAt varint truncated
    const exp = rawEntry(KIND_PUT | META_HAS_EXPIRY, key, Buffer.alloc(0), 300);
    const cutExp = exp.subarray(0, 2 + key.length + 1); // first of expiresAt's two bytes
    rejects(withCount(1, cutExp), /truncated/);
    // value length varint truncated
    const val = rawEntry(KIND_PUT, key, Buffer.alloc(200));
    rejects(withCount(1, val.subarray(0, 2 + key.length + 1)), /truncated/);
  });

  it('varints that are too long or too large', () => {
    const key = ik('k', 1n);
    const head = Buffer.concat([Buffer.from([KIND_PUT, key.length]), key]);
    rejects(
      withCount(1, head, Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00])),
      /longer than/,
    );
    rejects(withCount(1, head, Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10])), /above 2\^53/);
  });

  it('every proper prefix and every extension of a valid batch is rejected (property)', () => {
    const payload = encode([
      put('alpha', 1n, 'one', 99),
      { key: ik('beta', 2n), meta: KIND_DELETE, expiresAt: 0, value: Buffer.alloc(0) },
      { key: ik('gamma', 3n), meta: KIND_RANGE_DELETE, expiresAt: 0, value: Buffer.from('zeta') },
    ]);
    for (let n = 0; n < payload.length; n++) {
      expect(() => decodeBatch(payload.subarray(0, n))).toThrow(BatchDecodeError);
    }
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 8 }), (extra) => {
        expect(() => decodeBatch(Buffer.concat([payload, extra]))).toThrow(BatchDecodeError);
      }),
    );
  });

  it('arbitrary bytes either decode to a re-encodable batch or throw BatchDecodeError (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const payload = Buffer.from(bytes);
        let entries: Entry[];
        try {
          entries = decodeBatch(payload);
        } catch (err) {
          expect(err).toBeInstanceOf(BatchDecodeError);
          return;
        }
        expect(entries.length).toBeGreaterThan(0);
        expect(encodedBatchSize(entries)).toBeLessThanOrEqual(payload.length);
      }),
      { numRuns: 1000 },
    );
  });
});
