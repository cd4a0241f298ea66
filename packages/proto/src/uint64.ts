import Long from 'long';
import protobuf from 'protobufjs/minimal.js';
import { ProtoError } from './errors.js';

// protobufjs finds `long` by a dynamic require that bundlers and test runners can miss; without it
// uint64 fields silently decode as lossy doubles. Wire it explicitly so every environment agrees.
protobuf.util.Long = Long;
protobuf.configure();

const MAX_UINT64 = (1n << 64n) - 1n;

/** Converts a decoded uint64 (a Long, or a number for values protobufjs kept small) to a bigint. */
export function uint64FromWire(value: Long | number | null | undefined): bigint {
  if (value === null || value === undefined) return 0n;
  if (typeof value === 'number') return BigInt(value);
  return (BigInt(value.high >>> 0) << 32n) | BigInt(value.low >>> 0);
}

/**
 * Converts a bigint to the Long protobufjs writes.
 * @throws ProtoError `ValueOutOfRange` if the value is negative or wider than 64 bits; `field` names it.
 */
export function uint64ToWire(value: bigint, field: string): Long {
  if (value < 0n || value > MAX_UINT64) {
    throw new ProtoError('ValueOutOfRange', `${field} = ${value} does not fit a uint64`);
  }
  return new Long(Number(value & 0xffffffffn) | 0, Number(value >> 32n) | 0, true);
}
