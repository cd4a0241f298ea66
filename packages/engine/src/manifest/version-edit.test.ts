import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeInternalKey, MAX_VERSION } from '../keys/internal-key.js';
import { writeVarint } from '../util/varint.js';
import { decodeEdit, emptyEdit, encodeEdit, type FileMetadata, type VersionEdit } from './version-edit.js';

const ik = (user: string, version: bigint) => encodeInternalKey(0, Buffer.from(user), version);

const file = (number: number, over: Partial<FileMetadata> = {}): FileMetadata => ({
  number,
  size: 4096 + number,
  smallest: ik(`a${number}`, 9n),
  largest: ik(`z${number}`, 1n),
  minVersion: 1n,
  maxVersion: 9n,
  entries: 100,
  deletions: 3,
  rangeDeletions: 1,
  rawKeyBytes: 1500,
  rawValueBytes: 9000,
  createdAtMs: 1_700_000_000_000,
  ...over,
});

describe('version edit codec', () => {
  it('round-trips an empty edit to an empty record', () => {
    const enc = encodeEdit(emptyEdit());
    expect(enc.length).toBe(0);
    expect(decodeEdit(enc)).toEqual(emptyEdit());
  });

  it('round-trips every field', () => {
    const edit: VersionEdit = {
      isSnapshot: true,
      logNumber: 17,
      nextFileNumber: 42,
      lastVersion: MAX_VERSION - 1n,
      deletedFiles: [
        { level: 0, number: 5 },
        { level: 6, number: 2 ** 40 },
      ],
      newFiles: [
        { level: 1, file: file(7) },
        {
          level: 6,
          file: file(8, {
            size: Number.MAX_SAFE_INTEGER,
            minVersion: 0n,
            maxVersion: MAX_VERSION,
            createdAtMs: 0,
            smallest: ik('', 0n),
            largest: Buffer.concat([ik('big', 3n), Buffer.alloc(0)]),
          }),
        },
      ],
    };
    expect(decodeEdit(encodeEdit(edit))).toEqual(edit);
  });

  it('leaves absent optional fields absent', () => {
    const edit: VersionEdit = { logNumber: 3, deletedFiles: [], newFiles: [] };
    const back = decodeEdit(encodeEdit(edit));
    expect(back).toEqual(edit);
    expect('nextFileNumber' in back).toBe(false);
    expect('lastVersion' in back).toBe(false);
    expect(back.isSnapshot).toBeUndefined();
  });

  it('handles keys longer than the size estimate assumes', () => {
    const long = encodeInternalKey(0, Buffer.alloc(5000, 0x61), 1n);
    const edit: VersionEdit = {
      deletedFiles: [],
      newFiles: [{ level: 2, file: file(9, { smallest: long, largest: long }) }],
    };
    expect(decodeEdit(encodeEdit(edit))).toEqual(edit);
  });

  it('round-trips arbitrary edits (property)', () => {
    const arbKey = fc.uint8Array({ maxLength: 30 }).map((u) => Buffer.from(u));
    const arbFile = fc.record({
      number: fc.nat({ max: 2 ** 40 }),
      size: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
      smallest: arbKey,
      largest: arbKey,
      minVersion: fc.bigInt({ min: 0n, max: MAX_VERSION }),
      maxVersion: fc.bigInt({ min: 0n, max: MAX_VERSION }),
      entries: fc.nat(),
      deletions: fc.nat(),
      rangeDeletions: fc.nat(),
      rawKeyBytes: fc.nat(),
      rawValueBytes: fc.nat(),
      createdAtMs: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
    });
    const arbEdit = fc.record(
      {
        isSnapshot: fc.constant(true),
        logNumber: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
        nextFileNumber: fc.nat({ max: Number.MAX_SAFE_INTEGER }),
        lastVersion: fc.bigInt({ min: 0n, max: MAX_VERSION }),
        deletedFiles: fc.array(fc.record({ level: fc.nat({ max: 6 }), number: fc.nat() }), { maxLength: 5 }),
        newFiles: fc.array(fc.record({ level: fc.nat({ max: 6 }), file: arbFile }), { maxLength: 5 }),
      },
      { requiredKeys: ['deletedFiles', 'newFiles'] },
    );
    fc.assert(
      fc.property(arbEdit, (edit) => {
        expect(decodeEdit(encodeEdit(edit))).toEqual(edit);
      }),
      { numRuns: 300 },
    );
  });

  it('throws on an unknown tag', () => {
    expect(() => decodeEdit(Buffer.from([99]))).toThrow(/unknown edit tag 99/);
    expect(() => decodeEdit(Buffer.from([0]))).toThrow(/unknown edit tag 0/);
    // after valid fields too
    const good = encodeEdit({ logNumber: 5, deletedFiles: [], newFiles: [] });
    expect(() => decodeEdit(Buffer.concat([good, Buffer.from([42])]))).toThrow(/unknown edit tag 42/);
  });

  it('throws on truncated fields', () => {
    const enc = encodeEdit({
      logNumber: 300,
      lastVersion: 2n ** 60n,
      deletedFiles: [{ level: 1, number: 9 }],
      newFiles: [{ level: 1, file: file(7) }],
    });
    // every proper prefix that ends inside a field fails; a prefix ending at a field boundary is a valid
    // (shorter) edit, so only check that decoding never returns garbage silently
    let failures = 0;
    for (let n = 1; n < enc.length; n++) {
      try {
        const back = decodeEdit(enc.subarray(0, n));
        expect(back.logNumber).toBe(300);
      } catch (err) {
        expect(err).toBeInstanceOf(Error);
        failures++;
      }
    }
    expect(failures).toBeGreaterThan(enc.length / 2);
    // a varint cut short
    expect(() => decodeEdit(Buffer.from([1, 0x80]))).toThrow(/truncated/);
    // a key length running past the record
    const lie = Buffer.alloc(16);
    let p = 0;
    lie[p++] = 5; // new file
    p = writeVarint(lie, p, 1);
    p = writeVarint(lie, p, 2);
    p = writeVarint(lie, p, 3);
    p = writeVarint(lie, p, 200); // smallest key length
    expect(() => decodeEdit(lie.subarray(0, p + 2))).toThrow(/runs past/);
  });
});

describe('value log fields', () => {
  it('round-trip deleted segments and garbage counts', () => {
    const edit = encodeEdit({
      deletedFiles: [],
      newFiles: [],
      vlogDeleted: [4, 9],
      vlogDiscard: [
        { segment: 12, bytes: 4096 },
        { segment: 13, bytes: 1 },
      ],
    });
    const back = decodeEdit(edit);
    expect(back.vlogDeleted).toEqual([4, 9]);
    expect(back.vlogDiscard).toEqual([
      { segment: 12, bytes: 4096 },
      { segment: 13, bytes: 1 },
    ]);
  });
});
