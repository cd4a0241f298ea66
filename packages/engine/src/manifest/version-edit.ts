/**
 * A version edit: one atomic change to the table set, stored as one manifest record (type 1).
 * Fields are tagged so later formats can add fields; an unknown tag is corruption.
 *
 *     tag 1  v   logNumber        WAL segments numbered below this are flushed and obsolete
 *     tag 2  v   nextFileNumber
 *     tag 3  bv  lastVersion      highest default-CF version the database has handed out
 *     tag 4  v level, v number    deleted table
 *     tag 5  new table: v level, v number, v size, lv smallest, lv largest, bv minVersion,
 *            bv maxVersion, v entries, v deletions, v rangeDeletions, v rawKeyBytes,
 *            v rawValueBytes, v createdAtMs
 *     tag 6  (no body)           this record is a full snapshot (the first record of a manifest)
 *     tag 7  v   segment          value log segment deleted by GC
 *     tag 8  v segment, v bytes   garbage found in a value log segment (compaction dropped
 *                                 entries pointing into it); adds up across edits
 */

import { readBigVarint, readVarint, VarintError, writeBigVarint, writeVarint } from '../util/varint.js';

export const MANIFEST_RECORD_EDIT = 1;

export interface FileMetadata {
  number: number;
  size: number;
  smallest: Buffer;
  largest: Buffer;
  minVersion: bigint;
  maxVersion: bigint;
  entries: number;
  deletions: number;
  rangeDeletions: number;
  rawKeyBytes: number;
  rawValueBytes: number;
  createdAtMs: number;
}

export interface VersionEdit {
  logNumber?: number;
  nextFileNumber?: number;
  lastVersion?: bigint;
  deletedFiles: { level: number; number: number }[];
  newFiles: { level: number; file: FileMetadata }[];
  isSnapshot?: boolean;
  vlogDeleted?: number[];
  vlogDiscard?: { segment: number; bytes: number }[];
}

const TAG_LOG_NUMBER = 1;
const TAG_NEXT_FILE = 2;
const TAG_LAST_VERSION = 3;
const TAG_DELETED_FILE = 4;
const TAG_NEW_FILE = 5;
const TAG_SNAPSHOT = 6;
const TAG_VLOG_DELETED = 7;
const TAG_VLOG_DISCARD = 8;

export function emptyEdit(): VersionEdit {
  return { deletedFiles: [], newFiles: [] };
}

export function encodeEdit(edit: VersionEdit): Buffer {
  let size = 64;
  for (const { file } of edit.newFiles) size += file.smallest.length + file.largest.length + 128;
  size += edit.deletedFiles.length * 24;
  size += ((edit.vlogDeleted?.length ?? 0) + (edit.vlogDiscard?.length ?? 0)) * 24;
  const out = Buffer.allocUnsafe(size);
  let p = 0;
  if (edit.isSnapshot) out[p++] = TAG_SNAPSHOT;
  if (edit.logNumber !== undefined) {
    out[p++] = TAG_LOG_NUMBER;
    p = writeVarint(out, p, edit.logNumber);
  }
  if (edit.nextFileNumber !== undefined) {
    out[p++] = TAG_NEXT_FILE;
    p = writeVarint(out, p, edit.nextFileNumber);
  }
  if (edit.lastVersion !== undefined) {
    out[p++] = TAG_LAST_VERSION;
    p = writeBigVarint(out, p, edit.lastVersion);
  }
  for (const n of edit.vlogDeleted ?? []) {
    out[p++] = TAG_VLOG_DELETED;
    p = writeVarint(out, p, n);
  }
  for (const d of edit.vlogDiscard ?? []) {
    out[p++] = TAG_VLOG_DISCARD;
    p = writeVarint(out, p, d.segment);
    p = writeVarint(out, p, d.bytes);
  }
  for (const d of edit.deletedFiles) {
    out[p++] = TAG_DELETED_FILE;
    p = writeVarint(out, p, d.level);
    p = writeVarint(out, p, d.number);
  }
  for (const { level, file: f } of edit.newFiles) {
    out[p++] = TAG_NEW_FILE;
    p = writeVarint(out, p, level);
    p = writeVarint(out, p, f.number);
    p = writeVarint(out, p, f.size);
    p = writeVarint(out, p, f.smallest.length);
    p += f.smallest.copy(out, p);
    p = writeVarint(out, p, f.largest.length);
    p += f.largest.copy(out, p);
    p = writeBigVarint(out, p, f.minVersion);
    p = writeBigVarint(out, p, f.maxVersion);
    for (const n of [
      f.entries,
      f.deletions,
      f.rangeDeletions,
      f.rawKeyBytes,
      f.rawValueBytes,
      f.createdAtMs,
    ]) {
      p = writeVarint(out, p, n);
    }
  }
  return out.subarray(0, p);
}

/** Decodes an edit; throws `Error` with a reason (the caller adds file and offset). */
export function decodeEdit(data: Buffer): VersionEdit {
  const edit = emptyEdit();
  let p = 0;
  const num = (): number => {
    const [v, next] = readVarint(data, p);
    p = next;
    return v;
  };
  const big = (): bigint => {
    const [v, next] = readBigVarint(data, p);
    p = next;
    return v;
  };
  const bytes = (): Buffer => {
    const n = num();
    if (p + n > data.length) throw new Error('key runs past the record');
    const out = Buffer.from(data.subarray(p, p + n));
    p += n;
    return out;
  };
  try {
    while (p < data.length) {
      const tag = data[p++];
      switch (tag) {
        case TAG_SNAPSHOT:
          edit.isSnapshot = true;
          break;
        case TAG_LOG_NUMBER:
          edit.logNumber = num();
          break;
        case TAG_NEXT_FILE:
          edit.nextFileNumber = num();
          break;
        case TAG_LAST_VERSION:
          edit.lastVersion = big();
          break;
        case TAG_VLOG_DELETED:
          edit.vlogDeleted = [...(edit.vlogDeleted ?? []), num()];
          break;
        case TAG_VLOG_DISCARD: {
          const segment = num();
          edit.vlogDiscard = [...(edit.vlogDiscard ?? []), { segment, bytes: num() }];
          break;
        }
        case TAG_DELETED_FILE: {
          const level = num();
          edit.deletedFiles.push({ level, number: num() });
          break;
        }
        case TAG_NEW_FILE: {
          const level = num();
          const number = num();
          const size = num();
          const smallest = bytes();
          const largest = bytes();
          const minVersion = big();
          const maxVersion = big();
          const [entries, deletions, rangeDeletions, rawKeyBytes, rawValueBytes, createdAtMs] = [
            num(),
            num(),
            num(),
            num(),
            num(),
            num(),
          ];
          edit.newFiles.push({
            level,
            file: {
              number,
              size,
              smallest,
              largest,
              minVersion,
              maxVersion,
              entries,
              deletions,
              rangeDeletions,
              rawKeyBytes,
              rawValueBytes,
              createdAtMs,
            },
          });
          break;
        }
        default:
          throw new Error(`unknown edit tag ${tag}`);
      }
    }
  } catch (err) {
    if (err instanceof VarintError) throw new Error(err.message);
    throw err;
  }
  return edit;
}
