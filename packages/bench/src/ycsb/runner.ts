/**
 * Runs YCSB phases against an adapter with N concurrent async clients: a load phase inserting
 * every record, and run phases drawing operations from a workload's mix. Per-operation latency
 * is recorded for percentiles.
 */

import type { EngineAdapter } from '../adapters/adapter.js';
import { Latest, Random, recordKey, ScrambledZipfian } from './generators.js';
import type { Operation, Workload } from './workloads.js';

export interface BenchConfig {
  records: number;
  operations: number;
  valueBytes: number;
  clients: number;
  seed: number;
  theta: number;
  cacheBytes: number;
}

export interface PhaseResult {
  phase: string;
  operations: number;
  seconds: number;
  opsPerSec: number;
  p50Us: number;
  p99Us: number;
  counts: Partial<Record<Operation, number>>;
  /** Reads (or scans) that found nothing: must be 0 for reads of loaded keys. */
  misses: number;
}

/** Incompressible values, reused round-robin (generating 1 KB of randomness per op would dominate). */
export class ValuePool {
  private readonly values: Buffer[];
  private i = 0;

  constructor(valueBytes: number, seed: number, size = 4096) {
    const random = new Random(seed);
    this.values = Array.from({ length: size }, () => {
      const b = Buffer.allocUnsafe(valueBytes);
      for (let j = 0; j < valueBytes; j += 4)
        b.writeUInt32LE((random.next() * 4294967296) >>> 0, Math.min(j, valueBytes - 4));
      return b;
    });
  }

  next(): Buffer {
    const v = this.values[this.i]!;
    this.i = (this.i + 1) % this.values.length;
    return v;
  }
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

function summarize(
  phase: string,
  latencies: Float64Array,
  seconds: number,
  counts: Partial<Record<Operation, number>>,
  misses: number,
): PhaseResult {
  const sorted = latencies.slice().sort();
  return {
    phase,
    operations: latencies.length,
    seconds,
    opsPerSec: Math.round(latencies.length / seconds),
    p50Us: Math.round(percentile(sorted, 0.5) * 1000 * 10) / 10,
    p99Us: Math.round(percentile(sorted, 0.99) * 1000 * 10) / 10,
    counts,
    misses,
  };
}

/** Inserts records [0, records) with `clients` concurrent writers. */
export async function loadPhase(
  adapter: EngineAdapter,
  cfg: BenchConfig,
  pool: ValuePool,
): Promise<PhaseResult> {
  const latencies = new Float64Array(cfg.records);
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: cfg.clients }, async () => {
      for (;;) {
        const n = next++;
        if (n >= cfg.records) return;
        const t0 = performance.now();
        await adapter.insert(recordKey(n), pool.next());
        latencies[n] = performance.now() - t0;
      }
    }),
  );
  await adapter.settle();
  return summarize('load', latencies, (performance.now() - started) / 1000, { insert: cfg.records }, 0);
}

/** Runs `cfg.operations` operations of `workload`; `inserted.count` grows with inserts. */
export async function runPhase(
  adapter: EngineAdapter,
  workload: Workload,
  cfg: BenchConfig,
  pool: ValuePool,
  inserted: { count: number },
): Promise<PhaseResult> {
  const random = new Random(cfg.seed * 7 + workload.name.charCodeAt(0));
  const zipf = new ScrambledZipfian(cfg.records, random, cfg.theta);
  const latest = new Latest(() => inserted.count, random, cfg.theta);
  const chooseKey = workload.distribution === 'latest' ? () => latest.next() : () => zipf.next();
  const ops = Object.entries(workload.mix) as [Operation, number][];
  const cumulative: [Operation, number][] = [];
  let acc = 0;
  for (const [op, p] of ops) {
    acc += p;
    cumulative.push([op, acc]);
  }
  const chooseOp = (): Operation => {
    const u = random.next();
    for (const [op, c] of cumulative) if (u < c) return op;
    return cumulative[cumulative.length - 1]![0];
  };
  const counts: Partial<Record<Operation, number>> = {};
  const latencies = new Float64Array(cfg.operations);
  let misses = 0;
  let issued = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: cfg.clients }, async () => {
      for (;;) {
        const i = issued++;
        if (i >= cfg.operations) return;
        const op = chooseOp();
        counts[op] = (counts[op] ?? 0) + 1;
        const t0 = performance.now();
        switch (op) {
          case 'read':
            if ((await adapter.read(recordKey(chooseKey()))) === undefined) misses++;
            break;
          case 'update':
            await adapter.update(recordKey(chooseKey()), pool.next());
            break;
          case 'insert':
            await adapter.insert(recordKey(inserted.count++), pool.next());
            break;
          case 'scan':
            if ((await adapter.scan(recordKey(chooseKey()), random.int(1, workload.maxScanLength))) === 0)
              misses++;
            break;
          case 'rmw': {
            const key = recordKey(chooseKey());
            if ((await adapter.read(key)) === undefined) misses++;
            await adapter.update(key, pool.next());
            break;
          }
        }
        latencies[i] = performance.now() - t0;
      }
    }),
  );
  return summarize(workload.name, latencies, (performance.now() - started) / 1000, counts, misses);
}
