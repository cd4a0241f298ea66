/**
 * `pnpm bench:regions`: what an idle cluster with many regions costs. Starts a coordinator and
 * three real `nokv serve` processes on loopback with a topology of 1,000 regions (split on
 * zero-padded keys, a peer of every region on every store), waits until every region has a leader
 * and the coordinator knows them all, lets the cluster go idle, then measures for 30 s:
 *
 * - each process's CPU (utime + stime from /proc/<pid>/stat) as % of one core;
 * - the heartbeat RPCs per second the coordinator received (from its /metrics), and the region
 *   heartbeats they carried.
 *
 *     pnpm bench:regions [--regions 1000] [--stores 3] [--measure-s 30] [--settle-s 20]
 *       [--raft-tick-ms 100] [--compiled] [--json] [--keep]
 *
 * Linux only (/proc). `--compiled` runs apps/{node,coordinator}/dist (build first); by default the
 * TypeScript sources run through tsx, which costs nothing once loaded.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freeLoopbackPort } from '@nokv/server-kit';

const { values: flags } = parseArgs({
  options: {
    regions: { type: 'string', default: '1000' },
    stores: { type: 'string', default: '3' },
    'measure-s': { type: 'string', default: '30' },
    'settle-s': { type: 'string', default: '20' },
    'raft-tick-ms': { type: 'string' },
    'leader-timeout-s': { type: 'string', default: '300' },
    compiled: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});
const positive = (name: string, text: string | undefined): number => {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n <= 0) {
    process.stderr.write(`--${name} must be a positive integer\n`);
    process.exit(2);
  }
  return n;
};
const regionCount = positive('regions', flags.regions);
const storeCount = positive('stores', flags.stores);
const measureS = positive('measure-s', flags['measure-s']);
const settleS = positive('settle-s', flags['settle-s']);
const leaderTimeoutS = positive('leader-timeout-s', flags['leader-timeout-s']);
const raftTickMs =
  flags['raft-tick-ms'] === undefined ? undefined : positive('raft-tick-ms', flags['raft-tick-ms']);

// packages/bench/src, or packages/bench/dist/src when compiled.
const here = dirname(fileURLToPath(import.meta.url));
const repo = here.includes(join('bench', 'dist'))
  ? join(here, '..', '..', '..', '..')
  : join(here, '..', '..', '..');
const log = (line: string) => process.stderr.write(`${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `node` args for an app's entry: compiled when asked and built, else the sources through tsx. */
function entry(app: 'node' | 'coordinator'): string[] {
  const compiled = join(repo, 'apps', app, 'dist', 'src', 'main.js');
  if (flags.compiled && existsSync(compiled)) return [compiled];
  return ['--conditions=@nokv/source', '--import', 'tsx', join(repo, 'apps', app, 'src', 'main.ts')];
}

interface Proc {
  name: string;
  proc: ChildProcess;
  output: string[];
}

function start(name: string, args: string[]): Proc {
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: repo });
  const p: Proc = { name, proc, output: [] };
  const keep = (b: Buffer) => {
    p.output.push(b.toString());
    if (p.output.length > 100) p.output.splice(0, p.output.length - 100);
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  return p;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs: number, procs: Proc[]) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const p of procs) {
      if (p.proc.exitCode !== null)
        throw new Error(`${p.name} exited (${p.proc.exitCode}): ${p.output.join('').slice(-3000)}`);
    }
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(500);
  }
}

