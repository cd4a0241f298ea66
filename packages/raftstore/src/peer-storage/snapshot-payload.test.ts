import { createHash } from 'node:crypto';
import { crc32c } from '@node-rs/crc32';
import { buildExternalTable, type ExternalTableEntry } from '@nokv/engine';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { CorruptSnapshotError } from './errors.js';
import {
  decodeSnapshotPayload,
  encodeLegacySnapshotPayload,
  encodeSnapshotPayload,
  type SnapshotPayload,
  type VersionedRecord,
} from './snapshot-payload.js';
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
    records: [
      { cf: 'lock', key: b('k'), version: 20n, expiresAt: 0, value: b('L') },
      { cf: 'write', key: b('k'), version: 15n, expiresAt: 0, value: b('W15') },
      { cf: 'write', key: b('k'), version: 12n, expiresAt: 0, value: b('W12') },
      { cf: 'data', key: b('k'), version: 10n, expiresAt: 1_900_000_000_000, value: b('D') },
    ],
  };
}

const plainPairs = (p: SnapshotPayload) => p.pairs.map(([k, v]) => [Buffer.from(k), Buffer.from(v)]);
const plainRecords = (rs: VersionedRecord[] | undefined) =>
  (rs ?? []).map((r) => ({ ...r, key: Buffer.from(r.key), value: Buffer.from(r.value) }));

function corruptCode(bytes: Uint8Array): string | undefined {
  try {
    decodeSnapshotPayload(bytes);
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(CorruptSnapshotError);
    return (err as CorruptSnapshotError).code;
  }
}

const sha = (data: Uint8Array) => createHash('sha256').update(data).digest();

// A version-3 payload taken apart and put back together with a valid whole-payload hash, to reach
// the checks behind it.
interface Parts {
  meta: {
    tables: {
      name: string;
      cf: string;
      entries: number;
      bytes: number;
      smallest: string;
      largest: string;
      sha256: string;
    }[];
    [k: string]: unknown;
  };
  tables: Buffer[];
  trailing?: Buffer;
}

function split(bytes: Buffer): Parts {
  const n = bytes.readUInt32BE(5);
  const meta = JSON.parse(bytes.subarray(9, 9 + n).toString('utf8')) as Parts['meta'];
  const tables: Buffer[] = [];
  let o = 9 + n;
  for (const t of meta.tables) {
    tables.push(Buffer.from(bytes.subarray(o, o + t.bytes)));
    o += t.bytes;
  }
  return { meta, tables };
}

function assemble(p: Parts, rawMeta?: Buffer): Buffer {
  const json = rawMeta ?? Buffer.from(JSON.stringify(p.meta));
  const head = Buffer.alloc(9);
  b('NKVS').copy(head);
  head[4] = 3;
  head.writeUInt32BE(json.length, 5);
  const body = Buffer.concat([head, json, ...p.tables, p.trailing ?? Buffer.alloc(0)]);
  return Buffer.concat([body, sha(body)]);
}

/** Replaces table `i` with `bytes`, fixing its size and hash in the metadata. */
function withTable(p: Parts, i: number, bytes: Buffer, entries?: number): Parts {
  const tables = [...p.tables];
  tables[i] = bytes;
  const meta = structuredClone(p.meta);
  meta.tables[i]!.bytes = bytes.length;
  meta.tables[i]!.sha256 = sha(bytes).toString('hex');
  if (entries !== undefined) meta.tables[i]!.entries = entries;
  return { meta, tables };
}

const raw = (key: string): ExternalTableEntry => ({
  cf: 'default',
  key: b(key),
  version: 0n,
  kind: 'put',
  expiresAt: 0,
  value: b('v'),
});

