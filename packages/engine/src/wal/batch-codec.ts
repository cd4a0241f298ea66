/**
 * The payload of a WAL `WriteBatch` record: every entry of one write request, so a request is one
 * record and replay applies it whole or not at all.
 *
 *     varint count (> 0)
 *     count × ( u8 meta | varint keyLen | internal key | [varint expiresAt] | varint valueLen | value )
 *
 * `expiresAt` is present only when the meta byte has the expiry bit.
 */

import {
  type Entry,
  type EntryKind,
  isValidMeta,
  KIND_PUT,
  META_HAS_EXPIRY,
  META_VALUE_POINTER,
  makeMeta,
} from '../keys/entry.js';
import { INTERNAL_KEY_OVERHEAD, isValidInternalKey, MAX_VERSION } from '../keys/internal-key.js';
import { readVarint, VarintError, varintLength, writeVarint } from '../util/varint.js';
import { POINTER_BYTES, recordPayloadBytes, writeRecordPayload } from '../vlog/vlog-format.js';

export const WAL_RECORD_WRITE_BATCH = 1;

/** Smallest possible encoded entry: meta, key length, a 9-byte key, value length. */
const MIN_ENTRY_BYTES = 1 + 1 + 9 + 1;

/** Exact encoded size of `entries`. */
export function encodedBatchSize(entries: readonly Entry[]): number {
  let size = varintLength(entries.length);
  for (const e of entries) size += encodedEntrySize(e);
  return size;
}

export function encodedEntrySize(e: Entry): number {
  return (
    1 +
    varintLength(e.key.length) +
    e.key.length +
    (e.meta & META_HAS_EXPIRY ? varintLength(e.expiresAt) : 0) +
    varintLength(e.value.length) +
    e.value.length
  );
}

/** Encodes `entries` into `out` at `offset`; returns the offset after them. */
export function writeBatch(out: Buffer, offset: number, entries: readonly Entry[]): number {
  let pos = writeVarint(out, offset, entries.length);
  for (const e of entries) {
    out[pos++] = e.meta;
    pos = writeVarint(out, pos, e.key.length);
    out.set(e.key, pos);
    pos += e.key.length;
    if (e.meta & META_HAS_EXPIRY) pos = writeVarint(out, pos, e.expiresAt);
    pos = writeVarint(out, pos, e.value.length);
    out.set(e.value, pos);
    pos += e.value.length;
  }
  return pos;
}

/** Thrown by `decodeBatch`; the caller adds the file and record offset. */
export class BatchDecodeError extends Error {}

/**
 * Decodes a batch payload. Keys and values are views into `payload`. Throws `BatchDecodeError`
 * unless the payload is exactly one well-formed batch.
 */
export function decodeBatch(payload: Buffer): Entry[] {
  try {
    let [count, pos] = readVarint(payload, 0);
    if (count === 0) throw new BatchDecodeError('empty batch');
    if (count > (payload.length - pos) / MIN_ENTRY_BYTES) {
      throw new BatchDecodeError(`entry count ${count} cannot fit in ${payload.length} bytes`);
    }
    const entries: Entry[] = new Array(count);
    for (let i = 0; i < count; i++) {
      if (pos >= payload.length) throw new BatchDecodeError(`entry ${i} is missing`);
      const meta = payload[pos++]!;
      if (!isValidMeta(meta))
        throw new BatchDecodeError(`entry ${i} has unknown meta 0x${meta.toString(16)}`);
      let keyLen: number;
      [keyLen, pos] = readVarint(payload, pos);
      if (pos + keyLen > payload.length) throw new BatchDecodeError(`entry ${i} key runs past the payload`);
      const key = payload.subarray(pos, pos + keyLen);
      if (!isValidInternalKey(key)) throw new BatchDecodeError(`entry ${i} has a malformed internal key`);
      pos += keyLen;
      let expiresAt = 0;
      if (meta & META_HAS_EXPIRY) [expiresAt, pos] = readVarint(payload, pos);
      let valueLen: number;
      [valueLen, pos] = readVarint(payload, pos);
      if (pos + valueLen > payload.length)
        throw new BatchDecodeError(`entry ${i} value runs past the payload`);
      entries[i] = { key, meta, expiresAt, value: payload.subarray(pos, pos + valueLen) };
      pos += valueLen;
    }
    if (pos !== payload.length) {
      throw new BatchDecodeError(`${payload.length - pos} trailing bytes after ${count} entries`);
    }
    return entries;
  } catch (err) {
    if (err instanceof VarintError) throw new BatchDecodeError(err.message);
    throw err;
  }
}

