import { ClientError, TxnClient } from '@nokv/raftstore';
import { sleep, TestCluster } from '@nokv/raftstore/testing';
import { afterEach, expect, test } from 'vitest';
import { checkListAppend } from '../txn-checks/list-append.js';
import type { ListAppendOp, ListAppendTxn } from '../txn-checks/types.js';
import { Prng } from '../workload/prng.js';

// Jepsen-style list-append against a real three-store cluster (engines, gRPC, transport in this
// process): concurrent snapshot-isolation transactions append unique values to lists on keys in
// both regions and read them back, while a nemesis stops and restarts the leader's store of a
// region. The recorded history must show no anomaly snapshot isolation forbids (G0, G1a, G1b,
// G1c, G-single, lost update). A final transaction reads every key so no append goes unobserved.

let cluster: TestCluster | undefined;
afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

const KEYS = ['a1', 'b2', 'c3', 'n4', 'p5', 'x6']; // split at 'm': three keys per region

/** A timestamp oracle shared by every client of the test (the coordinator's role). */
function sharedTso(): () => Promise<bigint> {
  let last = 0n;
  return async () => {
    const now = BigInt(Date.now()) << 18n;
    last = now > last ? now : last + 1n;
    return last;
  };
}

const decode = (v: Buffer | undefined): number[] =>
  v === undefined || v.length === 0 ? [] : v.toString().split(',').map(Number);

test('list-append transactions across regions with leader kills show no snapshot-isolation anomaly', {
  timeout: 90_000,
}, async () => {
  cluster = await TestCluster.start({ commandTimeoutMs: 1500 });
  const c = cluster;
  await c.waitForLeader(1n);
  await c.waitForLeader(2n);
  const tso = sharedTso();
  const history: ListAppendTxn[] = [];
  const t0 = performance.now();
  const now = () => performance.now() - t0;
  let nextValue = 1;
  let stop = false;
  let kills = 0;

  const worker = async (process: number) => {
    const rng = new Prng(500 + process);
    const client = new TxnClient({
      raw: c.client({ timeoutMs: 4000, rpcTimeoutMs: 1500 }),
      tso,
      lockTtlMs: 1000,
    });
    for (let n = 0; !stop; n++) {
      const plan: { f: 'append' | 'r'; key: string; value?: number }[] = [];
      for (let i = rng.int(1, 4); i > 0; i--) {
        const key = rng.pick(KEYS);
        plan.push(rng.chance(0.5) ? { f: 'append', key, value: nextValue++ } : { f: 'r', key });
      }
      const ops: ListAppendOp[] = [];
      const start = now();
      let status: ListAppendTxn['status'] = 'ok';
      try {
        await client.transaction(async (txn) => {
          ops.length = 0;
          for (const op of plan) {
            const current = decode(await txn.get(op.key));
            if (op.f === 'r') {
              ops.push({ f: 'r', key: op.key, value: current });
            } else {
              txn.put(op.key, [...current, op.value!].join(','));
              ops.push({ f: 'append', key: op.key, value: op.value! });
            }
          }
        });
      } catch (err) {
        if (!(err instanceof ClientError)) throw err;
        // Conflict/Aborted: nothing committed. Unknown (or a timeout at commit): maybe committed.
        // Ops recorded so far are what the transaction did before it failed; a failed one's
        // appends must never be observed (G1a), an 'info' one's may be.
        status = err.code === 'Unknown' || err.code === 'Timeout' ? 'info' : 'fail';
      }
      history.push({ id: `${process}-${n}`, process, ops: [...ops], status, start, end: now() });
      if (status === 'info') return; // a process with a transaction in limbo stops
    }
  };

  const nemesis = async () => {
    const rng = new Prng(11);
    for (let i = 0; i < 3; i++) {
      await sleep(1200);
      const leader = c.leader(rng.chance(0.5) ? 1n : 2n);
      if (!leader) continue;
      await c.stopStore(leader.storeId);
      kills++;
      await sleep(400);
      await c.startStore(leader.storeId);
    }
    await sleep(800);
    stop = true;
  };

  await Promise.all([nemesis(), ...[0, 1, 2, 3, 4].map(worker)]);

  // A final read of every key makes every committed append observable.
  const reader = new TxnClient({ raw: c.client({ timeoutMs: 10_000 }), tso });
  const finalOps: ListAppendOp[] = [];
  await reader.transaction(async (txn) => {
    for (const key of KEYS) finalOps.push({ f: 'r', key, value: decode(await txn.get(key)) });
  });
  history.push({ id: 'final', process: 99, ops: finalOps, status: 'ok', start: now(), end: now() });

  const committed = history.filter((t) => t.status === 'ok').length;
  expect(kills).toBeGreaterThanOrEqual(2);
  expect(committed).toBeGreaterThan(40);
  const verdict = checkListAppend(history, { consistency: 'snapshot-isolation' });
  if (!verdict.valid) {
    throw new Error(verdict.anomalies.map((a) => `${a.type}: ${a.explanation}`).join('\n\n'));
  }
});
