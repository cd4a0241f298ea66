/**
 * `nokv coordinator`: the coordinator process. Opens the durable state in the workdir (checkpoint +
 * event log replay), serves the Coordinator gRPC service and HTTP (`/metrics`, `/view`, `/healthz`).
 */

import type { Server as HttpServer } from 'node:http';
import * as grpc from '@grpc/grpc-js';
import { formatHostPort, parseHostPort } from '@nokv/config';
import * as kit from '@nokv/server-kit';
import type { pino } from 'pino';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { AllocatorOptions } from './allocator.js';
import { Coordinator } from './coordinator.js';
import { CoordinatorError } from './errors.js';
import { type CoordinatorLogger, createLogger } from './logger.js';
import type { OperatorQueueOptions } from './operators.js';
import type { SchedulerOptions } from './scheduler.js';
import type { StoreAdmin } from './store-admin.js';
import { isLoopbackHost, type RunningTrpcServer, startTrpcServer } from './trpc/server.js';

export const DEFAULT_COORDINATOR_ADDR = '127.0.0.1:2379';

export interface ServeOptions {
  /** gRPC listen address (default 127.0.0.1:2379; port 0 = any free port). */
  addr?: string;
  /** Where the event log and checkpoint live (created if missing). */
  workdir: string;
  /** HTTP listen address; no HTTP server when absent. */
  httpAddr?: string;
  /** tRPC (console API) listen address; no tRPC server when absent. */
  trpcAddr?: string;
  /** Bearer token for tRPC mutations; required for them when `trpcAddr` is not loopback. */
  adminToken?: string;
  logLevel?: string;
  /** A store without a heartbeat for this long is down (default 10 000 ms). */
  heartbeatTimeoutMs?: number;
  /** A region's leader is trusted this long after its last region heartbeat (default 3 × heartbeat timeout). */
  regionHeartbeatTimeoutMs?: number;
  scheduler?: SchedulerOptions;
  operators?: Omit<OperatorQueueOptions, 'persistPath' | 'now' | 'onChange'>;
  /** How operations reach the stores (default RaftAdmin over gRPC). */
  storeAdmin?: StoreAdmin;
  allocator?: AllocatorOptions;
  checkpointEveryEvents?: number;
  checkpointIntervalMs?: number;
  logDestination?: pino.DestinationStream;
  /** How long `stop()` lets in-flight calls finish (default 5000 ms). */
  shutdownGraceMs?: number;
}

export interface RunningCoordinator {
  coordinator: Coordinator;
  addr: string;
  port: number;
  httpAddr: string | undefined;
  httpPort: number | undefined;
  trpcAddr: string | undefined;
  trpcPort: number | undefined;
  logger: CoordinatorLogger;
  /** Graceful: gRPC shutdown, final checkpoint, HTTP close. Idempotent. */
  stop(): Promise<void>;
}

function listenAddress(text: string, what: string): { host: string; port: number } {
  const hp = parseHostPort(text, { allowZeroPort: true });
  if (!hp) throw new CoordinatorError('InvalidArgument', `${what} '${text}' is not host:port`);
  return hp;
}

/** `GET /metrics` (Prometheus), `GET /view` (JSON cluster view), `GET /healthz` (`ok`). */
export function createHttpServer(sources: { registry: Registry; view(): unknown }): HttpServer {
  return kit.createHttpServer({ registry: sources.registry, json: { '/view': () => sources.view() } });
}

const listenFailed = (message: string, cause: Error) =>
  new CoordinatorError('ListenFailed', message, { cause });

