import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  bigVarintLength,
  readBigVarint,
  readVarint,
  readVarintInto,
  VarintError,
  type VarintResult,
  varintLength,
  writeBigVarint,
  writeVarint,
} from './varint.js';

const U64_MAX = 0xffff_ffff_ffff_ffffn;

function encode(value: number): Buffer {
  const buf = Buffer.alloc(16, 0xee);
  const end = writeVarint(buf, 0, value);
  return buf.subarray(0, end);
}

function encodeBig(value: bigint): Buffer {
  const buf = Buffer.alloc(16, 0xee);
  const end = writeBigVarint(buf, 0, value);
  return buf.subarray(0, end);
}

function expectVarintError(fn: () => unknown, offset: number, detail: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(VarintError);
  const e = caught as VarintError;
  expect(e.offset).toBe(offset);
  expect(e.message).toMatch(detail);
}

describe('number varints', () => {
  it('encodes known values to the LEB128 bytes', () => {
    expect([...encode(0)]).toEqual([0x00]);
    expect([...encode(1)]).toEqual([0x01]);
    expect([...encode(127)]).toEqual([0x7f]);
    expect([...encode(128)]).toEqual([0x80, 0x01]);
    expect([...encode(300)]).toEqual([0xac, 0x02]);
    expect([...encode(16383)]).toEqual([0xff, 0x7f]);
    expect([...encode(16384)]).toEqual([0x80, 0x80, 0x01]);
    expect([...encode(2 ** 32)]).toEqual([0x80, 0x80, 0x80, 0x80, 0x10]);
    expect([...encode(Number.MAX_SAFE_INTEGER)]).toEqual([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]);
  });

  it.each([
    0,
    1,
    127,
    128,
    255,
    256,
    16383,
    16384,
    2 ** 21 - 1,
    2 ** 21,
    2 ** 31 - 1,
    2 ** 31,
    2 ** 32 - 1,
    2 ** 32,
    2 ** 35,
    2 ** 49 - 1,
    2 ** 49,
    Number.MAX_SAFE_INTEGER - 1,
    Number.MAX_SAFE_INTEGER,
  ])('round-trips %d with a matching length', (value) => {
    const bytes = encode(value);
    expect(bytes.length).toBe(varintLength(value));
    expect(readVarint(bytes, 0)).toEqual([value, bytes.length]);
    const out: VarintResult = { value: -1, offset: -1 };
    readVarintInto(bytes, 0, bytes.length, out);
    expect(out).toEqual({ value, offset: bytes.length });
  });

  it('has the expected lengths at the 7-bit boundaries', () => {
    expect(varintLength(0)).toBe(1);
    expect(varintLength(127)).toBe(1);
    expect(varintLength(128)).toBe(2);
    expect(varintLength(2 ** 14 - 1)).toBe(2);
    expect(varintLength(2 ** 14)).toBe(3);
    expect(varintLength(Number.MAX_SAFE_INTEGER)).toBe(8);
  });

  it('round-trips any safe integer (property), at any offset, leaving neighbours alone', () => {
    fc.assert(
      fc.property(fc.nat({ max: Number.MAX_SAFE_INTEGER }), fc.nat({ max: 8 }), (value, at) => {
        const buf = Buffer.alloc(at + 12, 0xa5);
        const end = writeVarint(buf, at, value);
        expect(end - at).toBe(varintLength(value));
        expect(readVarint(buf, at)).toEqual([value, end]);
        for (let i = 0; i < at; i++) expect(buf[i]).toBe(0xa5);
        for (let i = end; i < buf.length; i++) expect(buf[i]).toBe(0xa5);
      }),
      { numRuns: 500 },
    );
  });

  it('reads a sequence of varints back to back', () => {
    const values = [0, 127, 128, 2 ** 40 + 5, 1, Number.MAX_SAFE_INTEGER, 300];
    const buf = Buffer.alloc(100);
    let p = 0;
    for (const v of values) p = writeVarint(buf, p, v);
    let q = 0;
    const got: number[] = [];
    while (q < p) {
      const [v, next] = readVarint(buf, q, p);
      got.push(v);
      q = next;
    }
    expect(got).toEqual(values);
    expect(q).toBe(p);
  });

  it('throws VarintError naming the start offset on truncated input', () => {
    expectVarintError(() => readVarint(Buffer.alloc(0), 0), 0, /truncated/);
    expectVarintError(() => readVarint(Buffer.from([0x80]), 0), 0, /truncated/);
    expectVarintError(() => readVarint(Buffer.from([0x00, 0xff, 0xff]), 1), 1, /truncated/);
    // every proper prefix of a multi-byte encoding is truncated
    const full = encode(Number.MAX_SAFE_INTEGER);
    for (let n = 0; n < full.length; n++) {
      expectVarintError(() => readVarint(full.subarray(0, n), 0), 0, /truncated/);
    }
  });

  it('honours `end` even when the buffer holds more bytes', () => {
    const bytes = Buffer.from([0xac, 0x02, 0x00]);
    expectVarintError(() => readVarint(bytes, 0, 1), 0, /truncated/);
    const out: VarintResult = { value: 0, offset: 0 };
    expectVarintError(() => readVarintInto(bytes, 0, 1, out), 0, /truncated/);
    expect(readVarint(bytes, 0, 2)).toEqual([300, 2]);
  });

  it('throws VarintError on overlong input (more continuation bytes than a safe integer needs)', () => {
    // ten continuation bytes then a terminator: far longer than any valid encoding
    const overlong = Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]);
    expectVarintError(() => readVarint(overlong, 0), 0, /longer than/);
    // eight continuation bytes are already too many, regardless of what follows
    expectVarintError(
      () => readVarint(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), 0),
      0,
      /longer than/,
    );
    // at a non-zero offset the error names where the varint started
    const shifted = Buffer.concat([Buffer.from([0x05, 0x06]), overlong]);
    expectVarintError(() => readVarint(shifted, 2), 2, /longer than/);
  });

  it('rejects a nine-byte encoding even when its value would be small (no safe integer needs 9 bytes)', () => {
    const nineForZero = Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]);
    expectVarintError(() => readVarint(nineForZero, 0), 0, /longer than 8 bytes/);
    const nineForOne = Buffer.from([0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]);
    expectVarintError(() => readVarint(nineForOne, 0), 0, /longer than 8 bytes/);
    // eight bytes is the limit and still fine
    expect(readVarint(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]), 0)).toEqual([0, 8]);
  });

  it('throws VarintError for values above 2^53 - 1', () => {
    // 2^53 exactly
    expectVarintError(
      () => readVarint(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]), 0),
      0,
      /above 2\^53/,
    );
    // 2^56 - 1 (eight 7-bit groups all ones)
    expectVarintError(
      () => readVarint(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]), 0),
      0,
      /above 2\^53/,
    );
    // nine-byte encoding of 2^56
    expectVarintError(
      () => readVarint(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]), 0),
      0,
      /longer than 8 bytes/,
    );
  });
});

