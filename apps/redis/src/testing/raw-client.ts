/**
 * A byte-level RESP test client: sends exact bytes and checks exact reply bytes, for what a
 * normal client library hides (protocol errors, inline commands, RESP3, connection closes).
 */

import { connect, type Socket } from 'node:net';

export class RawClient {
  private buf = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  private ended = false;
  readonly closed: Promise<void>;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.wake();
    });
    this.closed = new Promise((resolve) => {
      socket.on('close', () => {
        this.ended = true;
        this.wake();
        resolve();
      });
    });
    socket.on('error', () => {});
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = connect(port, host, () => resolve(new RawClient(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  get isClosed(): boolean {
    return this.ended;
  }

  send(data: string | Buffer): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** Reads exactly `n` bytes (rejects on close or timeout). */
  async read(n: number, timeoutMs = 5000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.buf.length < n) {
      if (this.ended)
        throw new Error(`connection closed after ${this.buf.length}/${n} bytes: ${this.pending()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${this.buf.length}/${n} bytes: ${this.pending()}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  /** Reads as many bytes as `expected` has and returns them as latin1 text (compare with it). */
  async expect(expected: string, timeoutMs?: number): Promise<string> {
    return (await this.read(Buffer.byteLength(expected, 'latin1'), timeoutMs)).toString('latin1');
  }

  /** What arrived but was not read yet. */
  pending(): string {
    return JSON.stringify(this.buf.toString('latin1'));
  }

  /** Drops whatever arrived and was not read. */
  pendingReset(): void {
    this.buf = Buffer.alloc(0);
  }

  /** Waits for the server to close the connection. */
  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    const timeout = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), timeoutMs));
    return Promise.race([this.closed.then(() => true), timeout]);
  }

  /** Half-closes: no more requests, replies still arrive. */
  endInput(): void {
    this.socket.end();
  }

  close(): void {
    this.socket.destroy();
  }
}

/** A command as a RESP multibulk request. */
export function resp(...args: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a) : a;
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}
