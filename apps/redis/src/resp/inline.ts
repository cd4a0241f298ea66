/**
 * Inline commands (`SET a "b c"\r\n`) split the way redis-server's `sdssplitargs` does, so telnet
 * sessions and redis-cli's inline mode see the same arguments as with Redis: whitespace separates,
 * double quotes take C escapes (`\n`, `\xHH` …), single quotes take only `\'`, and a closing quote
 * must be followed by whitespace or the end of the line.
 */

/** C `isspace`: what separates arguments and may follow a closing quote. */
const SPACE = new Set([0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d]);
/** What ends an unquoted argument (narrower than `isspace`, as in sdssplitargs). */
const UNQUOTED_END = new Set([0x20, 0x0a, 0x0d, 0x09]);

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/** The arguments of one inline line, or `undefined` when its quotes do not balance. */
export function splitInlineArgs(input: Buffer): Buffer[] | undefined {
  // Redis splits a C string: a NUL byte ends the line.
  const nul = input.indexOf(0);
  const line = nul >= 0 ? input.subarray(0, nul) : input;
  const args: Buffer[] = [];
  let p = 0;
  const n = line.length;
  for (;;) {
    while (p < n && SPACE.has(line[p]!)) p++;
    if (p >= n) return args;
    const cur: number[] = [];
    let inDouble = false;
    let inSingle = false;
    let done = false;
    while (!done) {
      if (inDouble) {
        if (p >= n) return undefined;
        const c = line[p]!;
        if (
          c === 0x5c &&
          p + 3 < n &&
          line[p + 1] === 0x78 &&
          hexValue(line[p + 2]!) >= 0 &&
          hexValue(line[p + 3]!) >= 0
        ) {
          cur.push(hexValue(line[p + 2]!) * 16 + hexValue(line[p + 3]!));
          p += 3;
        } else if (c === 0x5c && p + 1 < n) {
          p++;
          const e = line[p]!;
          cur.push(
            e === 0x6e
              ? 0x0a
              : e === 0x72
                ? 0x0d
                : e === 0x74
                  ? 0x09
                  : e === 0x62
                    ? 0x08
                    : e === 0x61
                      ? 0x07
                      : e,
          );
        } else if (c === 0x22) {
          // A closing quote must be followed by a space or nothing at all.
          if (p + 1 < n && !SPACE.has(line[p + 1]!)) return undefined;
          done = true;
        } else {
          cur.push(c);
        }
      } else if (inSingle) {
        if (p >= n) return undefined;
        const c = line[p]!;
        if (c === 0x5c && p + 1 < n && line[p + 1] === 0x27) {
          p++;
          cur.push(0x27);
        } else if (c === 0x27) {
          if (p + 1 < n && !SPACE.has(line[p + 1]!)) return undefined;
          done = true;
        } else {
          cur.push(c);
        }
      } else {
        if (p >= n) break;
        const c = line[p]!;
        if (UNQUOTED_END.has(c)) {
          done = true;
        } else if (c === 0x22) {
          inDouble = true;
        } else if (c === 0x27) {
          inSingle = true;
        } else {
          cur.push(c);
        }
      }
      if (p < n) p++;
    }
    args.push(Buffer.from(cur));
  }
}