describe('snapshot payload (version 3: SST tables)', () => {
  test('round-trips pairs and transaction records', () => {
    const p = sample();
    const bytes = encodeSnapshotPayload(p);
    expect(bytes.subarray(0, 4).toString()).toBe('NKVS');
    expect(bytes[4]).toBe(3);
    const d = decodeSnapshotPayload(bytes);
    expect(d.region).toEqual(p.region);
    expect(d.appliedIndex).toBe(1234n);
    expect(d.appliedTerm).toBe(7n);
    expect(plainPairs(d)).toEqual(plainPairs(p));
    expect(plainRecords(d.records)).toEqual(plainRecords(p.records));
    const { meta } = split(bytes);
    expect(meta).toMatchObject({ version: 3, entry_count: 4, record_count: 4, table_count: 2 });
    expect(meta.tables.map((t) => [t.cf, t.entries])).toEqual([
      ['default', 4],
      ['txn', 4],
    ]);
    expect(meta.tables[0]!.sha256).toBe(sha(split(bytes).tables[0]!).toString('hex'));
  });

  test('large regions are split into tables of bounded size; unsorted records are sorted', () => {
    const pairs: Array<[Uint8Array, Uint8Array]> = Array.from({ length: 300 }, (_, i) => [
      b(`k${String(i).padStart(4, '0')}`),
      Buffer.alloc(100, i),
    ]);
    const records: VersionedRecord[] = [
      { cf: 'data', key: b('k0001'), version: 5n, expiresAt: 0, value: b('x') },
      { cf: 'lock', key: b('k0002'), version: 6n, expiresAt: 0, value: b('y') },
      { cf: 'write', key: b('k0001'), version: 7n, expiresAt: 0, value: b('z') },
    ];
    const p: SnapshotPayload = { region: testRegion(1n), appliedIndex: 9n, appliedTerm: 2n, pairs, records };
    const bytes = encodeSnapshotPayload(p, { maxTableBytes: 4096 });
    const { meta } = split(bytes);
    expect(meta.tables.length).toBeGreaterThan(4);
    for (const t of meta.tables) expect(t.bytes).toBeLessThan(4096 + 2048);
    const d = decodeSnapshotPayload(bytes);
    expect(plainPairs(d)).toEqual(plainPairs(p));
    expect(d.records!.map((r) => r.cf)).toEqual(['lock', 'write', 'data']);
  });

  test('an empty region round-trips', () => {
    const p = { ...sample(), pairs: [], records: [] };
    const bytes = encodeSnapshotPayload(p);
    expect(split(bytes).meta.tables).toEqual([]);
    const d = decodeSnapshotPayload(bytes);
    expect(d.pairs).toEqual([]);
    expect(d.records).toEqual([]);
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

  test('damage behind a valid payload hash is caught by the table hashes, block checksums and key checks', () => {
    const parts = split(encodeSnapshotPayload(sample()));
    expect(decodeSnapshotPayload(assemble(parts)).pairs.length).toBe(4);
    // A table byte changed, its hash in the metadata not.
    const flipped = structuredClone(parts);
    flipped.tables[0]![10]! ^= 1;
    expect(() => decodeSnapshotPayload(assemble(flipped))).toThrow(/SHA-256 mismatch/);
    // ... and with the hash updated too: the table's own block checksums catch it.
    const damaged = Buffer.from(parts.tables[0]!);
    damaged[10]! ^= 1;
    expect(() => decodeSnapshotPayload(assemble(withTable(parts, 0, damaged)))).toThrow(/checksum/);
    // A valid table whose keys lie outside the region [a, q).
    const outside = buildExternalTable([raw('a'), raw('z')]);
    expect(() => decodeSnapshotPayload(assemble(withTable(parts, 0, outside, 2)))).toThrow(
      /outside the region/,
    );
    // Keys out of order across two tables.
    const t1 = buildExternalTable([raw('c')]);
    const t2 = buildExternalTable([raw('b')]);
    const twoTables: Parts = structuredClone(parts);
    twoTables.meta.tables = [structuredClone(parts.meta.tables[0]!), ...parts.meta.tables];
    twoTables.tables = [t1, ...parts.tables];
    let unordered = withTable(twoTables, 0, t1, 1);
    unordered = withTable(unordered, 1, t2, 1);
    unordered.meta.table_count = 3;
    unordered.meta.entry_count = 2;
    for (const [i, t] of [t1, t2].entries()) {
      const key = Buffer.concat([Buffer.from([0]), t === t1 ? b('c') : b('b'), Buffer.alloc(8, 0xff)]);
      unordered.meta.tables[i]!.smallest = key.toString('hex');
      unordered.meta.tables[i]!.largest = key.toString('hex');
    }
    expect(() => decodeSnapshotPayload(assemble(unordered))).toThrow(/ascending/);
    // Counts that disagree with the tables.
    const miscounted = structuredClone(parts);
    miscounted.meta.entry_count = 5;
    expect(() => decodeSnapshotPayload(assemble(miscounted))).toThrow(/metadata says 5/);
    const wrongEntries = structuredClone(parts);
    wrongEntries.meta.tables[0]!.entries = 3;
    expect(() => decodeSnapshotPayload(assemble(wrongEntries))).toThrow(/metadata says 3/);
    const wrongBounds = structuredClone(parts);
    wrongBounds.meta.tables[0]!.smallest = '00';
    expect(() => decodeSnapshotPayload(assemble(wrongBounds))).toThrow(/smallest/);
    // Framing: bytes after the tables, a table running past the payload, bad metadata.
    expect(() => decodeSnapshotPayload(assemble({ ...parts, trailing: Buffer.from([1, 2]) }))).toThrow(
      /after the last table/,
    );
    const overrun = structuredClone(parts);
    overrun.meta.tables[1]!.bytes += 100;
    expect(() => decodeSnapshotPayload(assemble(overrun))).toThrow(/runs past/);
    expect(() => decodeSnapshotPayload(assemble(parts, b('{not json')))).toThrow(/not JSON/);
    const missing = structuredClone(parts);
    delete missing.meta.applied_index;
    expect(() => decodeSnapshotPayload(assemble(missing))).toThrow(/missing applied_index/);
    const badU64 = structuredClone(parts);
    badU64.meta.applied_term = '18446744073709551616';
    expect(() => decodeSnapshotPayload(assemble(badU64))).toThrow(/not a u64/);
    const v9 = assemble(parts);
    v9[4] = 9;
    expect(() => decodeSnapshotPayload(v9)).toThrow(/version 9/);
  });

  test('random bytes never crash the decoder', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.constantFrom(1, 2, 3), (bytes, version) => {
        const body = Buffer.concat([b('NKVS'), Buffer.from([version]), bytes]);
        const sealed =
          version === 3 ? Buffer.concat([body, sha(body)]) : Buffer.concat([body, u32(crc32c(body) >>> 0)]);
        try {
          decodeSnapshotPayload(sealed);
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
          const d = decodeSnapshotPayload(encodeSnapshotPayload(p, { maxTableBytes: 256 }));
          expect(d.appliedIndex).toBe(index);
          expect(plainPairs(d)).toEqual(plainPairs(p));
        },
      ),
      { numRuns: 100 },
    );
  });
});

