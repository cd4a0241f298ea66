/**
 * Generates list-append histories by running random transactions against an in-memory store, for
 * the checker's property tests and benchmark. `'serial'` runs one transaction at a time (so the
 * history is strictly serializable); `'snapshot-isolation'` interleaves transactions over
 * snapshots taken when they begin, with first-committer-wins (so the history is strong snapshot
 * isolation, and write skew happens).
 */

import { Prng } from '../workload/prng.js';
import type { ListAppendOp, ListAppendTxn, TxnStatus } from './types.js';

export interface SimulateOptions {
  readonly seed: number;
  readonly transactions: number;
  readonly keys: number;
  readonly processes: number;
  readonly mode: 'serial' | 'snapshot-isolation';
  /** Micro-operations per transaction: 1..maxOps (default 4). */
  readonly maxOps?: number;
  /** Probability an op is a read (default 0.5). */
  readonly readRatio?: number;
  /** Probability a transaction aborts on its own (default 0.05). */
  readonly failRate?: number;
  /** Probability the client never learns the outcome (default 0.02); half of those commit. */
  readonly infoRate?: number;
  /**
   * End with one more transaction, after all others, that reads every key (as Jepsen workloads
   * do), so every committed append is observed and its place in the version order known. Default
   * false.
   */
  readonly finalRead?: boolean;
}

interface Running {
  readonly id: number;
  readonly process: number;
  readonly start: number;
  readonly snapshot: number;
  readonly plan: number;
  readonly ops: ListAppendOp[];
  /** key → own appends so far */
  readonly own: Map<number, number[]>;
}

/** Runs the workload; transactions are returned in start order, ids 0, 1, 2, … in that order. */
export function simulateListAppend(options: SimulateOptions): ListAppendTxn[] {
  const rng = new Prng(options.seed);
  const maxOps = options.maxOps ?? 4;
  const readRatio = options.readRatio ?? 0.5;
  const failRate = options.failRate ?? 0.05;
  const infoRate = options.infoRate ?? 0.02;
  // Committed state: per key, its elements and the time each was committed (non-decreasing).
  const values: number[][] = Array.from({ length: options.keys }, () => []);
  const commitTimes: number[][] = Array.from({ length: options.keys }, () => []);
  const nextValue = new Int32Array(options.keys);
  const history: ListAppendTxn[] = [];
  const running: (Running | undefined)[] = new Array(options.processes).fill(undefined);
  let now = 0;
  let begun = 0;
  let finished = 0;

  const visible = (key: number, snapshot: number): number[] => {
    const times = commitTimes[key]!;
    let n = times.length;
    while (n > 0 && times[n - 1]! > snapshot) n--;
    return values[key]!.slice(0, n);
  };
  const begin = (process: number): Running => ({
    id: begun++,
    process,
    start: now,
    snapshot: now,
    plan: rng.int(1, maxOps),
    ops: [],
    own: new Map(),
  });
  const step = (txn: Running) => {
    const key = rng.below(options.keys);
    const own = txn.own.get(key) ?? [];
    if (rng.chance(readRatio)) {
      const value = [...visible(key, txn.snapshot), ...own];
      txn.ops.push({ f: 'r', key, value: value.length === 0 && rng.chance(0.5) ? null : value });
    } else {
      const value = nextValue[key]!++;
      txn.ops.push({ f: 'append', key, value });
      txn.own.set(key, [...own, value]);
    }
  };
  const finish = (txn: Running) => {
    let status: TxnStatus = 'ok';
    let apply = true;
    if (rng.chance(failRate)) {
      status = 'fail';
      apply = false;
    } else {
      for (const key of txn.own.keys()) {
        const times = commitTimes[key]!;
        if (times.length > 0 && times[times.length - 1]! > txn.snapshot) {
          status = 'fail'; // first committer wins
          apply = false;
          break;
        }
      }
      if (apply && rng.chance(infoRate)) {
        status = 'info';
        apply = rng.chance(0.5);
      }
    }
    if (apply) {
      for (const [key, own] of txn.own) {
        for (const v of own) {
          values[key]!.push(v);
          commitTimes[key]!.push(now);
        }
      }
    }
    const ops =
      status === 'info'
        ? txn.ops.map((op): ListAppendOp => (op.f === 'r' ? { ...op, value: null } : op))
        : txn.ops;
    history.push(
      status === 'info'
        ? { id: txn.id, process: txn.process, ops, status, start: txn.start }
        : { id: txn.id, process: txn.process, ops, status, start: txn.start, end: now },
    );
    finished++;
  };

  if (options.mode === 'serial') {
    while (begun < options.transactions) {
      now++;
      const txn = begin(rng.below(options.processes));
      while (txn.ops.length < txn.plan) step(txn);
      now++;
      finish(txn);
    }
  } else {
    while (finished < options.transactions) {
      now++;
      const p = rng.below(options.processes);
      const txn = running[p];
      if (txn === undefined) {
        if (begun < options.transactions) running[p] = begin(p);
      } else if (txn.ops.length < txn.plan) {
        step(txn);
      } else {
        finish(txn);
        running[p] = undefined;
      }
    }
  }
  history.sort((a, b) => a.start! - b.start!);
  if (options.finalRead === true) {
    now++;
    const ops: ListAppendOp[] = values.map((list, key) => ({ f: 'r', key, value: list.slice() }));
    history.push({ id: begun, process: 0, ops, status: 'ok', start: now, end: now + 1 });
  }
  return history;
}
