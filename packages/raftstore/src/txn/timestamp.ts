/**
 * Timestamps of the transaction layer: TSO timestamps laid out like TiKV/PD's,
 *
 *     ts = physical milliseconds (Unix epoch) << 18 | logical counter (18 bits)
 *
 * so a timestamp orders like the (time, counter) pair it was allocated at, and a lock's TTL (in
 * milliseconds) is measured against the physical part of the timestamps involved: a lock with
 * start timestamp `s` and TTL `t` is expired for a checker at `now` once
 * `tsPhysicalMs(now) >= tsPhysicalMs(s) + t`. Deriving time from timestamps (never from the
 * applying store's clock) keeps the decision deterministic on every replica.
 */

/** Bits of the logical part. */
export const LOGICAL_BITS = 18n;
/** Largest logical counter value (2^18 - 1). */
export const MAX_LOGICAL = (1 << 18) - 1;
/** Largest timestamp the engine can store as a version (2^64 - 2; 2^64 - 1 is reserved). */
export const MAX_TS = 0xffff_ffff_ffff_fffen;

/** Physical milliseconds of a timestamp. */
export function tsPhysicalMs(ts: bigint): number {
  return Number(ts >> LOGICAL_BITS);
}

/** Logical counter of a timestamp. */
export function tsLogical(ts: bigint): number {
  return Number(ts & BigInt(MAX_LOGICAL));
}

/** Timestamp of physical milliseconds `ms` and logical counter `logical` (0..2^18-1). */
export function composeTs(ms: number, logical = 0): bigint {
  if (!Number.isSafeInteger(ms) || ms < 0)
    throw new RangeError(`physical ms must be a non-negative integer; got ${ms}`);
  if (!Number.isInteger(logical) || logical < 0 || logical > MAX_LOGICAL) {
    throw new RangeError(`logical must be in [0, ${MAX_LOGICAL}]; got ${logical}`);
  }
  return (BigInt(ms) << LOGICAL_BITS) | BigInt(logical);
}
