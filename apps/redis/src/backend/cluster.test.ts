import { Writable } from 'node:stream';
import { ClientError, connectCluster, TxnClient } from '@nokv/raftstore';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { serveGateway } from '../gateway.js';
import { startRedisServer } from '../server.js';
import { type GatewayTestCluster, startGatewayTestCluster } from '../testing/cluster.js';
import { defineCommandSuite } from '../testing/command-suite.js';
import { BackendError, type BackendTxn } from './backend.js';
import { type ClusterBackend, toBackendError } from './cluster.js';

// The cluster backend against real processes: a coordinator and three stores (regions split at
// 'm'): the gateway's whole command suite, then the backend's own tests. Each test uses its own
// keys, so they share one cluster (the suite flushes only the `redis/` keyspace).

const b = (s: string) => Buffer.from(s);
const str = (v: Buffer | undefined) => v?.toString();

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    if (err instanceof BackendError) return err.code;
    throw err;
  }
}

const incr = (key: string) => async (tx: BackendTxn) => {
  const n = Number(str(await tx.get(b(key))) ?? '0') + 1;
  tx.put(b(key), b(String(n)));
  return n;
};

let tc: GatewayTestCluster;
beforeAll(async () => {
  tc = await startGatewayTestCluster();
}, 90_000);
afterAll(async () => {
  await tc?.stop();
});

// The whole command suite, as the embedded backend runs it, over the cluster.
defineCommandSuite('cluster', async () => ({ backend: await tc.backend(), cleanup: async () => {} }));

