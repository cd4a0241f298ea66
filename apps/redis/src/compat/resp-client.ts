/**
 * A minimal raw RESP client for the compatibility harness: it writes exactly the bytes it is
 * given and reads back one complete reply at a time as the raw bytes the server sent, plus a
 * parsed tree for the few normalisers that need structure. Independent of the gateway's own
 * parser and encoder on purpose: a harness that shared their code would share their bugs.
 *
 * Understands every RESP2 and RESP3 reply type, nested to any depth: simple string, error,
 * integer, bulk (incl. `$-1`), array (incl. `*-1`), null `_`, double `,`, boolean `#`, big number
 * `(`, blob error `!`, verbatim string `=`, map `%`, set `~`, push `>`, attributes `|` (kept with
 * the reply they annotate), and streamed strings / aggregates (`$?`, `*?`, `%?`, `~?`).
 */

import { connect, type Socket } from 'node:net';

export type RespValue =
  | { readonly type: 'simple'; readonly value: string }
  | { readonly type: 'error'; readonly value: string }
  | { readonly type: 'integer'; readonly value: bigint }
  /** `$-1` (RESP2 null bulk) has value null. */
  | { readonly type: 'bulk'; readonly value: Buffer | null }
  /** `*-1` (RESP2 null array) has value null. */
  | { readonly type: 'array'; readonly value: readonly RespValue[] | null }
  | { readonly type: 'null' }
  /** Kept as the text the server sent (`inf`, `-nan`, `1.5`): compared as text, never rounded. */
  | { readonly type: 'double'; readonly value: string }
  | { readonly type: 'boolean'; readonly value: boolean }
  | { readonly type: 'bignum'; readonly value: string }
  | { readonly type: 'blobError'; readonly value: Buffer }
  | { readonly type: 'verbatim'; readonly format: string; readonly value: Buffer }
  | { readonly type: 'map'; readonly value: readonly (readonly [RespValue, RespValue])[] }
  | { readonly type: 'set'; readonly value: readonly RespValue[] }
  | { readonly type: 'push'; readonly value: readonly RespValue[] }
  /** A reply preceded by an attribute map (`|`). */
  | {
      readonly type: 'attributed';
      readonly attributes: readonly (readonly [RespValue, RespValue])[];
      readonly value: RespValue;
    };

export class RespProtocolError extends Error {
  override readonly name = 'RespProtocolError';
}

/** Thrown by `parseReply` when the buffer ends before the reply does. */
const INCOMPLETE = Symbol('incomplete');

const CR = 13;
const LF = 10;

/** The line starting at `pos` (without CRLF) and the offset after its CRLF. */
function readLine(buf: Buffer, pos: number): { line: string; next: number } {
  const cr = buf.indexOf('\r\n', pos, 'latin1');
  if (cr < 0) throw INCOMPLETE;
  return { line: buf.toString('latin1', pos, cr), next: cr + 2 };
}

function parseLength(line: string, what: string): number {
  if (!/^-?\d+$/.test(line)) throw new RespProtocolError(`bad ${what} length ${JSON.stringify(line)}`);
  return Number(line);
}

function readBlob(buf: Buffer, pos: number, len: number): { bytes: Buffer; next: number } {
  if (buf.length < pos + len + 2) throw INCOMPLETE;
  if (buf[pos + len] !== CR || buf[pos + len + 1] !== LF)
    throw new RespProtocolError('blob not terminated by CRLF');
  return { bytes: Buffer.from(buf.subarray(pos, pos + len)), next: pos + len + 2 };
}

