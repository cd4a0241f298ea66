/**
 * `pnpm bench:redis`: redis-benchmark (Debian's redis-tools) against, in the same run,
 *
 * - redis-server 7 (persistence off: `--save '' --appendonly no`), the reference;
 * - the NoKV gateway over the embedded engine (`nokv-redis --workdir`, WAL written but not
 *   fsynced per commit: the same durability class as redis-server without AOF);
 * - the NoKV gateway over a three-store cluster of real `nokv serve` processes with a coordinator
 *   (`nokv-redis --coordinator`; every write a 2PC transaction, Raft appends fsynced);
 *
 * each with `redis-benchmark -t set,get,incr,mset -n N -c 50 -d 100`, unpipelined and with `-P 16`.
 * Prints ops/s per test, the ratios to redis-server, and the cluster's SET rate against etcd's put
 * rate (3 etcd members on loopback, measured in the same run with the same concurrency and value
 * size when `etcd` is installed). Targets (issue 8): embedded >= 0.5x redis-server unpipelined;
 * cluster ahead of etcd's put rate. Writes JSON to bench/results/.
 *
 *     pnpm bench:redis [--requests 200000] [--cluster-requests N] [--clients 50] [--data-size 100]
 *       [--pipeline 16] [--tests set,get,incr,mset] [--random-keys N] [--targets redis,embedded,cluster]
 *       [--skip-etcd]
 *       [--etcd-seconds 10] [--out DIR]
 *
 * `NOKV_BENCH_REDIS_N` sets --requests for quick runs (e.g. NOKV_BENCH_REDIS_N=20000).
 * Without --random-keys every request hits the same key, exactly as the plain redis-benchmark
 * command line does; `--random-keys 100000` passes `-r 100000`.
 */

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ProcessCluster } from '@nokv/node/testing';
import { freeLoopbackPort } from '@nokv/server-kit';
import { Etcd3 } from 'etcd3';
import { etcdAvailable, startEtcdCluster } from './peers/etcd-cluster.js';

const { values: flags } = parseArgs({
  options: {
    requests: { type: 'string', default: process.env.NOKV_BENCH_REDIS_N ?? '200000' },
    'cluster-requests': { type: 'string' },
    clients: { type: 'string', default: '50' },
    'data-size': { type: 'string', default: '100' },
    pipeline: { type: 'string', default: '16' },
    tests: { type: 'string', default: 'set,get,incr,mset' },
    'random-keys': { type: 'string' },
    targets: { type: 'string', default: 'redis,embedded,cluster' },
    'skip-etcd': { type: 'boolean', default: false },
    'etcd-seconds': { type: 'string', default: '10' },
    out: { type: 'string' },
  },
});

function positive(name: string, text: string | undefined): number {
  const v = Number(text);
  if (!Number.isSafeInteger(v) || v <= 0) {
    process.stderr.write(`--${name} must be a positive integer; got '${text}'\n`);
    process.exit(2);
  }
  return v;
}

const requests = positive('requests', flags.requests);
const clusterRequests = positive('cluster-requests', flags['cluster-requests'] ?? String(requests));
const clients = positive('clients', flags.clients);
const dataSize = positive('data-size', flags['data-size']);
const pipeline = positive('pipeline', flags.pipeline);
const randomKeys =
  flags['random-keys'] === undefined ? undefined : positive('random-keys', flags['random-keys']);
const etcdSeconds = positive('etcd-seconds', flags['etcd-seconds']);
const tests = flags.tests;
const targets = new Set(flags.targets.split(','));
for (const t of targets) {
  if (!['redis', 'embedded', 'cluster'].includes(t)) {
    process.stderr.write(`--targets: unknown target '${t}' (redis, embedded, cluster)\n`);
    process.exit(2);
  }
}

for (const bin of ['redis-server', 'redis-benchmark', 'redis-cli']) {
  if (spawnSync(bin, ['--version']).status !== 0) {
    process.stderr.write(`${bin} not found: apt-get install -y redis-server redis-tools\n`);
    process.exit(2);
  }
}

const here = dirname(fileURLToPath(import.meta.url));
// dist/src → the repository root.
const root = join(here, '..', '..', '..', '..');
const gatewayEntry = join(root, 'apps', 'redis', 'dist', 'src', 'main.js');

interface Server {
  name: string;
  port: number;
  stop(): Promise<void>;
}

/** Sends one command with redis-cli; its trimmed output, or undefined when it failed. */
function cliCall(port: number, args: string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    const p = spawn('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let out = '';
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    p.on('close', (code) => resolve(code === 0 ? out.trim() : undefined));
  });
}

