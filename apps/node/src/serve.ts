/**
 * `nokv serve`: one store process. Loads the topology, checks the workdir's MODE.json, opens the
 * engine, starts the raftstore `Store` (bootstrapping the file's regions on the first start only),
 * and serves gRPC (KV, admin, Raft transport) plus HTTP (`/metrics`, `/stats`, `/healthz`).
 */

import { readdir } from 'node:fs/promises';
import type { Server as HttpServer } from 'node:http';
import * as grpc from '@grpc/grpc-js';
import {
  type AddressScope,
  formatHostPort,
  loadTopology,
  parseHostPort,
  regionMetasOfStore,
  requireStore,
  resolveWorkdir,
  storeAddress,
  storeAddressResolver,
  storeHttpAddress,
} from '@nokv/config';
import { type Database, nodeVfs, open, readModeFile, writeModeFile } from '@nokv/engine';
import { Store } from '@nokv/raftstore';
import * as kit from '@nokv/server-kit';
import type { pino } from 'pino';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { CoordinatorIdAllocator } from './alloc-ids.js';
import { ServeError } from './errors.js';
import { CoordinatorHeartbeat } from './heartbeat.js';
import { createLogger, type NodeLogger } from './logger.js';

export interface ServeOptions {
  /** The topology file (`nokv.config.json`). */
  configPath: string;
  storeId: number | bigint;
  /** Overrides the file's workdir (relative to the current directory). */
  workdir?: string;
  /** Which addresses of the file to use (default `host`). */
  scope?: AddressScope;
  /** gRPC listen address; overrides the file's (port 0 = any free port). */
  addr?: string;
  /** HTTP listen address; overrides the file's (port 0 = any free port). */
  httpAddr?: string;
  /** pino level (default `info`). */
  logLevel?: string;
  /** Milliseconds per Raft tick (default: the store's, 100). */
  raftTickMs?: number;
  /** Where JSON log lines go (default stdout). */
  logDestination?: pino.DestinationStream;
  /** How long `stop()` lets in-flight gRPC calls finish before cancelling them (default 5000 ms). */
  shutdownGraceMs?: number;
  /** The coordinator to heartbeat to (default: the topology file's; '' = none). */
  coordinatorAddr?: string;
  /** Milliseconds between heartbeat rounds (default 1000). */
  heartbeatIntervalMs?: number;
  /** Accept the SetLinkFault admin RPC (chaos for tests and the lab; default off). */
  faultInjection?: boolean;
  /** Applied Raft entries kept for lagging followers before compaction (default 4096). */
  raftLogRetainEntries?: number;
}

export interface RunningNode {
  storeId: bigint;
  workdir: string;
  /** Whether this start bootstrapped the workdir (MODE.json was absent). */
  bootstrapped: boolean;
  /** The bound gRPC address and port (the real port when 0 was asked for). */
  grpcAddr: string;
  grpcPort: number;
  /** The bound HTTP address and port; undefined when neither the file nor a flag gives one. */
  httpAddr: string | undefined;
  httpPort: number | undefined;
  logger: NodeLogger;
  /** Graceful stop: gRPC shutdown (forced after the grace period), store, engine, HTTP. Idempotent. */
  stop(): Promise<void>;
}

const MiB = 1024 * 1024;
const ENGINE_FILE = /^(CURRENT|MANIFEST-\d+|\d+\.(wal|sst|vlog))$/;

/** Hints for MODE.json modes a store cannot start from. */
const MODE_HINTS: Record<string, string> = {
  standalone:
    "it holds a standalone (embedded) database; migrate it into a cluster with 'nokv migrate' or start the store on an empty workdir",
  preparing: "a migration is in progress; run 'nokv migrate status' to see how to resume it",
};

function positiveId(value: number | bigint, what: string): bigint {
  const id = typeof value === 'bigint' ? value : Number.isSafeInteger(value) ? BigInt(value) : -1n;
  if (id <= 0n || id > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new ServeError('InvalidArgument', `${what} must be a positive integer, got ${String(value)}`);
  }
  return id;
}

function listenAddress(text: string, what: string): { host: string; port: number } {
  const hp = parseHostPort(text, { allowZeroPort: true });
  if (!hp) throw new ServeError('InvalidArgument', `${what} '${text}' is not host:port`);
  return hp;
}

async function hasEngineFiles(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).some((name) => ENGINE_FILE.test(name));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * Decides from MODE.json whether this is the workdir's first start. Absent and no engine files →
 * first start; `cluster` with this store's id → restart; anything else is refused.
 */
