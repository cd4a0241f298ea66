/**
 * A deliberately naive linearizability checker for tiny histories, used as the oracle in tests.
 * It shares no code with the real checker (no partitions, no event list, no memo, its own KV
 * semantics), so agreement between the two means something. Not exported from the package.
 */

import type { KvInput, KvOutput } from './kv-model.js';
import type { Operation } from './model.js';

/** Refuses histories where n! would be slow; the tests stay well below. */
const MAX_OPERATIONS = 8;

/**
 * Whether some order of a subset of `history` is legal for `apply` and respects real time: the
 * subset holds every completed operation (pending ones are optional), and A comes before B whenever
 * `A.return < B.call`. `apply` returns the next state, or `undefined` when the output is impossible.
 * Throws `RangeError` for more than 8 operations.
 */
export function bruteForceLinearizable<S, I, O>(
  history: readonly Operation<I, O>[],
  init: S,
  apply: (state: S, op: Operation<I, O>) => S | undefined,
): boolean {
  const n = history.length;
  if (n > MAX_OPERATIONS)
    throw new RangeError(`brute force is limited to ${MAX_OPERATIONS} operations, got ${n}`);
  const used = new Array<boolean>(n).fill(false);
  const isCompleted = (op: Operation<I, O>) => op.output !== undefined;
  const totalCompleted = history.filter(isCompleted).length;

  const search = (state: S, completedUsed: number): boolean => {
    if (completedUsed === totalCompleted) return true;
    for (let i = 0; i < n; i++) {
      if (used[i]) continue;
      const op = history[i]!;
      // `op` may go next only if no unused operation had to finish before it started.
      let ready = true;
      for (let j = 0; j < n && ready; j++) {
        if (!used[j] && j !== i && history[j]!.return < op.call) ready = false;
      }
      if (!ready) continue;
      const next = apply(state, op);
      if (next === undefined) continue;
      used[i] = true;
      const found = search(next, completedUsed + (isCompleted(op) ? 1 : 0));
      used[i] = false;
      if (found) return true;
    }
    return false;
  };
  return search(init, 0);
}

/** A whole KV store as an immutable map, for the brute-force oracle. */
export type KvStore = ReadonlyMap<string, string>;

/**
 * Reference KV semantics over a whole store (see `kvModel` for the rules). Returns the next store,
 * or `undefined` when the operation's output is impossible in `store`.
 */
export function referenceKvApply(store: KvStore, op: Operation<KvInput, KvOutput>): KvStore | undefined {
  const { input, output } = op;
  const current = store.get(input.key);
  const set = (value: string) => new Map(store).set(input.key, value);
  if (input.op === 'get') {
    if (output === undefined) return store;
    return output.value === current ? store : undefined;
  }
  if (input.op === 'put') return set(input.value as string);
  if (input.op === 'append') return set(`${current ?? ''}${input.value as string}`);
  const matches = input.expected === undefined ? !store.has(input.key) : current === input.expected;
  if (output !== undefined && output.ok !== matches) return undefined;
  return matches ? set(input.value as string) : store;
}

/** The brute-force verdict for a KV history. */
export function bruteForceKv(history: readonly Operation<KvInput, KvOutput>[]): boolean {
  return bruteForceLinearizable<KvStore, KvInput, KvOutput>(history, new Map(), referenceKvApply);
}
