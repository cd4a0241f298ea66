import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectCluster } from '@nokv/raftstore';
import { freeLoopbackPort } from '@nokv/server-kit';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { type RunningCoordinator, serve } from './serve.js';

// Real `nokv serve` processes (stores 1-3 hold regions 1 and 2, store 4 starts empty) heartbeating
// to an in-process coordinator: batched region heartbeats, a transfer-leader operation carried out
// over RaftAdmin, and, after store 3 is SIGKILLed, the scheduler replacing its replicas on store 4
// (AddPeer with a snapshot, then RemovePeer) — checked by reading the data back with store 1 down
// too, so the answers come from a quorum that includes the new replicas.

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

interface StoreProc {
  id: number;
  port: number;
  httpPort: number;
  proc: ChildProcess;
  output: string[];
}

let root: string;
let coordinator: RunningCoordinator;
const stores = new Map<number, StoreProc>();

async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await Promise.resolve(check()).catch(() => false)) return;
    if (Date.now() > deadline) {
      const outputs = [...stores.values()].map((s) => `store ${s.id}: ${s.output.join('').slice(-1500)}`);
      throw new Error(`timed out waiting for ${what}\n${outputs.join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stats(id: number): Promise<{ regions: { regionId: string; role: string }[] }> {
  const res = await fetch(`http://127.0.0.1:${stores.get(id)!.httpPort}/stats`);
  return (await res.json()) as { regions: { regionId: string; role: string }[] };
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'nokv-coord-proc-'));
  const coordPort = await freeLoopbackPort();
  const ports = [];
  for (let id = 1; id <= 4; id++)
    ports.push({ id, port: await freeLoopbackPort(), httpPort: await freeLoopbackPort() });
  const peers = (region: number) => [1, 2, 3].map((s) => ({ storeId: s, peerId: s * 100 + region }));
  const config = join(root, 'nokv.config.json');
  await writeFile(
    config,
    JSON.stringify({
      cluster: 'coordinator-process-test',
      coordinator: { addr: `127.0.0.1:${coordPort}` },
      stores: ports.map((p) => ({
        id: p.id,
        addr: `127.0.0.1:${p.port}`,
        httpAddr: `127.0.0.1:${p.httpPort}`,
        workdir: join(root, `store-${p.id}`),
      })),
      regions: [
        { id: 1, startKey: '', endKey: 'm', peers: peers(1) },
        { id: 2, startKey: 'm', endKey: '', peers: peers(2) },
      ],
    }),
  );
  coordinator = await serve({
    addr: `127.0.0.1:${coordPort}`,
    workdir: join(root, 'coordinator'),
    logLevel: 'silent',
    heartbeatTimeoutMs: 1500,
    checkpointIntervalMs: 0,
    scheduler: { intervalMs: 200, replicaReplaceAfterMs: 3000 },
    operators: { tickMs: 100, pollMs: 200 },
  });
  // Leader balancing would move leaders under the tests' feet.
  coordinator.coordinator.scheduler.pause('leader-balance');
  for (const p of ports) {
    const proc = spawn(
      process.execPath,
      [
        '--conditions=@nokv/source',
        '--import',
        'tsx',
        join(repoRoot, 'apps', 'node', 'src', 'main.ts'),
        '--config',
        config,
        '--store-id',
        String(p.id),
        '--raft-tick-ms',
        '50',
        '--log-level',
        'warn',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const s: StoreProc = { ...p, proc, output: [] };
    const keep = (b: Buffer) => {
      s.output.push(b.toString());
      if (s.output.length > 100) s.output.splice(0, s.output.length - 100);
    };
    proc.stdout?.on('data', keep);
    proc.stderr?.on('data', keep);
    stores.set(p.id, s);
  }
  const c = coordinator.coordinator;
  await waitFor(
    'four stores up and both leaders known',
    () =>
      [1n, 2n, 3n, 4n].every((id) => c.view.storeState(id) === 'up') &&
      c.view.leaderOf(1n) !== undefined &&
      c.view.leaderOf(2n) !== undefined,
    60_000,
  );
}, 90_000);

