import { ProcessCluster } from '@nokv/node/testing';
import { connectCluster } from '@nokv/raftstore';
import { ClusterBackend, type ClusterBackendOptions } from '../backend/cluster.js';

// A real cluster for the gateway's tests: a coordinator process and three `nokv serve` stores
// (regions [-, m) and [m, +inf)), ready once the coordinator routes both regions. Backends opened
// through it are closed by `stop()`.

export interface GatewayTestCluster {
  cluster: ProcessCluster;
  coordinatorAddr: string;
  /** A backend (a "gateway") over the cluster; several may be open at once. */
  backend(opts?: Omit<ClusterBackendOptions, 'coordinatorAddr'>): Promise<ClusterBackend>;
  stop(): Promise<void>;
}

export async function startGatewayTestCluster(): Promise<GatewayTestCluster> {
  const cluster = await ProcessCluster.start({ raftTickMs: 50, withCoordinator: true });
  const backends: ClusterBackend[] = [];
  try {
    const coordinatorAddr = cluster.coordinatorAddr!;
    await cluster.waitForLeader(1);
    await cluster.waitForLeader(2);
    // The coordinator learns the stores and the regions from their heartbeats.
    let conn: Awaited<ReturnType<typeof connectCluster>> | undefined;
    await cluster.waitFor(
      'the coordinator to route both regions',
      async () => {
        try {
          conn ??= await connectCluster({ coordinatorAddr, timeoutMs: 3000 });
          await conn.client.get('a');
          await conn.client.get('z');
          return true;
        } catch {
          return false;
        }
      },
      30_000,
    );
    conn?.close();
    return {
      cluster,
      coordinatorAddr,
      async backend(opts = {}) {
        const b = await ClusterBackend.connect({ coordinatorAddr, timeoutMs: 10_000, ...opts });
        backends.push(b);
        return b;
      },
      async stop() {
        for (const b of backends) await b.close().catch(() => {});
        await cluster.stop();
      },
    };
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}
