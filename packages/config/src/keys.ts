/**
 * Keys in a topology file are strings: plain UTF-8 text, or `hex:` followed by an even number of
 * hex digits for arbitrary bytes. `""` (and `"hex:"`) is the empty key: as a start key it means
 * -inf, as an end key +inf.
 */

const HEX_PREFIX = 'hex:';
const HEX_BODY = /^(?:[0-9a-fA-F]{2})*$/;

/** Why `text` is not a valid key, or undefined when it is. */
export function keyProblem(text: string): string | undefined {
  if (text.startsWith(HEX_PREFIX) && !HEX_BODY.test(text.slice(HEX_PREFIX.length))) {
    return `"${text}" is not valid hex (expected hex: followed by pairs of hex digits)`;
  }
  return undefined;
}

/** Parses a key string (see the module comment). Throws on malformed hex; check `keyProblem` first. */
export function parseKey(text: string): Uint8Array {
  const problem = keyProblem(text);
  if (problem) throw new Error(problem);
  if (text.startsWith(HEX_PREFIX)) return new Uint8Array(Buffer.from(text.slice(HEX_PREFIX.length), 'hex'));
  return new Uint8Array(Buffer.from(text, 'utf8'));
}

/**
 * The key as a topology-file string: plain when every byte is printable ASCII (and the text does
 * not itself start with `hex:`), else `hex:...`. `parseKey(formatKey(k))` equals `k`.
 */
export function formatKey(key: Uint8Array): string {
  const printable = key.every((b) => b >= 0x20 && b <= 0x7e);
  const text = Buffer.from(key).toString('latin1');
  if (printable && !text.startsWith(HEX_PREFIX)) return text;
  return HEX_PREFIX + Buffer.from(key).toString('hex');
}

/** For messages and tables: `-` for the empty key, else `formatKey`. */
export function showKey(key: Uint8Array): string {
  return key.length === 0 ? '-' : formatKey(key);
}

/** Unsigned byte order. */
export function compareKeys(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}