function parseAt(buf: Buffer, pos: number): { value: RespValue; next: number } {
  if (pos >= buf.length) throw INCOMPLETE;
  const prefix = String.fromCharCode(buf[pos]!);
  const { line, next } = readLine(buf, pos + 1);
  switch (prefix) {
    case '+':
      return { value: { type: 'simple', value: line }, next };
    case '-':
      return { value: { type: 'error', value: line }, next };
    case ':':
      if (!/^[-+]?\d+$/.test(line)) throw new RespProtocolError(`bad integer ${JSON.stringify(line)}`);
      return { value: { type: 'integer', value: BigInt(line) }, next };
    case '_':
      return { value: { type: 'null' }, next };
    case ',':
      return { value: { type: 'double', value: line }, next };
    case '#':
      if (line !== 't' && line !== 'f') throw new RespProtocolError(`bad boolean ${JSON.stringify(line)}`);
      return { value: { type: 'boolean', value: line === 't' }, next };
    case '(':
      return { value: { type: 'bignum', value: line }, next };
    case '$':
    case '!':
    case '=': {
      if (line === '?' && prefix === '$') return parseStreamedString(buf, next);
      const len = parseLength(line, 'bulk');
      if (len < 0) {
        if (prefix !== '$') throw new RespProtocolError(`negative length for ${prefix}`);
        return { value: { type: 'bulk', value: null }, next };
      }
      const blob = readBlob(buf, next, len);
      if (prefix === '$') return { value: { type: 'bulk', value: blob.bytes }, next: blob.next };
      if (prefix === '!') return { value: { type: 'blobError', value: blob.bytes }, next: blob.next };
      // Verbatim: three format characters, a colon, then the text.
      if (len < 4 || blob.bytes[3] !== 0x3a) throw new RespProtocolError('verbatim string without format');
      return {
        value: {
          type: 'verbatim',
          format: blob.bytes.toString('latin1', 0, 3),
          value: blob.bytes.subarray(4),
        },
        next: blob.next,
      };
    }
    case '*':
    case '~':
    case '>': {
      const { items, next: after, isNull } = parseItems(buf, next, line, 1);
      const flat = items.map((pair) => pair[0]!);
      if (prefix === '*') return { value: { type: 'array', value: isNull ? null : flat }, next: after };
      if (isNull) throw new RespProtocolError(`negative length for ${prefix}`);
      return { value: { type: prefix === '~' ? 'set' : 'push', value: flat }, next: after };
    }
    case '%':
    case '|': {
      const { items, next: after, isNull } = parseItems(buf, next, line, 2);
      if (isNull) throw new RespProtocolError(`negative length for ${prefix}`);
      const pairs = items.map((p) => [p[0]!, p[1]!] as const);
      if (prefix === '%') return { value: { type: 'map', value: pairs }, next: after };
      // An attribute annotates the reply that follows it; both are one reply for the caller.
      const inner = parseAt(buf, after);
      return { value: { type: 'attributed', attributes: pairs, value: inner.value }, next: inner.next };
    }
    default:
      throw new RespProtocolError(`unknown reply type byte 0x${buf[pos]!.toString(16)}`);
  }
}

/** `count` groups of `width` values (width 2 for maps), or until `.` for a streamed aggregate. */
function parseItems(
  buf: Buffer,
  pos: number,
  header: string,
  width: number,
): { items: RespValue[][]; next: number; isNull: boolean } {
  const items: RespValue[][] = [];
  let at = pos;
  if (header === '?') {
    for (;;) {
      if (at >= buf.length) throw INCOMPLETE;
      if (buf[at] === 0x2e) {
        // `.\r\n` ends a streamed aggregate.
        const end = readLine(buf, at + 1);
        return { items, next: end.next, isNull: false };
      }
      const group: RespValue[] = [];
      for (let j = 0; j < width; j++) {
        const r = parseAt(buf, at);
        group.push(r.value);
        at = r.next;
      }
      items.push(group);
    }
  }
  const count = parseLength(header, 'aggregate');
  if (count < 0) return { items, next: at, isNull: true };
  for (let i = 0; i < count; i++) {
    const group: RespValue[] = [];
    for (let j = 0; j < width; j++) {
      const r = parseAt(buf, at);
      group.push(r.value);
      at = r.next;
    }
    items.push(group);
  }
  return { items, next: at, isNull: false };
}

/** `$?` then `;len` chunks until `;0`. */
function parseStreamedString(buf: Buffer, pos: number): { value: RespValue; next: number } {
  const parts: Buffer[] = [];
  let at = pos;
  for (;;) {
    if (at >= buf.length) throw INCOMPLETE;
    if (buf[at] !== 0x3b) throw new RespProtocolError('streamed string chunk without ";"');
    const { line, next } = readLine(buf, at + 1);
    const len = parseLength(line, 'chunk');
    if (len === 0) return { value: { type: 'bulk', value: Buffer.concat(parts) }, next };
    const blob = readBlob(buf, next, len);
    parts.push(blob.bytes);
    at = blob.next;
  }
}

