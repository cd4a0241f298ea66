/**
 * Incremental RESP request parser: multibulk arrays of bulk strings, and inline commands, fed
 * with socket chunks in whatever pieces they arrive. Pull-based (`feed` then `next` until it
 * returns undefined) so the connection parses only as fast as it executes: unparsed bytes stay
 * here while the socket is paused, and pipelined commands never pile up as objects.
 *
 * Error wording follows redis-server 7 (`networking.c`). Where Redis closes the connection we
 * close it only if the stream cannot be resynchronised: a bad length or a missing `$` leaves no
 * way to find the next command (fatal), but a bulk longer than our limit, too many arguments or
 * a too-long inline line are skipped byte by byte without buffering them, the command answers an
 * error and the connection stays usable.
 */

import { splitInlineArgs } from './inline.js';

export interface ParserLimits {
  /** Arguments in one command (a larger `*N` is skipped with an error). */
  maxArgs: number;
  /** Bytes of one argument (a larger `$N` is skipped with an error). */
  maxBulkBytes: number;
  /** Bytes of one inline command line. */
  maxInlineBytes: number;
  /** Bytes of all arguments of one command together. */
  maxRequestBytes: number;
}

/** Redis's PROTO_INLINE_MAX_SIZE: the longest `*N` / `$N` header line it waits for. */
export const MAX_HEADER_LINE = 64 * 1024;
/** Redis rejects multibulk lengths above INT_MAX outright. */
const MAX_MULTIBULK = 2_147_483_647;

export const DEFAULT_PARSER_LIMITS: ParserLimits = {
  maxArgs: 1024 * 1024,
  maxBulkBytes: 32 * 1024 * 1024,
  maxInlineBytes: 64 * 1024,
  maxRequestBytes: 512 * 1024 * 1024,
};

export type ParseResult =
  | { kind: 'command'; args: Buffer[] }
  /** `message` is the error reply without its leading `-` (`ERR Protocol error: …`); `fatal`: reply, then close. */
  | { kind: 'error'; message: string; fatal: boolean };

const CR = 0x0d;
const LF = 0x0a;
const EMPTY = Buffer.alloc(0);

/**
 * Redis's `string2ll`: optional `-`, no `+`, no leading zeros, no spaces, fits int64. Lengths
 * beyond 2^53 are treated as overflow, which for lengths means "invalid" either way.
 */
export function parseStrictInt(buf: Buffer, start: number, end: number): number | undefined {
  const len = end - start;
  if (len <= 0 || len > 20) return undefined;
  let p = start;
  let negative = false;
  if (buf[p] === 0x2d) {
    negative = true;
    p++;
    if (p === end) return undefined;
  }
  if (buf[p] === 0x30) return p + 1 === end && !negative ? 0 : undefined;
  let v = 0;
  for (; p < end; p++) {
    const c = buf[p]!;
    if (c < 0x30 || c > 0x39) return undefined;
    v = v * 10 + (c - 0x30);
  }
  if (v > Number.MAX_SAFE_INTEGER) return undefined;
  return negative ? -v : v;
}

type State =
  /** Between commands. */
  | 'start'
  /** Inside `*N`: expecting `$len` of the next argument. */
  | 'bulkHeader'
  /** Copying the bytes of a bulk argument (possibly across chunks). */
  | 'bulkData'
  /** Discarding bytes (an oversized argument, or the CRLF after a bulk). */
  | 'skip'
  /** Discarding an over-long inline line up to its newline. */
  | 'skipLine'
  /** A fatal error was reported: nothing more is parsed. */
  | 'dead';

export class RespParser {
  private readonly limits: ParserLimits;
  private buf: Buffer = EMPTY;
  private pos = 0;
  private state: State = 'start';

  /** Arguments still expected by the multibulk in progress. */
  private remaining = 0;
  private args: Buffer[] = [];
  private requestBytes = 0;
  /** Set when the command in progress exceeded a limit: its arguments are discarded. */
  private poison: string | undefined;

  /** The bulk being filled, and how much of it is filled. */
  private bulk: Buffer = EMPTY;
  private bulkFilled = 0;
  /** Bytes left to discard in 'skip', and whether to then expect the bulk's CRLF. */
  private skipLeft = 0;
  private skipThenCrlf = false;
  /** A filled bulk waiting for its trailing CRLF to be skipped. */
  private pendingArg: Buffer | undefined;