describe('bigint varints', () => {
  it('encodes known values to the LEB128 bytes', () => {
    expect([...encodeBig(0n)]).toEqual([0x00]);
    expect([...encodeBig(127n)]).toEqual([0x7f]);
    expect([...encodeBig(128n)]).toEqual([0x80, 0x01]);
    expect([...encodeBig(U64_MAX)]).toEqual([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
  });

  it.each([
    0n,
    1n,
    127n,
    128n,
    16383n,
    16384n,
    2n ** 32n,
    2n ** 53n - 1n,
    2n ** 53n,
    2n ** 56n,
    2n ** 63n - 1n,
    2n ** 63n,
    U64_MAX - 1n,
    U64_MAX,
  ])('round-trips %s with a matching length', (value) => {
    const bytes = encodeBig(value);
    expect(bytes.length).toBe(bigVarintLength(value));
    expect(readBigVarint(bytes, 0)).toEqual([value, bytes.length]);
  });

  it('has the expected lengths', () => {
    expect(bigVarintLength(0n)).toBe(1);
    expect(bigVarintLength(127n)).toBe(1);
    expect(bigVarintLength(128n)).toBe(2);
    expect(bigVarintLength(2n ** 63n - 1n)).toBe(9);
    expect(bigVarintLength(2n ** 63n)).toBe(10);
    expect(bigVarintLength(U64_MAX)).toBe(10);
  });

  it('uses the same bytes as the number encoding for safe integers (property)', () => {
    fc.assert(
      fc.property(fc.nat({ max: Number.MAX_SAFE_INTEGER }), (value) => {
        expect(encodeBig(BigInt(value)).equals(encode(value))).toBe(true);
        expect(readVarint(encodeBig(BigInt(value)), 0)[0]).toBe(value);
      }),
      { numRuns: 300 },
    );
  });

  it('round-trips any u64 (property)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: U64_MAX }), fc.nat({ max: 6 }), (value, at) => {
        const buf = Buffer.alloc(at + 12, 0x5a);
        const end = writeBigVarint(buf, at, value);
        expect(end - at).toBe(bigVarintLength(value));
        expect(readBigVarint(buf, at)).toEqual([value, end]);
        for (let i = end; i < buf.length; i++) expect(buf[i]).toBe(0x5a);
      }),
      { numRuns: 500 },
    );
  });

  it('refuses to encode values outside u64', () => {
    const buf = Buffer.alloc(16);
    expect(() => writeBigVarint(buf, 0, -1n)).toThrow(RangeError);
    expect(() => writeBigVarint(buf, 0, U64_MAX + 1n)).toThrow(RangeError);
  });

  it('throws VarintError on truncated input', () => {
    expectVarintError(() => readBigVarint(Buffer.alloc(0), 0), 0, /truncated/);
    const full = encodeBig(U64_MAX);
    for (let n = 0; n < full.length; n++) {
      expectVarintError(() => readBigVarint(full.subarray(0, n), 0), 0, /truncated/);
    }
    expectVarintError(() => readBigVarint(Buffer.from([0x01, 0x80, 0x80]), 1), 1, /truncated/);
    expectVarintError(() => readBigVarint(Buffer.from([0x80, 0x01]), 0, 1), 0, /truncated/);
  });

  it('throws VarintError on overlong input', () => {
    // eleven bytes: ten continuation bytes
    const eleven = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x81, 0x00]);
    expectVarintError(() => readBigVarint(eleven, 0), 0, /longer than/);
    const zeros = Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]);
    expectVarintError(() => readBigVarint(zeros, 0), 0, /longer than/);
  });

  it('throws VarintError for ten-byte encodings above 2^64 - 1', () => {
    // 2^64: the tenth byte carries bit 64
    expectVarintError(
      () => readBigVarint(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02]), 0),
      0,
      /above 2\^64/,
    );
    expectVarintError(
      () => readBigVarint(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]), 0),
      0,
      /above 2\^64/,
    );
  });
});
