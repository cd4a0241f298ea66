/** Byte helpers shared by the codecs. Keys and values are Node `Buffer`s inside the engine. */

const EMPTY = Buffer.alloc(0);

/** Returns `input` as a Buffer without copying when it already is one; strings are UTF-8 encoded. */
export function toBuffer(input: Uint8Array | string): Buffer {
  if (typeof input === 'string') return Buffer.from(input, 'utf8');
  if (Buffer.isBuffer(input)) return input;
  return Buffer.from(input.buffer, input.byteOffset, input.byteLength);
}

/** A copy that owns its memory, so later changes to the source (or a cached block) cannot leak in. */
export function copyBuffer(src: Uint8Array): Buffer {
  if (src.length === 0) return EMPTY;
  const out = Buffer.allocUnsafe(src.length);
  out.set(src);
  return out;
}

/** Bytewise comparison of whole buffers. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/**
 * The smallest key greater than every key that starts with `prefix`, or undefined when there is
 * none (the prefix is empty or all 0xff).
 */
export function prefixSuccessor(prefix: Uint8Array): Buffer | undefined {
  for (let i = prefix.length - 1; i >= 0; i--) {
    const byte = prefix[i]!;
    if (byte !== 0xff) {
      const out = Buffer.from(prefix.subarray(0, i + 1));
      out[i] = byte + 1;
      return out;
    }
  }
  return undefined;
}

/** True when every byte of `buf[start, end)` is zero. */
export function isAllZero(buf: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (buf[i] !== 0) return false;
  return true;
}

/** Renders a key for messages: printable ASCII as text, anything else as hex. */
export function describeKey(key: Uint8Array, maxBytes = 48): string {
  const shown = key.subarray(0, maxBytes);
  let printable = true;
  for (const b of shown) {
    if (b < 0x20 || b > 0x7e) {
      printable = false;
      break;
    }
  }
  const body = printable
    ? JSON.stringify(Buffer.from(shown).toString('latin1'))
    : `0x${Buffer.from(shown).toString('hex')}`;
  return key.length > maxBytes ? `${body}…(${key.length} bytes)` : body;
}

/** Slab for `copyOut`: results handed to callers are slices of it. */
const OUT_SLAB_BYTES = 64 * 1024;
let outSlab = Buffer.allocUnsafeSlow(OUT_SLAB_BYTES);
let outUsed = 0;

/**
 * An owned copy of `src[start, end)` for handing to a caller (a read's value, a scanned key).
 * Small copies are slices of a shared 64 KiB slab: allocating an ArrayBuffer costs about a
 * microsecond whatever its size, several times the copy itself. A kept slice keeps its slab
 * alive, the same trade Node's own 8 KiB buffer pool makes.
 */
export function copyOut(src: Uint8Array, start = 0, end = src.length): Buffer {
  const n = end - start;
  if (n === 0) return EMPTY;
  if (n > OUT_SLAB_BYTES >>> 4) {
    const own = Buffer.allocUnsafeSlow(n);
    own.set(src.subarray(start, end));
    return own;
  }
  if (outUsed + n > OUT_SLAB_BYTES) {
    outSlab = Buffer.allocUnsafeSlow(OUT_SLAB_BYTES);
    outUsed = 0;
  }
  const out = outSlab.subarray(outUsed, outUsed + n);
  if (n <= 32) {
    for (let i = 0; i < n; i++) out[i] = src[start + i]!;
  } else {
    outSlab.set(start === 0 && end === src.length ? src : src.subarray(start, end), outUsed);
  }
  outUsed += (n + 7) & ~7;
  return out;
}
