import { ClientError } from '@nokv/raftstore';
import { sleep, TestCluster } from '@nokv/raftstore/testing';
import { afterEach, expect, test } from 'vitest';
import { checkHistory, kvModel } from '../index.js';
import type { KvInput, KvOutput } from '../linearizability/kv-model.js';
import type { Operation } from '../linearizability/model.js';
import { Prng } from '../workload/prng.js';

// Clients hammer a real three-store cluster (engines, gRPC, transport in this process) while a
// nemesis repeatedly stops the leader's store of one region and restarts it, or cuts it off from
// the others for a while. (Acknowledging writes before they commit makes this test fail.) Every operation's
// call and return times are recorded; the history must be linearizable.

let cluster: TestCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

const KEYS = ['a1', 'a2', 'b1', 'n1', 'n2', 'x1']; // both regions (split at 'm')

test('a multi-client history with leader kills and partitions is linearizable', {
  timeout: 60_000,
}, async () => {
  cluster = await TestCluster.start({ commandTimeoutMs: 1500 });
  const c = cluster;
  await c.waitForLeader(1n);
  await c.waitForLeader(2n);
  const history: Operation<KvInput, KvOutput>[] = [];
  const t0 = performance.now();
  const now = () => performance.now() - t0;
  const runForMs = 7000;
  let stop = false;
  let kills = 0;
  let partitions = 0;
  let nextProcess = 100;

  const clientLoop = async (id: number) => {
    const rng = new Prng(1000 + id);
    const client = c.client({ timeoutMs: 3000, rpcTimeoutMs: 1500 });
    let process = id;
    let seq = 0;
    while (!stop) {
      const key = rng.pick(KEYS);
      const call = now();
      if (rng.chance(0.5)) {
        const value = `${id}.${seq++}`;
        try {
          await client.put(key, value);
          history.push({
            clientId: process,
            input: { op: 'put', key, value },
            output: {},
            call,
            return: now(),
          });
        } catch (err) {
          if (!(err instanceof ClientError)) throw err;
          // Unknown outcome: it may take effect at any later time; this process is done.
          history.push({
            clientId: process,
            input: { op: 'put', key, value },
            call,
            return: Number.POSITIVE_INFINITY,
          });
          process = nextProcess++;
        }
      } else {
        try {
          const v = await client.get(key);
          history.push({
            clientId: process,
            input: { op: 'get', key },
            output: v === undefined ? {} : { value: v.toString() },
            call,
            return: now(),
          });
        } catch (err) {
          if (!(err instanceof ClientError)) throw err; // a failed read changes nothing: leave it out
        }
      }
    }
  };

  const nemesis = async () => {
    const rng = new Prng(7);
    while (now() < runForMs - 1500) {
      await sleep(900);
      const region = rng.chance(0.5) ? 1n : 2n;
      const leader = c.leader(region);
      if (!leader) continue;
      if (rng.chance(0.7)) {
        await c.stopStore(leader.storeId);
        kills++;
        await sleep(500);
        await c.startStore(leader.storeId);
      } else {
        // Cut the leader off: it keeps believing it leads until CheckQuorum demotes it.
        c.isolate([leader.storeId]);
        partitions++;
        await sleep(700);
        c.heal();
      }
    }
  };

  const clients = Array.from({ length: 6 }, (_, i) => clientLoop(i));
  await Promise.all([
    nemesis().then(async () => {
      await sleep(Math.max(0, runForMs - now()));
      stop = true;
    }),
    ...clients,
  ]);

  const completed = history.filter((op) => op.output !== undefined).length;
  expect(kills + partitions).toBeGreaterThanOrEqual(4);
  expect(kills).toBeGreaterThanOrEqual(1);
  expect(completed).toBeGreaterThan(200);
  const verdict = checkHistory(kvModel, history, { timeoutMs: 20_000 });
  if (verdict.result === 'illegal') throw new Error(verdict.explanation);
  expect(verdict.result).toBe('ok');
});
