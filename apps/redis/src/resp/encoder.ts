/**
 * Encodes replies as RESP2 or RESP3 into one growing buffer per flush: a pipeline of small
 * replies becomes one socket write, not one write (and one Buffer) per reply.
 */

import type { Reply } from './reply.js';

export type Protocol = 2 | 3;

const CRLF = '\r\n';

/** Redis's `%.17g` for doubles, with its spellings of the infinities. */
export function formatDouble(v: number): string {
  if (Number.isNaN(v)) return 'nan';
  if (v === Number.POSITIVE_INFINITY) return 'inf';
  if (v === Number.NEGATIVE_INFINITY) return '-inf';
  // Shortest round-trip form: what %.17g prints, minus noise digits clients do not need.
  const s = String(v);
  return s.includes('e') ? s.replace(/e\+?/, 'e+').replace('e+-', 'e-') : s;
}

/** Error text must stay on one line, or the reply stream breaks (Redis does the same). */
function sanitizeLine(s: string): string {
  return /[\r\n]/.test(s) ? s.replace(/[\r\n]/g, ' ') : s;
}

export class ReplyWriter {
  private buf: Buffer;
  private len = 0;

  constructor(initialBytes = 16 * 1024) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  get length(): number {
    return this.len;
  }

  /** The encoded bytes so far (copied out), and an empty writer. */
  take(): Buffer {
    const out = Buffer.from(this.buf.subarray(0, this.len));
    this.len = 0;
    if (this.buf.length > 1024 * 1024) this.buf = Buffer.allocUnsafe(16 * 1024);
    return out;
  }

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  private ascii(s: string): void {
    this.ensure(s.length * 3);
    this.len += this.buf.write(s, this.len, 'utf8');
  }

  private bytes(b: Buffer): void {
    this.ensure(b.length);
    b.copy(this.buf, this.len);
    this.len += b.length;
  }

  private bulkBody(v: Buffer | string): void {
    if (typeof v === 'string') {
      const n = Buffer.byteLength(v);
      this.ascii(`$${n}${CRLF}`);
      this.ensure(n + 2);
      this.len += this.buf.write(v, this.len, 'utf8');
      this.ascii(CRLF);
    } else {
      this.ascii(`$${v.length}${CRLF}`);
      this.bytes(v);
      this.ascii(CRLF);
    }
  }

  write(r: Reply, proto: Protocol): void {
    switch (r.t) {
      case 'simple':
        this.ascii(`+${sanitizeLine(r.v)}${CRLF}`);
        return;
      case 'error':
        this.ascii(`-${sanitizeLine(r.v)}${CRLF}`);
        return;
      case 'int':
        this.ascii(`:${r.v}${CRLF}`);
        return;
      case 'bulk':
        this.bulkBody(r.v);
        return;
      case 'null':
        this.ascii(proto === 3 ? `_${CRLF}` : `$-1${CRLF}`);
        return;
      case 'nullArray':
        this.ascii(proto === 3 ? `_${CRLF}` : `*-1${CRLF}`);
        return;
      case 'array':
        this.ascii(`*${r.v.length}${CRLF}`);
        for (const item of r.v) this.write(item, proto);
        return;
      case 'set':
        this.ascii(`${proto === 3 ? '~' : '*'}${r.v.length}${CRLF}`);
        for (const item of r.v) this.write(item, proto);
        return;
      case 'map':
        this.ascii(proto === 3 ? `%${r.v.length}${CRLF}` : `*${r.v.length * 2}${CRLF}`);
        for (const [k, v] of r.v) {
          this.write(k, proto);
          this.write(v, proto);
        }
        return;
      case 'double':
        if (proto === 3) this.ascii(`,${formatDouble(r.v)}${CRLF}`);
        else this.bulkBody(formatDouble(r.v));
        return;
      case 'bool':
        this.ascii(proto === 3 ? `#${r.v ? 't' : 'f'}${CRLF}` : `:${r.v ? 1 : 0}${CRLF}`);
        return;
      case 'verbatim':
        if (proto === 3) {
          const body = `${r.format}:${r.v}`;
          this.ascii(`=${Buffer.byteLength(body)}${CRLF}${body}${CRLF}`);
        } else {
          this.bulkBody(r.v);
        }
        return;
    }
  }
}

/** One reply, encoded on its own (tests, and replies written outside a pipeline). */
export function encodeReply(r: Reply, proto: Protocol): Buffer {
  const w = new ReplyWriter(256);
  w.write(r, proto);
  return w.take();
}