function metrics(
  registry: Registry,
  c: Coordinator,
): {
  onDone: (method: string, code: string, ms: number) => void;
} {
  collectDefaultMetrics({ register: registry, prefix: 'nokv_coordinator_' });
  const calls = new Counter({
    name: 'nokv_coordinator_rpc_total',
    help: 'Coordinator RPCs by method and result code',
    labelNames: ['method', 'code'],
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'nokv_coordinator_rpc_seconds',
    help: 'Coordinator RPC latency',
    labelNames: ['method'],
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1],
    registers: [registry],
  });
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  const count = (state: string) => () =>
    [...c.state.catalog.stores.keys()].filter((id) => c.view.storeState(id) === state).length;
  gauge('nokv_coordinator_stores_up', 'Stores heartbeating within the timeout', count('up'));
  gauge('nokv_coordinator_stores_down', 'Stores past the heartbeat timeout', count('down'));
  gauge('nokv_coordinator_regions', 'Regions in the catalog', () => c.state.catalog.regions.size);
  gauge(
    'nokv_coordinator_regions_without_leader',
    'Regions with no known live leader',
    () => c.view.problems().noLeader.length,
  );
  gauge(
    'nokv_coordinator_regions_down_replica',
    'Regions with a replica on a down store',
    () => c.view.problems().downReplicas.length,
  );
  gauge(
    'nokv_coordinator_regions_missing_replica',
    'Regions with fewer voters than the most seen',
    () => c.view.problems().missingReplicas.length,
  );
  gauge('nokv_coordinator_id_fence', 'Persisted id fence', () => Number(c.state.catalog.idFence));
  gauge('nokv_coordinator_tso_fence_physical_ms', 'Persisted TSO fence (physical ms)', () =>
    Number(c.state.catalog.tsoFence >> 18n),
  );
  gauge('nokv_coordinator_log_bytes', 'Bytes in the current event log', () => c.state.log.bytes);
  gauge('nokv_coordinator_events_appended', 'Events appended since start', () => c.state.appendedEvents);
  gauge('nokv_coordinator_checkpoints', 'Checkpoints written since start', () => c.state.checkpoints);
  gauge('nokv_coordinator_scheduler_ops_created', 'Operations the scheduler created since start', () =>
    Object.values(c.scheduler.created).reduce((a, b) => a + b, 0),
  );
  new Gauge({
    name: 'nokv_coordinator_operations',
    help: 'Operations in the operator queue by state (finished/failed/cancelled: the kept history)',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      for (const [state, n] of Object.entries(c.operators.counts())) this.set({ state }, n);
    },
  });
  new Gauge({
    name: 'nokv_coordinator_operations_ended',
    help: 'Operations that finished, failed or were cancelled since start, by final state',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      for (const [state, n] of Object.entries(c.operators.ended)) this.set({ state }, n);
    },
  });
  gauge(
    'nokv_coordinator_region_heartbeats_received',
    'Region heartbeats received since start (each entry of a batch counts)',
    () => c.regionHeartbeats,
  );
  return {
    onDone: (method, code, ms) => {
      calls.inc({ method, code });
      latency.observe({ method }, ms / 1000);
    },
  };
}

