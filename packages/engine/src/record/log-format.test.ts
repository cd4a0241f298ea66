import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CorruptionError } from '../errors.js';
import { crc32c } from '../util/crc32c.js';
import {
  encodeRecord,
  frameRecordInPlace,
  MAX_RECORD_PAYLOAD_BYTES,
  RECORD_HEADER_BYTES,
  type ScanResult,
  scanRecords,
  writeRecord,
} from './log-format.js';

const FILE = '/db/000007.wal';

interface Rec {
  type: number;
  payload: Buffer;
}

function encodeAll(records: readonly Rec[]): { data: Buffer; offsets: number[] } {
  const offsets: number[] = [];
  const parts: Buffer[] = [];
  let pos = 0;
  for (const r of records) {
    offsets.push(pos);
    const enc = encodeRecord(r.type, r.payload);
    parts.push(enc);
    pos += enc.length;
  }
  return { data: Buffer.concat(parts), offsets };
}

function sample(n: number): Rec[] {
  return Array.from({ length: n }, (_, i) => ({
    type: (i % 3) + 1,
    payload: Buffer.from(`payload-${i}-${'x'.repeat(i * 7)}`),
  }));
}

function catchError(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected a throw');
}

function expectCorruption(fn: () => unknown, offset: number, detail?: RegExp): CorruptionError {
  const err = catchError(fn);
  expect(err).toBeInstanceOf(CorruptionError);
  const c = err as CorruptionError;
  expect(c.file).toBe(FILE);
  expect(c.offset).toBe(offset);
  expect(c.code).toBe('Corruption');
  if (detail) expect(c.message).toMatch(detail);
  return c;
}

function expectRecords(scan: ScanResult, records: readonly Rec[], offsets: readonly number[]): void {
  expect(scan.records.length).toBe(records.length);
  scan.records.forEach((r, i) => {
    expect(r.type).toBe(records[i]!.type);
    expect(r.payload.equals(records[i]!.payload)).toBe(true);
    expect(r.offset).toBe(offsets[i]);
  });
}

describe('record encoding', () => {
  it('writes the documented header', () => {
    const payload = Buffer.from('hello');
    const rec = encodeRecord(9, payload);
    expect(rec.length).toBe(RECORD_HEADER_BYTES + 5);
    expect(rec.readUInt32LE(4)).toBe(5);
    expect(rec.readUInt32LE(8)).toBe(crc32c(payload));
    expect(rec[12]).toBe(9);
    expect([...rec.subarray(13, 16)]).toEqual([0, 0, 0]);
    expect(rec.readUInt32LE(0)).toBe(crc32c(rec.subarray(4, 16)));
    expect(rec.subarray(16).toString()).toBe('hello');
  });

  it('writeRecord, frameRecordInPlace and encodeRecord produce identical bytes', () => {
    const payload = Buffer.from('some payload bytes');
    const viaEncode = encodeRecord(3, payload);
    const out = Buffer.alloc(8 + viaEncode.length, 0xcc);
    const end = writeRecord(out, 8, 3, payload);
    expect(end).toBe(out.length);
    expect(out.subarray(8).equals(viaEncode)).toBe(true);
    const inPlace = Buffer.alloc(viaEncode.length, 0xdd);
    payload.copy(inPlace, RECORD_HEADER_BYTES);
    expect(frameRecordInPlace(inPlace, 0, 3, payload.length)).toBe(inPlace.length);
    expect(inPlace.equals(viaEncode)).toBe(true);
  });
});

