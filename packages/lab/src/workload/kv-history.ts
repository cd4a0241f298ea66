import type { KvInput, KvOp, KvOutput } from '../linearizability/kv-model.js';
import type { Operation } from '../linearizability/model.js';
import { Prng } from './prng.js';

/** One operation of a KV history. */
export type KvOperation = Operation<KvInput, KvOutput>;

/** Shape of a simulated KV workload. Times are integers, so equal timestamps do occur. */
export interface KvHistoryOptions {
  readonly seed: number;
  readonly operations: number;
  readonly keys: number;
  /** Concurrent clients, each with at most one operation outstanding. */
  readonly clients: number;
  /** Probability that a client loses an operation's outcome (it times out). Default 0.01. */
  readonly pendingRate?: number;
  /** Probability that a lost operation nonetheless took effect. Default 0.5. */
  readonly pendingEffectRate?: number;
  /** Relative weights of the operation kinds. Default get 4, put 3, append 2, cas 1. */
  readonly mix?: Readonly<Record<KvOp, number>>;
  /** Longest call-to-return duration. Default 20. */
  readonly maxDuration?: number;
  /** Longest pause between a client's operations. Default 5. */
  readonly maxThink?: number;
}

interface Planned {
  readonly clientId: number;
  readonly key: string;
  readonly op: KvOp;
  readonly call: number;
  readonly end: number;
  /** The moment the operation takes effect, within [call, end]. */
  readonly point: number;
  readonly pending: boolean;
  readonly effect: boolean;
}

/** A simulated execution: its history, and the order in which operations took effect. */
export interface KvExecution {
  readonly history: KvOperation[];
  /** Indices into `history` of the operations that took effect, in the order they did. */
  readonly effects: number[];
}

/**
 * Generates the history of a linearizable execution: operations get random intervals, each takes
 * effect at a random point inside its interval, and outputs come from applying them to a real map in
 * the order of those points. A lost operation has `return: Infinity` and no output, and took effect
 * or not at random. Written values are unique (`v<i>`, `c<i>`, `<i>;`), so a corrupted read is
 * easy to tell apart. Deterministic for a given seed.
 */
export function simulateKvHistory(options: KvHistoryOptions): KvOperation[] {
  return simulateKvExecution(options).history;
}

/** Like `simulateKvHistory`, but also returns the true linearization, for testing the generator. */
export function simulateKvExecution(options: KvHistoryOptions): KvExecution {
  const rng = new Prng(options.seed);
  const pendingRate = options.pendingRate ?? 0.01;
  const pendingEffectRate = options.pendingEffectRate ?? 0.5;
  const maxDuration = options.maxDuration ?? 20;
  const maxThink = options.maxThink ?? 5;
  const mix = options.mix ?? { get: 4, put: 3, append: 2, cas: 1 };
  const kinds = Object.keys(mix) as KvOp[];
  const totalWeight = kinds.reduce((sum, k) => sum + mix[k], 0);
  const pickKind = (): KvOp => {
    let r = rng.next() * totalWeight;
    for (const k of kinds) {
      r -= mix[k];
      if (r < 0) return k;
    }
    return kinds[kinds.length - 1]!;
  };

  const free = Array.from({ length: options.clients }, () => rng.int(0, maxThink));
  const planned: Planned[] = [];
  for (let i = 0; i < options.operations; i++) {
    // The client that frees up first issues the next operation, interleaving all clients.
    let clientId = 0;
    for (let c = 1; c < free.length; c++) if (free[c]! < free[clientId]!) clientId = c;
    const call = free[clientId]! + rng.int(0, maxThink);
    const end = call + rng.int(0, maxDuration);
    const pending = rng.chance(pendingRate);
    planned.push({
      clientId,
      key: `k${rng.int(0, options.keys - 1)}`,
      op: pickKind(),
      call,
      end,
      point: rng.int(call, end),
      pending,
      effect: !pending || rng.chance(pendingEffectRate),
    });
    // A client that timed out moves on at its deadline, leaving the lost operation in flight.
    free[clientId] = end;
  }

  const byPoint = planned.map((_, i) => i).sort((a, b) => planned[a]!.point - planned[b]!.point || a - b);
  const store = new Map<string, string>();
  const written = new Map<string, string[]>();
  const history = new Array<KvOperation>(planned.length);
  const effects: number[] = [];
  for (const i of byPoint) {
    const p = planned[i]!;
    const current = store.get(p.key);
    let input: KvInput;
    let output: KvOutput;
    switch (p.op) {
      case 'get':
        input = { op: 'get', key: p.key };
        output = current === undefined ? {} : { value: current };
        break;
      case 'put':
        input = { op: 'put', key: p.key, value: `v${i}` };
        output = {};
        break;
      case 'append':
        input = { op: 'append', key: p.key, value: `${i};` };
        output = {};
        break;
      case 'cas': {
        // Mostly the current value, so swaps do succeed; sometimes an older one or "absent".
        const older = written.get(p.key) ?? [];
        const roll = rng.next();
        const expected = roll < 0.6 ? current : roll < 0.8 && older.length > 0 ? rng.pick(older) : undefined;
        input =
          expected === undefined
            ? { op: 'cas', key: p.key, value: `c${i}` }
            : { op: 'cas', key: p.key, value: `c${i}`, expected };
        output = { ok: expected === current };
        break;
      }
    }
    if (p.effect) {
      effects.push(i);
      const next = applyKv(current, input);
      if (next !== current && next !== undefined) {
        store.set(p.key, next);
        const list = written.get(p.key);
        if (list === undefined) written.set(p.key, [next]);
        else list.push(next);
      }
    }
    history[i] = p.pending
      ? { clientId: p.clientId, input, call: p.call, return: Number.POSITIVE_INFINITY }
      : { clientId: p.clientId, input, output, call: p.call, return: p.end };
  }
  return { history, effects };
}

/** The effect of `input` on a key holding `current` (undefined: absent). */
function applyKv(current: string | undefined, input: KvInput): string | undefined {
  switch (input.op) {
    case 'get':
      return current;
    case 'put':
      return input.value;
    case 'append':
      return (current ?? '') + input.value;
    case 'cas':
      return current === input.expected ? input.value : current;
  }
}

/**
 * Returns a copy of `history` in which one completed get (chosen by `seed`) reports a different
 * value: another value seen on that key, absence, or a value never written. Undefined when the
 * history has no completed get.
 */
export function corruptOneRead(
  history: readonly KvOperation[],
  seed: number,
): { history: KvOperation[]; index: number } | undefined {
  const rng = new Prng(seed);
  const reads: number[] = [];
  for (let i = 0; i < history.length; i++) {
    const op = history[i]!;
    if (op.input.op === 'get' && op.output !== undefined) reads.push(i);
  }
  if (reads.length === 0) return undefined;
  const index = rng.pick(reads);
  const target = history[index]!;
  const actual = target.output?.value;
  const seen = new Set<string>();
  for (const op of history) {
    if (op.input.key !== target.input.key) continue;
    if (op.output?.value !== undefined) seen.add(op.output.value);
    if (op.input.value !== undefined && op.input.op !== 'append') seen.add(op.input.value);
  }
  if (actual !== undefined) seen.delete(actual);
  const choices: (string | undefined)[] = [...seen, 'never-written'];
  if (actual !== undefined) choices.push(undefined);
  const value = rng.pick(choices);
  const copy = history.slice();
  copy[index] = { ...target, output: value === undefined ? {} : { value } };
  return { history: copy, index };
}
