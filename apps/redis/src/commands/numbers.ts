/** Redis's number parsing and printing rules (`util.c`), which clients observe in replies. */

import { NOT_INTEGER } from './errors.js';

export const INT64_MAX = 9223372036854775807n;
export const INT64_MIN = -9223372036854775808n;

/**
 * Redis's `string2ll`: optional `-`, digits without leading zeros, nothing else, within int64.
 * Undefined when the bytes are not such a number.
 */
export function parseInt64(b: Buffer): bigint | undefined {
  const n = b.length;
  if (n === 0 || n > 20) return undefined;
  let p = 0;
  const negative = b[0] === 0x2d;
  if (negative) {
    p = 1;
    if (n === 1) return undefined;
  }
  if (b[p] === 0x30) return n === 1 ? 0n : undefined;
  for (let i = p; i < n; i++) {
    const c = b[i]!;
    if (c < 0x30 || c > 0x39) return undefined;
  }
  // Short numbers fit a double exactly: skip BigInt parsing on the hot path.
  if (n - p <= 15) {
    let v = 0;
    for (let i = p; i < n; i++) v = v * 10 + (b[i]! - 0x30);
    return BigInt(negative ? -v : v);
  }
  const v = BigInt(b.toString('latin1'));
  return v > INT64_MAX || v < INT64_MIN ? undefined : v;
}

/** An int64 argument, or `ERR value is not an integer or out of range`. */
export function int64Arg(b: Buffer): bigint {
  const v = parseInt64(b);
  if (v === undefined) throw NOT_INTEGER();
  return v;
}

/** A small integer argument (a safe JS number), or the same error. */
export function intArg(b: Buffer): number {
  const v = int64Arg(b);
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) throw NOT_INTEGER();
  return Number(v);
}

/** Case-insensitive comparison of an argument with an ASCII keyword (given in lower case). */
export function is(arg: Buffer | undefined, keyword: string): boolean {
  if (arg === undefined || arg.length !== keyword.length) return false;
  for (let i = 0; i < arg.length; i++) {
    let c = arg[i]!;
    if (c >= 0x41 && c <= 0x5a) c += 0x20;
    if (c !== keyword.charCodeAt(i)) return false;
  }
  return true;
}

/** An argument as a lower-case ASCII string (command names, options). */
export function lower(arg: Buffer): string {
  return arg.toString('latin1').toLowerCase();
}