async function waitReady(
  name: string,
  port: number,
  proc: ChildProcess,
  output: () => string,
): Promise<void> {
  const deadline = Date.now() + 60_000;
  // A write proves more than PING for the cluster: the coordinator routes both regions.
  while ((await cliCall(port, ['set', 'bench:ready', '1'])) !== 'OK') {
    if (proc.exitCode !== null) throw new Error(`${name} exited with ${proc.exitCode}: ${output()}`);
    if (Date.now() > deadline) throw new Error(`${name} did not answer on port ${port}: ${output()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

function spawnServer(
  name: string,
  cmd: string,
  args: string[],
  port: number,
  cleanup: () => void,
): Promise<Server> {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const keep = (d: Buffer) => {
    lines.push(d.toString());
    if (lines.length > 50) lines.shift();
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    cleanup();
  };
  return waitReady(name, port, proc, () => lines.join('').slice(-2000)).then(
    () => ({ name, port, stop }),
    async (err) => {
      await stop();
      throw err;
    },
  );
}

async function startRedisServer(): Promise<Server> {
  const port = await freeLoopbackPort();
  const dir = mkdtempSync(join(tmpdir(), 'nokv-bench-redis-ref-'));
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
  ];
  return spawnServer('redis-server', 'redis-server', args, port, () =>
    rmSync(dir, { recursive: true, force: true }),
  );
}

async function startGateway(
  name: string,
  backendArgs: string[],
  cleanup: () => void = () => {},
): Promise<Server> {
  const port = await freeLoopbackPort();
  const args = [gatewayEntry, '--addr', `127.0.0.1:${port}`, '--log-level', 'warn', ...backendArgs];
  return spawnServer(name, process.execPath, args, port, cleanup);
}

interface TestResult {
  test: string;
  rps: number;
  p50Ms: number;
  p99Ms: number;
}

/** Runs redis-benchmark --csv and parses its rows. */
function redisBenchmark(port: number, n: number, pipelined: boolean): Promise<TestResult[]> {
  const args = ['-h', '127.0.0.1', '-p', String(port), '-t', tests, '-n', String(n), '-c', String(clients)];
  args.push('-d', String(dataSize), '--csv');
  if (pipelined) args.push('-P', String(pipeline));
  if (randomKeys !== undefined) args.push('-r', String(randomKeys));
  return new Promise((resolve, reject) => {
    const p = spawn('redis-benchmark', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    p.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    p.on('close', (code) => {
      if (code !== 0) return reject(new Error(`redis-benchmark exited with ${code}: ${err}${out}`));
      const rows: TestResult[] = [];
      for (const line of out.split('\n')) {
        // "SET","55248.62","0.600","0.072","0.471","1.063","4.079","14.743"
        const cells = [...line.matchAll(/"([^"]*)"/g)].map((m) => m[1]!);
        if (cells.length < 7 || cells[0] === 'test') continue;
        rows.push({
          test: cells[0]!,
          rps: Number(cells[1]),
          p50Ms: Number(cells[4]),
          p99Ms: Number(cells[6]),
        });
      }
      resolve(rows);
    });
  });
}

interface TargetResult {
  target: string;
  requests: number;
  unpipelined: TestResult[];
  pipelined: TestResult[];
}

async function bench(server: Server, n: number): Promise<TargetResult> {
  process.stdout.write(`\n${server.name}: -n ${n} -c ${clients} -d ${dataSize}\n`);
  const unpipelined = await redisBenchmark(server.port, n, false);
  for (const r of unpipelined) process.stdout.write(`  ${row(r)}\n`);
  process.stdout.write(`${server.name}: -P ${pipeline}\n`);
  const pipelined = await redisBenchmark(server.port, n, true);
  for (const r of pipelined) process.stdout.write(`  ${row(r)}\n`);
  return { target: server.name, requests: n, unpipelined, pipelined };
}

const fmt = (v: number) => Math.round(v).toLocaleString('en-US');
const row = (r: TestResult) =>
  `${r.test.padEnd(16)} ${fmt(r.rps).padStart(11)} ops/s   p50 ${r.p50Ms.toFixed(3).padStart(7)} ms   p99 ${r.p99Ms.toFixed(3).padStart(8)} ms`;

/** etcd's put rate with the same concurrency and value size (bench-cluster's method). */
async function etcdPutRate(): Promise<{ version: string; opsPerSec: number } | undefined> {
  const version = etcdAvailable();
  if (version === undefined) return undefined;
  const etcd = await startEtcdCluster(3);
  const client = new Etcd3({ hosts: etcd.endpoints });
  try {
    for (let i = 0; ; i++) {
      try {
        await client.put('warmup').value('1');
        break;
      } catch (err) {
        if (i > 100) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const value = Buffer.alloc(dataSize, 0x61);
    let ops = 0;
    let n = 0;
    const started = performance.now();
    const until = started + etcdSeconds * 1000;
    await Promise.all(
      Array.from({ length: clients }, async () => {
        while (performance.now() < until) {
          await client
            .put(`key:${n++ % 100_000}`)
            .value(value)
            .exec();
          ops++;
        }
      }),
    );
    return { version, opsPerSec: ops / ((performance.now() - started) / 1000) };
  } finally {
    client.close();
    await etcd.stop();
  }
}

process.stdout.write(
  `bench:redis: redis-benchmark -t ${tests} -c ${clients} -d ${dataSize}, unpipelined and -P ${pipeline}; ` +
    `-n ${requests} (cluster ${clusterRequests}); ${randomKeys ? `-r ${randomKeys}` : 'no -r: every request hits one key'}; ${cpus().length} cores\n`,
);

const results: TargetResult[] = [];
if (targets.has('redis')) {
  const s = await startRedisServer();
  try {
    results.push(await bench(s, requests));
  } finally {
    await s.stop();
  }
}
if (targets.has('embedded')) {
  const dir = mkdtempSync(join(tmpdir(), 'nokv-bench-redis-embedded-'));
  const s = await startGateway('gateway embedded', ['--workdir', dir], () =>
    rmSync(dir, { recursive: true, force: true }),
  );
  try {
    results.push(await bench(s, requests));
  } finally {
    await s.stop();
  }
}
if (targets.has('cluster')) {
  const cluster = await ProcessCluster.start({ compiled: true, logLevel: 'warn', withCoordinator: true });
  try {
    await cluster.waitForLeader(1);
    await cluster.waitForLeader(2);
    const s = await startGateway('gateway cluster (3 stores)', ['--coordinator', cluster.coordinatorAddr!]);
    try {
      results.push(await bench(s, clusterRequests));
    } finally {
      await s.stop();
    }
  } finally {
    await cluster.stop();
  }
}
let etcd: { version: string; opsPerSec: number } | undefined;
if (!flags['skip-etcd'] && targets.has('cluster')) {
  etcd = await etcdPutRate();
  process.stdout.write(
    etcd === undefined
      ? '\netcd not found (apt-get install etcd-server): last measured etcd put rate was about 5,600-6,250 ops/s (bench:cluster)\n'
      : `\netcd put (${etcd.version}, 3 members, ${clients} clients, ${dataSize}-byte values): ${fmt(etcd.opsPerSec)} ops/s\n`,
  );
}

// Summary: ops/s per test and target, ratios to redis-server.
// Ratios are to redis-server when it ran.
const reference = results.find((r) => r.target === 'redis-server');
const others = results.filter((r) => r !== reference);
const names = (results[0]?.unpipelined ?? []).map((r) => r.test);
const short = (t: string) => (t.startsWith('gateway ') ? t.split(' ')[1]! : t);
const lines: string[] = [];
for (const mode of ['unpipelined', 'pipelined'] as const) {
  lines.push('', `ops/s, ${mode === 'pipelined' ? `-P ${pipeline}` : 'unpipelined'}`);
  const header = [
    'test'.padEnd(16),
    ...results.map((r) => short(r.target).padStart(14)),
    ...(reference ? others.map((r) => `${short(r.target)}/redis`.padStart(16)) : []),
  ];
  lines.push(header.join(''));
  for (const test of names) {
    const rate = (r: TargetResult) => r[mode].find((x) => x.test === test)?.rps ?? 0;
    const ref = reference ? rate(reference) : 0;
    lines.push(
      [
        test.padEnd(16),
        ...results.map((r) => fmt(rate(r)).padStart(14)),
        ...(reference
          ? others.map((r) => (ref > 0 ? `${(rate(r) / ref).toFixed(3)}x` : '-').padStart(16))
          : []),
      ].join(''),
    );
  }
}
process.stdout.write(`${lines.join('\n')}\n`);

const clusterResult = results.find((r) => r.target.startsWith('gateway cluster'));
if (clusterResult) {
  const set = clusterResult.unpipelined.find((r) => r.test === 'SET')?.rps ?? 0;
  const setP = clusterResult.pipelined.find((r) => r.test === 'SET')?.rps ?? 0;
  const put = etcd?.opsPerSec;
  process.stdout.write(
    put === undefined
      ? `\ncluster SET ${fmt(set)} ops/s (unpipelined), ${fmt(setP)} ops/s (-P ${pipeline}); etcd not measured (last bench:cluster: ~5,600-6,250 puts/s)\n`
      : `\ncluster SET / etcd put: ${(set / put).toFixed(3)} unpipelined, ${(setP / put).toFixed(3)} with -P ${pipeline}\n`,
  );
}

const outDir = flags.out ?? join(root, 'bench', 'results');
mkdirSync(outDir, { recursive: true });
const file = join(outDir, `redis-${new Date().toISOString().replaceAll(':', '-').replaceAll('.', '-')}.json`);
writeFileSync(
  file,
  JSON.stringify(
    { config: { requests, clusterRequests, clients, dataSize, pipeline, tests, randomKeys }, results, etcd },
    null,
    2,
  ),
);
process.stdout.write(`results: ${file}\n`);
