/**
 * `pnpm bench:cluster`: throughput and latency of a three-store cluster of real `nokv serve`
 * processes on loopback (fsync on: every Raft append is fsynced before it is acknowledged), with
 * 64 concurrent clients and 256-byte values: raw puts, then linearizable gets (ReadIndex). The
 * embedded engine with `syncWrites: true` runs the same workload in the same run as the baseline
 * the cluster's cost is measured against, and etcd (3 members on loopback, if `etcd` is installed:
 * Debian's etcd-server) runs the same puts and linearizable gets as the peer to beat (ratios printed).
 *
 *     pnpm bench:cluster [--seconds 10] [--clients 64] [--value-bytes 256] [--keys 20000]
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { open } from '@nokv/engine';
import { ProcessCluster } from '@nokv/node/testing';
import { CoordinatorClient, TxnClient } from '@nokv/raftstore';
import { Etcd3 } from 'etcd3';
import { etcdAvailable, startEtcdCluster } from './peers/etcd-cluster.js';

const { values: flags } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    clients: { type: 'string', default: '64' },
    'value-bytes': { type: 'string', default: '256' },
    keys: { type: 'string', default: '20000' },
  },
});
const seconds = Number(flags.seconds);
const clients = Number(flags.clients);
const valueBytes = Number(flags['value-bytes']);
const keys = Number(flags.keys);
for (const [name, v] of [
  ['seconds', seconds],
  ['clients', clients],
  ['value-bytes', valueBytes],
  ['keys', keys],
] as const) {
  if (!Number.isFinite(v) || v <= 0) {
    process.stderr.write(`--${name} must be a positive number\n`);
    process.exit(2);
  }
}

// Keys spread over both regions (split at 'm').
const keyOf = (i: number) => `${String.fromCharCode(97 + (i % 26))}key${String(i).padStart(8, '0')}`;
const value = Buffer.alloc(valueBytes, 0x61);

interface PhaseResult {
  ops: number;
  errors: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

async function phase(run: (i: number) => Promise<unknown>): Promise<PhaseResult> {
  const latencies: number[] = [];
  let errors = 0;
  const until = performance.now() + seconds * 1000;
  const started = performance.now();
  let n = 0;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < until) {
        const i = n++ % keys;
        const t0 = performance.now();
        try {
          await run(i);
          latencies.push(performance.now() - t0);
        } catch {
          errors++;
        }
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0;
  return {
    ops: latencies.length,
    errors,
    opsPerSec: latencies.length / elapsed,
    p50Ms: pct(0.5),
    p99Ms: pct(0.99),
  };
}

function row(name: string, r: PhaseResult): string {
  return `${name.padEnd(34)} ${r.opsPerSec.toFixed(0).padStart(9)} ops/s   p50 ${r.p50Ms.toFixed(2).padStart(7)} ms   p99 ${r.p99Ms.toFixed(2).padStart(7)} ms   errors ${r.errors}`;
}

process.stdout.write(
  `bench:cluster: 3 stores (nokv serve processes, fsync on), ${clients} clients, ${valueBytes}-byte values, ${seconds}s per phase\n`,
);
// With a coordinator: timestamps for transactions, and leader balancing across the stores.
const cluster = await ProcessCluster.start({ compiled: true, logLevel: 'warn', withCoordinator: true });
let clusterPut: PhaseResult;
let clusterGet: PhaseResult;
let clusterTxnPut: PhaseResult;
try {
  await cluster.waitForLeader(1);
  await cluster.waitForLeader(2);
  const client = cluster.client({ timeoutMs: 10_000 });
  clusterPut = await phase((i) => client.put(keyOf(i), value));
  process.stdout.write(`${row('cluster put (raft, fsync)', clusterPut)}\n`);
  clusterGet = await phase((i) => client.get(keyOf(i)));
  process.stdout.write(`${row('cluster get (ReadIndex)', clusterGet)}\n`);
  const coordinator = new CoordinatorClient(cluster.coordinatorAddr!);
  const txn = new TxnClient({ raw: client, tso: () => coordinator.tso() });
  // Single-key transactions: two timestamps, prewrite and commit (two Raft writes).
  clusterTxnPut = await phase((i) => txn.put(`t${keyOf(i)}`, value));
  process.stdout.write(`${row('cluster txn put (2PC, TSO)', clusterTxnPut)}\n`);
  coordinator.close();
} finally {
  await cluster.stop();
}

// etcd, 3 members on loopback, same concurrency and value size (linearizable reads are its default).
const etcdVersion = etcdAvailable();
let etcdPut: PhaseResult | undefined;
let etcdGet: PhaseResult | undefined;
if (etcdVersion === undefined) {
  process.stdout.write('etcd not found (apt-get install etcd-server): skipping the etcd comparison\n');
} else {
  const etcd = await startEtcdCluster(3);
  const client = new Etcd3({ hosts: etcd.endpoints });
  try {
    // Wait for a leader.
    for (let i = 0; ; i++) {
      try {
        await client.put('warmup').value('1');
        break;
      } catch (err) {
        if (i > 100) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    etcdPut = await phase((i) => client.put(keyOf(i)).value(value).exec());
    process.stdout.write(`${row(`etcd put (${etcdVersion})`, etcdPut)}\n`);
    etcdGet = await phase((i) => client.get(keyOf(i)).buffer());
    process.stdout.write(`${row('etcd get (linearizable)', etcdGet)}\n`);
  } finally {
    client.close();
    await etcd.stop();
  }
}

const dir = mkdtempSync(join(tmpdir(), 'nokv-bench-embedded-'));
let embeddedPut: PhaseResult;
let embeddedGet: PhaseResult;
try {
  const db = await open({ dir, syncWrites: true });
  embeddedPut = await phase((i) => db.set(keyOf(i), value));
  process.stdout.write(`${row('embedded engine put (syncWrites)', embeddedPut)}\n`);
  embeddedGet = await phase((i) => db.get(keyOf(i)));
  process.stdout.write(`${row('embedded engine get', embeddedGet)}\n`);
  await db.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

if (etcdPut && etcdGet) {
  process.stdout.write(
    `ratios (NoKV cluster / etcd): put ${(clusterPut.opsPerSec / etcdPut.opsPerSec).toFixed(3)}, get ${(clusterGet.opsPerSec / etcdGet.opsPerSec).toFixed(3)}\n`,
  );
}
process.stdout.write(
  `ratios (cluster / embedded): put ${(clusterPut.opsPerSec / embeddedPut.opsPerSec).toFixed(3)}, get ${(clusterGet.opsPerSec / embeddedGet.opsPerSec).toFixed(3)}\n`,
);
process.stdout.write(
  `${JSON.stringify({ clusterPut, clusterGet, clusterTxnPut, etcdPut, etcdGet, embeddedPut, embeddedGet, clients, valueBytes, seconds })}\n`,
);