/** utime + stime of a process in clock ticks (USER_HZ = 100 on Linux). */
async function cpuTicks(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // The command name may contain spaces: fields start after the closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}
const USER_HZ = 100;

/** Prometheus samples as `name{labels}` → value. */
async function metrics(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(url)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

const rpc = (m: Map<string, number>, method: string) =>
  m.get(`nokv_coordinator_rpc_total{method="${method}",code="Ok"}`) ?? 0;

interface StoreStats {
  regions: { regionId: string; role: string }[];
  store: { regions: number; leaders: number; hibernating: number; events?: Record<string, number> } | null;
  coordinator: Record<string, unknown> | null;
}

const root = await mkdtemp(join(tmpdir(), 'nokv-bench-regions-'));
const procs: Proc[] = [];
let exitCode = 0;
try {
  const coordPort = await freeLoopbackPort();
  const coordHttp = await freeLoopbackPort();
  const stores: { id: number; port: number; httpPort: number }[] = [];
  for (let id = 1; id <= storeCount; id++) {
    stores.push({ id, port: await freeLoopbackPort(), httpPort: await freeLoopbackPort() });
  }
  const key = (i: number) => `r${String(i).padStart(6, '0')}`;
  const topology = {
    cluster: 'bench-regions',
    coordinator: { addr: `127.0.0.1:${coordPort}` },
    stores: stores.map((s) => ({
      id: s.id,
      addr: `127.0.0.1:${s.port}`,
      httpAddr: `127.0.0.1:${s.httpPort}`,
      workdir: join(root, `store-${s.id}`),
    })),
    regions: Array.from({ length: regionCount }, (_, i) => ({
      id: i + 1,
      startKey: i === 0 ? '' : key(i),
      endKey: i === regionCount - 1 ? '' : key(i + 1),
      peers: stores.map((s) => ({ storeId: s.id, peerId: s.id * 1_000_000 + i + 1 })),
    })),
  };
  const config = join(root, 'nokv.config.json');
  await writeFile(config, JSON.stringify(topology));

  log(`starting a coordinator and ${storeCount} stores with ${regionCount} regions in ${root}`);
  log(
    `coordinator http://127.0.0.1:${coordHttp} (/view, /metrics); stores ${stores.map((s) => `http://127.0.0.1:${s.httpPort}`).join(' ')} (/stats)`,
  );
  const coordinator = start('coordinator', [
    ...entry('coordinator'),
    '--addr',
    `127.0.0.1:${coordPort}`,
    '--http-addr',
    `127.0.0.1:${coordHttp}`,
    '--workdir',
    join(root, 'coordinator'),
    '--log-level',
    'warn',
  ]);
  procs.push(coordinator);
  const coordMetrics = `http://127.0.0.1:${coordHttp}/metrics`;
  await waitFor(
    'the coordinator',
    async () => (await fetch(`http://127.0.0.1:${coordHttp}/healthz`)).ok,
    30_000,
    procs,
  );
  const storeProcs = stores.map((s) =>
    start(`store ${s.id}`, [
      ...entry('node'),
      '--config',
      config,
      '--store-id',
      String(s.id),
      '--log-level',
      'warn',
      ...(raftTickMs !== undefined ? ['--raft-tick-ms', String(raftTickMs)] : []),
    ]),
  );
  procs.push(...storeProcs);
  const started = Date.now();
  for (const s of stores) {
    await waitFor(
      `store ${s.id}`,
      async () => (await fetch(`http://127.0.0.1:${s.httpPort}/healthz`)).ok,
      120_000,
      procs,
    );
  }
  log(`stores up after ${((Date.now() - started) / 1000).toFixed(1)} s; waiting for ${regionCount} leaders`);
  const stats = async (s: { httpPort: number }) =>
    (await (await fetch(`http://127.0.0.1:${s.httpPort}/stats`)).json()) as StoreStats;
  await waitFor(
    'a leader in every region',
    async () => {
      const led = new Set<string>();
      for (const s of stores)
        for (const r of (await stats(s)).regions) if (r.role === 'leader') led.add(r.regionId);
      return led.size === regionCount;
    },
    leaderTimeoutS * 1000,
    procs,
  );
  const leadersAt = Date.now();
  log(
    `all leaders after ${((leadersAt - started) / 1000).toFixed(1)} s; waiting for the coordinator to know them`,
  );
  await waitFor(
    'the coordinator to know every leader',
    async () => {
      const m = await metrics(coordMetrics);
      return (
        m.get('nokv_coordinator_regions') === regionCount &&
        m.get('nokv_coordinator_regions_without_leader') === 0
      );
    },
    120_000,
    procs,
  );
  log(
    `coordinator knows all leaders after ${((Date.now() - started) / 1000).toFixed(1)} s; waiting for leader balancing`,
  );
  const view = async () =>
    (await (await fetch(`http://127.0.0.1:${coordHttp}/view`)).json()) as {
      stores: { id: string; leaders: number }[];
      operators: { counts: Record<string, number> };
      scheduler: { created: Record<string, number> };
    };
  // Leader balancing moves leaderships (a few at a time) until the counts are within 1: that is
  // work, not idleness, so the measurement starts after it (or after 3 minutes, reported).
  let quiet = 0;
  let balanced = true;
  await waitFor(
    'leader balancing to finish',
    async () => {
      const v = await view();
      const busy = (v.operators.counts.pending ?? 0) + (v.operators.counts.running ?? 0);
      quiet = busy === 0 ? quiet + 1 : 0;
      return quiet >= 6;
    },
    180_000,
    procs,
  ).catch((err: Error) => {
    balanced = false;
    log(`${err.message}; measuring anyway`);
  });
  log(`balanced after ${((Date.now() - started) / 1000).toFixed(1)} s; settling ${settleS} s`);
  await sleep(settleS * 1000);

  log(`measuring for ${measureS} s`);
  const all = [...storeProcs, coordinator];
  const cpu0 = await Promise.all(all.map((p) => cpuTicks(p.proc.pid!)));
  const m0 = await metrics(coordMetrics);
  const t0 = performance.now();
  await sleep(measureS * 1000);
  const cpu1 = await Promise.all(all.map((p) => cpuTicks(p.proc.pid!)));
  const m1 = await metrics(coordMetrics);
  const seconds = (performance.now() - t0) / 1000;
  const pct = (i: number) => ((cpu1[i]! - cpu0[i]!) / USER_HZ / seconds) * 100;
  const rate = (name: (m: Map<string, number>) => number) => (name(m1) - name(m0)) / seconds;

  const storeInfo = await Promise.all(stores.map(stats));
  const finalView = await view();
  const result = {
    leaderBalancingFinished: balanced,
    operationsCreated: finalView.scheduler.created,
    regions: regionCount,
    stores: storeCount,
    measuredSeconds: Number(seconds.toFixed(1)),
    cpuPercentOfOneCore: Object.fromEntries(all.map((p, i) => [p.name, Number(pct(i).toFixed(2))])),
    perStore: stores.map((s, i) => ({
      store: s.id,
      cpuPct: Number(pct(i).toFixed(2)),
      leaders: storeInfo[i]!.store?.leaders ?? null,
      /** What the coordinator believes (from region heartbeats). */
      leadersSeenByCoordinator: finalView.stores.find((x) => x.id === String(s.id))?.leaders ?? null,
      hibernating: storeInfo[i]!.store?.hibernating ?? null,
      heartbeat: storeInfo[i]!.coordinator
        ? {
            regionHeartbeatsSent: storeInfo[i]!.coordinator!.regionHeartbeatsSent,
            regionHeartbeatsSkipped: storeInfo[i]!.coordinator!.regionHeartbeatsSkipped,
            lastRound: storeInfo[i]!.coordinator!.lastRound,
          }
        : null,
    })),
    coordinatorRpcPerSec: {
      StoreHeartbeat: Number(rate((m) => rpc(m, 'StoreHeartbeat')).toFixed(2)),
      RegionHeartbeatBatch: Number(rate((m) => rpc(m, 'RegionHeartbeatBatch')).toFixed(2)),
      RegionHeartbeat: Number(rate((m) => rpc(m, 'RegionHeartbeat')).toFixed(2)),
    },
    regionHeartbeatsPerSec: Number(
      rate((m) => m.get('nokv_coordinator_region_heartbeats_received') ?? 0).toFixed(2),
    ),
  };
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } else {
    const lines = [
      `idle cluster: ${regionCount} regions × ${storeCount} stores, measured ${result.measuredSeconds} s`,
      '',
      'process       CPU (% of one core)  leaders (coordinator sees)  hibernating',
      ...result.perStore.map(
        (s) =>
          `store ${String(s.store).padEnd(7)} ${s.cpuPct.toFixed(2).padStart(19)}  ${`${s.leaders} (${s.leadersSeenByCoordinator})`.padStart(26)}  ${String(s.hibernating).padStart(11)}`,
      ),
      `coordinator   ${result.cpuPercentOfOneCore.coordinator!.toFixed(2).padStart(19)}`,
      '',
      `coordinator heartbeat RPCs/s: StoreHeartbeat ${result.coordinatorRpcPerSec.StoreHeartbeat}, ` +
        `RegionHeartbeatBatch ${result.coordinatorRpcPerSec.RegionHeartbeatBatch}, ` +
        `RegionHeartbeat ${result.coordinatorRpcPerSec.RegionHeartbeat}; ` +
        `region heartbeats carried/s ${result.regionHeartbeatsPerSec}`,
      `scheduler operations before the measurement: ${JSON.stringify(result.operationsCreated)}` +
        (balanced ? '' : ' (leader balancing had not finished)'),
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
  }
} catch (err) {
  log(`bench failed: ${(err as Error).message}`);
  exitCode = 1;
} finally {
  await Promise.all(
    procs.map(async (p) => {
      if (p.proc.exitCode !== null || p.proc.signalCode !== null) return;
      const exited = new Promise<void>((r) => p.proc.once('exit', () => r()));
      p.proc.kill('SIGTERM');
      const timer = setTimeout(() => p.proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }),
  );
  if (flags.keep) log(`kept ${root}`);
  else await rm(root, { recursive: true, force: true });
}
process.exit(exitCode);
