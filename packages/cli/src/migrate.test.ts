import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { open } from '@nokv/engine';
import { ProcessCluster } from '@nokv/node/testing';
import { connectCluster } from '@nokv/raftstore';
import { PairDigest } from '@nokv/raftstore/migrate';
import { afterEach, describe, expect, it } from 'vitest';

// The whole standalone → cluster migration against real processes: `nokv migrate` runs as a child
// process that SIGKILLs itself right after each checkpoint (NOKV_MIGRATE_CRASH_AFTER), is run again
// to resume, and the stores are real `nokv serve` processes. Every key of the standalone database
// must then be readable through the cluster client, with the same checksum.

const bin = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'nokv.mjs');
const KEYS = 100_000;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
}

function nokv(args: string[], crashAfter?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    if (crashAfter) env.NOKV_MIGRATE_CRASH_AFTER = crashAfter;
    else delete env.NOKV_MIGRATE_CRASH_AFTER;
    const child = spawn(process.execPath, [bin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve({ code, signal, out, err }));
  });
}

async function ok(args: string[]): Promise<string> {
  const r = await nokv(args);
  if (r.code !== 0) throw new Error(`nokv ${args.join(' ')} exited ${r.code}: ${r.err}${r.out}`);
  return r.out;
}

async function killedAt(args: string[], stage: string): Promise<void> {
  const r = await nokv(args, stage);
  expect(r.signal, `nokv ${args[1]} should die at ${stage}: ${r.err}${r.out}`).toBe('SIGKILL');
}

async function makeStandalone(dir: string): Promise<string> {
  const db = await open({ dir });
  for (let i = 0; i < KEYS; i += 1000) {
    const batch = db.batch();
    for (let j = i; j < i + 1000; j++)
      batch.put(`user:${String(j).padStart(7, '0')}`, `value-${j}-${'x'.repeat(j % 50)}`);
    await db.write(batch);
  }
  for (let i = 0; i < KEYS; i += 97) await db.delete(`user:${String(i).padStart(7, '0')}`);
  await db.close();
  const ro = await open({ dir, readOnly: true });
  const d = new PairDigest();
  for await (const [k, v] of ro.iterate()) d.add(k, v);
  await ro.close();
  return `${d.count}:${d.hex()}`;
}

let cluster: ProcessCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

describe('nokv migrate (real processes, a SIGKILL at every checkpoint)', () => {
  it('moves a 100,000-key standalone workdir into a 3-replica cluster with every key intact', async () => {
    cluster = await ProcessCluster.start({
      stores: 3,
      withCoordinator: true,
      regions: 'none',
      startStores: false,
    });
    const c = cluster;
    const workdir = c.workdir(1);
    const before = await makeStandalone(workdir);

    expect(await ok(['migrate', 'plan', '--workdir', workdir])).toMatch(/eligible:\s+true/);
    const init = ['migrate', 'init', '--workdir', workdir, '--store', '1', '--region', '1', '--peer', '101'];
    for (const stage of [
      'mode-preparing-written',
      'seed-snapshot-exported',
      'local-catalog-persisted',
      'raft-seed-initialized',
    ]) {
      await killedAt(init, stage);
      const st = JSON.parse(await ok(['migrate', 'status', '--workdir', workdir, '--json'])) as {
        mode: string;
        progress: { stage: string };
        resumeHint: string;
      };
      expect(st).toMatchObject({ mode: 'preparing', progress: { stage } });
      expect(st.resumeHint).toContain('re-run');
    }
    await killedAt(init, 'seeded-finalized');
    expect(await ok(init)).toMatch(/already seeded/);

    for (const id of c.storeIds()) await c.startStore(id);
    await c.waitForLeader(1);
    const addr = (id: number) => c.address(id)!;
    const expand = [
      'migrate',
      'expand',
      '--addr',
      addr(1),
      '--region',
      '1',
      '--target',
      `2:102@${addr(2)}`,
      '--target',
      `3:103@${addr(3)}`,
      '--workdir',
      workdir,
    ];
    await killedAt(expand, 'expand-target-pending');
    await killedAt(expand, 'expand-target-hosted');
    const expanded = await ok(expand);
    expect(expanded).toMatch(/peer 102 on store 2: already a member/);
    expect(expanded).toMatch(/peer 103 on store 3: added/);

    const report = JSON.parse(
      await ok(['migrate', 'report', '--workdir', workdir, '--addr', addr(1), '--json']),
    ) as { status: { mode: string; cluster: { membership: unknown[]; leaderStoreId: string } } };
    expect(report.status.mode).toBe('cluster');
    expect(report.status.cluster.membership).toHaveLength(3);
    expect(report.status.cluster.leaderStoreId).toBe('1');

    // The original machine hands over and leaves: leadership to peer 102, peer 101 removed (each
    // killed once right after its first checkpoint and resumed), then store 1 rejoins as peer 104.
    const move = (cmd: string, target: number, peer: string) => [
      'migrate',
      cmd,
      '--addr',
      addr(cmd === 'transfer-leader' ? 1 : 2),
      '--target-addr',
      addr(target),
      '--region',
      '1',
      '--peer',
      peer,
      '--workdir',
      workdir,
    ];
    await killedAt(move('transfer-leader', 2, '102'), 'transfer-leader-started');
    expect(await ok(move('transfer-leader', 2, '102'))).toMatch(/peer 102 .* leads region 1/);
    await killedAt(move('remove-peer', 1, '101'), 'remove-peer-started');
    expect(await ok(move('remove-peer', 1, '101'))).toMatch(/peer 101 removed/);
    const status = JSON.parse(await ok(['migrate', 'status', '--workdir', workdir, '--json'])) as {
      progress: { stage: string };
    };
    expect(status.progress.stage).toBe('remove-peer-finished');
    await ok(['migrate', 'expand', '--addr', addr(2), '--region', '1', '--target', `1:104@${addr(1)}`]);

    // Every key through the cluster client, first with every store up, then with the leader dead.
    const readAll = async () => {
      const conn = await connectCluster({ coordinatorAddr: c.coordinatorAddr!, timeoutMs: 15_000 });
      try {
        const d = new PairDigest();
        let from = Buffer.alloc(0);
        for (;;) {
          const rows = await conn.client.scan(from, '', 2000);
          for (const r of rows) d.add(r.key, r.value);
          if (rows.length < 2000) break;
          from = Buffer.concat([rows[rows.length - 1]!.key, Buffer.from([0])]);
        }
        return `${d.count}:${d.hex()}`;
      } finally {
        conn.close();
      }
    };
    expect(await readAll()).toBe(before);
    await c.kill(2);
    await c.waitForLeader(1, 20_000);
    expect(await readAll()).toBe(before);
  }, 300_000);
});
