/**
 * INCRBYFLOAT the way redis-server computes it on x86-64: parse both numbers with `strtold`
 * (80-bit extended precision: a 64-bit mantissa), add with one rounding, print with `%.17Lf` and
 * strip trailing zeros. Doubles would print `0.1 + 0.2` as `0.30000000000000004` where Redis
 * prints `0.3`, and `10.6 - 5000` as `-4989.4` where Redis prints `-4989.39999999999999991`;
 * emulating the extended format with BigInt makes the replies identical byte for byte.
 */

/** A finite extended-precision value: (-1)^neg × mant × 2^exp, mant < 2^64 (0 for zero). */
export interface LongDouble {
  neg: boolean;
  mant: bigint;
  exp: number;
}

export type ParsedLongDouble = LongDouble | 'inf' | '-inf';

const MANT_BITS = 64;
/** Largest finite: just below 2^16384. */
const MAX_BINARY_EXP = 16384;
/** Smallest subnormal of the format is 2^-16445: below it strtold underflows to zero (ERANGE). */
const MIN_BINARY_EXP = -16445;
/** Redis's MAX_LONG_DOUBLE_CHARS: longer strings are not numbers to it. */
const MAX_CHARS = 5 * 1024;

function bitLength(n: bigint): number {
  return n === 0n ? 0 : n.toString(2).length;
}

/**
 * Rounds num/den × 2^shift (num, den > 0) to the nearest value with a 64-bit mantissa, ties to
 * even, the rounding mode of x87 arithmetic and of glibc's strtold.
 */