async function checkWorkdir(
  dir: string,
  storeId: bigint,
): Promise<{ firstStart: boolean; rewrite: boolean }> {
  const record = await readModeFile(nodeVfs, dir);
  if (record === undefined) {
    if (await hasEngineFiles(dir)) {
      throw new ServeError(
        'WorkdirModeNotAllowed',
        `workdir ${dir} has no MODE.json but holds database files: ${MODE_HINTS.standalone}`,
      );
    }
    return { firstStart: true, rewrite: false };
  }
  if (record.mode === 'seeded') {
    // 'nokv migrate init' made this a one-peer store; its first serve turns it into a cluster store.
    if (record.storeId !== undefined && BigInt(record.storeId) !== storeId) {
      throw new ServeError(
        'StoreIdMismatch',
        `workdir ${dir} was seeded for store ${record.storeId}, not store ${storeId} (check --store-id)`,
      );
    }
    return { firstStart: false, rewrite: true };
  }
  if (record.mode !== 'cluster') {
    throw new ServeError(
      'WorkdirModeNotAllowed',
      `workdir ${dir} is in mode '${record.mode}': ${MODE_HINTS[record.mode] ?? 'a store needs a cluster workdir'}`,
    );
  }
  if (record.storeId === undefined) return { firstStart: false, rewrite: true };
  if (BigInt(record.storeId) !== storeId) {
    throw new ServeError(
      'StoreIdMismatch',
      `workdir ${dir} belongs to store ${record.storeId}, not store ${storeId} (check --store-id and --workdir)`,
    );
  }
  return { firstStart: false, rewrite: false };
}

function engineMetrics(registry: Registry, db: Database): void {
  const gauge = (name: string, help: string, read: (s: ReturnType<Database['stats']>) => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read(db.stats()));
      },
    });
  gauge(
    'nokv_engine_entries',
    'Entries in memtables and tables (all versions, deletes included)',
    (s) => s.entries,
  );
  gauge('nokv_engine_lsm_tables', 'SSTables in the LSM tree', (s) => s.lsm.tables);
  gauge('nokv_engine_lsm_bytes', 'Bytes of SSTables in the LSM tree', (s) => s.lsm.totalBytes);
  gauge('nokv_engine_memtable_bytes', 'Bytes in the active memtable', (s) => s.memtable.activeBytes);
  gauge('nokv_engine_wal_segments', 'WAL segments to replay at the next open', (s) => s.wal.segments);
  gauge('nokv_engine_compaction_backlog', 'Compactions due', (s) => s.compaction.backlog);
}

/** What the node's HTTP endpoints read. */
export interface HttpSources {
  registry: Registry;
  /** The `/stats` payload (may hold bigints: they are written as strings). */
  stats(): unknown;
}

/**
 * The node's HTTP server: `GET /metrics` (Prometheus text), `GET /stats` (JSON), `GET /healthz`
 * (`ok`). Anything else is a JSON error: 404 for an unknown path, 405 for another method.
 */
export function createHttpServer(sources: HttpSources): HttpServer {
  return kit.createHttpServer({ registry: sources.registry, json: { '/stats': () => sources.stats() } });
}

const listenFailed = (message: string, cause: Error) => new ServeError('ListenFailed', message, { cause });