/** Starts a coordinator. Resolves once it listens; rejects (cleaning up) on any startup problem. */
export async function serve(opts: ServeOptions): Promise<RunningCoordinator> {
  if (!opts.workdir) throw new CoordinatorError('InvalidArgument', 'a workdir is required');
  const addrText = opts.addr ?? DEFAULT_COORDINATOR_ADDR;
  const grpcListen = listenAddress(addrText, '--addr');
  const httpListen = opts.httpAddr === undefined ? undefined : listenAddress(opts.httpAddr, '--http-addr');
  const trpcListen = opts.trpcAddr === undefined ? undefined : listenAddress(opts.trpcAddr, '--trpc-addr');
  if (
    opts.heartbeatTimeoutMs !== undefined &&
    (!Number.isSafeInteger(opts.heartbeatTimeoutMs) || opts.heartbeatTimeoutMs <= 0)
  ) {
    throw new CoordinatorError('InvalidArgument', `heartbeat timeout must be a positive integer (ms)`);
  }
  const logger = createLogger(opts.logLevel ?? 'info', opts.logDestination);
  logger.info({ workdir: opts.workdir }, 'starting coordinator');
  const coordinator = await Coordinator.open({
    workdir: opts.workdir,
    ...(opts.heartbeatTimeoutMs !== undefined ? { heartbeatTimeoutMs: opts.heartbeatTimeoutMs } : {}),
    ...(opts.regionHeartbeatTimeoutMs !== undefined
      ? { regionHeartbeatTimeoutMs: opts.regionHeartbeatTimeoutMs }
      : {}),
    ...(opts.scheduler ? { scheduler: opts.scheduler } : {}),
    ...(opts.operators ? { operators: opts.operators } : {}),
    ...(opts.storeAdmin ? { storeAdmin: opts.storeAdmin } : {}),
    ...(opts.allocator ? { allocator: opts.allocator } : {}),
    ...(opts.checkpointEveryEvents !== undefined
      ? { checkpointEveryEvents: opts.checkpointEveryEvents }
      : {}),
    ...(opts.checkpointIntervalMs !== undefined ? { checkpointIntervalMs: opts.checkpointIntervalMs } : {}),
  });
  const rec = coordinator.state.recovery;
  if (rec.tornTail) logger.warn({ tornTail: rec.tornTail }, 'cut a torn record off the end of the event log');
  const cat = coordinator.state.catalog;
  logger.info(
    {
      checkpointLogSeq: rec.checkpoint?.logSeq.toString() ?? null,
      eventsReplayed: rec.eventsReplayed,
      stores: cat.stores.size,
      regions: cat.regions.size,
      idFence: cat.idFence.toString(),
      tsoFence: cat.tsoFence.toString(),
    },
    'recovered coordinator state',
  );
  const registry = new Registry();
  const { onDone } = metrics(registry, coordinator);
  const grpcServer = new grpc.Server({
    'grpc.max_receive_message_length': 16 * 1024 * 1024,
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
  });
  const httpServer = createHttpServer({ registry, view: () => coordinator.viewJson() });
  let trpc: RunningTrpcServer | undefined;
  try {
    coordinator.addServiceTo(grpcServer, {
      onDone: (method, code, ms) => {
        onDone(method, code, ms);
        if (code !== 'Ok') logger.debug({ method, code }, 'rpc failed');
      },
    });
    const port = await kit.bindGrpc(
      grpcServer,
      formatHostPort(grpcListen.host, grpcListen.port),
      listenFailed,
    );
    const addr = formatHostPort(grpcListen.host, port);
    logger.info({ addr }, `gRPC listening on ${addr}`);
    let httpPort: number | undefined;
    let httpAddr: string | undefined;
    if (httpListen) {
      httpPort = await kit.listenHttp(httpServer, httpListen.host, httpListen.port, listenFailed);
      httpAddr = formatHostPort(httpListen.host, httpPort);
      logger.info({ httpAddr }, `HTTP listening on http://${httpAddr} (/metrics, /view, /healthz)`);
    }
    if (trpcListen) {
      trpc = await startTrpcServer({
        coordinator,
        host: trpcListen.host,
        port: trpcListen.port,
        logger,
        ...(opts.adminToken ? { adminToken: opts.adminToken } : {}),
      });
      const mutations = isLoopbackHost(trpcListen.host)
        ? 'open (loopback)'
        : opts.adminToken
          ? 'admin token required'
          : 'refused (not loopback, no --admin-token)';
      logger.info({ trpcAddr: trpc.addr, mutations }, `tRPC listening on http://${trpc.addr}`);
    }
    const trpcServer = trpc;
    let stopping: Promise<void> | undefined;
    const stop = () => {
      stopping ??= (async () => {
        logger.info('stopping');
        await trpcServer?.stop();
        await kit.shutdownGrpc(grpcServer, opts.shutdownGraceMs ?? 5000, logger);
        await coordinator.close();
        await kit.closeHttp(httpServer);
        logger.info('stopped');
      })();
      return stopping;
    };
    return {
      coordinator,
      addr,
      port,
      httpAddr,
      httpPort,
      trpcAddr: trpc?.addr,
      trpcPort: trpc?.port,
      logger,
      stop,
    };
  } catch (err) {
    grpcServer.forceShutdown();
    await trpc?.stop();
    await kit.closeHttp(httpServer);
    await coordinator.close({ checkpoint: false }).catch(() => {});
    throw err;
  }
}