function u32(n: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(n >>> 0);
  return out;
}

/** Re-seals a legacy body (everything but the CRC) with a valid CRC, to reach the checks behind it. */
function seal(body: Uint8Array): Buffer {
  return Buffer.concat([body, u32(crc32c(Buffer.from(body)) >>> 0)]);
}

describe('snapshot payload (versions 1 and 2, still decoded)', () => {
  test('round-trip, and every flipped byte is CorruptSnapshot', () => {
    for (const version of [1, 2] as const) {
      const p = sample();
      const bytes = encodeLegacySnapshotPayload(p, version);
      expect(bytes[4]).toBe(version);
      const d = decodeSnapshotPayload(bytes);
      expect(d.region).toEqual(p.region);
      expect(plainPairs(d)).toEqual(plainPairs(p));
      if (version === 2) expect(plainRecords(d.records)).toEqual(plainRecords(p.records));
      else expect(d.records).toBeUndefined();
      for (let i = 0; i < bytes.length; i++) {
        const c = Buffer.from(bytes);
        c[i]! ^= 0x01;
        expect(corruptCode(c), `v${version} byte ${i}`).toBe('CorruptSnapshot');
      }
    }
  });

  test('framing errors behind a valid checksum are caught too', () => {
    const bytes = encodeLegacySnapshotPayload({ ...sample(), records: [] }, 2);
    const body = bytes.subarray(0, bytes.length - 4);
    expect(() => decodeSnapshotPayload(seal(Buffer.concat([body, Buffer.from([1, 2])])))).toThrow(
      /trailing bytes/,
    );
    expect(() => decodeSnapshotPayload(seal(body.subarray(0, body.length - 2)))).toThrow(/record count/);
    expect(() => decodeSnapshotPayload(seal(body.subarray(0, body.length - 10)))).toThrow(/value of pair 3/);
    const regionLen = body.readUInt32BE(5);
    const forged = Buffer.from(body);
    forged.writeBigUInt64BE(1n << 60n, 9 + regionLen + 16);
    expect(() => decodeSnapshotPayload(seal(forged))).toThrow(/pair count/);
    const unordered = encodeLegacySnapshotPayload({
      ...sample(),
      pairs: [
        [b('b'), b('')],
        [b('a'), b('')],
      ],
    });
    expect(() => decodeSnapshotPayload(unordered)).toThrow(/ascending/);
    const outside = encodeLegacySnapshotPayload({ ...sample(), pairs: [[b('z'), b('')]] });
    expect(() => decodeSnapshotPayload(outside)).toThrow(/outside the region/);
  });
});