/**
 * One complete reply at `offset`: its value and the offset just past it, or undefined when the
 * buffer holds only part of it. Throws RespProtocolError on bytes that are not RESP.
 */
export function parseReply(buf: Buffer, offset = 0): { value: RespValue; end: number } | undefined {
  try {
    const r = parseAt(buf, offset);
    return { value: r.value, end: r.next };
  } catch (err) {
    if (err === INCOMPLETE) return undefined;
    throw err;
  }
}

/** A command as a RESP multibulk array of bulk strings. */
export function encodeCommand(args: readonly (string | Uint8Array)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const bytes = typeof a === 'string' ? Buffer.from(a) : Buffer.from(a);
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** What one read produced: a reply (its exact bytes and parsed value), or why there is none. */
export type ReadResult =
  | { readonly kind: 'reply'; readonly raw: Buffer; readonly value: RespValue }
  | { readonly kind: 'closed' }
  | { readonly kind: 'timeout' }
  | { readonly kind: 'garbage'; readonly raw: Buffer; readonly message: string };

export class RawRespClient {
  private buf: Buffer = Buffer.alloc(0);
  private ended = false;
  private wake: (() => void) | undefined;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
      this.wake?.();
    });
    const end = () => {
      this.ended = true;
      this.wake?.();
    };
    socket.on('end', end);
    socket.on('close', end);
    // A reset or EPIPE after the server closed is an outcome the caller reads as 'closed'.
    socket.on('error', end);
  }

  static connect(port: number, host = '127.0.0.1', timeoutMs = 5000): Promise<RawRespClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host, noDelay: true });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect to ${host}:${port} timed out`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new RawRespClient(socket));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  /** True once the server closed the connection (or it failed). */
  get isClosed(): boolean {
    return this.ended;
  }

  /** Writes the bytes as they are; a write to a closed connection is ignored (the read says 'closed'). */
  send(bytes: Uint8Array | string): void {
    if (this.ended || this.socket.destroyed) return;
    this.socket.write(bytes);
  }

  /** Reads exactly one reply (waiting at most `timeoutMs` for it to be complete). */
  async read(timeoutMs = 5000): Promise<ReadResult> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      let parsed: { value: RespValue; end: number } | undefined;
      try {
        parsed = parseReply(this.buf);
      } catch (err) {
        const raw = this.buf;
        this.buf = Buffer.alloc(0);
        return { kind: 'garbage', raw, message: (err as Error).message };
      }
      if (parsed) {
        const raw = Buffer.from(this.buf.subarray(0, parsed.end));
        this.buf = this.buf.subarray(parsed.end);
        return { kind: 'reply', raw, value: parsed.value };
      }
      if (this.ended) {
        if (this.buf.length > 0) {
          const raw = this.buf;
          this.buf = Buffer.alloc(0);
          return { kind: 'garbage', raw, message: 'connection closed inside a reply' };
        }
        return { kind: 'closed' };
      }
      const left = deadline - Date.now();
      if (left <= 0) return { kind: 'timeout' };
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  /** Sends one command (RESP array of bulk strings) and reads its reply. */
  async command(args: readonly (string | Uint8Array)[], timeoutMs?: number): Promise<ReadResult> {
    this.send(encodeCommand(args));
    return this.read(timeoutMs);
  }

  /** Bytes received but not yet read as a reply (extra replies the test did not expect). */
  pending(): Buffer {
    return this.buf;
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A reply as one readable line: the exact bytes with CR/LF and non-printable bytes escaped. */
export function showBytes(raw: Buffer): string {
  let s = '';
  for (const b of raw) {
    if (b === CR) s += '\\r';
    else if (b === LF) s += '\\n';
    else if (b === 0x5c) s += '\\\\';
    else if (b >= 0x20 && b < 0x7f) s += String.fromCharCode(b);
    else s += `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return s;
}
