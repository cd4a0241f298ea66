/**
 * Terse builders for hand-written KV histories in tests. Not exported from the package.
 * `at` is the [call, return] interval; an absent `result` of get means "key absent".
 */

import { type KvStore, referenceKvApply } from './brute-force.js';
import type { CheckResult } from './checker.js';
import type { KvInput, KvOutput } from './kv-model.js';
import type { Operation } from './model.js';

/** One operation of a KV history. */
export type KvOp = Operation<KvInput, KvOutput>;
type Interval = readonly [call: number, ret: number];

/** A completed get; `result` undefined: the key was absent. */
export const get = (client: number, key: string, at: Interval, result?: string): KvOp => ({
  clientId: client,
  input: { op: 'get', key },
  output: result === undefined ? {} : { value: result },
  call: at[0],
  return: at[1],
});

/** A completed put. */
export const put = (client: number, key: string, value: string, at: Interval): KvOp => ({
  clientId: client,
  input: { op: 'put', key, value },
  output: {},
  call: at[0],
  return: at[1],
});

/** A completed append. */
export const append = (client: number, key: string, value: string, at: Interval): KvOp => ({
  clientId: client,
  input: { op: 'append', key, value },
  output: {},
  call: at[0],
  return: at[1],
});

/** A completed cas; `expected` undefined: the key must be absent. */
export const cas = (
  client: number,
  key: string,
  expected: string | undefined,
  value: string,
  at: Interval,
  ok: boolean,
): KvOp => ({
  clientId: client,
  input: expected === undefined ? { op: 'cas', key, value } : { op: 'cas', key, value, expected },
  output: { ok },
  call: at[0],
  return: at[1],
});

/** An operation whose outcome was lost: called at `call`, never returned. */
export const pending = (client: number, input: KvInput, call: number): KvOp => ({
  clientId: client,
  input,
  call,
  return: Number.POSITIVE_INFINITY,
});

/**
 * Checks an 'ok' verdict's witness independently of the checker: every completed operation appears
 * exactly once, pending ones at most once, each partition's order respects real time, and replaying
 * it through the reference KV semantics accepts every output. Returns a problem or undefined.
 */
export function witnessProblem(history: readonly KvOp[], verdict: CheckResult): string | undefined {
  if (verdict.result !== 'ok') return `verdict is ${verdict.result}`;
  const seen = new Set<number>();
  for (const order of verdict.linearization) {
    let store: KvStore | undefined = new Map();
    for (let i = 0; i < order.length; i++) {
      const index = order[i]!;
      if (seen.has(index)) return `operation #${index} linearized twice`;
      seen.add(index);
      const op = history[index]!;
      for (let j = i + 1; j < order.length; j++) {
        if (history[order[j]!]!.return < op.call) return `#${order[j]} returned before #${index} was called`;
      }
      store = referenceKvApply(store, op);
      if (store === undefined) return `#${index} is illegal at position ${i}`;
    }
  }
  for (let i = 0; i < history.length; i++) {
    if (history[i]!.output !== undefined && !seen.has(i)) return `completed operation #${i} missing`;
  }
  return undefined;
}
