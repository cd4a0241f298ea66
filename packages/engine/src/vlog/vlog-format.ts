/**
 * Value log formats.
 *
 * A segment (`NNNNNN.vlog`, numbered from the shared file counter) is a sequence of records in
 * the framing of `record/log-format.ts`, type 2, each holding one value and the internal key it
 * was written under:
 *
 *     payload = varint keyLen | internal key | value
 *
 * The key lets GC ask the LSM whether the record is still live, and lets a read check that a
 * pointer leads where it should.
 *
 * A pointer (the LSM's value for an entry with the value-pointer bit) is 12 bytes:
 *
 *     u32le segment number | u32le record offset | u32le record length (header included)
 */

import { CorruptionError } from '../errors.js';
import { compareRange } from '../keys/internal-key.js';
import { RECORD_HEADER_BYTES } from '../record/log-format.js';
import { crc32c } from '../util/crc32c.js';
import { readVarint, VarintError, varintLength, writeVarint } from '../util/varint.js';

export const VLOG_RECORD_VALUE = 2;
export const POINTER_BYTES = 12;

export interface ValuePointer {
  segment: number;
  offset: number;
  length: number;
}

export function writePointer(out: Buffer, at: number, p: ValuePointer): void {
  out.writeUInt32LE(p.segment, at);
  out.writeUInt32LE(p.offset, at + 4);
  out.writeUInt32LE(p.length, at + 8);
}

/** Decodes a pointer; throws `CorruptionError` (naming `file`) when it is not 12 bytes. */
export function readPointer(buf: Uint8Array, file: string): ValuePointer {
  if (buf.length !== POINTER_BYTES) {
    throw new CorruptionError(file, 0, `value pointer of ${buf.length} bytes (expected ${POINTER_BYTES})`);
  }
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  return { segment: b.readUInt32LE(0), offset: b.readUInt32LE(4), length: b.readUInt32LE(8) };
}

/** Payload bytes of a record for `keyLength` and `valueLength`. */
export function recordPayloadBytes(keyLength: number, valueLength: number): number {
  return varintLength(keyLength) + keyLength + valueLength;
}

/** Writes a record payload into `out` at `at`; returns where the key starts (for version stamping). */
export function writeRecordPayload(out: Buffer, at: number, key: Uint8Array, value: Uint8Array): number {
  const keyAt = writeVarint(out, at, key.length);
  out.set(key, keyAt);
  out.set(value, keyAt + key.length);
  return keyAt;
}

export interface DecodedRecord {
  key: Buffer;
  value: Buffer;
}

/**
 * Checks and decodes a whole record (header + payload) read from `file` at `offset`: both
 * checksums, the type, and the length. Keys and values are views into `raw`.
 */
export function decodeValueRecord(raw: Buffer, file: string, offset: number): DecodedRecord {
  if (raw.length < RECORD_HEADER_BYTES) throw new CorruptionError(file, offset, 'value record is truncated');
  if (crc32c(raw.subarray(4, RECORD_HEADER_BYTES)) !== raw.readUInt32LE(0)) {
    throw new CorruptionError(file, offset, 'value record header checksum mismatch');
  }
  const length = raw.readUInt32LE(4);
  if (raw[12] !== VLOG_RECORD_VALUE || RECORD_HEADER_BYTES + length !== raw.length) {
    throw new CorruptionError(file, offset, `not a value record of ${raw.length} bytes`);
  }
  const payload = raw.subarray(RECORD_HEADER_BYTES);
  if (crc32c(payload) !== raw.readUInt32LE(8)) {
    throw new CorruptionError(file, offset, 'value record payload checksum mismatch');
  }
  try {
    const [keyLength, keyAt] = readVarint(payload, 0);
    if (keyAt + keyLength > payload.length)
      throw new CorruptionError(file, offset, 'value record key is truncated');
    return { key: payload.subarray(keyAt, keyAt + keyLength), value: payload.subarray(keyAt + keyLength) };
  } catch (err) {
    if (err instanceof VarintError) throw new CorruptionError(file, offset, err.message);
    throw err;
  }
}

/** True when `a` and `b` hold the same bytes. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && compareRange(a, 0, a.length, b, 0, b.length) === 0;
}