describe('ClusterBackend on a real cluster', () => {
  test('a transaction across both regions commits whole: every snapshot sees all of it or none', async () => {
    for (const groupCommit of [true, false]) {
      const g = await tc.backend({ groupCommit });
      const tag = groupCommit ? 'g' : 'a';
      let stop = false;
      const seen: string[] = [];
      const reader = (async () => {
        while (!stop) {
          const [x, y] = await g.transact((tx) => tx.getMany([b(`atom-${tag}`), b(`zatom-${tag}`)]));
          seen.push(`${str(x)}/${str(y)}`);
        }
      })();
      for (let i = 1; i <= 20; i++) {
        await g.transact(async (tx) => {
          tx.put(b(`atom-${tag}`), b(String(i)));
          tx.put(b(`zatom-${tag}`), b(String(i)));
        });
      }
      stop = true;
      await reader;
      expect(seen.filter((s) => s.split('/')[0] !== s.split('/')[1])).toEqual([]);
      const rows = await g.transact((tx) => tx.scan(b(''), b(''), 1000));
      const mine = rows.filter((r) => r.key.toString().endsWith(`atom-${tag}`));
      expect(mine.map((r) => `${r.key}=${r.value}`)).toEqual([`atom-${tag}=20`, `zatom-${tag}=20`]);
    }
  });

  test('read-modify-write from two gateways, batched or alone, loses no increment', async () => {
    const gateways = [await tc.backend(), await tc.backend(), await tc.backend({ groupCommit: false })];
    const perWorker = 10;
    const workers = gateways.flatMap((g) =>
      [0, 1, 2, 3].map(async () => {
        for (let i = 0; i < perWorker; i++) await g.transact(incr('rmw-counter'));
      }),
    );
    await Promise.all(workers);
    const total = await gateways[0]!.transact((tx) => tx.get(b('rmw-counter')));
    expect(str(total)).toBe(String(gateways.length * 4 * perWorker));
  });

  test('many concurrent INCRs of one key in one gateway: one batch runs them in order, no conflict', async () => {
    const g = await tc.backend();
    const results = await Promise.all(Array.from({ length: 100 }, () => g.transact(incr('hot-counter'))));
    expect([...results].sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
    expect(str(await g.transact((tx) => tx.get(b('hot-counter'))))).toBe('100');
    const stats = g.stats();
    expect(stats.conflicts).toBe(0);
    expect(stats.reruns).toBeGreaterThan(0);
    expect(stats.batches).toBeLessThan(100);
  });

  test('batched transactions: later writes win in arrival order, a failing member changes nothing, reads see earlier members', async () => {
    const g = await tc.backend();
    // Called back to back: they share batches.
    const sets = Array.from({ length: 30 }, (_, i) =>
      g.transact(async (tx) => {
        tx.put(b('order-key'), b(String(i)));
        tx.put(b(`zorder-${i}`), b('x'));
      }),
    );
    const failing = g
      .transact(async (tx) => {
        tx.put(b('fail-key'), b('never'));
        throw new Error('changed my mind');
      })
      .catch((err: unknown) => (err as Error).message);
    const scan = g.transact((tx) => tx.scan(b('zorder-'), b('zorder.'), 100));
    const mget = g.transact((tx) => tx.getMany([b('order-key'), b('zorder-29'), b('missing-key')]));
    await Promise.all(sets);
    expect(await failing).toBe('changed my mind');
    expect((await scan).length).toBe(30);
    expect((await mget).map(str)).toEqual(['29', 'x', undefined]);
    expect(str(await g.transact((tx) => tx.get(b('order-key'))))).toBe('29');
    expect(await g.transact((tx) => tx.get(b('fail-key')))).toBeUndefined();
    // A delete then a scan in one transaction: its own writes over the snapshot.
    const rows = await g.transact(async (tx) => {
      tx.delete(b('zorder-0'));
      tx.put(b('zorder-9a'), b('y'));
      return tx.scan(b('zorder-'), b('zorder-2'), 5);
    });
    expect(rows.map((r) => r.key.toString())).toEqual([
      'zorder-1',
      'zorder-10',
      'zorder-11',
      'zorder-12',
      'zorder-13',
    ]);
  });

  test('write-only batches split by region; a member the store refuses fails alone; large batches are cut', async () => {
    const g = await tc.backend({ groupCommit: { maxBytes: 4096 } });
    const keys = Array.from({ length: 40 }, (_, i) => `${i % 2 ? 'z' : 'a'}split-${i}`);
    const value = b('v'.repeat(500)); // 40 × ~510 bytes: more than one batch of 4096 bytes
    const writes = keys.map((k) => g.transact(async (tx) => tx.put(b(k), value)));
    const bad = codeOf(g.transact(async (tx) => tx.put(b(''), b('empty keys are refused'))));
    await Promise.all(writes);
    expect(await bad).toBe('Internal');
    const got = await g.transact((tx) => tx.getMany(keys.map(b)));
    expect(got.every((v) => v?.equals(value))).toBe(true);
    expect(g.stats().batches).toBeGreaterThan(4);
  });

  test('abortOnConflict: a guarded key written meanwhile by another gateway aborts with Conflict and writes nothing', async () => {
    const g1 = await tc.backend();
    const g2 = await tc.backend();
    await g1.transact(async (tx) => tx.put(b('watched'), b('v0')));
    const code = await codeOf(
      g1.transact(
        async (tx) => {
          expect(str(await tx.get(b('watched')))).toBe('v0');
          tx.guard(b('watched'));
          tx.put(b('zwatch-result'), b('from-exec'));
          await g2.transact(async (t2) => t2.put(b('watched'), b('v1')));
        },
        { abortOnConflict: true },
      ),
    );
    expect(code).toBe('Conflict');
    expect(await g1.transact((tx) => tx.get(b('zwatch-result')))).toBeUndefined();
    // Unwatched by others: the guard commits and leaves the value alone.
    await g1.transact(
      async (tx) => {
        await tx.get(b('watched'));
        tx.guard(b('watched'));
        tx.put(b('zwatch-result'), b('ok'));
      },
      { abortOnConflict: true },
    );
    expect((await g1.transact((tx) => tx.getMany([b('watched'), b('zwatch-result')]))).map(str)).toEqual([
      'v1',
      'ok',
    ]);
    // Without abortOnConflict the function runs again, from a fresh snapshot.
    for (const g of [g1, await tc.backend({ groupCommit: false })]) {
      let runs = 0;
      const seen = await g.transact(async (tx) => {
        runs++;
        const v = str(await tx.get(b('watched')));
        tx.guard(b('watched'));
        if (runs === 1) await g2.transact(async (t2) => t2.put(b('watched'), b(`changed-${runs}`)));
        return v;
      });
      expect(runs).toBe(2);
      expect(seen).toBe('changed-1');
    }
  });

  test('reads honour locks: a live lock is passed (old value), a committed primary is rolled forward, a dead lock rolled back', async () => {
    const g = await tc.backend();
    const conn = await connectCluster({ coordinatorAddr: tc.coordinatorAddr, timeoutMs: 5000 });
    try {
      const other = new TxnClient({ raw: conn.client, tso: () => conn.coordinator.tso(), lockTtlMs: 500 });
      await g.transact(async (tx) => {
        tx.put(b('locked-a'), b('old'));
        tx.put(b('zlocked'), b('old'));
      });
      const t = await other.begin();
      t.put('locked-a', 'new');
      t.put('zlocked', 'new');
      await t.prewrite();
      for (const groupCommit of [true, false]) {
        const reader = groupCommit ? g : await tc.backend({ groupCommit: false });
        expect((await reader.transact((tx) => tx.getMany([b('locked-a'), b('zlocked')]))).map(str)).toEqual([
          'old',
          'old',
        ]);
        expect(str(await reader.transact((tx) => tx.get(b('zlocked'))))).toBe('old');
        const rows = await reader.transact(async (tx) => [
          ...(await tx.scan(b('locked-a'), b('locked-b'), 10)),
          ...(await tx.scan(b('zlocked'), b('zlocked~'), 10)),
        ]);
        expect(rows.map((r) => `${r.key}=${r.value}`)).toEqual(['locked-a=old', 'zlocked=old']);
      }
      await t.commitPrimary(); // committed; the lock on 'zlocked' is left behind
      expect((await g.transact((tx) => tx.getMany([b('locked-a'), b('zlocked')]))).map(str)).toEqual([
        'new',
        'new',
      ]);
      // A transaction whose client died after prewrite: its lock expires and is rolled back.
      const dead = await other.begin();
      dead.put('zdead', 'never');
      await dead.prewrite();
      await new Promise((r) => setTimeout(r, 600));
      await g.transact(async (tx) => tx.put(b('zdead'), b('mine')));
      expect(str(await g.transact((tx) => tx.get(b('zdead'))))).toBe('mine');
    } finally {
      conn.close();
    }
  });

  test('two gateways, many ioredis clients INCRing one key: every reply distinct, no increment lost', async () => {
    const servers = [
      await startRedisServer({ backend: await tc.backend() }),
      await startRedisServer({ backend: await tc.backend() }),
    ];
    const clients = servers.flatMap((s) =>
      [0, 1, 2, 3].map(() => new Redis({ host: '127.0.0.1', port: s.port, lazyConnect: true })),
    );
    try {
      const perClient = 16;
      const replies = (
        await Promise.all(
          clients.map(async (c, i) => {
            const out: number[] = [];
            for (let n = 0; n < perClient; n++) {
              // Some pipelined, some one by one.
              if (i % 2 === 0) out.push(await c.incr('shared-counter'));
              else {
                const res = await c.pipeline().incr('shared-counter').incrby('shared-counter', 1).exec();
                for (const [err, v] of res ?? []) {
                  expect(err).toBeNull();
                  out.push(v as number);
                }
                n++;
              }
            }
            return out;
          }),
        )
      ).flat();
      const total = clients.length * perClient;
      expect(replies.length).toBe(total);
      // An increment is lost exactly when two replies are equal.
      expect([...replies].sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
      expect(await clients[0]!.get('shared-counter')).toBe(String(total));
      expect(await clients[clients.length - 1]!.get('shared-counter')).toBe(String(total));
    } finally {
      for (const c of clients) c.disconnect();
      for (const s of servers) await s.close();
    }
  });

  test('the gateway process in cluster mode: RESP over the cluster, batching counters on /stats and /metrics', async () => {
    const gw = await serveGateway({
      coordinator: tc.coordinatorAddr,
      addr: '127.0.0.1:0',
      httpAddr: '127.0.0.1:0',
      logDestination: new Writable({ write: (_c, _e, cb) => cb() }),
    });
    const client = new Redis({ host: '127.0.0.1', port: gw.port, lazyConnect: true });
    try {
      expect(gw.mode).toBe('cluster');
      expect(await client.set('gw-key', 'v')).toBe('OK');
      expect(await client.get('gw-key')).toBe('v');
      const stats = (await (await fetch(`http://${gw.httpAddr}/stats`)).json()) as {
        mode: string;
        cluster: { transactions: number };
      };
      expect(stats.mode).toBe('cluster');
      expect(stats.cluster.transactions).toBeGreaterThanOrEqual(2);
      const metrics = await (await fetch(`http://${gw.httpAddr}/metrics`)).text();
      expect(metrics).toMatch(/nokv_redis_cluster_batches \d+/);
      expect(metrics).toContain('nokv_redis_commands_total');
    } finally {
      client.disconnect();
      await gw.stop();
    }
  });

  test('without the coordinator: Unavailable (the gateway answers TRYAGAIN); it recovers once it is back', async () => {
    const g: ClusterBackend = await tc.backend({ timeoutMs: 3000 });
    await g.transact(async (tx) => tx.put(b('before-outage'), b('1')));
    await tc.cluster.killCoordinator('SIGKILL');
    expect(await codeOf(g.transact((tx) => tx.get(b('before-outage'))))).toBe('Unavailable');
    expect(await codeOf(g.transact(async (tx) => tx.put(b('during-outage'), b('1'))))).toBe('Unavailable');
    await tc.cluster.startCoordinator();
    await tc.cluster.waitFor(
      'transactions to work again',
      async () => (await codeOf(g.transact(async (tx) => tx.put(b('after-outage'), b('1'))))) === 'ok',
      30_000,
    );
    expect(str(await g.transact((tx) => tx.get(b('before-outage'))))).toBe('1');
  });
});

describe('toBackendError', () => {
  test('maps client failures to what the command layer answers', () => {
    const code = (e: unknown) => toBackendError(e).code;
    expect(code(new ClientError('Conflict', 'x'))).toBe('Conflict');
    expect(code(new ClientError('TsoUnavailable', 'x'))).toBe('Unavailable');
    expect(code(new ClientError('RouteUnavailable', 'x'))).toBe('Unavailable');
    expect(code(new ClientError('NoRoute', 'x'))).toBe('Unavailable');
    expect(code(new ClientError('Timeout', 'x'))).toBe('Timeout');
    expect(code(new ClientError('Unknown', 'x'))).toBe('Timeout');
    expect(toBackendError(new ClientError('Unknown', 'x')).message).toMatch(/outcome unknown/);
    // Aborted = nothing committed: by a deadline → Timeout, otherwise a race to run again.
    expect(code(new ClientError('Aborted', 'x', { cause: new ClientError('Timeout', 'y') }))).toBe('Timeout');
    expect(code(new ClientError('Aborted', 'commit timestamp expired'))).toBe('Conflict');
    expect(code(new ClientError('InvalidArgument', 'x'))).toBe('Internal');
    expect(code(new Error('boom'))).toBe('Internal');
    const same = new BackendError('Timeout', 'x');
    expect(toBackendError(same)).toBe(same);
  });
});
