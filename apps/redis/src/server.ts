/**
 * The Redis-compatible gateway: a TCP server speaking RESP2/RESP3 over a `KvBackend`.
 *
 *     const backend = await EmbeddedBackend.open({ workdir: './work_redis' });
 *     const redis = await startRedisServer({ backend, port: 6380 });
 *     // redis-cli -p 6380 set hello world
 *     await redis.close();
 *     await backend.close();
 *
 * The server does not own the backend: `close()` stops accepting, drops the connections and the
 * expiry sweeper, and leaves the backend open for its owner to close.
 */

import { randomBytes } from 'node:crypto';
import { createServer, type Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { KvBackend } from './backend/backend.js';
import { ClientConnection } from './client-connection.js';
import { ScanCursors } from './commands/scan-cursors.js';
import { COMMANDS } from './commands/table.js';
import type { ServerContext, ServerStats } from './commands/types.js';
import { WatchRegistry } from './commands/watches.js';
import { Dispatcher } from './dispatcher.js';
import { GatewayMetrics } from './metrics.js';
import { DEFAULT_PARSER_LIMITS, type ParserLimits } from './resp/parser.js';
import { ExpirySweeper, type SweeperOptions } from './sweeper.js';

export interface RedisServerOptions {
  backend: KvBackend;
  /** Default 127.0.0.1. */
  host?: string;
  /** 0 = any free port (default 0). */
  port?: number;
  /** FLUSHDB/FLUSHALL allowed (default false: they answer an error naming the flag). */
  allowFlush?: boolean;
  /** Open connections at most; more are refused with `-ERR max number of clients reached` (default 10000). */
  maxClients?: number;
  /** Arguments per command (default 1M). */
  maxArgs?: number;
  /** Bytes of one argument, and the longest string APPEND/SETRANGE may build (default 32 MiB). */
  maxBulkBytes?: number;
  /** Bytes of one inline command line (default 64 KiB). */
  maxInlineBytes?: number;
  registry?: Registry;
  logger?: Logger;
  /** Background deletion of expired keys (see sweeper.ts); `false` turns it off. */
  sweeper?: SweeperOptions | false;
}

export interface RunningRedis {
  host: string;
  port: number;
  /** `host:port`. */
  addr: string;
  close(): Promise<void>;
}

/** Engines cap a value at 256 MiB; the envelope header must fit besides the string. */
const MAX_BULK_CEILING = 256 * 1024 * 1024 - 64;

function positiveInt(v: number | undefined, fallback: number, what: string): number {
  if (v === undefined) return fallback;
  if (!Number.isSafeInteger(v) || v <= 0)
    throw new RangeError(`${what} must be a positive integer; got ${v}`);
  return v;
}

export async function startRedisServer(opts: RedisServerOptions): Promise<RunningRedis> {
  const host = opts.host ?? '127.0.0.1';
  const limits: ParserLimits = {
    ...DEFAULT_PARSER_LIMITS,
    maxArgs: positiveInt(opts.maxArgs, DEFAULT_PARSER_LIMITS.maxArgs, 'maxArgs'),
    maxBulkBytes: Math.min(
      positiveInt(opts.maxBulkBytes, DEFAULT_PARSER_LIMITS.maxBulkBytes, 'maxBulkBytes'),
      MAX_BULK_CEILING,
    ),
    maxInlineBytes: positiveInt(opts.maxInlineBytes, DEFAULT_PARSER_LIMITS.maxInlineBytes, 'maxInlineBytes'),
  };
  const maxClients = positiveInt(opts.maxClients, 10_000, 'maxClients');
  const logger = opts.logger;
  const metrics = new GatewayMetrics(opts.registry);
  const stats: ServerStats = {
    connectionsReceived: 0,
    rejectedConnections: 0,
    commandsProcessed: 0,
    errorReplies: 0,
    keyspaceHits: 0,
    keyspaceMisses: 0,
    expiredKeys: 0,
    netInputBytes: 0,
    netOutputBytes: 0,
  };
  const clients = new Map<number, ClientConnection>();
  let boundPort = 0;
  const context: ServerContext = {
    backend: opts.backend,
    allowFlush: opts.allowFlush ?? false,
    maxClients,
    maxBulkBytes: limits.maxBulkBytes,
    startedAt: Date.now(),
    port: () => boundPort,
    stats,
    clients,
    cursors: new ScanCursors(),
    watches: new WatchRegistry(),
    runId: randomBytes(20).toString('hex'),
  };
  const dispatcher = new Dispatcher(COMMANDS, context, metrics, logger);
  let nextId = 1;

  const server = createServer({ allowHalfOpen: true }, (socket: Socket) => {
    stats.connectionsReceived++;
    if (clients.size >= maxClients) {
      stats.rejectedConnections++;
      metrics.connectionRejected();
      socket.on('error', () => {});
      socket.end('-ERR max number of clients reached\r\n');
      return;
    }
    metrics.connectionOpened();
    const conn = new ClientConnection(nextId++, socket, dispatcher, stats, limits, logger, (c) => {
      context.watches.unwatchAll(c);
      if (clients.delete(c.id)) metrics.connectionClosed();
    });
    clients.set(conn.id, conn);
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (err) => logger?.error({ err }, 'redis gateway server error'));
  const address = server.address();
  boundPort = typeof address === 'object' && address !== null ? address.port : (opts.port ?? 0);

  const sweeper =
    opts.sweeper === false
      ? undefined
      : new ExpirySweeper(
          opts.backend,
          opts.sweeper ?? {},
          (n) => {
            stats.expiredKeys += n;
            metrics.expiredSwept(n);
          },
          logger,
        );
  sweeper?.start();
  logger?.info({ addr: `${host}:${boundPort}`, backend: opts.backend.kind }, 'redis gateway listening');

  let closing: Promise<void> | undefined;
  return {
    host,
    port: boundPort,
    addr: `${host}:${boundPort}`,
    close(): Promise<void> {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const c of clients.values()) c.destroy();
        await sweeper?.stop();
        await closed;
        metrics.close();
      })();
      return closing;
    },
  };
}