  constructor(limits: Partial<ParserLimits> = {}) {
    this.limits = { ...DEFAULT_PARSER_LIMITS, ...limits };
  }

  /** Bytes received but not yet parsed into a command (what a paused socket leaves here). */
  get bufferedBytes(): number {
    return this.buf.length - this.pos + this.bulkFilled;
  }

  /** True between commands (no command partially received). */
  get idle(): boolean {
    return this.state === 'start' && this.pos >= this.buf.length;
  }

  feed(chunk: Buffer): void {
    if (this.state === 'dead' || chunk.length === 0) return;
    if (this.pos >= this.buf.length) {
      this.buf = chunk;
    } else {
      this.buf = Buffer.concat([this.buf.subarray(this.pos), chunk]);
    }
    this.pos = 0;
  }

  /** The next complete command or error, or undefined when more input is needed. */
  next(): ParseResult | undefined {
    for (;;) {
      switch (this.state) {
        case 'dead':
          return undefined;
        case 'start': {
          if (this.pos >= this.buf.length) {
            this.release();
            return undefined;
          }
          const r = this.buf[this.pos] === 0x2a ? this.multibulkHeader() : this.inline();
          if (r !== 'continue') return r;
          break;
        }
        case 'bulkHeader': {
          const r = this.bulkHeader();
          if (r !== 'continue') return r;
          break;
        }
        case 'bulkData': {
          const avail = this.buf.length - this.pos;
          if (avail === 0) return undefined;
          const need = this.bulk.length - this.bulkFilled;
          const n = Math.min(avail, need);
          this.buf.copy(this.bulk, this.bulkFilled, this.pos, this.pos + n);
          this.pos += n;
          this.bulkFilled += n;
          if (this.bulkFilled < this.bulk.length) return undefined;
          // Redis skips the two bytes after a bulk without checking that they are CRLF.
          this.pendingArg = this.bulk;
          this.bulk = EMPTY;
          this.bulkFilled = 0;
          this.skipLeft = 2;
          this.skipThenCrlf = false;
          this.state = 'skip';
          break;
        }
        case 'skip': {
          const avail = this.buf.length - this.pos;
          if (avail === 0) return undefined;
          const n = Math.min(avail, this.skipLeft);
          this.pos += n;
          this.skipLeft -= n;
          if (this.skipLeft > 0) return undefined;
          if (this.skipThenCrlf) {
            this.skipThenCrlf = false;
            this.skipLeft = 2;
            break;
          }
          const arg = this.pendingArg;
          this.pendingArg = undefined;
          const r = this.argumentDone(arg);
          if (r !== 'continue') return r;
          break;
        }
        case 'skipLine': {
          const nl = this.buf.indexOf(LF, this.pos);
          if (nl < 0) {
            this.pos = this.buf.length;
            return undefined;
          }
          this.pos = nl + 1;
          this.state = 'start';
          break;
        }
      }
    }
  }

  /** Drops the consumed prefix so a long-lived connection does not pin old chunks. */
  private release(): void {
    if (this.pos >= this.buf.length) {
      this.buf = EMPTY;
      this.pos = 0;
    }
  }

  private fatal(message: string): ParseResult {
    this.state = 'dead';
    this.buf = EMPTY;
    this.pos = 0;
    this.args = [];
    this.bulk = EMPTY;
    this.bulkFilled = 0;
    return { kind: 'error', message, fatal: true };
  }

  /**
   * The header line at `pos` (after its type byte) up to `\r`, as Redis finds it: it searches
   * for `\r`, then needs one more byte (assumed `\n`) before it parses.
   */
  private headerLine(tooBig: string): { start: number; end: number } | ParseResult | undefined {
    const cr = this.buf.indexOf(CR, this.pos);
    if (cr < 0 || cr + 1 >= this.buf.length) {
      if (this.buf.length - this.pos > MAX_HEADER_LINE) return this.fatal(tooBig);
      return undefined;
    }
    if (cr - this.pos > MAX_HEADER_LINE) return this.fatal(tooBig);
    return { start: this.pos + 1, end: cr };
  }