afterAll(async () => {
  await Promise.all(
    [...stores.values()].map(async (s) => {
      if (s.proc.exitCode !== null || s.proc.signalCode !== null) return;
      const exited = new Promise<void>((r) => s.proc.once('exit', () => r()));
      s.proc.kill('SIGTERM');
      const timer = setTimeout(() => s.proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }),
  );
  await coordinator?.stop();
  await rm(root, { recursive: true, force: true });
}, 30_000);

test('stores send batched region heartbeats; a transfer-leader operation moves the leadership', {
  timeout: 60_000,
}, async () => {
  const c = coordinator.coordinator;
  const leader = c.view.leaderOf(1n)!;
  // The store leading region 1 sent it in a batch (a store leading nothing sends none).
  const res = await fetch(`http://127.0.0.1:${stores.get(Number(leader.storeId))!.httpPort}/stats`);
  const hb = ((await res.json()) as { coordinator: { regionBatchesSent: number; mode: string } }).coordinator;
  expect(hb.mode).toBe('healthy');
  expect(hb.regionBatchesSent).toBeGreaterThan(0);
  expect(c.regionHeartbeats).toBeGreaterThan(0);

  const to = c.state.catalog.regions.get(1n)!.peers.find((p) => p.storeId !== leader.storeId)!;
  const op = c.operators.add({ kind: 'transfer-leader', regionId: 1n, toPeerId: to.peerId });
  await waitFor('the transfer to finish', () => op.state === 'finished' || op.state === 'failed');
  expect(op.error).toBeUndefined();
  expect(op.state).toBe('finished');
  const s = await stats(Number(to.storeId));
  expect(s.regions.find((r) => r.regionId === '1')?.role).toBe('leader');
});

test('a SIGKILLed store: its replicas are replaced on the empty store, the data is there', {
  timeout: 120_000,
}, async () => {
  const c = coordinator.coordinator;
  const conn = await connectCluster({ coordinatorAddr: coordinator.addr, timeoutMs: 10_000 });
  try {
    for (let i = 0; i < 20; i++) await conn.client.put(`${i % 2 === 0 ? 'a' : 'x'}key${i}`, `v${i}`);
  } finally {
    conn.close();
  }
  const three = stores.get(3)!;
  const exited = new Promise<void>((r) => three.proc.once('exit', () => r()));
  three.proc.kill('SIGKILL');
  await exited;
  await waitFor(
    'regions 1 and 2 to move from store 3 to store 4',
    () =>
      [1n, 2n].every((id) => {
        const r = c.state.catalog.regions.get(id);
        return r !== undefined && r.peers.map((p) => p.storeId).join(',') === '1,2,4';
      }),
    90_000,
  );
  const ops = c.operators.list({ source: 'scheduler', kinds: ['replace-replica'] });
  expect(ops.map((o) => [o.spec.regionId, o.state, o.error])).toEqual(
    expect.arrayContaining([
      [1n, 'finished', undefined],
      [2n, 'finished', undefined],
    ]),
  );
  expect(ops.every((o) => o.reason.startsWith('replica-replace: store 3 silent'))).toBe(true);
  const four = await stats(4);
  expect(four.regions.map((r) => r.regionId).sort()).toEqual(['1', '2']);

  // Store 1 goes too: stores 2 and 4 are a quorum of both regions and answer for the data.
  const one = stores.get(1)!;
  const gone = new Promise<void>((r) => one.proc.once('exit', () => r()));
  one.proc.kill('SIGKILL');
  await gone;
  const again = await connectCluster({ coordinatorAddr: coordinator.addr, timeoutMs: 20_000 });
  try {
    for (let i = 0; i < 20; i++) {
      expect((await again.client.get(`${i % 2 === 0 ? 'a' : 'x'}key${i}`))?.toString()).toBe(`v${i}`);
    }
  } finally {
    again.close();
  }
});
