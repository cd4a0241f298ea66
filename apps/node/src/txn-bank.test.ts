import { ClientError, connectCluster, TxnClient } from '@nokv/raftstore';
import { afterEach, expect, test } from 'vitest';
import { ProcessCluster } from './testing/process-cluster.js';

// Bank transfers in snapshot-isolation transactions against real processes: a coordinator (TSO,
// routing) and three `nokv serve` stores. The leader's store of each region is killed with
// SIGKILL in turn while transfers run. Every snapshot read must see the same total, and so must
// the final read: a transfer is atomic even when its outcome was unknown to its client.

let cluster: ProcessCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

const ACCOUNTS = ['acct-a', 'acct-b', 'acct-c', 'acct-x', 'acct-y', 'acct-z'].map((a, i) =>
  i < 3 ? a : `z-${a}`,
); // three per region (split at 'm')
const INITIAL = 100;
const TOTAL = INITIAL * ACCOUNTS.length;

test('bank transfers across regions keep the total through SIGKILLs of leader stores', {
  timeout: 120_000,
}, async () => {
  cluster = await ProcessCluster.start({ raftTickMs: 50, withCoordinator: true });
  const c = cluster;
  await c.waitForLeader(1);
  await c.waitForLeader(2);
  let conn: Awaited<ReturnType<typeof connectCluster>> | undefined;
  await c.waitFor(
    'the coordinator to route both regions',
    async () => {
      try {
        conn ??= await connectCluster({ coordinatorAddr: c.coordinatorAddr!, timeoutMs: 5000 });
        await conn.client.get(ACCOUNTS[0]!);
        await conn.client.get(ACCOUNTS[5]!);
        return true;
      } catch {
        return false;
      }
    },
    30_000,
  );
  const txns = new TxnClient({ raw: conn!.client, tso: () => conn!.coordinator.tso(), lockTtlMs: 1500 });
  await txns.transaction(async (t) => {
    for (const a of ACCOUNTS) t.put(a, String(INITIAL));
  });

  const counts = { committed: 0, conflicts: 0, unknown: 0, failed: 0, snapshots: 0 };
  const badSnapshots: string[] = [];
  let stop = false;
  const readAll = async () =>
    txns.transaction(async (t) => {
      const balances: number[] = [];
      for (const a of ACCOUNTS) balances.push(Number((await t.get(a))?.toString() ?? 'NaN'));
      return balances;
    });

  const transferer = async (seed: number) => {
    let x = seed;
    const next = () => {
      x = (x * 1103515245 + 12345) & 0x7fffffff;
      return x;
    };
    while (!stop) {
      const from = ACCOUNTS[next() % ACCOUNTS.length]!;
      const to = ACCOUNTS[next() % ACCOUNTS.length]!;
      if (from === to) continue;
      const amount = 1 + (next() % 10);
      try {
        await txns.transaction(async (t) => {
          const a = Number((await t.get(from))!.toString());
          const b = Number((await t.get(to))!.toString());
          if (a < amount) return;
          t.put(from, String(a - amount));
          t.put(to, String(b + amount));
        });
        counts.committed++;
      } catch (err) {
        if (!(err instanceof ClientError)) throw err;
        if (err.code === 'Conflict') counts.conflicts++;
        else if (err.code === 'Unknown') counts.unknown++;
        else counts.failed++;
      }
    }
  };
  const checker = async () => {
    while (!stop) {
      try {
        const balances = await readAll();
        counts.snapshots++;
        const sum = balances.reduce((s, v) => s + v, 0);
        if (sum !== TOTAL || balances.some((v) => v < 0)) badSnapshots.push(balances.join(','));
      } catch (err) {
        if (!(err instanceof ClientError)) throw err;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const nemesis = async () => {
    for (const region of [1, 2]) {
      await new Promise((r) => setTimeout(r, 1500));
      const leader = await c.leaderStore(region);
      if (leader === undefined) continue;
      await c.kill(leader, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 1000));
      await c.startStore(leader);
    }
    await new Promise((r) => setTimeout(r, 1500));
    stop = true;
  };
  await Promise.all([nemesis(), checker(), ...[1, 2, 3, 4].map(transferer)]);

  if (process.env.NOKV_VERBOSE) console.log(JSON.stringify(counts));
  expect(badSnapshots).toEqual([]);
  let final: number[] | undefined;
  await c.waitFor(
    'a final read',
    async () => {
      try {
        final = await readAll();
        return true;
      } catch {
        return false;
      }
    },
    30_000,
  );
  expect(final!.reduce((s, v) => s + v, 0)).toBe(TOTAL);
  expect(counts.committed).toBeGreaterThan(10);
  expect(counts.snapshots).toBeGreaterThan(5);
  conn!.close();
});