/** Starts a store. Resolves once it listens; rejects (cleaning up) on any startup problem. */
export async function serve(opts: ServeOptions): Promise<RunningNode> {
  const storeId = positiveId(opts.storeId, 'store id');
  const scope: AddressScope = opts.scope ?? 'host';
  if (scope !== 'host' && scope !== 'docker') {
    throw new ServeError('InvalidArgument', `scope must be host or docker, got '${String(scope)}'`);
  }
  if (opts.raftTickMs !== undefined && (!Number.isSafeInteger(opts.raftTickMs) || opts.raftTickMs <= 0)) {
    throw new ServeError(
      'InvalidArgument',
      `raft tick must be a positive integer (ms), got ${opts.raftTickMs}`,
    );
  }
  const topology = await loadTopology(opts.configPath);
  requireStore(topology, storeId);
  const grpcAddrText = opts.addr ?? storeAddress(topology, storeId, scope);
  const grpcListen = listenAddress(grpcAddrText, opts.addr !== undefined ? '--addr' : 'store address');
  const httpAddrText = opts.httpAddr ?? storeHttpAddress(topology, storeId, scope);
  const httpListen =
    httpAddrText === undefined
      ? undefined
      : listenAddress(httpAddrText, opts.httpAddr !== undefined ? '--http-addr' : 'store HTTP address');
  const workdir = resolveWorkdir(topology, storeId, {
    ...(opts.workdir !== undefined ? { override: opts.workdir } : {}),
    scope,
  });
  const logger = createLogger(storeId, opts.logLevel ?? 'info', opts.logDestination);
  logger.info({ config: topology.source, cluster: topology.cluster, workdir, scope }, 'starting store');

  const { firstStart, rewrite } = await checkWorkdir(workdir, storeId);
  const db = await open({ dir: workdir, allowedModes: ['cluster', 'seeded'] });
  let store: Store | undefined;
  let heartbeat: CoordinatorHeartbeat | undefined;
  let idAllocator: CoordinatorIdAllocator | undefined;
  const grpcServer = new grpc.Server({
    'grpc.max_receive_message_length': 80 * MiB,
    'grpc.max_send_message_length': -1,
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
  });
  const registry = new Registry();
  const startedAt = Date.now();
  let boundGrpc = '';
  const httpServer = createHttpServer({
    registry,
    stats: () => ({
      storeId: String(storeId),
      addr: boundGrpc,
      uptimeMs: Date.now() - startedAt,
      engine: db.stats(),
      store: store?.stats() ?? null,
      regions: store?.regionStatuses() ?? [],
      coordinator: heartbeat?.status ?? null,
    }),
  });
  try {
    if (firstStart || rewrite)
      await writeModeFile(nodeVfs, workdir, { mode: 'cluster', storeId: Number(storeId) });
    collectDefaultMetrics({ register: registry, prefix: 'nokv_' });
    engineMetrics(registry, db);
    // Always offered: the store itself bootstraps them only if its engine was never bootstrapped
    // (its store ident is absent), so a crash between MODE.json and the bootstrap loses nothing.
    const bootstrapRegions = regionMetasOfStore(topology, storeId);
    if (firstStart && bootstrapRegions.length === 0) {
      logger.warn({ config: topology.source }, 'no region of the topology file lists this store');
    }
    // Automatic splits need cluster-unique region and peer ids: only with a coordinator.
    const idsFrom = opts.coordinatorAddr ?? topology.coordinator?.addr;
    const allocator =
      idsFrom !== undefined && idsFrom !== '' ? new CoordinatorIdAllocator(idsFrom) : undefined;
    idAllocator = allocator;
    store = await Store.start({
      storeId,
      db,
      resolveStoreAddress: storeAddressResolver(topology, scope),
      bootstrapRegions,
      raft: {
        ...(opts.raftTickMs !== undefined ? { tickMs: opts.raftTickMs } : {}),
        ...(opts.raftLogRetainEntries !== undefined
          ? {
              logRetainEntries: opts.raftLogRetainEntries,
              logCompactBatch: Math.max(1, Math.min(1024, opts.raftLogRetainEntries)),
            }
          : {}),
      },
      ...(opts.faultInjection ? { faultInjection: true } : {}),
      logger: logger.child({ component: 'store' }),
      registry,
      ...(allocator ? { allocIds: (count: number) => allocator.allocIds(count) } : {}),
    });
    const regions = store.regionStatuses();
    const ids = regions.map((r) => Number(r.regionId));
    if (firstStart) {
      logger.info({ regions: ids }, `bootstrapped ${regions.length} regions from ${topology.source}`);
    } else {
      logger.info({ regions: ids }, `recovered ${regions.length} regions from workdir`);
      logger.info(
        "the topology file's regions are ignored on restart: the store recovers its regions from the workdir",
      );
    }

    store.addServicesTo(grpcServer);
    const grpcPort = await kit.bindGrpc(
      grpcServer,
      formatHostPort(grpcListen.host, grpcListen.port),
      listenFailed,
    );
    boundGrpc = formatHostPort(grpcListen.host, grpcPort);
    logger.info({ addr: boundGrpc }, `gRPC listening on ${boundGrpc}`);
    let httpPort: number | undefined;
    let boundHttp: string | undefined;
    if (httpListen) {
      httpPort = await kit.listenHttp(httpServer, httpListen.host, httpListen.port, listenFailed);
      boundHttp = formatHostPort(httpListen.host, httpPort);
      logger.info(
        { httpAddr: boundHttp },
        `HTTP listening on http://${boundHttp} (/metrics, /stats, /healthz)`,
      );
    } else {
      logger.warn('no HTTP address in the topology file or --http-addr: /metrics and /stats are off');
    }

    const coordinatorAddr = opts.coordinatorAddr ?? topology.coordinator?.addr;
    if (coordinatorAddr !== undefined && opts.coordinatorAddr !== '') {
      heartbeat = new CoordinatorHeartbeat({
        store,
        coordinatorAddr,
        addr: storeAddress(topology, storeId, scope),
        ...(boundHttp ? { httpAddr: boundHttp } : {}),
        logger: logger.child({ component: 'heartbeat' }),
        ...(opts.heartbeatIntervalMs !== undefined ? { intervalMs: opts.heartbeatIntervalMs } : {}),
      });
      heartbeat.start();
    }
    const started = store;
    const beating = heartbeat;
    let stopping: Promise<void> | undefined;
    const stop = () => {
      stopping ??= (async () => {
        logger.info('stopping');
        const grpcDone = kit.shutdownGrpc(grpcServer, opts.shutdownGraceMs ?? 5000, logger);
        await beating?.stop();
        await started.stop();
        allocator?.close();
        await grpcDone;
        await db.close();
        await kit.closeHttp(httpServer);
        logger.info('stopped');
      })();
      return stopping;
    };
    return {
      storeId,
      workdir,
      bootstrapped: firstStart,
      grpcAddr: boundGrpc,
      grpcPort,
      httpAddr: boundHttp,
      httpPort,
      logger,
      stop,
    };
  } catch (err) {
    await heartbeat?.stop().catch(() => {});
    idAllocator?.close();
    grpcServer.forceShutdown();
    await kit.closeHttp(httpServer);
    await store?.stop().catch(() => {});
    await db.close().catch(() => {});
    throw err;
  }
}
