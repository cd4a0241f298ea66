import { ClientError } from '@nokv/raftstore';
import { afterEach, describe, expect, test } from 'vitest';
import { ProcessCluster } from './testing/process-cluster.js';

// Three real `nokv serve` processes on loopback. The leader's process is killed with SIGKILL (no
// shutdown code runs); nothing acknowledged may be lost, and the killed store comes back from its
// workdir alone.

let cluster: ProcessCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

describe('nokv serve processes', () => {
  test('SIGKILL of the leader loses no acknowledged write; the store restarts from its workdir and catches up', {
    timeout: 120_000,
  }, async () => {
    cluster = await ProcessCluster.start({ raftTickMs: 50 });
    const c = cluster;
    const leader = await c.waitForLeader(1);
    const client = c.client({ timeoutMs: 15_000, rpcTimeoutMs: 3000 });
    const acked = new Map<string, string>();
    const unknown = new Set<string>();
    // Writers run while the leader is killed mid-stream.
    let stop = false;
    const writer = async (w: number) => {
      for (let i = 0; !stop; i++) {
        const key = `k${w}-${i}`; // region 1 ('k' < 'm')
        try {
          await client.put(key, `v${i}`);
          acked.set(key, `v${i}`);
        } catch (err) {
          if (!(err instanceof ClientError)) throw err;
          unknown.add(key);
        }
      }
    };
    const writers = [0, 1, 2, 3].map(writer);
    await c.waitFor('some acknowledged writes', async () => acked.size > 50, 20_000);
    await c.kill(leader, 'SIGKILL');
    const next = await c.waitForLeader(1, 20_000, leader);
    expect(next).not.toBe(leader);
    const ackedBefore = acked.size;
    await c.waitFor(
      'writes to continue under the new leader',
      async () => acked.size > ackedBefore + 50,
      20_000,
    );
    stop = true;
    await Promise.all(writers);
    for (const [k, v] of acked) expect((await client.get(k))?.toString(), k).toBe(v);

    // The killed store restarts from its workdir and applies what it missed.
    await c.startStore(leader);
    const target = Math.max(...(await Promise.all([next].map(async (id) => applied(c, id, 1)))));
    await c.waitFor(
      'restarted store to catch up',
      async () => (await applied(c, leader, 1)) >= target,
      30_000,
    );
    // Kill it again and make it the only path for reads: every acknowledged write is there.
    for (const id of c.storeIds()) if (id !== leader) await c.kill(id, 'SIGKILL');
    for (const id of c.storeIds()) if (id !== leader) await c.startStore(id);
    await c.waitForLeader(1, 20_000);
    const fresh = c.client({ timeoutMs: 15_000 });
    for (const [k, v] of acked) expect((await fresh.get(k))?.toString(), k).toBe(v);
  });

  test('a clean SIGTERM stop of every store keeps everything; the topology file is not replayed', {
    timeout: 90_000,
  }, async () => {
    cluster = await ProcessCluster.start({ raftTickMs: 50 });
    const c = cluster;
    await c.waitForLeader(1);
    await c.waitForLeader(2);
    const client = c.client({ timeoutMs: 15_000 });
    for (let i = 0; i < 30; i++) await client.put(`t${i}`, `${i}`);
    for (const id of c.storeIds()) await c.kill(id, 'SIGTERM');
    for (const id of c.storeIds()) await c.startStore(id);
    await c.waitForLeader(2, 20_000);
    const again = c.client({ timeoutMs: 15_000 });
    for (let i = 0; i < 30; i++) expect((await again.get(`t${i}`))?.toString()).toBe(`${i}`);
  });
});

async function applied(c: ProcessCluster, storeId: number, regionId: number): Promise<number> {
  const s = await c.stats(storeId);
  const r = s.regions.find((x) => x.regionId === String(regionId));
  return r ? Number(r.appliedIndex) : 0;
}
