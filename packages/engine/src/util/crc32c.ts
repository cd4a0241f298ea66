import { crc32c as nativeCrc32c } from '@node-rs/crc32';

/**
 * CRC-32C (Castagnoli) of `data`, as an unsigned 32-bit number. Backed by `@node-rs/crc32`, which
 * uses the SSE4.2 / ARMv8 CRC instructions; `initial` continues a running checksum.
 */
export function crc32c(data: Uint8Array, initial = 0): number {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return nativeCrc32c(buf, initial) >>> 0;
}
