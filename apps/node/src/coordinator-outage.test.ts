import { ClientError, connectCluster } from '@nokv/raftstore';
import { afterEach, expect, test } from 'vitest';
import { ProcessCluster } from './testing/process-cluster.js';

// A real coordinator process and three `nokv serve` processes heartbeating to it. The coordinator
// is killed with SIGKILL: clients with warm route caches keep reading and writing, the stores keep
// serving and report the coordinator unavailable, a cold client gets RouteUnavailable and
// timestamps are unavailable; once it is back, everything converges.

let cluster: ProcessCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

test('coordinator outage: warm clients keep working, cold clients get RouteUnavailable, all converges after restart', {
  timeout: 120_000,
}, async () => {
  cluster = await ProcessCluster.start({ raftTickMs: 50, withCoordinator: true });
  const c = cluster;
  const addr = c.coordinatorAddr!;
  await c.waitForLeader(1);
  await c.waitForLeader(2);
  // The coordinator learns the stores and the regions from heartbeats.
  let warm: Awaited<ReturnType<typeof connectCluster>> | undefined;
  await c.waitFor(
    'the coordinator to route both regions',
    async () => {
      try {
        warm ??= await connectCluster({ coordinatorAddr: addr, timeoutMs: 3000 });
        await warm.client.put('apple', '1');
        await warm.client.put('zebra', '1');
        return true;
      } catch {
        return false;
      }
    },
    30_000,
  );
  const client = warm!.client;
  expect((await warm!.coordinator.tso()) > 0n).toBe(true);
  // Concurrent requests share Tso calls and still get distinct timestamps.
  const many = await Promise.all(Array.from({ length: 200 }, () => warm!.coordinator.tso()));
  expect(new Set(many).size).toBe(200);

  await c.killCoordinator('SIGKILL');
  // Warm routes: reads and writes go straight to the stores.
  await client.put('apple', '2');
  await client.put('zebra', '2');
  expect((await client.get('apple'))?.toString()).toBe('2');
  expect((await client.get('zebra'))?.toString()).toBe('2');
  // No timestamps without the coordinator.
  const tso = await warm!.coordinator.tso().catch((e: unknown) => e);
  expect((tso as ClientError).code).toBe('TsoUnavailable');
  // A cold client has no route.
  const cold = await connectCluster({ coordinatorAddr: addr, timeoutMs: 2000 }).catch((e: unknown) => e);
  expect(cold).toBeInstanceOf(ClientError);
  expect((cold as ClientError).code).toBe('RouteUnavailable');
  // The stores notice and keep serving.
  await c.waitFor(
    'stores to report the coordinator unavailable',
    async () => {
      const s = (await c.stats(1)) as unknown as { coordinator: { mode: string } | null };
      return s.coordinator?.mode === 'unavailable';
    },
    15_000,
  );

  await c.startCoordinator();
  let fresh: Awaited<ReturnType<typeof connectCluster>> | undefined;
  await c.waitFor(
    'a cold client to work again',
    async () => {
      try {
        fresh ??= await connectCluster({ coordinatorAddr: addr, timeoutMs: 3000 });
        return (await fresh.client.get('zebra'))?.toString() === '2';
      } catch {
        return false;
      }
    },
    30_000,
  );
  const ts = await fresh!.coordinator.tso();
  expect(ts > 0n).toBe(true);
  warm!.close();
  fresh!.close();
});
