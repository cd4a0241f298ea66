/**
 * `pnpm bench:compaction-latency`: does background compaction disturb reads? Loads a store, then
 * measures get latency (16 clients, zipfian keys) first with nothing running in the background,
 * then while a full compaction rewrites every table (in the compaction worker), and prints p50,
 * p99 and the p99 ratio (target: at most 5x).
 *
 *     pnpm bench:compaction-latency [--records 200000] [--value-bytes 1000] [--cache-mb 32]
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { open } from '@nokv/engine';
import { Random, recordKey, ScrambledZipfian } from './ycsb/generators.js';
import { ValuePool } from './ycsb/runner.js';

const { values: flags } = parseArgs({
  options: {
    records: { type: 'string', default: '200000' },
    'value-bytes': { type: 'string', default: '1000' },
    'cache-mb': { type: 'string', default: '32' },
  },
});
const records = Number(flags.records);
const cacheBytes = Number(flags['cache-mb']) * 2 ** 20;
const dir = mkdtempSync(join(tmpdir(), 'nokv-compaction-latency-'));

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;
}

/** Runs 16 reading clients until `until()` says stop; returns per-get latencies in microseconds. */
async function reads(get: (key: string) => Promise<unknown>, until: () => boolean): Promise<number[]> {
  const zipf = new ScrambledZipfian(records, new Random(7));
  const latencies: number[] = [];
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (!until()) {
        const t0 = performance.now();
        await get(recordKey(zipf.next()));
        latencies.push((performance.now() - t0) * 1000);
      }
    }),
  );
  return latencies.sort((a, b) => a - b);
}

try {
  const rowCacheBytes = Math.floor(cacheBytes / 4);
  const db = await open({ dir, blockCacheBytes: cacheBytes - rowCacheBytes, rowCacheBytes });
  const pool = new ValuePool(Number(flags['value-bytes']), 1);
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      for (let n = next++; n < records; n = next++) await db.set(recordKey(n), pool.next());
    }),
  );
  await db.flush();
  // Let the load's own compactions finish, so the idle phase is idle.
  while (db.stats().compaction.running !== null || db.stats().compaction.backlog > 0) {
    await new Promise((r) => setTimeout(r, 100));
  }
  const get = (k: string) => db.get(k);
  const idleEnd = performance.now() + 3000;
  const idle = await reads(get, () => performance.now() > idleEnd);
  let compacting = true;
  const t0 = performance.now();
  const compaction = db.compact().finally(() => {
    compacting = false;
  });
  const during = await reads(get, () => !compacting);
  await compaction;
  const compactionMs = performance.now() - t0;
  const row = (name: string, l: number[]) =>
    `${name.padEnd(22)} ${String(l.length).padStart(8)} gets   p50 ${percentile(l, 0.5).toFixed(1).padStart(7)} us   p99 ${percentile(l, 0.99).toFixed(1).padStart(8)} us`;
  console.log(
    `${records} records; full compaction took ${Math.round(compactionMs)} ms (${db.stats().compaction.bytesWritten} bytes written)`,
  );
  console.log(row('idle', idle));
  console.log(row('during compaction', during));
  console.log(
    `p99 during / idle: ${(percentile(during, 0.99) / percentile(idle, 0.99)).toFixed(2)}x (target <= 5x)`,
  );
  await db.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
