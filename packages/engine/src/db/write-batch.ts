/**
 * Write batches and input validation. Every public write is validated completely before anything
 * is queued, so a bad argument anywhere in a batch rejects the whole batch and writes nothing.
 */

import { InvalidArgumentError } from '../errors.js';
import { type EntryKind, KIND_DELETE, KIND_PUT, KIND_RANGE_DELETE } from '../keys/entry.js';
import { CF_DEFAULT } from '../keys/internal-key.js';
import { compareBytes, copyBuffer, describeKey, toBuffer } from '../util/bytes.js';
import { MAX_KEY_BYTES, MAX_VALUE_BYTES } from './options.js';

/** Keys and values: bytes, or strings (UTF-8 encoded). */
export type BytesInput = Uint8Array | string;

export interface PutOptions {
  /** Time to live in milliseconds; the key reads as absent once it has passed. */
  ttlMs?: number;
}

export type WriteOp =
  | { type: 'put'; key: BytesInput; value: BytesInput; ttlMs?: number }
  | { type: 'delete'; key: BytesInput }
  | { type: 'deleteRange'; start: BytesInput; end: BytesInput };

/** Validates a key argument and returns it as bytes. */
export function checkKey(key: unknown, what = 'key'): Buffer {
  if (key === undefined || key === null)
    throw new InvalidArgumentError('EmptyKey', `${what} is missing (${key})`);
  if (typeof key !== 'string' && !(key instanceof Uint8Array)) {
    throw new InvalidArgumentError(
      'InvalidArgument',
      `${what} must be a Uint8Array or string; got ${typeof key}`,
    );
  }
  const bytes = toBuffer(key);
  if (bytes.length === 0) throw new InvalidArgumentError('EmptyKey', `${what} is empty`);
  if (bytes.length > MAX_KEY_BYTES) {
    throw new InvalidArgumentError(
      'KeyTooLarge',
      `${what} is ${bytes.length} bytes; the limit is ${MAX_KEY_BYTES}`,
    );
  }
  return bytes;
}

/**
 * Validates a value argument and returns it as bytes, without copying a Uint8Array: the write is
 * encoded (copied) into its WAL payload before the call returns, so the caller's memory is never
 * read later.
 */
export function checkValue(value: unknown, key: Buffer): Buffer {
  if (value === undefined || value === null) {
    throw new InvalidArgumentError(
      'NilValue',
      `value for key ${describeKey(key)} is ${value}; use delete() to remove a key`,
    );
  }
  if (typeof value !== 'string' && !(value instanceof Uint8Array)) {
    throw new InvalidArgumentError(
      'InvalidArgument',
      `value for key ${describeKey(key)} must be a Uint8Array or string; got ${typeof value}`,
    );
  }
  const bytes = toBuffer(value);
  if (bytes.length > MAX_VALUE_BYTES) {
    throw new InvalidArgumentError(
      'ValueTooLarge',
      `value for key ${describeKey(key)} is ${bytes.length} bytes; the limit is ${MAX_VALUE_BYTES}`,
    );
  }
  return bytes;
}

/** Converts a TTL to an absolute expiry time. */
export function expiryFromTtl(ttlMs: unknown, nowMs: number): number {
  if (ttlMs === undefined) return 0;
  if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs <= 0) {
    throw new InvalidArgumentError(
      'InvalidArgument',
      `ttlMs must be a positive number of milliseconds; got ${String(ttlMs)}`,
    );
  }
  const expiresAt = nowMs + Math.ceil(ttlMs);
  if (!Number.isSafeInteger(expiresAt)) {
    throw new InvalidArgumentError(
      'InvalidArgument',
      `ttlMs ${ttlMs} puts the expiry past the largest supported time`,
    );
  }
  return expiresAt;
}

/** A validated write, not yet encoded. `key`/`value` may be the caller's memory until encoded. */
export interface PendingWrite {
  cf: number;
  kind: EntryKind;
  /** User key (for a range delete: its start). */
  key: Buffer;
  /** Value (for a range delete: the exclusive end key; for a delete: empty). */
  value: Buffer;
  expiresAt: number;
  /** Explicit version, or undefined to take the next one from the counter at commit. */
  version: bigint | undefined;
}

const EMPTY = Buffer.alloc(0);

export function putWrite(
  cf: number,
  key: Buffer,
  value: Buffer,
  expiresAt: number,
  version?: bigint,
): PendingWrite {
  return { cf, kind: KIND_PUT, key, value, expiresAt, version };
}

export function deleteWrite(cf: number, key: Buffer, version?: bigint): PendingWrite {
  return { cf, kind: KIND_DELETE, key, value: EMPTY, expiresAt: 0, version };
}

export function rangeDeleteWrite(cf: number, start: Buffer, end: Buffer, version?: bigint): PendingWrite {
  if (compareBytes(start, end) >= 0) {
    throw new InvalidArgumentError(
      'InvalidArgument',
      `deleteRange needs start < end; got start ${describeKey(start)}, end ${describeKey(end)}`,
    );
  }
  return { cf, kind: KIND_RANGE_DELETE, key: start, value: end, expiresAt: 0, version };
}

/** Copies a pending write's bytes so it no longer refers to the caller's memory. */
function owned(w: PendingWrite): PendingWrite {
  return { ...w, key: copyBuffer(w.key), value: copyBuffer(w.value) };
}

/**
 * An atomic group of writes: after `db.write(batch)` resolves all of them are applied, and a
 * crash never leaves part of a batch. Arguments are validated (and copied) as they are added.
 */
export class WriteBatch {
  /** @internal validated writes, owning their bytes */
  readonly writes: PendingWrite[] = [];
  private readonly clock: () => number;

  constructor(clock: () => number = Date.now) {
    this.clock = clock;
  }

  get length(): number {
    return this.writes.length;
  }

  put(key: BytesInput, value: BytesInput, options?: PutOptions): this {
    const k = checkKey(key);
    const v = checkValue(value, k);
    this.writes.push(owned(putWrite(CF_DEFAULT, k, v, expiryFromTtl(options?.ttlMs, this.clock()))));
    return this;
  }

  delete(key: BytesInput): this {
    this.writes.push(owned(deleteWrite(CF_DEFAULT, checkKey(key))));
    return this;
  }

  deleteRange(start: BytesInput, end: BytesInput): this {
    this.writes.push(
      owned(rangeDeleteWrite(CF_DEFAULT, checkKey(start, 'range start'), checkKey(end, 'range end'))),
    );
    return this;
  }

  /** Adds an operation given as data. */
  add(op: WriteOp): this {
    if (op === null || typeof op !== 'object') {
      throw new InvalidArgumentError(
        'InvalidArgument',
        `write operation must be an object; got ${String(op)}`,
      );
    }
    switch (op.type) {
      case 'put':
        return op.ttlMs === undefined
          ? this.put(op.key, op.value)
          : this.put(op.key, op.value, { ttlMs: op.ttlMs });
      case 'delete':
        return this.delete(op.key);
      case 'deleteRange':
        return this.deleteRange(op.start, op.end);
      default:
        throw new InvalidArgumentError(
          'InvalidArgument',
          `unknown write operation type ${JSON.stringify((op as { type: unknown }).type)}`,
        );
    }
  }
}
