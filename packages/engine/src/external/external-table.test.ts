import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CorruptionError, InvalidArgumentError } from '../errors.js';
import {
  buildExternalTable,
  ExternalTableBuilder,
  type ExternalTableEntry,
  readExternalTable,
} from './external-table.js';

const b = (s: string) => Buffer.from(s);

function sample(): ExternalTableEntry[] {
  return [
    { cf: 'default', key: b('a'), version: 0n, kind: 'put', expiresAt: 0, value: b('') },
    { cf: 'default', key: b('apple'), version: 0n, kind: 'put', expiresAt: 0, value: b('red') },
    { cf: 'default', key: b('b'), version: 0n, kind: 'put', expiresAt: 1_900_000_000_000, value: b('x') },
    { cf: 'lock', key: b('k1'), version: 10n, kind: 'put', expiresAt: 0, value: b('lock') },
    { cf: 'write', key: b('k1'), version: 12n, kind: 'put', expiresAt: 0, value: b('w12') },
    { cf: 'write', key: b('k1'), version: 11n, kind: 'delete', expiresAt: 0, value: b('') },
    { cf: 'data', key: b('k1'), version: 10n, kind: 'put', expiresAt: 0, value: Buffer.alloc(5000, 3) },
  ];
}

function plain(entries: ExternalTableEntry[]) {
  return entries.map((e) => ({ ...e, key: Buffer.from(e.key), value: Buffer.from(e.value) }));
}

function outcome(bytes: Uint8Array, expected: ExternalTableEntry[]): 'detected' | 'harmless' | 'missed' {
  try {
    const got = readExternalTable(bytes);
    return JSON.stringify(plain(got), bigints) === JSON.stringify(plain(expected), bigints)
      ? 'harmless'
      : 'missed';
  } catch (err) {
    expect(err).toBeInstanceOf(CorruptionError);
    return 'detected';
  }
}

function bigints(_k: string, v: unknown): unknown {
  return typeof v === 'bigint' ? `${v}n` : v;
}

describe('external tables', () => {
  it('round-trips entries of every column family, with versions, deletes and expiry', () => {
    const entries = sample();
    const bytes = buildExternalTable(entries, { blockBytes: 64 });
    expect(plain(readExternalTable(bytes))).toEqual(plain(entries));
  });

  it('an empty table round-trips', () => {
    const bytes = buildExternalTable([]);
    expect(bytes.length).toBeGreaterThan(0);
    expect(readExternalTable(bytes)).toEqual([]);
    const { info } = new ExternalTableBuilder().finish();
    expect(info).toEqual({ entries: 0, smallest: Buffer.alloc(0), largest: Buffer.alloc(0) });
  });

  it('refuses entries out of order, duplicates and bad versions', () => {
    const e = sample();
    expect(() => buildExternalTable([e[1]!, e[0]!])).toThrow(InvalidArgumentError);
    expect(() => buildExternalTable([e[0]!, e[0]!])).toThrow(/out of order/);
    // Within a key, newer versions come first.
    expect(() => buildExternalTable([e[5]!, e[4]!])).toThrow(/out of order/);
    expect(() => buildExternalTable([{ ...e[0]!, version: -1n }])).toThrow(/version/);
    const builder = new ExternalTableBuilder();
    builder.finish();
    expect(() => builder.add(e[0]!)).toThrow(/finished/);
  });

  it('every single-byte corruption and every truncation is detected or harmless', () => {
    // Small blocks and compressible values: many blocks, LZ4 ones among them.
    const entries: ExternalTableEntry[] = Array.from({ length: 40 }, (_, i) => ({
      cf: 'default',
      key: b(`key-${String(i).padStart(3, '0')}`),
      version: 0n,
      kind: 'put',
      expiresAt: 0,
      value: Buffer.alloc(50 + i, i),
    }));
    const bytes = buildExternalTable(entries, { blockBytes: 256 });
    let detected = 0;
    for (let i = 0; i < bytes.length; i++) {
      for (const flip of [0x01, 0x80, 0xff]) {
        const c = Buffer.from(bytes);
        c[i]! ^= flip;
        const o = outcome(c, entries);
        expect(o, `byte ${i} ^ ${flip}`).not.toBe('missed');
        if (o === 'detected') detected++;
      }
    }
    expect(detected).toBeGreaterThan(bytes.length * 2);
    for (let n = 0; n < bytes.length; n++) {
      expect(outcome(bytes.subarray(0, n), entries), `length ${n}`).toBe('detected');
    }
    expect(outcome(Buffer.concat([Buffer.alloc(1), bytes]), entries)).toBe('detected');
  });

  it('random entry sets round-trip', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.uint8Array({ minLength: 0, maxLength: 10 }), {
          selector: (k) => Buffer.from(k).toString('hex'),
          maxLength: 60,
        }),
        fc.integer({ min: 32, max: 2048 }),
        (keys, blockBytes) => {
          const entries: ExternalTableEntry[] = keys
            .map((k) => Buffer.from(k))
            .sort(Buffer.compare)
            .map((k, i) => ({
              cf: 'data',
              key: k,
              version: BigInt(i),
              kind: i % 3 === 0 ? 'delete' : 'put',
              expiresAt: 0,
              value: i % 3 === 0 ? Buffer.alloc(0) : Buffer.concat([k, k]),
            }));
          expect(plain(readExternalTable(buildExternalTable(entries, { blockBytes })))).toEqual(
            plain(entries),
          );
        },
      ),
      { numRuns: 200 },
    );
  });
});
