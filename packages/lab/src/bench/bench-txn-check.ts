/**
 * Benchmark of the list-append checker on simulated histories of 10,000 transactions
 * (requirement: a few seconds): serial executions (valid), snapshot-isolation executions (write
 * skew: valid under SI, G2 under serializability), few keys (long lists), and a history with no
 * isolation at all, where nearly every transaction lands in one giant strongly connected component.
 *
 *     pnpm bench:txncheck
 */

import {
  checkListAppend,
  type ListAppendOptions,
  type ListAppendResult,
  type ListAppendTxn,
} from '../index.js';
import { simulateListAppend } from '../txn-checks/simulate.js';
import { Prng } from '../workload/prng.js';

const TRANSACTIONS = 10_000;
const RUNS = 5;

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function report(name: string, history: readonly ListAppendTxn[], options: ListAppendOptions): void {
  checkListAppend(history, options); // warm-up
  const samples: number[] = [];
  let result: ListAppendResult | undefined;
  for (let i = 0; i < RUNS; i++) {
    const start = performance.now();
    result = checkListAppend(history, options);
    samples.push(performance.now() - start);
  }
  const r = result!;
  const verdict = `${r.valid ? 'valid' : 'INVALID'} ${r.anomalyTypes.join(',') || '-'}`;
  const model = `${options.consistency === 'serializable' ? 'ser' : 'SI'}${options.realTime ? '+rt' : ''}`;
  console.log(
    `${name.padEnd(38)} ${model.padEnd(6)} ${verdict.padEnd(40)} scc ${String(r.stats.largestComponent).padStart(5)}  ` +
      `median ${median(samples).toFixed(0).padStart(5)} ms`,
  );
}

/** No isolation: each transaction reads a random prefix of each key's final order and appends. */
function noIsolation(seed: number, transactions: number, keys: number): ListAppendTxn[] {
  const rng = new Prng(seed);
  const plans = Array.from({ length: transactions }, () => {
    const ops: { f: 'r' | 'append'; key: number }[] = [];
    const n = rng.int(1, 4);
    for (let i = 0; i < n; i++) ops.push({ f: rng.chance(0.5) ? 'r' : 'append', key: rng.below(keys) });
    return ops;
  });
  const orders: number[][] = Array.from({ length: keys }, () => []);
  const nextValue = new Int32Array(keys);
  const appended = plans.map((ops) =>
    ops.map((op) => {
      if (op.f !== 'append') return -1;
      const v = nextValue[op.key]!++;
      orders[op.key]!.push(v);
      return v;
    }),
  );
  return plans.map((ops, id) => ({
    id,
    process: id % 16,
    status: 'ok' as const,
    start: id,
    end: id + 1,
    ops: ops.map((op, i) =>
      op.f === 'append'
        ? { f: 'append' as const, key: op.key, value: appended[id]![i]! }
        : {
            f: 'r' as const,
            key: op.key,
            value: orders[op.key]!.slice(0, rng.below(orders[op.key]!.length + 1)),
          },
    ),
  }));
}

const base = { seed: 1, transactions: TRANSACTIONS, processes: 16, finalRead: true } as const;
console.log(`${TRANSACTIONS} transactions, 1–4 ops each, 16 processes; median of ${RUNS} after warm-up\n`);

const serial = simulateListAppend({ ...base, keys: 100, mode: 'serial' });
report('serial, 100 keys', serial, { consistency: 'serializable' });
report('serial, 100 keys', serial, { consistency: 'serializable', realTime: true });
const si = simulateListAppend({ ...base, keys: 100, mode: 'snapshot-isolation' });
report('snapshot isolation, 100 keys', si, { consistency: 'snapshot-isolation' });
report('snapshot isolation, 100 keys', si, { consistency: 'snapshot-isolation', realTime: true });
report('snapshot isolation, 100 keys', si, { consistency: 'serializable', realTime: true });
const fewKeys = simulateListAppend({ ...base, keys: 5, mode: 'snapshot-isolation' });
report('snapshot isolation, 5 keys (long lists)', fewKeys, {
  consistency: 'snapshot-isolation',
  realTime: true,
});
const chaos = noIsolation(1, TRANSACTIONS, 100);
report('no isolation, 100 keys', chaos, { consistency: 'snapshot-isolation' });
report('no isolation, 100 keys', chaos, { consistency: 'serializable', realTime: true });
const chaos10 = noIsolation(2, TRANSACTIONS, 10);
report('no isolation, 10 keys', chaos10, { consistency: 'snapshot-isolation', realTime: true });
