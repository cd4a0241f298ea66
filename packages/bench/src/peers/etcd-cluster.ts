import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeLoopbackPort } from '@nokv/server-kit';

// Three etcd members on loopback, started and stopped by the benchmark (Debian's etcd-server).
// etcd fsyncs its WAL before acknowledging a write and serves linearizable reads by default: the
// same durability and read guarantee as the NoKV cluster it is compared with.

export function etcdAvailable(): string | undefined {
  const r = spawnSync('etcd', ['--version'], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  return r.stdout.split('\n')[0]?.trim();
}

export interface EtcdCluster {
  endpoints: string[];
  stop(): Promise<void>;
}

export async function startEtcdCluster(members = 3): Promise<EtcdCluster> {
  const root = mkdtempSync(join(tmpdir(), 'nokv-bench-etcd-'));
  const nodes: { name: string; peer: number; client: number; proc?: ChildProcess }[] = [];
  for (let i = 1; i <= members; i++)
    nodes.push({ name: `e${i}`, peer: await freeLoopbackPort(), client: await freeLoopbackPort() });
  const initialCluster = nodes.map((n) => `${n.name}=http://127.0.0.1:${n.peer}`).join(',');
  for (const n of nodes) {
    n.proc = spawn(
      'etcd',
      [
        '--name',
        n.name,
        '--data-dir',
        join(root, n.name),
        '--listen-peer-urls',
        `http://127.0.0.1:${n.peer}`,
        '--initial-advertise-peer-urls',
        `http://127.0.0.1:${n.peer}`,
        '--listen-client-urls',
        `http://127.0.0.1:${n.client}`,
        '--advertise-client-urls',
        `http://127.0.0.1:${n.client}`,
        '--initial-cluster',
        initialCluster,
        '--initial-cluster-state',
        'new',
        '--log-level',
        'error',
      ],
      { stdio: 'ignore' },
    );
  }
  const stop = async () => {
    await Promise.all(
      nodes.map(
        (n) =>
          new Promise<void>((resolve) => {
            if (!n.proc || n.proc.exitCode !== null) return resolve();
            n.proc.once('exit', () => resolve());
            n.proc.kill('SIGTERM');
            setTimeout(() => n.proc?.kill('SIGKILL'), 5000).unref();
          }),
      ),
    );
    rmSync(root, { recursive: true, force: true });
  };
  return { endpoints: nodes.map((n) => `http://127.0.0.1:${n.client}`), stop };
}
