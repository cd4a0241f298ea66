/**
 * Bloom filter over base keys (column family + user key), one per table. Layout: the bit array
 * followed by one byte holding the probe count `k`. Probes use double hashing of one 32-bit hash,
 * as LevelDB does.
 */

/** 32-bit hash of `data[start, end)` (a Murmur-style mix; stable across versions: it is on disk). */
export function bloomHash(data: Uint8Array, start = 0, end = data.length): number {
  const m = 0xc6a4a793;
  let h = (0xbc9f1d34 ^ Math.imul(end - start, m)) >>> 0;
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const w = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    h = (h + w) >>> 0;
    h = Math.imul(h, m) >>> 0;
    h ^= h >>> 16;
  }
  const rest = end - i;
  if (rest > 0) {
    if (rest === 3) h = (h + (data[i + 2]! << 16)) >>> 0;
    if (rest >= 2) h = (h + (data[i + 1]! << 8)) >>> 0;
    h = (h + data[i]!) >>> 0;
    h = Math.imul(h, m) >>> 0;
    h ^= h >>> 24;
  }
  return h >>> 0;
}

/** Builds a filter for the given key hashes. */
export function buildBloomFilter(hashes: readonly number[], bitsPerKey: number): Buffer {
  const k = Math.min(30, Math.max(1, Math.round(bitsPerKey * 0.69)));
  const bits = Math.max(64, hashes.length * bitsPerKey);
  const bytes = Math.ceil(bits / 8);
  const nBits = bytes * 8;
  const filter = Buffer.alloc(bytes + 1);
  for (const hash of hashes) {
    let h = hash;
    const delta = ((h >>> 17) | (h << 15)) >>> 0;
    for (let j = 0; j < k; j++) {
      const bit = h % nBits;
      filter[bit >>> 3] = filter[bit >>> 3]! | (1 << (bit & 7));
      h = (h + delta) >>> 0;
    }
  }
  filter[bytes] = k;
  return filter;
}

/** False means the key is certainly absent; true means it may be present. */
export function bloomMayContain(filter: Buffer, hash: number): boolean {
  if (filter.length < 2) return true;
  const bytes = filter.length - 1;
  const k = filter[bytes]!;
  if (k < 1 || k > 30) return true;
  const nBits = bytes * 8;
  let h = hash;
  const delta = ((h >>> 17) | (h << 15)) >>> 0;
  for (let j = 0; j < k; j++) {
    const bit = h % nBits;
    if ((filter[bit >>> 3]! & (1 << (bit & 7))) === 0) return false;
    h = (h + delta) >>> 0;
  }
  return true;
}
