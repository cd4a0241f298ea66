/**
 * Write batches and input validation. Every public write is validated completely before anything
 * is queued, so a bad argument anywhere in a batch rejects the whole batch and writes nothing.
 */

import { InvalidArgumentError } from '../errors.js';
import { type Entry, KIND_DELETE, KIND_PUT, KIND_RANGE_DELETE, makeMeta } from '../keys/entry.js';
import { CF_DEFAULT, encodeInternalKey } from '../keys/internal-key.js';
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

/** Placeholder version for public writes; the commit loop stamps the real one. */
const UNSTAMPED = 0n;

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

/** Validates a value argument and returns an owned copy. */
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
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : copyBuffer(value);
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

export function putEntry(
  cf: number,
  key: Buffer,
  value: Buffer,
  expiresAt: number,
  version = UNSTAMPED,
): Entry {
  return { key: encodeInternalKey(cf, key, version), meta: makeMeta(KIND_PUT, expiresAt), expiresAt, value };
}

export function deleteEntry(cf: number, key: Buffer, version = UNSTAMPED): Entry {
  return {
    key: encodeInternalKey(cf, key, version),
    meta: KIND_DELETE,
    expiresAt: 0,
    value: Buffer.alloc(0),
  };
}

export function rangeDeleteEntry(cf: number, start: Buffer, end: Buffer, version = UNSTAMPED): Entry {
  if (compareBytes(start, end) >= 0) {
    throw new InvalidArgumentError(
      'InvalidArgument',
      `deleteRange needs start < end; got start ${describeKey(start)}, end ${describeKey(end)}`,
    );
  }
  return {
    key: encodeInternalKey(cf, start, version),
    meta: KIND_RANGE_DELETE,
    expiresAt: 0,
    value: Buffer.from(end),
  };
}

/**
 * An atomic group of writes: after `db.write(batch)` resolves all of them are applied, and a
 * crash never leaves part of a batch. Arguments are validated as they are added.
 */
export class WriteBatch {
  /** @internal validated entries with unstamped versions */
  readonly entries: Entry[] = [];
  private readonly clock: () => number;

  constructor(clock: () => number = Date.now) {
    this.clock = clock;
  }

  get length(): number {
    return this.entries.length;
  }

  put(key: BytesInput, value: BytesInput, options?: PutOptions): this {
    const k = checkKey(key);
    const v = checkValue(value, k);
    this.entries.push(putEntry(CF_DEFAULT, k, v, expiryFromTtl(options?.ttlMs, this.clock())));
    return this;
  }

  delete(key: BytesInput): this {
    this.entries.push(deleteEntry(CF_DEFAULT, checkKey(key)));
    return this;
  }

  deleteRange(start: BytesInput, end: BytesInput): this {
    this.entries.push(
      rangeDeleteEntry(CF_DEFAULT, checkKey(start, 'range start'), checkKey(end, 'range end')),
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
