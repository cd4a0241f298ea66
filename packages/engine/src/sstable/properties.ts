/**
 * Table properties, stored in the properties block:
 *
 *     u8 version (1) | lv smallest | lv largest | bv minVersion | bv maxVersion
 *     | v entries | v deletions | v rangeDeletions | v dataBlocks | v rawKeyBytes | v rawValueBytes
 *     | v createdAtMs
 *
 * (v = varint, bv = u64 varint, lv = varint length + bytes.) `smallest` and `largest` are
 * internal keys bounding every point entry and range tombstone in the table; a tombstone's
 * exclusive end contributes the sentinel key (end, MAX_VERSION), which sorts before every real
 * version of `end`.
 */

import { readBigVarint, readVarint, VarintError, writeBigVarint, writeVarint } from '../util/varint.js';

export interface TableProperties {
  smallest: Buffer;
  largest: Buffer;
  minVersion: bigint;
  maxVersion: bigint;
  /** Point entries (puts and deletes). */
  entries: number;
  deletions: number;
  rangeDeletions: number;
  dataBlocks: number;
  rawKeyBytes: number;
  rawValueBytes: number;
  createdAtMs: number;
}

const PROPS_VERSION = 1;

export function encodeProperties(p: TableProperties): Buffer {
  const out = Buffer.allocUnsafe(p.smallest.length + p.largest.length + 128);
  let pos = 0;
  out[pos++] = PROPS_VERSION;
  pos = writeVarint(out, pos, p.smallest.length);
  pos += p.smallest.copy(out, pos);
  pos = writeVarint(out, pos, p.largest.length);
  pos += p.largest.copy(out, pos);
  pos = writeBigVarint(out, pos, p.minVersion);
  pos = writeBigVarint(out, pos, p.maxVersion);
  for (const n of [
    p.entries,
    p.deletions,
    p.rangeDeletions,
    p.dataBlocks,
    p.rawKeyBytes,
    p.rawValueBytes,
    p.createdAtMs,
  ]) {
    pos = writeVarint(out, pos, n);
  }
  return out.subarray(0, pos);
}

/** Decodes properties; throws `Error` with a reason on malformed input (the caller names the file). */
export function decodeProperties(data: Buffer): TableProperties {
  try {
    if (data[0] !== PROPS_VERSION) throw new Error(`unknown properties version ${data[0]}`);
    let pos = 1;
    let len: number;
    [len, pos] = readVarint(data, pos);
    if (pos + len > data.length) throw new Error('smallest key runs past the block');
    const smallest = Buffer.from(data.subarray(pos, pos + len));
    pos += len;
    [len, pos] = readVarint(data, pos);
    if (pos + len > data.length) throw new Error('largest key runs past the block');
    const largest = Buffer.from(data.subarray(pos, pos + len));
    pos += len;
    const [minVersion, afterMin] = readBigVarint(data, pos);
    const [maxVersion, afterMax] = readBigVarint(data, afterMin);
    pos = afterMax;
    const nums: number[] = [];
    for (let i = 0; i < 7; i++) {
      let n: number;
      [n, pos] = readVarint(data, pos);
      nums.push(n);
    }
    if (pos !== data.length) throw new Error(`${data.length - pos} trailing bytes`);
    const [entries, deletions, rangeDeletions, dataBlocks, rawKeyBytes, rawValueBytes, createdAtMs] =
      nums as [number, number, number, number, number, number, number];
    return {
      smallest,
      largest,
      minVersion,
      maxVersion,
      entries,
      deletions,
      rangeDeletions,
      dataBlocks,
      rawKeyBytes,
      rawValueBytes,
      createdAtMs,
    };
  } catch (err) {
    if (err instanceof VarintError) throw new Error(err.message);
    throw err;
  }
}