/** One write to encode: a user key plus what to store, with an optional explicit version. */
export interface WriteToEncode {
  cf: number;
  kind: EntryKind;
  key: Uint8Array;
  value: Uint8Array;
  expiresAt: number;
  version: bigint | undefined;
}

/** A value that goes to the value log: its record payload and where its pointer goes. */
export interface SeparatedValue {
  /** Record payload (see `vlog-format.ts`); its key copy is stamped with the entry's version. */
  payload: Buffer;
  /** The internal key inside `payload`. */
  key: Buffer;
  /** The entry's value: 12 bytes of the WAL payload that the pointer is written into. */
  pointer: Buffer;
  /** The WAL entry whose version `key` must match. */
  entry: Entry;
}

export interface EncodedBatch {
  /** The WAL batch payload. */
  payload: Buffer;
  /** The entries, as views into `payload` (keys are internal keys). */
  entries: Entry[];
  /** Entries written without a version: the commit stamps their key suffix in place. */
  unstamped: Entry[];
  /** Values at or above the separation threshold, bound for the value log. */
  separated: SeparatedValue[];
}

/**
 * Encodes writes straight into one batch payload: the only copy of their bytes the write path
 * makes. Memtable entries are views into the payload, which is what the WAL holds as well.
 * A put whose value is at least `valueThreshold` bytes keeps only a pointer in the payload; its
 * value is copied into a value-log record instead.
 */
export function encodeBatch(
  writes: readonly WriteToEncode[],
  alloc: (bytes: number) => Buffer = Buffer.allocUnsafe,
  valueThreshold = Number.POSITIVE_INFINITY,
): EncodedBatch {
  let size = varintLength(writes.length);
  for (const w of writes) {
    const keyLen = w.key.length + INTERNAL_KEY_OVERHEAD;
    const stored = isSeparated(w, valueThreshold) ? POINTER_BYTES : w.value.length;
    size += 1 + varintLength(keyLen) + keyLen + varintLength(stored) + stored;
    if (w.expiresAt > 0) size += varintLength(w.expiresAt);
  }
  const payload = alloc(size);
  const entries: Entry[] = new Array(writes.length);
  const unstamped: Entry[] = [];
  const separated: SeparatedValue[] = [];
  let pos = writeVarint(payload, 0, writes.length);
  for (let i = 0; i < writes.length; i++) {
    const w = writes[i]!;
    const toLog = isSeparated(w, valueThreshold);
    const meta = makeMeta(w.kind, w.expiresAt) | (toLog ? META_VALUE_POINTER : 0);
    payload[pos++] = meta;
    const keyLen = w.key.length + INTERNAL_KEY_OVERHEAD;
    pos = writeVarint(payload, pos, keyLen);
    const keyStart = pos;
    payload[pos++] = w.cf;
    payload.set(w.key, pos);
    pos += w.key.length;
    payload.writeBigUInt64BE(MAX_VERSION - (w.version ?? 0n), pos);
    pos += 8;
    if (meta & META_HAS_EXPIRY) pos = writeVarint(payload, pos, w.expiresAt);
    const stored = toLog ? POINTER_BYTES : w.value.length;
    pos = writeVarint(payload, pos, stored);
    if (!toLog) payload.set(w.value, pos);
    const entry: Entry = {
      key: payload.subarray(keyStart, keyStart + keyLen),
      meta,
      expiresAt: w.expiresAt,
      value: payload.subarray(pos, pos + stored),
    };
    pos += stored;
    entries[i] = entry;
    if (w.version === undefined) unstamped.push(entry);
    if (toLog) {
      const record = Buffer.allocUnsafe(recordPayloadBytes(keyLen, w.value.length));
      const keyAt = writeRecordPayload(record, 0, entry.key, w.value);
      separated.push({
        payload: record,
        key: record.subarray(keyAt, keyAt + keyLen),
        pointer: entry.value,
        entry,
      });
    }
  }
  return { payload, entries, unstamped, separated };
}

function isSeparated(w: WriteToEncode, threshold: number): boolean {
  return w.kind === KIND_PUT && w.value.length >= threshold;
}
