/**
 * YCSB's generators: record keys, a seeded PRNG, zipfian (Gray et al., as in YCSB's
 * ZipfianGenerator), scrambled zipfian (zipfian popularity spread over the key space by hashing),
 * and "latest" (zipfian over recency, for workload D).
 */

/** xorshift128+ seeded PRNG returning floats in [0, 1). */
export class Random {
  private s0: number;
  private s1: number;

  constructor(seed: number) {
    this.s0 = (seed ^ 0x9e3779b9) | 0 || 1;
    this.s1 = (Math.imul(seed, 0x85ebca6b) ^ 0xc2b2ae35) | 0 || 2;
    for (let i = 0; i < 8; i++) this.next();
  }

  /** Uniform float in [0, 1). */
  next(): number {
    let x = this.s0;
    const y = this.s1;
    this.s0 = y;
    x ^= x << 23;
    x ^= x >>> 17;
    x ^= y ^ (y >>> 26);
    this.s1 = x;
    return ((this.s0 + this.s1) >>> 0) / 4294967296;
  }

  /** Uniform integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
}

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const MASK64 = 0xffff_ffff_ffff_ffffn;

/** FNV-1a 64 of the 8 little-endian bytes of `n`, as YCSB hashes record numbers. */
export function fnv1a64(n: number): bigint {
  let v = BigInt(n);
  let hash = FNV_OFFSET;
  for (let i = 0; i < 8; i++) {
    hash ^= v & 0xffn;
    hash = (hash * FNV_PRIME) & MASK64;
    v >>= 8n;
  }
  return hash;
}

/** YCSB record key of record `n`: "user" + the FNV hash in decimal, zero-padded (hashed order). */
export function recordKey(n: number): string {
  let key = keyCache[n];
  if (key === undefined) {
    key = `user${fnv1a64(n).toString().padStart(20, '0')}`;
    if (n < KEY_CACHE_SIZE) keyCache[n] = key;
  }
  return key;
}

// Hashing with BigInt costs about a microsecond, which would weigh on every engine alike and
// hide their differences; keys of the first records are computed once.
const KEY_CACHE_SIZE = 2_000_000;
const keyCache: (string | undefined)[] = [];

/** Zipfian over [0, items), item 0 most popular (Gray et al. "Quickly generating billion-record
 *  synthetic databases"). */
export class Zipfian {
  private readonly items: number;
  private readonly theta: number;
  private readonly alpha: number;
  private readonly zetan: number;
  private readonly eta: number;
  private readonly random: Random;

  constructor(items: number, random: Random, theta = 0.99) {
    this.items = items;
    this.theta = theta;
    this.random = random;
    const zeta2 = zeta(2, theta);
    this.zetan = zeta(items, theta);
    this.alpha = 1 / (1 - theta);
    this.eta = (1 - (2 / items) ** (1 - theta)) / (1 - zeta2 / this.zetan);
  }

  next(): number {
    const u = this.random.next();
    const uz = u * this.zetan;
    if (uz < 1) return 0;
    if (uz < 1 + 0.5 ** this.theta) return 1;
    return Math.min(this.items - 1, Math.floor(this.items * (this.eta * u - this.eta + 1) ** this.alpha));
  }
}

const zetaCache = new Map<string, number>();

function zeta(n: number, theta: number): number {
  const key = `${n}:${theta}`;
  let sum = zetaCache.get(key);
  if (sum === undefined) {
    sum = 0;
    for (let i = 1; i <= n; i++) sum += 1 / i ** theta;
    zetaCache.set(key, sum);
  }
  return sum;
}

/** 32-bit FNV-1a of the 4 bytes of `n`: spreads zipfian ranks over the key space. */
function scramble32(n: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < 4; i++) {
    h ^= (n >>> (i * 8)) & 0xff;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** YCSB's ScrambledZipfian: zipfian popularity, hot items scattered across [0, items). */
export class ScrambledZipfian {
  private readonly zipf: Zipfian;
  private readonly items: number;

  constructor(items: number, random: Random, theta = 0.99) {
    this.items = items;
    // YCSB draws from a large fixed item space and folds it by hash, so the hot set is not a prefix.
    this.zipf = new Zipfian(Math.min(items * 10, 100_000_000), random, theta);
  }

  next(): number {
    return scramble32(this.zipf.next()) % this.items;
  }
}

/** YCSB's SkewedLatest: the most recently inserted records are the most popular. */
export class Latest {
  private readonly random: Random;
  private readonly theta: number;
  private zipf: Zipfian;
  private zipfItems: number;

  constructor(
    private readonly maxRecord: () => number,
    random: Random,
    theta = 0.99,
  ) {
    this.random = random;
    this.theta = theta;
    this.zipfItems = Math.max(1, maxRecord());
    this.zipf = new Zipfian(this.zipfItems, random, theta);
  }

  next(): number {
    const max = this.maxRecord();
    // Re-deriving zeta on every insert would dominate; refresh when the set grew by 1%.
    if (max > this.zipfItems * 1.01) {
      this.zipfItems = max;
      this.zipf = new Zipfian(max, this.random, this.theta);
    }
    return Math.max(0, max - 1 - this.zipf.next());
  }
}
