/**
 * `pnpm bench:engine`: YCSB A-F against @nokv/engine, classic-level (LevelDB), lmdb and
 * rocksdb-native in one run. Each engine runs in its own child process (no shared heap or
 * thread pools); before each workload its store is created fresh and loaded, as the reference
 * methodology does. Prints ops/s, p50 and p99 per engine and workload and our ratio to the best
 * peer, plus load throughput, space amplification and reopen time; writes JSON to bench/results/.
 *
 *     pnpm bench:engine [--records 200000] [--operations 200000] [--value-bytes 1000]
 *                       [--clients 16] [--engines nokv,classic-level,lmdb,rocksdb]
 *                       [--workloads A,B,C,D,E,F] [--cache-mb 32] [--theta 0.99] [--seed 42]
 */

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { EngineAdapter } from './adapters/adapter.js';
import { ClassicLevelAdapter } from './adapters/classic-level.js';
import { LmdbAdapter } from './adapters/lmdb.js';
import { NoKVAdapter } from './adapters/nokv.js';
import { RocksDbAdapter } from './adapters/rocksdb.js';
import { renderReport } from './report.js';
import { type BenchConfig, loadPhase, type PhaseResult, runPhase, ValuePool } from './ycsb/runner.js';
import { WORKLOADS } from './ycsb/workloads.js';

const ADAPTERS: Record<string, () => EngineAdapter> = {
  nokv: () => new NoKVAdapter(),
  'classic-level': () => new ClassicLevelAdapter(),
  lmdb: () => new LmdbAdapter(),
  rocksdb: () => new RocksDbAdapter(),
};

export interface EngineResult {
  engine: string;
  load: PhaseResult;
  reopenMs: number;
  diskBytes: number;
  logicalBytes: number;
  spaceAmplification: number;
  workloads: PhaseResult[];
}

const { values: flags } = parseArgs({
  options: {
    records: { type: 'string', default: '200000' },
    operations: { type: 'string', default: '200000' },
    'value-bytes': { type: 'string', default: '1000' },
    clients: { type: 'string', default: '16' },
    engines: { type: 'string', default: 'nokv,classic-level,lmdb,rocksdb' },
    workloads: { type: 'string', default: 'A,B,C,D,E,F' },
    'cache-mb': { type: 'string', default: '32' },
    theta: { type: 'string', default: '0.99' },
    seed: { type: 'string', default: '42' },
    dir: { type: 'string' },
    out: { type: 'string' },
    child: { type: 'string' },
  },
});

function intFlag(name: keyof typeof flags): number {
  const v = Number(flags[name]);
  if (!Number.isFinite(v) || v <= 0) {
    console.error(`--${name} must be a positive number; got ${String(flags[name])}`);
    process.exit(2);
  }
  return v;
}

const cfg: BenchConfig = {
  records: intFlag('records'),
  operations: intFlag('operations'),
  valueBytes: intFlag('value-bytes'),
  clients: intFlag('clients'),
  seed: intFlag('seed'),
  theta: Number(flags.theta),
  cacheBytes: intFlag('cache-mb') * 1024 * 1024,
};
const workloadNames = flags.workloads!.split(',').map((w) => w.trim().toUpperCase());
for (const w of workloadNames) {
  if (!WORKLOADS[w]) {
    console.error(`unknown workload '${w}'; use A-F`);
    process.exit(2);
  }
}

function du(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const st = statSync(join(dir, name));
    if (st.isFile()) total += st.size;
  }
  return total;
}

/** Child mode: run every workload for one engine, print the result as the last stdout line. */
async function runEngine(engine: string): Promise<EngineResult> {
  const make = ADAPTERS[engine];
  if (!make) throw new Error(`unknown engine '${engine}'`);
  const root = flags.dir ?? mkdtempSync(join(tmpdir(), `ycsb-${engine}-`));
  const pool = new ValuePool(cfg.valueBytes, cfg.seed);
  const keyBytes = 24;
  let first: Pick<EngineResult, 'load' | 'reopenMs' | 'diskBytes'> | undefined;
  const workloads: PhaseResult[] = [];
  for (const name of workloadNames) {
    const dir = join(root, `${engine}-${name}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    let adapter = make();
    await adapter.open(dir, { cacheBytes: cfg.cacheBytes });
    const load = await loadPhase(adapter, cfg, pool);
    process.stderr.write(`  ${engine} load for ${name}: ${load.opsPerSec} ops/s\n`);
    if (first === undefined) {
      await adapter.close();
      const diskBytes = du(dir);
      const t0 = performance.now();
      adapter = make();
      await adapter.open(dir, { cacheBytes: cfg.cacheBytes });
      first = { load, reopenMs: Math.round(performance.now() - t0), diskBytes };
    }
    const result = await runPhase(adapter, WORKLOADS[name]!, cfg, pool, { count: cfg.records });
    process.stderr.write(
      `  ${engine} ${name}: ${result.opsPerSec} ops/s (p50 ${result.p50Us} us, p99 ${result.p99Us} us)\n`,
    );
    workloads.push(result);
    await adapter.close();
    rmSync(dir, { recursive: true, force: true });
  }
  if (flags.dir === undefined) rmSync(root, { recursive: true, force: true });
  const logicalBytes = cfg.records * (keyBytes + cfg.valueBytes);
  return {
    engine,
    ...first!,
    logicalBytes,
    spaceAmplification: Math.round((first!.diskBytes / logicalBytes) * 100) / 100,
    workloads,
  };
}

function runChild(engine: string): Promise<EngineResult> {
  const script = fileURLToPath(import.meta.url);
  const args = process.argv.slice(2).filter((a, i, all) => a !== '--child' && all[i - 1] !== '--child');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--max-old-space-size=4096', script, ...args, '--child', engine], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.once('exit', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      if (code !== 0) reject(new Error(`${engine} benchmark exited with ${code}`));
      else resolve(JSON.parse(last) as EngineResult);
    });
  });
}

if (flags.child !== undefined) {
  const result = await runEngine(flags.child);
  process.stdout.write(`${JSON.stringify(result)}\n`);
} else {
  const engines = flags.engines!.split(',').map((e) => e.trim());
  const machine = `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  console.log(
    `YCSB: ${cfg.records} records, ${cfg.operations} ops/workload, ${cfg.valueBytes}-byte values, ${cfg.clients} clients, zipfian ${cfg.theta}, cache ${cfg.cacheBytes / 2 ** 20} MiB, no per-write fsync`,
  );
  console.log(`machine: ${machine}`);
  const results: EngineResult[] = [];
  for (const engine of engines) {
    console.log(`running ${engine}...`);
    results.push(await runChild(engine));
  }
  const report = renderReport(results, workloadNames);
  console.log(`\n${report}`);
  const outDir =
    flags.out ?? join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'bench', 'results');
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `engine-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ config: cfg, machine, results }, null, 2));
  console.log(`\nwrote ${file}`);
}
