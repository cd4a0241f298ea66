import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32c } from './crc32c.js';

describe('crc32c', () => {
  it('matches the standard check value for "123456789"', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
  });

  it('matches the RFC 3720 (iSCSI) test vectors', () => {
    expect(crc32c(Buffer.alloc(32, 0x00))).toBe(0x8a9136aa);
    expect(crc32c(Buffer.alloc(32, 0xff))).toBe(0x62a8ab43);
    const inc = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
    expect(crc32c(inc)).toBe(0x46dd794e);
    const dec = Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i));
    expect(crc32c(dec)).toBe(0x113fdb5c);
  });

  it('is 0 for empty input and always an unsigned 32-bit number', () => {
    expect(crc32c(Buffer.alloc(0))).toBe(0);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (data) => {
        const c = crc32c(data);
        expect(Number.isInteger(c)).toBe(true);
        expect(c).toBeGreaterThanOrEqual(0);
        expect(c).toBeLessThanOrEqual(0xffff_ffff);
      }),
    );
  });

  it('gives the same result for a Buffer and a plain Uint8Array view of the same bytes', () => {
    const backing = new Uint8Array(Buffer.from('xx123456789yy'));
    const view = backing.subarray(2, 11);
    expect(crc32c(view)).toBe(0xe3069283);
  });

  it('continues a running checksum: crc(b, crc(a)) === crc(a ++ b) (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 200 }), (a, b) => {
        const whole = Buffer.concat([a, b]);
        expect(crc32c(b, crc32c(a))).toBe(crc32c(whole));
      }),
      { numRuns: 300 },
    );
  });

  it('continues across many chunks', () => {
    const data = Buffer.from('The quick brown fox jumps over the lazy dog, again and again and again.');
    let running = 0;
    for (let i = 0; i < data.length; i += 7) running = crc32c(data.subarray(i, i + 7), running);
    expect(running).toBe(crc32c(data));
    expect(crc32c(Buffer.from('56789'), crc32c(Buffer.from('1234')))).toBe(0xe3069283);
  });

  it('detects every single-bit flip of a small message', () => {
    const data = Buffer.from('123456789');
    const good = crc32c(data);
    for (let i = 0; i < data.length * 8; i++) {
      const copy = Buffer.from(data);
      copy[i >> 3] = copy[i >> 3]! ^ (1 << (i & 7));
      expect(crc32c(copy)).not.toBe(good);
    }
  });
});
