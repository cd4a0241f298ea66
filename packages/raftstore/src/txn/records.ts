/**
 * Records of the transaction layer in the engine's `lock`, `write` and `data` column families.
 * Every key is the user key with the data prefix ('z' ‖ user key, `dataKey()`), so a region's
 * user range maps to the same engine range in every family. Integers are unsigned LEB128
 * varints (bigint-safe); the engine checksums everything, so the records carry no checksum.
 *
 *   lock  @ LOCK_VERSION (2^64-2, one version per key, rewritten in place; deleted = tombstone)
 *         0x01 ‖ u8 kind (1 put, 2 delete, 3 lock) ‖ uvarint startTs ‖ uvarint ttlMs
 *              ‖ uvarint minCommitTs ‖ uvarint len ‖ primary
 *   write @ commitTs (a rollback record: @ startTs)
 *         0x01 ‖ u8 kind (1 put, 2 delete, 3 lock, 4 rollback) ‖ u8 flags ‖ uvarint startTs
 *         flags bit 0 "overlapped rollback": the transaction whose start timestamp equals this
 *         record's version was also rolled back on this key (its rollback record would have had
 *         the same version, so it is folded into this one instead of replacing it)
 *   data  @ startTs: the value of a put, as is
 *
 * Values always live in the data family (the engine's value log already separates large ones),
 * never in the lock or write record.
 */
import { MAX_VERSION } from '@nokv/engine';
import { CorruptTxnRecordError } from './errors.js';

export type LockKind = 'put' | 'delete' | 'lock';
export type WriteKind = LockKind | 'rollback';

/** The one engine version every lock is stored at (the highest the engine accepts). */
export const LOCK_VERSION = MAX_VERSION - 1n;

export const RECORD_FORMAT = 0x01;
export const WRITE_FLAG_OVERLAPPED_ROLLBACK = 0x01;

export interface LockRecord {
  primary: Buffer;
  startTs: bigint;
  /** Milliseconds of physical time after the start timestamp's (see timestamp.ts). */
  ttl: number;
  kind: LockKind;
  /** The transaction never commits below this (pushed by checkTxnStatus for readers). */
  minCommitTs: bigint;
}

export interface WriteRecord {
  kind: WriteKind;
  startTs: bigint;
  /** The transaction started at this record's version was rolled back on the key too. */
  overlappedRollback: boolean;
}

const LOCK_KINDS: readonly LockKind[] = ['put', 'delete', 'lock'];
const WRITE_KINDS: readonly WriteKind[] = ['put', 'delete', 'lock', 'rollback'];

function varintBytes(v: bigint): number {
  let n = 1;
  while (v >= 0x80n) {
    v >>= 7n;
    n++;
  }
  return n;
}

function putVarint(b: Buffer, off: number, v: bigint): number {
  if (v < 0n) throw new RangeError(`varint must be non-negative; got ${v}`);
  while (v >= 0x80n) {
    b[off++] = Number(v & 0x7fn) | 0x80;
    v >>= 7n;
  }
  b[off++] = Number(v);
  return off;
}

class Reader {
  off = 0;
  constructor(
    private readonly b: Buffer,
    private readonly what: string,
  ) {}
  fail(msg: string): never {
    throw new CorruptTxnRecordError(`${this.what} record: ${msg}`);
  }
  u8(): number {
    if (this.off >= this.b.length) this.fail('truncated');
    return this.b[this.off++]!;
  }
  varint(): bigint {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      if (shift > 63n) this.fail('varint too long');
      const byte = this.u8();
      v |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) break;
      shift += 7n;
    }
    if (v > MAX_VERSION) this.fail('varint over 64 bits');
    return v;
  }
  bytes(n: number): Buffer {
    if (n > this.b.length - this.off) this.fail('truncated');
    const out = Buffer.from(this.b.subarray(this.off, this.off + n));
    this.off += n;
    return out;
  }
  end(): void {
    if (this.off !== this.b.length) this.fail(`${this.b.length - this.off} trailing bytes`);
  }
}

export function encodeLock(lock: LockRecord): Buffer {
  const kind = LOCK_KINDS.indexOf(lock.kind) + 1;
  if (kind === 0) throw new RangeError(`unknown lock kind ${String(lock.kind)}`);
  if (!Number.isSafeInteger(lock.ttl) || lock.ttl < 0) throw new RangeError(`bad lock ttl ${lock.ttl}`);
  const ttl = BigInt(lock.ttl);
  const len = BigInt(lock.primary.length);
  const b = Buffer.allocUnsafe(
    2 +
      varintBytes(lock.startTs) +
      varintBytes(ttl) +
      varintBytes(lock.minCommitTs) +
      varintBytes(len) +
      lock.primary.length,
  );
  b[0] = RECORD_FORMAT;
  b[1] = kind;
  let off = putVarint(b, 2, lock.startTs);
  off = putVarint(b, off, ttl);
  off = putVarint(b, off, lock.minCommitTs);
  off = putVarint(b, off, len);
  b.set(lock.primary, off);
  return b;
}

export function decodeLock(b: Buffer): LockRecord {
  const r: Reader = new Reader(b, 'lock');
  if (r.u8() !== RECORD_FORMAT) r.fail('unknown format');
  const kind = LOCK_KINDS[r.u8() - 1];
  if (kind === undefined) r.fail('unknown kind');
  const startTs = r.varint();
  const ttl = r.varint();
  if (ttl > BigInt(Number.MAX_SAFE_INTEGER)) r.fail('ttl too large');
  const minCommitTs = r.varint();
  const len = r.varint();
  if (len > BigInt(b.length)) r.fail('truncated');
  const primary = r.bytes(Number(len));
  r.end();
  return { primary, startTs, ttl: Number(ttl), kind, minCommitTs };
}

export function encodeWrite(w: WriteRecord): Buffer {
  const kind = WRITE_KINDS.indexOf(w.kind) + 1;
  if (kind === 0) throw new RangeError(`unknown write kind ${String(w.kind)}`);
  const b = Buffer.allocUnsafe(3 + varintBytes(w.startTs));
  b[0] = RECORD_FORMAT;
  b[1] = kind;
  b[2] = w.overlappedRollback ? WRITE_FLAG_OVERLAPPED_ROLLBACK : 0;
  putVarint(b, 3, w.startTs);
  return b;
}

export function decodeWrite(b: Buffer): WriteRecord {
  const r: Reader = new Reader(b, 'write');
  if (r.u8() !== RECORD_FORMAT) r.fail('unknown format');
  const kind = WRITE_KINDS[r.u8() - 1];
  if (kind === undefined) r.fail('unknown kind');
  const flags = r.u8();
  if ((flags & ~WRITE_FLAG_OVERLAPPED_ROLLBACK) !== 0) r.fail('unknown flags');
  const startTs = r.varint();
  r.end();
  return { kind, startTs, overlappedRollback: (flags & WRITE_FLAG_OVERLAPPED_ROLLBACK) !== 0 };
}
