/**
 * Benchmark of the linearizability checker on a simulated KV history: 10,000 operations over
 * 1,000 keys from 16 clients (each with at most one operation outstanding), a get/put/append/cas
 * mix and a few lost (pending) operations. Requirement: under 1 s. Also times illegal variants and,
 * for information, higher-contention variants with fewer keys.
 *
 *     pnpm bench:lincheck
 */

import { type CheckResult, checkHistory, kvModel } from '../index.js';
import { corruptOneRead, type KvOperation, simulateKvHistory } from '../workload/kv-history.js';

const OPERATIONS = 10_000;
const KEYS = 1_000;
const CLIENTS = 16;
const RUNS = 7;
const LIMIT_MS = 1_000;

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function time(
  history: readonly KvOperation[],
  runs: number,
  timeoutMs = 30_000,
): { ms: number; verdict: CheckResult } {
  const samples: number[] = [];
  let verdict: CheckResult | undefined;
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    verdict = checkHistory(kvModel, history, { timeoutMs });
    samples.push(performance.now() - start);
  }
  return { ms: median(samples), verdict: verdict! };
}

function report(
  name: string,
  history: readonly KvOperation[],
  runs = RUNS,
  timeoutMs = 30_000,
): { ms: number; verdict: CheckResult } {
  const r = time(history, runs, timeoutMs);
  const rate = Math.round(history.length / (r.ms / 1000)).toLocaleString('en-US');
  const speed = r.verdict.result === 'unknown' ? `gave up (budget ${timeoutMs} ms)` : `${rate} ops/s`;
  const label = runs > 1 ? 'median' : 'once  ';
  console.log(
    `${name.padEnd(44)} ${r.verdict.result.padEnd(8)} ${label} ${r.ms.toFixed(1).padStart(7)} ms  ${speed}`,
  );
  return r;
}

const history = simulateKvHistory({
  seed: 1,
  operations: OPERATIONS,
  keys: KEYS,
  clients: CLIENTS,
  pendingRate: 0.002,
});
const pending = history.filter((op) => op.return === Number.POSITIVE_INFINITY).length;
console.log(
  `history: ${history.length} ops, ${KEYS} keys, ${CLIENTS} clients, ${pending} pending; ${RUNS} runs each after warm-up`,
);

time(history, 3); // warm-up: let the JIT settle before measuring
const main = report('linearizable history', history);

const readIndex = history.findLastIndex((op) => op.input.op === 'get' && op.output !== undefined);
const neverWritten = history.slice();
neverWritten[readIndex] = { ...history[readIndex]!, output: { value: 'never-written' } };
report('illegal: one read of a value never written', neverWritten);

const corrupted = corruptOneRead(history, 2);
if (corrupted !== undefined) report('one read corrupted (other value of the key)', corrupted.history);

// Cost grows exponentially with the concurrency within one partition (one key), so show where the
// checker stops being cheap. These rows are information, not requirements.
for (const [keys, clients] of [
  [10, 16],
  [2, 16],
  [1, 8],
  [1, 16],
] as const) {
  const contended = simulateKvHistory({ seed: 3, operations: OPERATIONS, keys, clients, pendingRate: 0.002 });
  report(`info: ${keys} key(s), ${clients} clients (5 s budget)`, contended, 1, 5_000);
}

const ok = main.verdict.result === 'ok' && main.ms < LIMIT_MS;
console.log(ok ? `PASS: under ${LIMIT_MS} ms` : `FAIL: expected 'ok' under ${LIMIT_MS} ms`);
if (!ok) process.exitCode = 1;
