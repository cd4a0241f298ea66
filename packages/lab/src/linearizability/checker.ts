import { InvalidArgumentError } from '../errors.js';
import { explainFailure } from './explain.js';
import { validateHistory } from './history.js';
import type { Model, Operation } from './model.js';
import { resolvePartitions } from './partition.js';
import { type Deadline, searchPartition } from './search.js';

/** Options of `checkHistory`. */
export interface CheckOptions {
  /**
   * Bounds the whole check (all partitions) in milliseconds; past it the result is `'unknown'`.
   * Approximate: the clock is read every ~1000 search steps. Default: no bound.
   */
  readonly timeoutMs?: number;
  /**
   * Bounds the memory of the search: the number of explored configurations (Lowe's memo entries)
   * one partition may record before the result is `'unknown'`. Default 4,000,000 (a few hundred
   * MB for partitions of a few thousand operations).
   */
  readonly maxConfigurations?: number;
}

/** Every completed operation fits a legal sequential order consistent with real time. */
export interface CheckOk {
  readonly result: 'ok';
  /**
   * A witness: per partition (in the model's partition order), the linearized operations as
   * indices into the history, in linearization order. Completed operations are all there; a pending
   * operation is there only if this witness needs it to have taken effect.
   */
  readonly linearization: readonly (readonly number[])[];
  /** The label of each partition, aligned with `linearization`. */
  readonly partitions: readonly string[];
}

/** Where the search got stuck in the first non-linearizable partition, in history indices. */
export interface IllegalPartial {
  /** Position of the failing partition in the model's partition order. */
  readonly partitionIndex: number;
  /** Its label, e.g. `key 'x'`. */
  readonly partition: string;
  /** The longest linearizable prefix the search found. */
  readonly linearized: readonly number[];
  /** The operation that returned before it could be linearized after that prefix. */
  readonly blocked: number;
  /** Every operation that could have come next after the prefix (`blocked` among them); none led to a linearization. */
  readonly candidates: readonly number[];
  /** The model state after the prefix, if the model can describe states. */
  readonly state?: string;
}

/** No legal sequential order exists for some partition. */
export interface CheckIllegal {
  readonly result: 'illegal';
  readonly partial: IllegalPartial;
  /** A multi-line, human-readable account of `partial`. */
  readonly explanation: string;
}

/** The time budget ran out before a verdict. */
export interface CheckUnknown {
  readonly result: 'unknown';
  readonly reason: string;
}

/** The verdict of `checkHistory`; switch on `result`. */
export type CheckResult = CheckOk | CheckIllegal | CheckUnknown;

/**
 * Decides whether `history` is linearizable with respect to `model`: whether every completed
 * operation can be given a moment between its call and its return so that, in that order, the
 * model accepts every output. Pending operations (return `Infinity`, no output) may be placed
 * anywhere after their call or dropped. Operations with equal timestamps count as concurrent.
 *
 * Partitions (if the model has them) are checked one after another, and the first non-linearizable
 * one decides `'illegal'`.
 *
 * Throws `HistoryError` for a malformed history (see `validateHistory`), `ModelError` when the
 * model's partitions do not cover every operation exactly once, `InvalidArgumentError` for a
 * negative or NaN `timeoutMs`, and whatever the model's own functions throw.
 */
export function checkHistory<S, I, O>(
  model: Model<S, I, O>,
  history: readonly Operation<I, O>[],
  options: CheckOptions = {},
): CheckResult {
  const timeoutMs = options.timeoutMs ?? Number.POSITIVE_INFINITY;
  if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs < 0) {
    throw new InvalidArgumentError(`timeoutMs must be a non-negative number, got ${timeoutMs}`);
  }
  const start = performance.now();
  validateHistory(model, history);
  const partitions = resolvePartitions(model, history);
  const maxConfigurations = options.maxConfigurations ?? DEFAULT_MAX_CONFIGURATIONS;
  if (!Number.isSafeInteger(maxConfigurations) || maxConfigurations < 1) {
    throw new InvalidArgumentError(`maxConfigurations must be a positive integer, got ${maxConfigurations}`);
  }
  const deadline: Deadline = { at: start + timeoutMs, steps: 0, maxConfigurations };

  const linearization: number[][] = [];
  for (let p = 0; p < partitions.length; p++) {
    const { label, operations } = partitions[p]!;
    if (performance.now() > deadline.at) return timedOut(timeoutMs, label, p, partitions.length);
    const outcome = searchPartition(
      model,
      operations.map((i) => history[i]!),
      deadline,
    );
    if (outcome.kind === 'timeout') return timedOut(timeoutMs, label, p, partitions.length);
    if (outcome.kind === 'budget') {
      return {
        result: 'unknown',
        reason: `gave up on ${label} after exploring ${maxConfigurations} configurations (maxConfigurations; ${p} of ${partitions.length} partitions done)`,
      };
    }
    if (outcome.kind === 'illegal') {
      const global = (local: number) => operations[local]!;
      const failure = {
        label,
        size: operations.length,
        longest: outcome.longest.map(global),
        blocked: global(outcome.blocked),
        candidates: outcome.candidates.map(global),
        state: outcome.state,
      };
      const partial: IllegalPartial = {
        partitionIndex: p,
        partition: label,
        linearized: failure.longest,
        blocked: failure.blocked,
        candidates: failure.candidates,
        ...(model.describeState === undefined ? {} : { state: model.describeState(outcome.state) }),
      };
      return { result: 'illegal', partial, explanation: explainFailure(model, history, failure) };
    }
    linearization.push(outcome.order.map((local) => operations[local]!));
  }
  return { result: 'ok', linearization, partitions: partitions.map((p) => p.label) };
}

const DEFAULT_MAX_CONFIGURATIONS = 4_000_000;

function timedOut(timeoutMs: number, label: string, index: number, count: number): CheckUnknown {
  return {
    result: 'unknown',
    reason: `timed out after ${timeoutMs} ms while checking ${label} (${index} of ${count} partitions done)`,
  };
}
