/**
 * One client socket: parse, execute in order, reply in order.
 *
 * Pipelining: commands are taken from the parser one at a time and each is awaited before the
 * next starts, so one connection's commands run strictly in order. Replies accumulate in one
 * buffer and are written when the parser runs dry (the input is drained) or the buffer grows
 * large, so a pipeline of N commands costs one or a few socket writes.
 *
 * Backpressure both ways: while the socket's write buffer is over its high-water mark we wait for
 * 'drain' before executing more, and while commands are executing we stop reading once the
 * unparsed input passes INPUT_HIGH_WATER, so a client that floods requests without reading
 * replies holds a bounded amount of our memory.
 */

import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { ClientState, QueuedCommand, ServerStats } from './commands/types.js';
import type { Dispatcher } from './dispatcher.js';
import { type Protocol, ReplyWriter } from './resp/encoder.js';
import { type ParserLimits, RespParser } from './resp/parser.js';

/** Write replies out once this many bytes are pending, even mid-pipeline. */
const FLUSH_BYTES = 64 * 1024;
/** Stop reading while executing once this much input waits unparsed. */
const INPUT_HIGH_WATER = 1024 * 1024;

export class ClientConnection implements ClientState {
  name = '';
  resp: Protocol = 2;
  readonly addr: string;
  readonly laddr: string;
  readonly fd: number;
  readonly createdAt = Date.now();
  lastActive = Date.now();
  lastCommand = 'NULL';
  multi: QueuedCommand[] | undefined;
  multiFailed = false;
  readonly watched = new Map<string, { key: Buffer; snapshot: string | undefined }>();
  watchDirty = false;
  closeAfterReply = false;

  private readonly parser: RespParser;
  private readonly writer = new ReplyWriter();
  private running = false;
  private closed = false;
  private pausedForInput = false;
  private inputEnded = false;

  constructor(
    readonly id: number,
    private readonly socket: Socket,
    private readonly dispatcher: Dispatcher,
    private readonly stats: ServerStats,
    limits: ParserLimits,
    private readonly logger: Logger | undefined,
    private readonly onClose: (c: ClientConnection) => void,
  ) {
    this.parser = new RespParser(limits);
    this.addr = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    this.laddr = `${socket.localAddress ?? '?'}:${socket.localPort ?? 0}`;
    this.fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => {
      this.logger?.debug({ err, client: this.id }, 'redis client socket error');
    });
    // The client may half-close after its last request (`nc -q`, scripts): answer it, then end.
    socket.on('end', () => {
      this.inputEnded = true;
      if (!this.running) this.finish();
    });
    socket.on('close', () => {
      this.closed = true;
      this.onClose(this);
    });
  }

  outputBytes(): number {
    return this.socket.writableLength + this.writer.length;
  }

  queryBytes(): number {
    return this.parser.bufferedBytes;
  }

  /** Closes the socket now (server shutdown). */
  destroy(): void {
    this.closed = true;
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    this.stats.netInputBytes += chunk.length;
    this.lastActive = Date.now();
    this.parser.feed(chunk);
    if (!this.running) {
      void this.pump();
    } else if (!this.pausedForInput && this.parser.bufferedBytes > INPUT_HIGH_WATER) {
      this.pausedForInput = true;
      this.socket.pause();
    }
  }

  private async pump(): Promise<void> {
    this.running = true;
    try {
      for (;;) {
        if (this.closed) return;
        const item = this.parser.next();
        if (item === undefined) break;
        if (item.kind === 'error') {
          this.writer.write(this.dispatcher.protocolError(item.message), this.resp);
          if (item.fatal) {
            this.finish();
            return;
          }
          continue;
        }
        const reply = await this.dispatcher.execute(this, item.args);
        if (this.closed) return;
        this.writer.write(reply, this.resp);
        if (this.closeAfterReply) {
          this.finish();
          return;
        }
        if (this.writer.length >= FLUSH_BYTES) {
          this.flush();
          if (this.socket.writableNeedDrain) await this.drained();
        }
      }
      if (this.inputEnded) {
        this.finish();
        return;
      }
      this.flush();
    } catch (err) {
      // Only a bug gets here (the dispatcher answers every failure): drop the connection.
      this.logger?.error({ err, client: this.id }, 'redis connection failed');
      this.socket.destroy();
    } finally {
      this.running = false;
      if (this.pausedForInput && !this.closed) {
        this.pausedForInput = false;
        this.socket.resume();
      }
    }
  }

  private flush(): void {
    if (this.writer.length === 0 || this.closed) return;
    const out = this.writer.take();
    this.stats.netOutputBytes += out.length;
    this.socket.write(out);
  }

  /** Writes what is pending, then closes (QUIT, fatal protocol errors). */
  private finish(): void {
    this.flush();
    this.closed = true;
    this.socket.end();
  }

  private drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }
}
