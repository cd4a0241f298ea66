import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareBytes, copyBuffer, describeKey, isAllZero, prefixSuccessor, toBuffer } from './bytes.js';

const b = (...bytes: number[]) => Buffer.from(bytes);

describe('prefixSuccessor', () => {
  it('increments the last byte that is not 0xff and drops what follows', () => {
    expect(prefixSuccessor(Buffer.from('abc'))).toEqual(Buffer.from('abd'));
    expect(prefixSuccessor(b(0x61, 0xff))).toEqual(b(0x62));
    expect(prefixSuccessor(b(0x00, 0xff, 0xff))).toEqual(b(0x01));
    expect(prefixSuccessor(b(0x01, 0xfe, 0xff))).toEqual(b(0x01, 0xff));
    expect(prefixSuccessor(b(0x00))).toEqual(b(0x01));
  });

  it('is undefined for the empty prefix and for all-0xff prefixes', () => {
    expect(prefixSuccessor(Buffer.alloc(0))).toBeUndefined();
    expect(prefixSuccessor(b(0xff))).toBeUndefined();
    expect(prefixSuccessor(b(0xff, 0xff, 0xff))).toBeUndefined();
  });

  it('does not modify its input and works on plain Uint8Array views', () => {
    const input = b(0x10, 0x20, 0xff);
    const out = prefixSuccessor(input);
    expect(input).toEqual(b(0x10, 0x20, 0xff));
    expect(out).toEqual(b(0x10, 0x21));
    const backing = new Uint8Array([9, 9, 0x41, 0x42, 9]);
    expect(prefixSuccessor(backing.subarray(2, 4))).toEqual(Buffer.from('AC'));
    expect(backing).toEqual(new Uint8Array([9, 9, 0x41, 0x42, 9]));
  });

  it('is greater than every key with the prefix and no greater than the next key without it (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 6 }), fc.uint8Array({ maxLength: 6 }), (prefix, other) => {
        const succ = prefixSuccessor(prefix);
        const p = Buffer.from(prefix);
        const o = Buffer.from(other);
        const hasPrefix = o.length >= p.length && o.subarray(0, p.length).equals(p);
        if (succ === undefined) {
          // only empty or all-0xff prefixes have no successor
          expect(p.every((x) => x === 0xff)).toBe(true);
          return;
        }
        expect(compareBytes(succ, p)).toBeGreaterThan(0);
        if (hasPrefix) {
          expect(compareBytes(o, succ)).toBeLessThan(0);
        } else if (compareBytes(o, p) > 0) {
          // a key above the prefix that does not start with it is >= the successor
          expect(compareBytes(o, succ)).toBeGreaterThanOrEqual(0);
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('describeKey', () => {
  it('renders printable ASCII as a quoted string', () => {
    expect(describeKey(Buffer.from('user:42'))).toBe('"user:42"');
    expect(describeKey(Buffer.from(' ~'))).toBe('" ~"');
    expect(describeKey(Buffer.alloc(0))).toBe('""');
    expect(describeKey(Buffer.from('say "hi"'))).toBe('"say \\"hi\\""');
  });

  it('renders anything with a non-printable byte as hex', () => {
    expect(describeKey(b(0x00, 0x01, 0xff))).toBe('0x0001ff');
    expect(describeKey(Buffer.from('abc\n'))).toBe('0x6162630a');
    expect(describeKey(b(0x7f))).toBe('0x7f');
    expect(describeKey(b(0x1f))).toBe('0x1f');
    expect(describeKey(Buffer.from('héllo'))).toMatch(/^0x/);
  });

  it('truncates long keys and says how long they are', () => {
    const long = Buffer.from('a'.repeat(100));
    expect(describeKey(long)).toBe(`"${'a'.repeat(48)}"…(100 bytes)`);
    expect(describeKey(long, 4)).toBe('"aaaa"…(100 bytes)');
    expect(describeKey(Buffer.alloc(10, 0xab), 3)).toBe('0xababab…(10 bytes)');
    // exactly maxBytes: no suffix
    expect(describeKey(Buffer.from('abcd'), 4)).toBe('"abcd"');
  });

  it('judges printability only on the bytes shown', () => {
    const key = Buffer.concat([Buffer.from('abc'), b(0x00)]);
    expect(describeKey(key, 3)).toBe('"abc"…(4 bytes)');
    expect(describeKey(key)).toBe('0x61626300');
  });
});

describe('isAllZero', () => {
  it('checks only the half-open range [start, end)', () => {
    const buf = b(1, 0, 0, 0, 2);
    expect(isAllZero(buf, 1, 4)).toBe(true);
    expect(isAllZero(buf, 0, 4)).toBe(false);
    expect(isAllZero(buf, 1, 5)).toBe(false);
    expect(isAllZero(buf, 3, 3)).toBe(true);
    expect(isAllZero(buf, 4, 4)).toBe(true);
    expect(isAllZero(Buffer.alloc(0), 0, 0)).toBe(true);
  });

  it('agrees with a straightforward model (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 40 }).map((a) => a.map((x) => (x < 200 ? 0 : x))),
        fc.nat(),
        fc.nat(),
        (data, s, e) => {
          const start = data.length === 0 ? 0 : s % (data.length + 1);
          const end = start + (data.length === 0 ? 0 : e % (data.length - start + 1));
          const expected = Array.from(data.subarray(start, end)).every((x) => x === 0);
          expect(isAllZero(data, start, end)).toBe(expected);
        },
      ),
    );
  });
});

describe('buffer helpers', () => {
  it('toBuffer encodes strings as UTF-8 and views Uint8Arrays without copying', () => {
    expect(toBuffer('é')).toEqual(b(0xc3, 0xa9));
    const buf = Buffer.from('abc');
    expect(toBuffer(buf)).toBe(buf);
    const u8 = new Uint8Array([1, 2, 3, 4]).subarray(1, 3);
    const view = toBuffer(u8);
    expect(view).toEqual(b(2, 3));
    u8[0] = 9;
    expect(view[0]).toBe(9);
  });

  it('copyBuffer owns its memory', () => {
    const src = Buffer.from('abc');
    const copy = copyBuffer(src);
    src[0] = 0x7a;
    expect(copy.toString()).toBe('abc');
    expect(copyBuffer(Buffer.alloc(0)).length).toBe(0);
  });

  it('compareBytes orders bytewise with shorter prefixes first', () => {
    expect(compareBytes(Buffer.from('a'), Buffer.from('ab'))).toBeLessThan(0);
    expect(compareBytes(Buffer.from('b'), Buffer.from('ab'))).toBeGreaterThan(0);
    expect(compareBytes(b(0xff), b(0x00, 0x00))).toBeGreaterThan(0);
    expect(compareBytes(Buffer.from('ab'), Buffer.from('ab'))).toBe(0);
  });
});
