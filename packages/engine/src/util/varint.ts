/**
 * LEB128 unsigned varints. `number` variants cover values up to 2^53 - 1 (lengths, offsets, times);
 * `bigint` variants cover full u64 values (versions). Decoders return the value and the offset just
 * past it, and throw `VarintError` on a truncated or overlong encoding so callers can turn it into
 * a `CorruptionError` that names their file.
 */

export class VarintError extends Error {
  readonly offset: number;

  constructor(offset: number, detail: string) {
    super(`bad varint at offset ${offset}: ${detail}`);
    this.offset = offset;
  }
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** Number of bytes `value` takes as a varint. */
export function varintLength(value: number): number {
  let n = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    n++;
  }
  return n;
}

/** Writes `value` (a non-negative safe integer) at `offset`; returns the offset after it. */
export function writeVarint(buf: Uint8Array, offset: number, value: number): number {
  while (value >= 0x80) {
    buf[offset++] = (value & 0x7f) | 0x80;
    value = Math.floor(value / 128);
  }
  buf[offset++] = value;
  return offset;
}

/** Shared result slot so hot decoders do not allocate; read `.value`/`.offset` immediately. */
export interface VarintResult {
  value: number;
  offset: number;
}

/** Decodes a varint at `offset` (reading no further than `end`) into `out`. */
export function readVarintInto(buf: Uint8Array, offset: number, end: number, out: VarintResult): void {
  let result = 0;
  let scale = 1;
  let pos = offset;
  for (;;) {
    if (pos >= end) throw new VarintError(offset, 'truncated');
    const byte = buf[pos++]!;
    result += (byte & 0x7f) * scale;
    if (byte < 0x80) break;
    scale *= 128;
    // Eight bytes hold 56 bits, more than any safe integer needs: a ninth byte means overlong.
    if (scale >= 2 ** 56) throw new VarintError(offset, 'longer than 8 bytes');
  }
  if (result > MAX_SAFE) throw new VarintError(offset, 'value above 2^53');
  out.value = result;
  out.offset = pos;
}

/** Decodes a varint at `offset`; returns `[value, nextOffset]`. */
export function readVarint(buf: Uint8Array, offset: number, end = buf.length): [number, number] {
  const out: VarintResult = { value: 0, offset: 0 };
  readVarintInto(buf, offset, end, out);
  return [out.value, out.offset];
}

/** Number of bytes a u64 `value` takes as a varint. */
export function bigVarintLength(value: bigint): number {
  let n = 1;
  while (value >= 0x80n) {
    value >>= 7n;
    n++;
  }
  return n;
}

/** Writes a u64 `value` at `offset`; returns the offset after it. */
export function writeBigVarint(buf: Uint8Array, offset: number, value: bigint): number {
  if (value < 0n || value > 0xffff_ffff_ffff_ffffn) throw new RangeError(`u64 out of range: ${value}`);
  while (value >= 0x80n) {
    buf[offset++] = Number(value & 0x7fn) | 0x80;
    value >>= 7n;
  }
  buf[offset++] = Number(value);
  return offset;
}

/** Decodes a u64 varint at `offset`; returns `[value, nextOffset]`. */
export function readBigVarint(buf: Uint8Array, offset: number, end = buf.length): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  let pos = offset;
  for (;;) {
    if (pos >= end) throw new VarintError(offset, 'truncated');
    const byte = buf[pos++]!;
    result |= BigInt(byte & 0x7f) << shift;
    if (byte < 0x80) break;
    shift += 7n;
    if (shift > 63n) throw new VarintError(offset, 'longer than 10 bytes');
  }
  if (result > 0xffff_ffff_ffff_ffffn) throw new VarintError(offset, 'value above 2^64');
  return [result, pos];
}
