/**
 * Redis's glob (`stringmatchlen` in util.c) over bytes, for KEYS and SCAN MATCH: `*`, `?`,
 * `[abc]`, `[^a-z]`, and `\` escapes. Ported with its quirks (an unclosed `[` matches up to the
 * end of the pattern) so the same patterns select the same keys as in Redis. The nesting limit
 * guards against patterns like `*a*a*a*…b` that take exponential time.
 */

const MAX_NESTING = 1000;

export function globMatch(pattern: Buffer, s: Buffer): boolean {
  const skipLongerMatches = { v: false };
  return match(pattern, 0, s, 0, skipLongerMatches, 0);
}

function match(p: Buffer, pi: number, s: Buffer, si: number, skip: { v: boolean }, nesting: number): boolean {
  if (nesting > MAX_NESTING) return false;
  const plen = p.length;
  const slen = s.length;
  while (pi < plen && si < slen) {
    const c = p[pi]!;
    switch (c) {
      case 0x2a: {
        // '*'
        while (pi + 1 < plen && p[pi + 1] === 0x2a) pi++;
        if (pi + 1 === plen) return true;
        while (si < slen) {
          if (match(p, pi + 1, s, si, skip, nesting + 1)) return true;
          if (skip.v) return false;
          si++;
        }
        skip.v = true;
        return false;
      }
      case 0x3f:
        // '?'
        si++;
        break;
      case 0x5b: {
        // '['
        pi++;
        const not = p[pi] === 0x5e;
        if (not) pi++;
        let matched = false;
        for (;;) {
          if (pi < plen && p[pi] === 0x5c && pi + 1 < plen) {
            pi++;
            if (p[pi] === s[si]) matched = true;
          } else if (pi >= plen || p[pi] === 0x5d) {
            if (pi >= plen) pi--;
            break;
          } else if (pi + 2 < plen && p[pi + 1] === 0x2d) {
            let start = p[pi]!;
            let end = p[pi + 2]!;
            const ch = s[si]!;
            if (start > end) [start, end] = [end, start];
            pi += 2;
            if (ch >= start && ch <= end) matched = true;
          } else if (p[pi] === s[si]) {
            matched = true;
          }
          pi++;
        }
        if (not) matched = !matched;
        if (!matched) return false;
        si++;
        break;
      }
      case 0x5c:
        // '\\'
        if (pi + 1 < plen) pi++;
        if (p[pi] !== s[si]) return false;
        si++;
        break;
      default:
        if (c !== s[si]) return false;
        si++;
        break;
    }
    pi++;
    if (si === slen) {
      while (pi < plen && p[pi] === 0x2a) pi++;
      break;
    }
  }
  return pi === plen && si === slen;
}

/**
 * The literal bytes every match must start with (up to the first wildcard), so KEYS and SCAN can
 * read only that key range instead of the whole keyspace.
 */
export function literalPrefix(pattern: Buffer): Buffer {
  const out: number[] = [];
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === 0x2a || c === 0x3f || c === 0x5b) break;
    if (c === 0x5c) {
      if (i + 1 >= pattern.length) break;
      i++;
      out.push(pattern[i]!);
      continue;
    }
    out.push(c);
  }
  return Buffer.from(out);
}
