import { Bitset } from './bitset.js';
import { EntryList, HEAD } from './entries.js';
import { Memo } from './memo.js';
import type { Model, Operation } from './model.js';

/** A shared time budget; `steps` counts search steps across partitions to pace the clock checks. */
export interface Deadline {
  /** `performance.now()` value after which the search gives up. */
  readonly at: number;
  steps: number;
  /** Memo entries (explored configurations) one partition's search may record. */
  readonly maxConfigurations: number;
}

/** Clock reads are far costlier than a search step, so look at the clock every 1024 steps only. */
const CLOCK_MASK = 1023;

/** Outcome of searching one partition; operation ids are local (positions in the partition). */
export type SearchOutcome<S> =
  | { readonly kind: 'ok'; readonly order: number[] }
  | {
      readonly kind: 'illegal';
      /** The longest linearizable prefix the search found. */
      readonly longest: number[];
      /** The operation whose return event stopped the search after `longest`. */
      readonly blocked: number;
      /** Operations that could have come next after `longest` (includes `blocked`). */
      readonly candidates: number[];
      /** The model state after `longest`. */
      readonly state: S;
    }
  | { readonly kind: 'timeout' }
  | { readonly kind: 'budget' };

/**
 * Wing & Gong's search with Lowe's memoisation over one partition.
 *
 * Walk the event list from the front. At a call event, try to linearize that operation now: step
 * the model; if the step is legal and the resulting (linearized set, state) configuration is new,
 * push the operation, lift its events out of the list and restart from the front. At a return
 * event, the operation returning there should already have been linearized (everything left is
 * called before that moment, nothing after it may precede it), so the last choice was wrong: pop
 * it, put its events back, and try the next call event after it. An empty stack at a return event
 * means no choice works: the partition is not linearizable.
 *
 * Read-only operations (see `Model.readOnly`) are not branched on. In a fresh configuration, a
 * read-only operation that may come next and is legal is linearized at once: any linearization
 * that places it later can move it here, since it changes no state. So if that choice fails, the
 * configuration fails, and the search backtracks past it without trying alternatives. Without this,
 * every subset of concurrent reads is a distinct configuration and contended keys blow up.
 *
 * The search succeeds as soon as every completed operation is linearized. Pending operations
 * (unknown output) are then simply dropped: they may never have taken effect. Their return events
 * sit after all others, so the search never backtracks because of one. Pending read-only
 * operations are dropped up front: they can neither be required nor change anything.
 */
export function searchPartition<S, I, O>(
  model: Model<S, I, O>,
  partitionOps: readonly Operation<I, O>[],
  deadline: Deadline,
): SearchOutcome<S> {
  const isReadOnly = (op: Operation<I, O>) => model.readOnly?.(op.input, op.output) === true;
  // The search works on local ids (positions in `local`), which map back to `partitionOps`.
  const local: number[] = [];
  for (let i = 0; i < partitionOps.length; i++) {
    const op = partitionOps[i]!;
    if (op.output !== undefined || !isReadOnly(op)) local.push(i);
  }
  const n = local.length;
  const inputs = new Array<I>(n);
  const outputs = new Array<O | undefined>(n);
  const completed = new Uint8Array(n);
  const readOnly = new Uint8Array(n);
  const calls = new Array<number>(n);
  const returns = new Array<number>(n);
  let remaining = 0;
  for (let i = 0; i < n; i++) {
    const op = partitionOps[local[i]!]!;
    inputs[i] = op.input;
    outputs[i] = op.output;
    calls[i] = op.call;
    returns[i] = op.return;
    readOnly[i] = isReadOnly(op) ? 1 : 0;
    if (op.output !== undefined) {
      completed[i] = 1;
      remaining++;
    }
  }
  const toPartition = (ids: number[]) => ids.map((id) => local[id]!);
  if (remaining === 0) return { kind: 'ok', order: [] };

  const list = new EntryList(calls, returns);
  const { next, isCall } = list;
  const linearized = new Bitset(n);
  const memo = new Memo();
  // Beyond this many configurations the memo would exhaust the heap; give up with 'budget'.
  const memoBudget = deadline.maxConfigurations;
  let overBudget = false;
  const stackOps: number[] = [];
  const stackStates: S[] = [];
  const stackForced = new Uint8Array(n);
  let state = model.init();
  let bestDepth = -1;
  let longest: number[] = [];
  let blocked = -1;
  let candidates: number[] = [];
  let stateAfterLongest = state;

  /** Linearizes `op`, entering the configuration it leads to (state `nextState`), if that is new. */
  const tryLift = (op: number, nextState: S, forced: boolean): boolean => {
    linearized.set(op);
    if (!memo.addIfAbsent(linearized, model.stateKey(nextState))) {
      linearized.clear(op);
      return false;
    }
    if (memo.size > memoBudget) overBudget = true;
    stackForced[stackOps.length] = forced ? 1 : 0;
    stackOps.push(op);
    stackStates.push(state);
    state = nextState;
    list.lift(op);
    if (completed[op] === 1) remaining--;
    return true;
  };

  let fresh = true;
  let node = HEAD;
  for (;;) {
    if ((++deadline.steps & CLOCK_MASK) === 0 && performance.now() > deadline.at) return { kind: 'timeout' };
    if (overBudget) return { kind: 'budget' };

    let refuted = false;
    if (fresh) {
      fresh = false;
      // Greedy pass over the operations that may come next (the calls before the first return).
      for (let c = next[HEAD]!; isCall[c] === 1; ) {
        const op = list.op[c]!;
        if (readOnly[op] === 1) {
          const result = model.step(state, inputs[op] as I, outputs[op]);
          if (result.ok) {
            if (!tryLift(op, result.state, true)) {
              // Seen before and failed: this configuration reduces to it, so it fails too.
              refuted = true;
              break;
            }
            if (remaining === 0) return { kind: 'ok', order: toPartition(stackOps) };
            c = next[HEAD]!;
            continue;
          }
        }
        c = next[c]!;
      }
      node = next[HEAD]!;
    }

    if (!refuted && isCall[node] === 1) {
      const op = list.op[node]!;
      // Read-only candidates here were found illegal by the greedy pass.
      if (readOnly[op] === 0) {
        const result = model.step(state, inputs[op] as I, outputs[op]);
        if (result.ok && tryLift(op, result.state, false)) {
          if (remaining === 0) return { kind: 'ok', order: toPartition(stackOps) };
          fresh = true;
          continue;
        }
      }
      node = next[node]!;
      continue;
    }

    // A dead end: a return event of an operation not yet linearized, or a refuted configuration.
    if (!refuted && stackOps.length > bestDepth) {
      bestDepth = stackOps.length;
      longest = stackOps.slice();
      blocked = list.op[node]!;
      candidates = [];
      for (let c = next[HEAD]!; c !== node; c = next[c]!) {
        if (isCall[c] === 1) candidates.push(list.op[c]!);
      }
      stateAfterLongest = state;
    }
    // Pop back to the latest real choice; forced (greedy) steps have no alternatives.
    for (;;) {
      const op = stackOps.pop();
      if (op === undefined) {
        return {
          kind: 'illegal',
          longest: toPartition(longest),
          blocked: local[blocked]!,
          candidates: toPartition(candidates),
          state: stateAfterLongest,
        };
      }
      state = stackStates.pop() as S;
      linearized.clear(op);
      list.unlift(op);
      if (completed[op] === 1) remaining++;
      if (stackForced[stackOps.length] === 0) {
        node = next[list.callNode[op]!]!;
        break;
      }
    }
  }
}