function roundRational(neg: boolean, num: bigint, den: bigint, shift: number): LongDouble {
  // Choose k so that 2^63 <= num × 2^k / den < 2^64.
  let k = MANT_BITS - (bitLength(num) - bitLength(den));
  for (;;) {
    const n = k >= 0 ? num << BigInt(k) : num;
    const d = k >= 0 ? den : den << BigInt(-k);
    let q = n / d;
    const r = n - q * d;
    const bits = bitLength(q);
    if (bits > MANT_BITS) {
      k--;
      continue;
    }
    if (bits < MANT_BITS) {
      k++;
      continue;
    }
    const twice = 2n * r;
    if (twice > d || (twice === d && (q & 1n) === 1n)) q += 1n;
    let exp = shift - k;
    if (q === 1n << BigInt(MANT_BITS)) {
      q >>= 1n;
      exp += 1;
    }
    return { neg, mant: q, exp };
  }
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

/** Whether the value is beyond the format's range (strtold's ERANGE cases, which Redis rejects). */
function outOfRange(v: LongDouble): boolean {
  if (v.mant === 0n) return false;
  const top = v.exp + MANT_BITS;
  return top > MAX_BINARY_EXP || top < MIN_BINARY_EXP + MANT_BITS;
}

/**
 * Redis's `string2ld`: the whole string must be one strtold number (decimal, hex `0x…p…`, `inf`,
 * `infinity`), without leading space, NaN, overflow or underflow to zero. Undefined if not.
 */
export function parseLongDouble(b: Buffer): ParsedLongDouble | undefined {
  const s = b.toString('latin1');
  if (s.length === 0 || s.length >= MAX_CHARS) return undefined;
  let p = 0;
  let neg = false;
  if (s[0] === '+' || s[0] === '-') {
    neg = s[0] === '-';
    p = 1;
  }
  const rest = s.slice(p).toLowerCase();
  if (rest === 'inf' || rest === 'infinity') return neg ? '-inf' : 'inf';
  if (rest.startsWith('0x')) return parseHex(rest.slice(2), neg);
  let digits = '';
  let fracDigits = 0;
  let seenDigit = false;
  let q = p;
  while (q < s.length && isDigit(s.charCodeAt(q))) {
    digits += s[q];
    q++;
    seenDigit = true;
  }
  if (s[q] === '.') {
    q++;
    while (q < s.length && isDigit(s.charCodeAt(q))) {
      digits += s[q];
      fracDigits++;
      q++;
      seenDigit = true;
    }
  }
  if (!seenDigit) return undefined;
  let exp10 = 0;
  if (s[q] === 'e' || s[q] === 'E') {
    let e = q + 1;
    let eneg = false;
    if (s[e] === '+' || s[e] === '-') {
      eneg = s[e] === '-';
      e++;
    }
    if (!isDigit(s.charCodeAt(e))) return undefined;
    let ev = 0;
    while (e < s.length && isDigit(s.charCodeAt(e))) {
      ev = Math.min(ev * 10 + (s.charCodeAt(e) - 0x30), 1e9);
      e++;
    }
    exp10 = eneg ? -ev : ev;
    q = e;
  }
  if (q !== s.length) return undefined;
  const mantissa = BigInt(digits);
  if (mantissa === 0n) return { neg, mant: 0n, exp: 0 };
  const scale = exp10 - fracDigits;
  const magnitude = digits.replace(/^0+/, '').length + scale;
  if (magnitude > 4940) return undefined;
  if (magnitude < -4960) return undefined;
  const v =
    scale >= 0
      ? roundRational(neg, mantissa * 10n ** BigInt(scale), 1n, 0)
      : roundRational(neg, mantissa, 10n ** BigInt(-scale), 0);
  return outOfRange(v) ? undefined : v;
}

function parseHex(s: string, neg: boolean): ParsedLongDouble | undefined {
  let q = 0;
  let mant = 0n;
  let fracDigits = 0;
  let seen = false;
  while (q < s.length && hexDigit(s.charCodeAt(q)) >= 0) {
    mant = mant * 16n + BigInt(hexDigit(s.charCodeAt(q)));
    q++;
    seen = true;
  }
  if (s[q] === '.') {
    q++;
    while (q < s.length && hexDigit(s.charCodeAt(q)) >= 0) {
      mant = mant * 16n + BigInt(hexDigit(s.charCodeAt(q)));
      fracDigits++;
      q++;
      seen = true;
    }
  }
  // strtold reads "0x" without digits as the number 0 followed by "x": trailing garbage for Redis.
  if (!seen) return undefined;
  let exp2 = 0;
  if (s[q] === 'p') {
    let e = q + 1;
    let eneg = false;
    if (s[e] === '+' || s[e] === '-') {
      eneg = s[e] === '-';
      e++;
    }
    if (!isDigit(s.charCodeAt(e))) return undefined;
    let ev = 0;
    while (e < s.length && isDigit(s.charCodeAt(e))) {
      ev = Math.min(ev * 10 + (s.charCodeAt(e) - 0x30), 1e9);
      e++;
    }
    exp2 = eneg ? -ev : ev;
    q = e;
  }
  if (q !== s.length) return undefined;
  if (mant === 0n) return { neg, mant: 0n, exp: 0 };
  const shift = exp2 - 4 * fracDigits;
  if (shift + bitLength(mant) > MAX_BINARY_EXP + 1 || shift + bitLength(mant) < MIN_BINARY_EXP - 1) {
    return undefined;
  }
  const v = roundRational(neg, mant, 1n, shift);
  return outOfRange(v) ? undefined : v;
}

/** a + b rounded once to the format (undefined when the result is not finite). */
export function addLongDouble(a: ParsedLongDouble, b: ParsedLongDouble): LongDouble | undefined {
  if (typeof a === 'string' || typeof b === 'string') return undefined;
  if (a.mant === 0n) return b.mant === 0n ? { neg: a.neg && b.neg, mant: 0n, exp: 0 } : b;
  if (b.mant === 0n) return a;
  const e = Math.min(a.exp, b.exp);
  const av = (a.neg ? -a.mant : a.mant) << BigInt(a.exp - e);
  const bv = (b.neg ? -b.mant : b.mant) << BigInt(b.exp - e);
  const sum = av + bv;
  if (sum === 0n) return { neg: false, mant: 0n, exp: 0 };
  const neg = sum < 0n;
  const v = roundRational(neg, neg ? -sum : sum, 1n, e);
  return v.exp + MANT_BITS > MAX_BINARY_EXP ? undefined : v;
}

/** `%.17Lf` with trailing zeros (and a trailing dot) removed, and `-0` printed as `0`. */
export function formatLongDouble(v: LongDouble): string {
  const DEC = 17n;
  const P = 10n ** DEC;
  let scaled: bigint;
  if (v.exp >= 0) {
    scaled = (v.mant << BigInt(v.exp)) * P;
  } else {
    const den = 1n << BigInt(-v.exp);
    const n = v.mant * P;
    scaled = n / den;
    const twice = 2n * (n - scaled * den);
    if (twice > den || (twice === den && (scaled & 1n) === 1n)) scaled += 1n;
  }
  const intPart = scaled / P;
  let frac = (scaled % P).toString().padStart(Number(DEC), '0').replace(/0+$/, '');
  if (frac.length > 0) frac = `.${frac}`;
  const body = `${intPart}${frac}`;
  if (body === '0') return '0';
  return v.neg ? `-${body}` : body;
}