describe('scanRecords: intact files', () => {
  it('returns nothing for an empty file', () => {
    expect(scanRecords(Buffer.alloc(0), FILE, false)).toEqual({ records: [], validEnd: 0 });
    expect(scanRecords(Buffer.alloc(0), FILE, true)).toEqual({ records: [], validEnd: 0 });
  });

  it('round-trips many records, including empty payloads', () => {
    const records: Rec[] = [...sample(200), { type: 0, payload: Buffer.alloc(0) }, ...sample(3)];
    const { data, offsets } = encodeAll(records);
    for (const allow of [true, false]) {
      const scan = scanRecords(data, FILE, allow);
      expectRecords(scan, records, offsets);
      expect(scan.validEnd).toBe(data.length);
      expect(scan.tornTail).toBeUndefined();
    }
  });

  it('round-trips arbitrary records (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ type: fc.nat({ max: 255 }), payload: fc.uint8Array({ maxLength: 100 }) }), {
          maxLength: 20,
        }),
        (raw) => {
          const records = raw.map((r) => ({ type: r.type, payload: Buffer.from(r.payload) }));
          const { data, offsets } = encodeAll(records);
          const scan = scanRecords(data, FILE, false);
          expectRecords(scan, records, offsets);
          expect(scan.validEnd).toBe(data.length);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('handles a large payload', () => {
    const big = Buffer.alloc(300_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    const records = [{ type: 1, payload: big }, ...sample(2)];
    const { data, offsets } = encodeAll(records);
    expectRecords(scanRecords(data, FILE, false), records, offsets);
  });
});

describe('scanRecords: torn tails (allowTornTail = true)', () => {
  const records = sample(5);
  const { data, offsets } = encodeAll(records);
  const lastOffset = offsets[offsets.length - 1]!;

  function expectTorn(file: Buffer, keep: number, reason: RegExp): ScanResult {
    const scan = scanRecords(file, FILE, true);
    expectRecords(scan, records.slice(0, keep), offsets.slice(0, keep));
    const end = keep === records.length ? data.length : offsets[keep]!;
    expect(scan.validEnd).toBe(end);
    expect(scan.tornTail).toBeDefined();
    expect(scan.tornTail!.file).toBe(FILE);
    expect(scan.tornTail!.offset).toBe(end);
    expect(scan.tornTail!.droppedBytes).toBe(file.length - end);
    expect(scan.tornTail!.reason).toMatch(reason);
    return scan;
  }

  it('a partial header after the last record', () => {
    for (const extra of [1, 5, RECORD_HEADER_BYTES - 1]) {
      const next = encodeRecord(1, Buffer.from('next one'));
      expectTorn(Buffer.concat([data, next.subarray(0, extra)]), 5, /partial record header/);
    }
  });

  it('a cut inside the last record header', () => {
    expectTorn(data.subarray(0, lastOffset + 7), 4, /partial record header/);
  });

  it('a verified header whose payload runs past the end of the file', () => {
    // cut the last record one byte short, and right after its header
    expectTorn(data.subarray(0, data.length - 1), 4, /runs past the end/);
    expectTorn(data.subarray(0, lastOffset + RECORD_HEADER_BYTES), 4, /runs past the end/);
  });

  it('a zero-filled tail (whole headers of zeros)', () => {
    const scan = expectTorn(Buffer.concat([data, Buffer.alloc(100)]), 5, /zero-filled/);
    expect(scan.tornTail!.droppedBytes).toBe(100);
    expectTorn(Buffer.concat([data, Buffer.alloc(RECORD_HEADER_BYTES)]), 5, /zero-filled/);
  });

  it('a zero-filled tail over the last record (its bytes never reached the disk)', () => {
    const file = Buffer.from(data);
    file.fill(0, lastOffset);
    expectTorn(file, 4, /zero-filled/);
  });

  it('a header that landed without its payload (payload and rest all zeros)', () => {
    const file = Buffer.from(data);
    file.fill(0, lastOffset + RECORD_HEADER_BYTES);
    expectTorn(file, 4, /header without its payload/);
    // also when the zeros run on past the record's end
    const longer = Buffer.concat([data.subarray(0, lastOffset + RECORD_HEADER_BYTES), Buffer.alloc(4096)]);
    const scan = expectTorn(longer, 4, /header without its payload/);
    expect(scan.tornTail!.droppedBytes).toBe(RECORD_HEADER_BYTES + 4096);
  });

  it('a file that is nothing but a torn first record', () => {
    const first = encodeRecord(1, Buffer.from('only'));
    const scan = scanRecords(first.subarray(0, first.length - 2), FILE, true);
    expect(scan.records).toEqual([]);
    expect(scan.validEnd).toBe(0);
    expect(scan.tornTail).toMatchObject({ file: FILE, offset: 0, droppedBytes: first.length - 2 });
  });
});

describe('scanRecords: corruption', () => {
  const records = sample(5);
  const { data, offsets } = encodeAll(records);

  it('a bad payload checksum in a middle record names that record', () => {
    for (const victim of [0, 2, 3]) {
      const file = Buffer.from(data);
      const at = offsets[victim]! + RECORD_HEADER_BYTES + 3;
      file[at] = file[at]! ^ 0xff;
      for (const allow of [true, false]) {
        expectCorruption(() => scanRecords(file, FILE, allow), offsets[victim]!, /payload checksum/);
      }
    }
  });

  it('a complete last record whose payload checksum fails is corruption, never dropped silently', () => {
    const lastOffset = offsets[4]!;
    const file = Buffer.from(data);
    file[file.length - 2] = file[file.length - 2]! ^ 0x40;
    for (const allow of [true, false]) {
      expectCorruption(() => scanRecords(file, FILE, allow), lastOffset, /payload checksum/);
    }
    // followed by zeros it is still a complete (acknowledgeable) record: corruption
    const zeros = Buffer.concat([file, Buffer.alloc(40)]);
    expectCorruption(() => scanRecords(zeros, FILE, true), lastOffset, /payload checksum/);
  });

  it('a bad header checksum in a middle record names that record', () => {
    const file = Buffer.from(data);
    file[offsets[2]! + 5] = file[offsets[2]! + 5]! ^ 0x01; // damages the length field
    expectCorruption(() => scanRecords(file, FILE, true), offsets[2]!, /header checksum/);
  });

  it('garbage (not zeros) after the last record is corruption, not a torn tail', () => {
    const file = Buffer.concat([data, Buffer.alloc(RECORD_HEADER_BYTES + 4, 0x5a)]);
    expectCorruption(() => scanRecords(file, FILE, true), data.length, /header checksum/);
  });

  it('a last-record payload mismatch with non-zero bytes after it is corruption', () => {
    const file = Buffer.concat([data, Buffer.from([0, 0, 7])]);
    const last = offsets[4]!;
    file[last + RECORD_HEADER_BYTES] = file[last + RECORD_HEADER_BYTES]! ^ 1;
    expectCorruption(() => scanRecords(file, FILE, true), last, /payload checksum/);
  });

  it('a verified header with non-zero reserved bytes is corruption', () => {
    const rec = encodeRecord(1, Buffer.from('abc'));
    rec[14] = 1;
    rec.writeUInt32LE(crc32c(rec.subarray(4, 16)), 0);
    expectCorruption(() => scanRecords(Buffer.concat([data, rec]), FILE, true), data.length, /malformed/);
  });

  it('a verified header with an absurd length is corruption even at the tail', () => {
    const rec = Buffer.alloc(RECORD_HEADER_BYTES);
    rec.writeUInt32LE(MAX_RECORD_PAYLOAD_BYTES + 1, 4);
    rec.writeUInt32LE(crc32c(rec.subarray(4, 16)), 0);
    expectCorruption(() => scanRecords(Buffer.concat([data, rec]), FILE, true), data.length, /malformed/);
  });

  it('every kind of tail damage is corruption when the file must be complete', () => {
    const lastOffset = offsets[4]!;
    const noPayload = Buffer.from(data);
    noPayload.fill(0, lastOffset + RECORD_HEADER_BYTES);
    const cases: [Buffer, number][] = [
      [Buffer.concat([data, Buffer.alloc(5, 0x11)]), data.length], // partial header
      [data.subarray(0, lastOffset + 9), lastOffset], // cut inside the header
      [data.subarray(0, data.length - 1), lastOffset], // payload runs past EOF
      [Buffer.concat([data, Buffer.alloc(64)]), data.length], // zero-filled tail
      [noPayload, lastOffset], // header landed, payload did not
      [data.subarray(0, lastOffset), -1], // no damage at all: control case
    ];
    for (const [file, offset] of cases) {
      if (offset < 0) {
        expect(scanRecords(file, FILE, false).records.length).toBe(4);
        continue;
      }
      expect(scanRecords(file, FILE, true).tornTail).toBeDefined();
      expectCorruption(() => scanRecords(file, FILE, false), offset, /must be complete/);
    }
  });

  it('a single flipped byte anywhere yields CorruptionError or a prefix of the records (property)', () => {
    const many = Array.from({ length: 8 }, (_, i) => ({
      type: i + 1,
      payload: Buffer.from(`rec-${i}-`.repeat(i + 1)),
    }));
    const enc = encodeAll(many);
    fc.assert(
      fc.property(fc.nat({ max: enc.data.length - 1 }), fc.integer({ min: 1, max: 255 }), (pos, mask) => {
        const file = Buffer.from(enc.data);
        file[pos] = file[pos]! ^ mask;
        // The record holding the damaged byte and everything after it must not be returned.
        let damaged = 0;
        while (damaged + 1 < enc.offsets.length && enc.offsets[damaged + 1]! <= pos) damaged++;
        for (const allow of [true, false]) {
          let scan: ScanResult;
          try {
            scan = scanRecords(file, FILE, allow);
          } catch (err) {
            expect(err).toBeInstanceOf(CorruptionError);
            expect((err as CorruptionError).offset).toBe(enc.offsets[damaged]);
            continue;
          }
          expect(allow).toBe(true); // a complete file never silently loses a record
          expect(scan.records.length).toBeLessThanOrEqual(damaged);
          expectRecords(scan, many.slice(0, scan.records.length), enc.offsets);
          expect(scan.tornTail).toBeDefined();
        }
      }),
      { numRuns: 1500 },
    );
  });

  it('every single flipped byte is detected (exhaustive over a small file)', () => {
    const small = encodeAll(sample(3));
    for (let pos = 0; pos < small.data.length; pos++) {
      const file = Buffer.from(small.data);
      file[pos] = file[pos]! ^ 0x01;
      expect(() => scanRecords(file, FILE, false)).toThrow(CorruptionError);
      try {
        const scan = scanRecords(file, FILE, true);
        expect(scan.tornTail).toBeDefined();
        expect(scan.records.length).toBeLessThan(3);
      } catch (err) {
        expect(err).toBeInstanceOf(CorruptionError);
      }
    }
  });
});

describe('partly written final record (power loss mid-append)', () => {
  const big = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i % 251) + 1));

  it('is a torn tail when its payload ends in whole zeroed sectors', () => {
    const { data, offsets } = encodeAll([
      { type: 1, payload: Buffer.from('first') },
      { type: 1, payload: big(4000) },
    ]);
    const last = offsets[1]!;
    // The first sector of the append reached the disk, the rest reads back as zeros.
    const persistedUpTo = Math.ceil((last + 600) / 512) * 512;
    data.fill(0, persistedUpTo);
    const r = scanRecords(data, FILE, true);
    expect(r.records).toHaveLength(1);
    expect(r.tornTail).toMatchObject({ offset: last, droppedBytes: data.length - last });
    expect(() => scanRecords(data, FILE, false)).toThrow(CorruptionError);
  });

  it('is corruption when a complete last record has a flipped byte, even amid zeros', () => {
    const payload = big(4000);
    payload.fill(0, 100, 300); // zeros inside the payload, but not reaching the end
    const { data, offsets } = encodeAll([
      { type: 1, payload: Buffer.from('first') },
      { type: 1, payload },
    ]);
    const flip = offsets[1]! + RECORD_HEADER_BYTES + 2000;
    data[flip] = data[flip]! ^ 0x10;
    expect(() => scanRecords(data, FILE, true)).toThrow(CorruptionError);
  });

  it('is corruption when the zero run at the end covers no whole sector', () => {
    const { data } = encodeAll([{ type: 1, payload: big(4000) }]);
    // 4016 bytes; zeroing the last 40 (from 3976) covers no sector (the next boundary is 4096),
    // so this is not what a lost page looks like.
    expect(data.length).toBe(4016);
    data.fill(0, data.length - 40);
    expect(() => scanRecords(data, FILE, true)).toThrow(CorruptionError);
  });
});
