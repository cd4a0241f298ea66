/**
 * Record framing shared by WAL segments and the manifest. A file is a sequence of records:
 *
 *     offset 0   u32le headerCrc    CRC32C of bytes [4, 16)
 *     offset 4   u32le payloadLen
 *     offset 8   u32le payloadCrc   CRC32C of the payload
 *     offset 12  u8    type
 *     offset 13  u8[3] zero
 *     offset 16  payload
 *
 * The header has its own checksum so a damaged length is told apart from a record that was cut
 * short: a header that verifies but runs past the end of the file can only be a torn append.
 *
 * Scanning a file classifies damage:
 * - Torn tail (only allowed when `allowTornTail`, i.e. for the newest file): what an interrupted
 *   append can leave behind and nothing else: a partial header, a verified header whose payload
 *   runs past the end of the file, a zero-filled remainder (also when only the header made it to
 *   disk: no valid payload is all zeros), or a last record whose payload ends in whole zeroed
 *   sectors (the first pages of the append persisted, the rest did not). Replay cuts the file
 *   there and reports it.
 * - Anything else, including a complete record whose checksum fails, is `CorruptionError` naming
 *   the file and the record's offset: such a record may have been acknowledged, so it is never
 *   dropped silently.
 */

import { CorruptionError } from '../errors.js';
import { isAllZero } from '../util/bytes.js';
import { crc32c } from '../util/crc32c.js';

export const RECORD_HEADER_BYTES = 16;
/** Upper bound on one record's payload; larger lengths in a verified header mean a bug. */
export const MAX_RECORD_PAYLOAD_BYTES = 1 << 30;

/** Storage writes land in whole sectors; a torn append's lost part is a run of them. */
const SECTOR_BYTES = 512;

/**
 * True when the file ends, inside the payload `[payloadStart, end)` of its last record, in a run
 * of zero bytes covering at least one whole sector: what a power loss leaves when the first pages
 * of an append reached the disk and the rest did not. Anything after `end` must be zeros too.
 */
function endsInUnwrittenSectors(data: Buffer, payloadStart: number, end: number): boolean {
  let zeroFrom = data.length;
  while (zeroFrom > payloadStart && data[zeroFrom - 1] === 0) zeroFrom--;
  if (zeroFrom > end) return false;
  const sectorStart = Math.ceil(zeroFrom / SECTOR_BYTES) * SECTOR_BYTES;
  return sectorStart >= payloadStart && sectorStart < end;
}

/** Encodes one record into `out` at `offset`; returns the offset after it. */
export function writeRecord(out: Buffer, offset: number, type: number, payload: Uint8Array): number {
  out.writeUInt32LE(payload.length, offset + 4);
  out.writeUInt32LE(crc32c(payload), offset + 8);
  out[offset + 12] = type;
  out[offset + 13] = 0;
  out[offset + 14] = 0;
  out[offset + 15] = 0;
  out.writeUInt32LE(crc32c(out.subarray(offset + 4, offset + RECORD_HEADER_BYTES)), offset);
  out.set(payload, offset + RECORD_HEADER_BYTES);
  return offset + RECORD_HEADER_BYTES + payload.length;
}

/**
 * Frames a payload already written at `out[offset + 16, offset + 16 + payloadLength)` by filling
 * in the header before it; returns the offset after the record. Saves a copy on the WAL path.
 */
export function frameRecordInPlace(out: Buffer, offset: number, type: number, payloadLength: number): number {
  const start = offset + RECORD_HEADER_BYTES;
  out.writeUInt32LE(payloadLength, offset + 4);
  out.writeUInt32LE(crc32c(out.subarray(start, start + payloadLength)), offset + 8);
  out[offset + 12] = type;
  out[offset + 13] = 0;
  out[offset + 14] = 0;
  out[offset + 15] = 0;
  out.writeUInt32LE(crc32c(out.subarray(offset + 4, start)), offset);
  return start + payloadLength;
}

/** Writes the 16-byte header of a record holding `payload` at `out[offset]`. */
export function writeRecordHeader(out: Buffer, offset: number, type: number, payload: Uint8Array): void {
  out.writeUInt32LE(payload.length, offset + 4);
  out.writeUInt32LE(crc32c(payload), offset + 8);
  out[offset + 12] = type;
  out[offset + 13] = 0;
  out[offset + 14] = 0;
  out[offset + 15] = 0;
  out.writeUInt32LE(crc32c(out.subarray(offset + 4, offset + RECORD_HEADER_BYTES)), offset);
}

/** Encodes one record as a new buffer. */
export function encodeRecord(type: number, payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payload.length);
  writeRecord(out, 0, type, payload);
  return out;
}

export interface LogRecord {
  type: number;
  payload: Buffer;
  /** Offset of the record's header in the file. */
  offset: number;
}

export interface TornTail {
  file: string;
  /** Where the valid prefix ends; the file is cut here. */
  offset: number;
  droppedBytes: number;
  reason: string;
}

export interface ScanResult {
  records: LogRecord[];
  /** End of the last valid record. */
  validEnd: number;
  tornTail?: TornTail;
}

/**
 * Splits `data` (a whole file) into records. `file` names the file in errors and reports.
 * Throws `CorruptionError` on damage that cannot be a torn tail.
 */
export function scanRecords(data: Buffer, file: string, allowTornTail: boolean): ScanResult {
  const records: LogRecord[] = [];
  const size = data.length;
  let pos = 0;
  const torn = (reason: string): ScanResult => {
    if (!allowTornTail) {
      throw new CorruptionError(file, pos, `${reason} (in a file that must be complete)`);
    }
    return { records, validEnd: pos, tornTail: { file, offset: pos, droppedBytes: size - pos, reason } };
  };
  while (pos < size) {
    const remaining = size - pos;
    if (remaining < RECORD_HEADER_BYTES) {
      return torn(`partial record header (${remaining} bytes)`);
    }
    const headerCrc = data.readUInt32LE(pos);
    if (crc32c(data.subarray(pos + 4, pos + RECORD_HEADER_BYTES)) !== headerCrc) {
      if (isAllZero(data, pos, size)) return torn(`zero-filled tail (${remaining} bytes)`);
      throw new CorruptionError(file, pos, 'record header checksum mismatch');
    }
    const length = data.readUInt32LE(pos + 4);
    const payloadCrc = data.readUInt32LE(pos + 8);
    const type = data[pos + 12]!;
    if (
      length > MAX_RECORD_PAYLOAD_BYTES ||
      data[pos + 13] !== 0 ||
      data[pos + 14] !== 0 ||
      data[pos + 15] !== 0
    ) {
      throw new CorruptionError(file, pos, `record header is malformed (length ${length})`);
    }
    const end = pos + RECORD_HEADER_BYTES + length;
    if (end > size) {
      return torn(`record of ${length} bytes runs past the end of the file`);
    }
    const payload = data.subarray(pos + RECORD_HEADER_BYTES, end);
    if (crc32c(payload) !== payloadCrc) {
      if (isAllZero(data, pos + RECORD_HEADER_BYTES, size)) return torn('record header without its payload');
      if (endsInUnwrittenSectors(data, pos + RECORD_HEADER_BYTES, end)) {
        return torn('last record ends in zero-filled sectors (partly written)');
      }
      throw new CorruptionError(file, pos, 'record payload checksum mismatch');
    }
    records.push({ type, payload, offset: pos });
    pos = end;
  }
  return { records, validEnd: pos };
}
