/**
 * The gateway process: a storage backend (the engine in a workdir, or a cluster through its
 * coordinator), the RESP server in front of it, and HTTP (`/metrics`, `/healthz`) beside it.
 */

import type { Server as HttpServer } from 'node:http';
import { formatHostPort, parseHostPort } from '@nokv/config';
import * as kit from '@nokv/server-kit';
import { pino } from 'pino';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { KvBackend } from './backend/backend.js';
import { ClusterBackend } from './backend/cluster.js';
import { EmbeddedBackend } from './backend/embedded.js';
import { type RunningRedis, startRedisServer } from './server.js';

export const DEFAULT_REDIS_ADDR = '127.0.0.1:6380';
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

export type GatewayErrorCode =
  /** Bad options: no or both backends, a malformed address, a bad limit (usage error, exit 2). */
  | 'InvalidArgument'
  /** An address could not be bound. */
  | 'ListenFailed'
  /** The backend could not be opened (workdir unusable, coordinator unreachable). */
  | 'BackendFailed';

export class GatewayError extends Error {
  override readonly name = 'GatewayError';
  constructor(
    readonly code: GatewayErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface GatewayOptions {
  /** RESP listen address (default 127.0.0.1:6380; port 0 = any free port). */
  addr?: string;
  /** Embedded mode: the engine's directory (created if missing). Exactly one of workdir/coordinator. */
  workdir?: string;
  /** Cluster mode: the coordinator's `host:port`. */
  coordinator?: string;
  /** HTTP listen address for /metrics and /healthz; none when absent. */
  httpAddr?: string;
  /** Accept FLUSHDB/FLUSHALL (refused by default: one typo empties the store). */
  allowFlush?: boolean;
  logLevel?: string;
  maxClients?: number;
  maxArgs?: number;
  maxBulkBytes?: number;
  maxInlineBytes?: number;
  /** Cluster: deadline of one storage operation, retries included (ms). */
  timeoutMs?: number;
  /** Cluster: merge concurrent transactions into shared commits (default true). */
  groupCommit?: boolean;
  /** Cluster: how long startup keeps trying to reach the coordinator (default 10 000 ms). */
  connectTimeoutMs?: number;
  logDestination?: pino.DestinationStream;
}

export interface RunningGateway {
  /** The RESP address actually bound. */
  addr: string;
  port: number;
  httpAddr: string | undefined;
  mode: 'embedded' | 'cluster';
  backend: KvBackend;
  logger: pino.Logger;
  /** Stops accepting clients, closes the backend (waiting for commits in flight), closes HTTP. Idempotent. */
  stop(): Promise<void>;
}

function listenAddress(text: string, flag: string): { host: string; port: number } {
  const hp = parseHostPort(text, { allowZeroPort: true });
  if (!hp) throw new GatewayError('InvalidArgument', `${flag} '${text}' is not host:port`);
  return hp;
}

function positiveLimit(value: number | undefined, flag: string): void {
  if (value !== undefined && (!Number.isSafeInteger(value) || value <= 0)) {
    throw new GatewayError('InvalidArgument', `${flag} must be a positive integer; got ${value}`);
  }
}

/** Checks the options a caller could get wrong, before anything is opened. */
export function validateGatewayOptions(opts: GatewayOptions): void {
  if ((opts.workdir === undefined) === (opts.coordinator === undefined)) {
    throw new GatewayError(
      'InvalidArgument',
      opts.workdir === undefined
        ? 'one of --workdir <dir> (embedded) or --coordinator <host:port> (cluster) is required'
        : '--workdir and --coordinator cannot be used together',
    );
  }
  if (opts.workdir !== undefined && opts.workdir.length === 0) {
    throw new GatewayError('InvalidArgument', '--workdir is empty');
  }
  if (opts.coordinator !== undefined && !parseHostPort(opts.coordinator)) {
    throw new GatewayError('InvalidArgument', `--coordinator '${opts.coordinator}' is not host:port`);
  }
  listenAddress(opts.addr ?? DEFAULT_REDIS_ADDR, '--addr');
  if (opts.httpAddr !== undefined) listenAddress(opts.httpAddr, '--http-addr');
  if (opts.logLevel !== undefined && !(LOG_LEVELS as readonly string[]).includes(opts.logLevel)) {
    throw new GatewayError(
      'InvalidArgument',
      `unknown log level '${opts.logLevel}' (one of ${LOG_LEVELS.join(', ')})`,
    );
  }
  positiveLimit(opts.maxClients, '--max-clients');
  positiveLimit(opts.maxArgs, '--max-args');
  positiveLimit(opts.maxBulkBytes, '--max-bulk-bytes');
  positiveLimit(opts.maxInlineBytes, '--max-inline-bytes');
  positiveLimit(opts.timeoutMs, '--timeout-ms');
  if (opts.workdir !== undefined && (opts.timeoutMs !== undefined || opts.groupCommit !== undefined)) {
    throw new GatewayError(
      'InvalidArgument',
      '--timeout-ms and --no-group-commit apply to cluster mode (--coordinator) only',
    );
  }
}

function createLogger(level: string, destination?: pino.DestinationStream): pino.Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { component: 'redis' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  return destination ? pino(options, destination) : pino(options, pino.destination({ dest: 1, sync: true }));
}

const listenFailed = (message: string, cause: Error) => new GatewayError('ListenFailed', message, { cause });

/** The cluster backend's counters as gauges (batching and conflicts are what an operator tunes). */
function clusterMetrics(registry: Registry, backend: ClusterBackend): void {
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  gauge(
    'nokv_redis_cluster_transactions',
    'Transactions committed (or read-only) since start',
    () => backend.stats().transactions,
  );
  gauge(
    'nokv_redis_cluster_conflict_retries',
    'Transactions or batches run again after a lost race',
    () => backend.stats().conflictRetries,
  );
  gauge(
    'nokv_redis_cluster_conflicts',
    'Transactions that failed with a conflict',
    () => backend.stats().conflicts,
  );
  gauge('nokv_redis_cluster_batches', 'Group-commit batches since start', () => backend.stats().batches);
  gauge(
    'nokv_redis_cluster_batched_transactions',
    'Transactions carried by group-commit batches',
    () => backend.stats().batchedTransactions,
  );
  gauge(
    'nokv_redis_cluster_batch_reruns',
    'Batch members run again on top of earlier members’ writes',
    () => backend.stats().reruns,
  );
  gauge('nokv_redis_cluster_queued', 'Transactions waiting for a batch', () => backend.stats().queued);
}

/** Starts the gateway. Resolves once it listens; rejects (closing what it opened) on any startup problem. */
export async function serveGateway(opts: GatewayOptions): Promise<RunningGateway> {
  validateGatewayOptions(opts);
  const listen = listenAddress(opts.addr ?? DEFAULT_REDIS_ADDR, '--addr');
  const httpListen = opts.httpAddr === undefined ? undefined : listenAddress(opts.httpAddr, '--http-addr');
  const logger = createLogger(opts.logLevel ?? 'info', opts.logDestination);
  const mode = opts.workdir !== undefined ? 'embedded' : 'cluster';
  logger.info(
    mode === 'embedded' ? { mode, workdir: opts.workdir } : { mode, coordinator: opts.coordinator },
    'starting the Redis gateway',
  );
  let backend: KvBackend;
  try {
    backend =
      opts.workdir !== undefined
        ? await EmbeddedBackend.open({ workdir: opts.workdir })
        : await ClusterBackend.connect({
            coordinatorAddr: opts.coordinator!,
            ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
            ...(opts.groupCommit !== undefined ? { groupCommit: opts.groupCommit } : {}),
            ...(opts.connectTimeoutMs !== undefined ? { connectTimeoutMs: opts.connectTimeoutMs } : {}),
          });
  } catch (err) {
    throw new GatewayError(
      'BackendFailed',
      `cannot open the ${mode} backend: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'nokv_redis_' });
  if (backend instanceof ClusterBackend) clusterMetrics(registry, backend);
  const httpServer: HttpServer = kit.createHttpServer({
    registry,
    json: {
      '/stats': () => ({ mode, ...(backend instanceof ClusterBackend ? { cluster: backend.stats() } : {}) }),
    },
  });
  let redis: RunningRedis | undefined;
  try {
    redis = await startRedisServer({
      backend,
      host: listen.host,
      port: listen.port,
      registry,
      logger,
      ...(opts.allowFlush ? { allowFlush: true } : {}),
      ...(opts.maxClients !== undefined ? { maxClients: opts.maxClients } : {}),
      ...(opts.maxArgs !== undefined ? { maxArgs: opts.maxArgs } : {}),
      ...(opts.maxBulkBytes !== undefined ? { maxBulkBytes: opts.maxBulkBytes } : {}),
      ...(opts.maxInlineBytes !== undefined ? { maxInlineBytes: opts.maxInlineBytes } : {}),
    }).catch((err: unknown) => {
      throw err instanceof GatewayError
        ? err
        : new GatewayError(
            'ListenFailed',
            `cannot listen on ${formatHostPort(listen.host, listen.port)} (RESP): ${(err as Error).message}`,
            { cause: err },
          );
    });
    let httpAddr: string | undefined;
    if (httpListen) {
      const port = await kit.listenHttp(httpServer, httpListen.host, httpListen.port, listenFailed);
      httpAddr = formatHostPort(httpListen.host, port);
      logger.info({ httpAddr }, `HTTP listening on http://${httpAddr} (/metrics, /stats, /healthz)`);
    }
    const running = redis;
    let stopping: Promise<void> | undefined;
    return {
      addr: redis.addr,
      port: redis.port,
      httpAddr,
      mode,
      backend,
      logger,
      stop: () => {
        stopping ??= (async () => {
          logger.info('stopping');
          await running.close();
          await backend.close();
          await kit.closeHttp(httpServer);
          logger.info('stopped');
        })();
        return stopping;
      },
    };
  } catch (err) {
    await redis?.close().catch(() => {});
    await backend.close().catch(() => {});
    await kit.closeHttp(httpServer);
    throw err;
  }
}
