/**
 * SSTable file layout (format version 1):
 *
 *     data block 0 … data block N-1 | filter block | range-del block | properties block | index block | footer
 *
 * Every block is stored as `contents | u8 compression | u32le CRC32C(contents + compression byte)`,
 * where contents may be LZ4-compressed (data blocks only, when it saves at least 1/8).
 *
 * Footer (64 bytes, little-endian):
 *
 *     0  u48 index offset      8  u32 index size
 *     12 u48 filter offset     20 u32 filter size
 *     24 u48 range-del offset  32 u32 range-del size
 *     36 u48 properties offset 44 u32 properties size
 *     48 u32 format version    52 u32 CRC32C of bytes [0, 52)
 *     56 u8[8] magic "NoKVsst" 0x01
 *
 * (Offsets are 48-bit values in 8-byte slots; sizes exclude the 5-byte block trailer.)
 */

import { compressSync, uncompressSync } from 'lz4-napi';
import { CorruptionError } from '../errors.js';
import { crc32c } from '../util/crc32c.js';

export const FOOTER_BYTES = 64;
export const BLOCK_TRAILER_BYTES = 5;
export const TABLE_FORMAT_VERSION = 1;
export const TABLE_MAGIC = Buffer.from([0x4e, 0x6f, 0x4b, 0x56, 0x73, 0x73, 0x74, 0x01]);

export const COMPRESSION_NONE = 0;
export const COMPRESSION_LZ4 = 1;

export type Compression = 'none' | 'lz4';

export interface BlockHandle {
  offset: number;
  /** Stored contents size, without the trailer. */
  size: number;
}

export interface Footer {
  index: BlockHandle;
  filter: BlockHandle;
  rangeDel: BlockHandle;
  properties: BlockHandle;
}

/** Frames `contents` as a stored block, compressing when asked and worthwhile. */
export function encodeBlock(contents: Buffer, compression: Compression): Buffer {
  let stored = contents;
  let type = COMPRESSION_NONE;
  if (compression === 'lz4' && contents.length >= 64) {
    const packed = compressSync(contents);
    if (packed.length < contents.length - (contents.length >>> 3)) {
      stored = packed;
      type = COMPRESSION_LZ4;
    }
  }
  const out = Buffer.allocUnsafe(stored.length + BLOCK_TRAILER_BYTES);
  stored.copy(out, 0);
  out[stored.length] = type;
  out.writeUInt32LE(crc32c(out.subarray(0, stored.length + 1)), stored.length + 1);
  return out;
}

/**
 * Verifies and unpacks a stored block (`raw` = contents + trailer, as read from `file` at
 * `offset`). Returns the uncompressed contents.
 */
export function decodeBlock(raw: Buffer, file: string, offset: number): Buffer {
  if (raw.length < BLOCK_TRAILER_BYTES) {
    throw new CorruptionError(file, offset, `block of ${raw.length} bytes is shorter than its trailer`);
  }
  const n = raw.length - BLOCK_TRAILER_BYTES;
  const expected = raw.readUInt32LE(n + 1);
  if (crc32c(raw.subarray(0, n + 1)) !== expected) {
    throw new CorruptionError(file, offset, 'block checksum mismatch');
  }
  const type = raw[n];
  const stored = raw.subarray(0, n);
  if (type === COMPRESSION_NONE) return stored;
  if (type === COMPRESSION_LZ4) {
    try {
      return uncompressSync(stored);
    } catch (err) {
      throw new CorruptionError(file, offset, `LZ4 block does not decompress: ${(err as Error).message}`);
    }
  }
  throw new CorruptionError(file, offset, `unknown block compression ${type}`);
}

function writeHandle(out: Buffer, at: number, h: BlockHandle): void {
  out.writeUIntLE(h.offset, at, 6);
  out.writeUInt16LE(0, at + 6);
  out.writeUInt32LE(h.size, at + 8);
}

export function encodeFooter(f: Footer): Buffer {
  const out = Buffer.alloc(FOOTER_BYTES);
  writeHandle(out, 0, f.index);
  writeHandle(out, 12, f.filter);
  writeHandle(out, 24, f.rangeDel);
  writeHandle(out, 36, f.properties);
  out.writeUInt32LE(TABLE_FORMAT_VERSION, 48);
  out.writeUInt32LE(crc32c(out.subarray(0, 52)), 52);
  TABLE_MAGIC.copy(out, 56);
  return out;
}

/** Parses and checks the footer read from the last 64 bytes of `file` (of `fileSize` bytes). */
export function decodeFooter(raw: Buffer, file: string, fileSize: number): Footer {
  const at = fileSize - FOOTER_BYTES;
  if (raw.length !== FOOTER_BYTES) throw new CorruptionError(file, at, 'table is shorter than its footer');
  if (!raw.subarray(56).equals(TABLE_MAGIC)) throw new CorruptionError(file, at + 56, 'bad table magic');
  if (crc32c(raw.subarray(0, 52)) !== raw.readUInt32LE(52)) {
    throw new CorruptionError(file, at, 'footer checksum mismatch');
  }
  const version = raw.readUInt32LE(48);
  if (version !== TABLE_FORMAT_VERSION) {
    throw new CorruptionError(file, at + 48, `unsupported table format version ${version}`);
  }
  const handle = (pos: number, name: string): BlockHandle => {
    const h = { offset: raw.readUIntLE(pos, 6), size: raw.readUInt32LE(pos + 8) };
    if (raw.readUInt16LE(pos + 6) !== 0 || h.offset + h.size + BLOCK_TRAILER_BYTES > at) {
      throw new CorruptionError(file, at + pos, `${name} block handle points outside the table`);
    }
    return h;
  };
  return {
    index: handle(0, 'index'),
    filter: handle(12, 'filter'),
    rangeDel: handle(24, 'range-del'),
    properties: handle(36, 'properties'),
  };
}
