/**
 * How a Redis value is stored in NoKV: a small header, then the payload.
 *
 *     offset 0  2 bytes  magic 0x4E 0x52 ("NR")
 *     offset 2  1 byte   type (1 = string; the other Redis types are reserved)
 *     offset 3  8 bytes  expiresAt: Unix milliseconds, big-endian; 0 = no expiry
 *     offset 11 ...      payload (a string's bytes)
 *
 * The expiry lives in the value rather than in the engine's own TTL so the embedded and cluster
 * backends behave the same (Percolator values carry no TTL), and so TTL/PTTL can read it.
 * A value without the magic (written by something other than the gateway) reads as a plain
 * string without expiry.
 */

export const ENVELOPE_HEADER_BYTES = 11;
const MAGIC0 = 0x4e;
const MAGIC1 = 0x52;

export const VALUE_TYPES = { string: 1, list: 2, set: 3, zset: 4, hash: 5, stream: 6 } as const;
export type ValueType = keyof typeof VALUE_TYPES;
const TYPE_BY_CODE = new Map<number, ValueType>(
  Object.entries(VALUE_TYPES).map(([name, code]) => [code, name as ValueType]),
);

export interface StoredValue {
  type: ValueType;
  /** Unix ms; 0 = no expiry. */
  expiresAt: number;
  payload: Buffer;
}

export class EnvelopeError extends Error {
  override readonly name = 'EnvelopeError';
  readonly code = 'BadEnvelope';
}

export function encodeEnvelope(v: StoredValue): Buffer {
  const out = Buffer.allocUnsafe(ENVELOPE_HEADER_BYTES + v.payload.length);
  out[0] = MAGIC0;
  out[1] = MAGIC1;
  out[2] = VALUE_TYPES[v.type];
  out.writeBigUInt64BE(BigInt(Math.max(0, Math.trunc(v.expiresAt))), 3);
  v.payload.copy(out, ENVELOPE_HEADER_BYTES);
  return out;
}

export function decodeEnvelope(raw: Buffer): StoredValue {
  if (raw.length < ENVELOPE_HEADER_BYTES || raw[0] !== MAGIC0 || raw[1] !== MAGIC1) {
    return { type: 'string', expiresAt: 0, payload: raw };
  }
  const type = TYPE_BY_CODE.get(raw[2]!);
  if (type === undefined) throw new EnvelopeError(`unknown value type code ${raw[2]}`);
  const expiresAt = Number(raw.readBigUInt64BE(3));
  return { type, expiresAt, payload: raw.subarray(ENVELOPE_HEADER_BYTES) };
}

/** Whether a value with this expiry is gone at `nowMs` (Redis: expired when `when <= now`). */
export function isExpired(expiresAt: number, nowMs: number): boolean {
  return expiresAt !== 0 && expiresAt <= nowMs;
}
