/**
 * The gateway's Prometheus metrics. Registered on the registry the caller passes (served on
 * `/metrics` by whoever owns the HTTP server); without one they are still counted, unexported.
 * Metrics already on the registry (a second gateway in one process) are reused, not re-registered.
 */

import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

function getOrCreate<T>(registry: Registry | undefined, name: string, make: () => T): T {
  const existing = registry?.getSingleMetric(name);
  return existing === undefined ? make() : (existing as T);
}

/** Latency buckets from a cached read (~50 µs) to a slow cluster commit (seconds). */
const BUCKETS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
];

/**
 * Pending command counts of every gateway in the process, flushed when the counter is scraped
 * (gateways sharing a registry share one counter instance, whose collect hook runs them all).
 */
const flushers = new Set<() => void>();

export class GatewayMetrics {
  private readonly commands: Counter<'command'>;
  private readonly errors: Counter<'command' | 'kind'>;
  private readonly latency: Histogram<'command'>;
  private readonly connections: Gauge;
  private readonly connectionsTotal: Counter;
  private readonly rejected: Counter;
  private readonly swept: Counter;
  /** Histogram children cached per command: the lookup by label values is the costly part. */
  private readonly perCommand = new Map<string, { observe(v: number): void }>();
  private readonly pendingCounts = new Map<string, number>();
  private readonly flushCounts: () => void;

  constructor(registry: Registry | undefined) {
    const registers = registry ? [registry] : [];
    // Counted in a plain map on the hot path and added to the counter when scraped.
    const pending = this.pendingCounts;
    this.commands = getOrCreate(
      registry,
      'nokv_redis_commands_total',
      () =>
        new Counter({
          name: 'nokv_redis_commands_total',
          help: 'Redis commands executed, by command (subcommands as client|setname)',
          labelNames: ['command'],
          registers,
          collect() {
            for (const flush of flushers) flush();
          },
        }),
    );
    this.flushCounts = () => {
      for (const [name, n] of pending) if (n > 0) this.commands.labels(name).inc(n);
      pending.clear();
    };
    flushers.add(this.flushCounts);
    this.errors = getOrCreate(
      registry,
      'nokv_redis_command_errors_total',
      () =>
        new Counter({
          name: 'nokv_redis_command_errors_total',
          help: 'Error replies, by command and error kind (ERR, WRONGTYPE, EXECABORT, TRYAGAIN, protocol …)',
          labelNames: ['command', 'kind'],
          registers,
        }),
    );
    this.latency = getOrCreate(
      registry,
      'nokv_redis_command_duration_seconds',
      () =>
        new Histogram({
          name: 'nokv_redis_command_duration_seconds',
          help: 'Time from a command being parsed to its reply being ready, by command',
          labelNames: ['command'],
          buckets: BUCKETS,
          registers,
        }),
    );
    this.connections = getOrCreate(
      registry,
      'nokv_redis_connections',
      () => new Gauge({ name: 'nokv_redis_connections', help: 'Open client connections', registers }),
    );
    this.connectionsTotal = getOrCreate(
      registry,
      'nokv_redis_connections_total',
      () =>
        new Counter({
          name: 'nokv_redis_connections_total',
          help: 'Client connections accepted',
          registers,
        }),
    );
    this.rejected = getOrCreate(
      registry,
      'nokv_redis_rejected_connections_total',
      () =>
        new Counter({
          name: 'nokv_redis_rejected_connections_total',
          help: 'Client connections refused because maxClients was reached',
          registers,
        }),
    );
    this.swept = getOrCreate(
      registry,
      'nokv_redis_expired_keys_swept_total',
      () =>
        new Counter({
          name: 'nokv_redis_expired_keys_swept_total',
          help: 'Expired keys deleted by the background sweeper',
          registers,
        }),
    );
  }

  command(name: string, seconds: number): void {
    let latency = this.perCommand.get(name);
    if (latency === undefined) {
      latency = this.latency.labels(name);
      this.perCommand.set(name, latency);
    }
    latency.observe(seconds);
    this.pendingCounts.set(name, (this.pendingCounts.get(name) ?? 0) + 1);
  }

  /** Stops feeding the shared counter (the gateway closed); its last counts are kept. */
  close(): void {
    this.flushCounts();
    flushers.delete(this.flushCounts);
  }

  error(name: string, kind: string): void {
    this.errors.labels(name, kind).inc();
  }

  connectionOpened(): void {
    this.connections.inc();
    this.connectionsTotal.inc();
  }

  connectionClosed(): void {
    this.connections.dec();
  }

  connectionRejected(): void {
    this.rejected.inc();
  }

  expiredSwept(n: number): void {
    if (n > 0) this.swept.inc(n);
  }
}