  private multibulkHeader(): ParseResult | 'continue' | undefined {
    const line = this.headerLine('ERR Protocol error: too big mbulk count string');
    if (line === undefined || 'kind' in line) return line;
    const n = parseStrictInt(this.buf, line.start, line.end);
    if (n === undefined || n > MAX_MULTIBULK)
      return this.fatal('ERR Protocol error: invalid multibulk length');
    this.pos = line.end + 2;
    if (n <= 0) return 'continue';
    this.remaining = n;
    this.args = [];
    this.requestBytes = 0;
    this.poison = n > this.limits.maxArgs ? 'ERR Protocol error: invalid multibulk length' : undefined;
    this.state = 'bulkHeader';
    return 'continue';
  }

  private bulkHeader(): ParseResult | 'continue' | undefined {
    if (this.pos >= this.buf.length) return undefined;
    const type = this.buf[this.pos]!;
    if (type !== 0x24) {
      return this.fatal(`ERR Protocol error: expected '$', got '${String.fromCharCode(type)}'`);
    }
    const line = this.headerLine('ERR Protocol error: too big bulk count string');
    if (line === undefined || 'kind' in line) return line;
    const len = parseStrictInt(this.buf, line.start, line.end);
    if (len === undefined || len < 0) return this.fatal('ERR Protocol error: invalid bulk length');
    this.pos = line.end + 2;
    if (this.poison === undefined) {
      if (len > this.limits.maxBulkBytes) {
        this.poison = 'ERR Protocol error: invalid bulk length';
      } else if (this.requestBytes + len > this.limits.maxRequestBytes) {
        this.poison = `ERR Protocol error: request larger than ${this.limits.maxRequestBytes} bytes`;
      }
    }
    if (this.poison !== undefined) {
      this.skipLeft = len;
      this.skipThenCrlf = true;
      this.state = 'skip';
      return 'continue';
    }
    this.requestBytes += len;
    // Whole bulk already here: a view into the chunk, no copy.
    if (this.buf.length - this.pos >= len + 2) {
      const arg = this.buf.subarray(this.pos, this.pos + len);
      this.pos += len + 2;
      return this.argumentDone(arg);
    }
    this.bulk = Buffer.allocUnsafe(len);
    this.bulkFilled = 0;
    this.skipThenCrlf = false;
    this.state = 'bulkData';
    return 'continue';
  }

  /** One argument read (or skipped: undefined); ends the command when it was the last. */
  private argumentDone(arg: Buffer | undefined): ParseResult | 'continue' {
    if (arg !== undefined && this.poison === undefined) this.args.push(arg);
    this.remaining--;
    if (this.remaining > 0) {
      this.state = 'bulkHeader';
      return 'continue';
    }
    this.state = 'start';
    const args = this.args;
    this.args = [];
    if (this.poison !== undefined) {
      const message = this.poison;
      this.poison = undefined;
      return { kind: 'error', message, fatal: false };
    }
    return { kind: 'command', args };
  }

  private inline(): ParseResult | 'continue' | undefined {
    const nl = this.buf.indexOf(LF, this.pos);
    if (nl < 0) {
      if (this.buf.length - this.pos > this.limits.maxInlineBytes) {
        this.pos = this.buf.length;
        this.state = 'skipLine';
        return { kind: 'error', message: 'ERR Protocol error: too big inline request', fatal: false };
      }
      return undefined;
    }
    const end = nl > this.pos && this.buf[nl - 1] === CR ? nl - 1 : nl;
    const line = this.buf.subarray(this.pos, end);
    this.pos = nl + 1;
    if (line.length > this.limits.maxInlineBytes) {
      return { kind: 'error', message: 'ERR Protocol error: too big inline request', fatal: false };
    }
    const args = splitInlineArgs(line);
    if (args === undefined) {
      return { kind: 'error', message: 'ERR Protocol error: unbalanced quotes in request', fatal: false };
    }
    if (args.length === 0) return 'continue';
    if (args.length > this.limits.maxArgs) {
      return { kind: 'error', message: 'ERR Protocol error: invalid multibulk length', fatal: false };
    }
    return { kind: 'command', args };
  }
}
