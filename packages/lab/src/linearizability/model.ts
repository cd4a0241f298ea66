/**
 * The vocabulary of the linearizability checker: the operations a history is made of and the
 * sequential model the history is checked against.
 */

/**
 * One operation a client performed, with the times it was invoked and completed.
 *
 * Operation A precedes operation B in real time only if `A.return < B.call`; equal timestamps mean
 * the two operations are concurrent (clocks are too coarse to order them), so either order is
 * accepted.
 *
 * An operation whose outcome the client never learned (it failed with an ambiguous error or timed
 * out) has `return: Infinity` and no `output`: it may or may not have taken effect, and if it did,
 * it did so at some moment after `call`.
 */
export interface Operation<I, O> {
  /** The client that ran the operation; used only in reports. */
  readonly clientId: number;
  readonly input: I;
  /** What the operation returned; `undefined` exactly when the outcome is unknown. */
  readonly output?: O;
  /** When the client invoked the operation. Any finite number (ms, µs, a logical clock...). */
  readonly call: number;
  /** When the client saw the response: `>= call`, or `Infinity` when it never did. */
  readonly return: number;
}

/** The result of applying one operation to a model state. */
export type StepResult<S> = { readonly ok: true; readonly state: S } | { readonly ok: false };

/** An independent slice of a history, checked on its own (e.g. all operations on one key). */
export interface Partition {
  /** Names the slice in reports, e.g. `key 'x'`. */
  readonly label: string;
  /** Indices into the full history, in any order. */
  readonly operations: readonly number[];
}

/**
 * A sequential specification of an object, in the spirit of Porcupine's models.
 *
 * Contract:
 * - `step` is deterministic and pure: it never mutates `state`.
 * - `step` with `output === undefined` (the outcome is unknown) must return the state the operation
 *   would produce, accepting whatever it would have returned. It may still say `ok: false` when the
 *   operation cannot apply at all in `state`; the checker then just does not place it there. A
 *   pending operation need never be linearized: a history is linearizable when all *completed*
 *   operations are.
 * - `stateKey(a) === stateKey(b)` exactly when `a` and `b` are equivalent states. The checker's
 *   memo table (Lowe's optimisation) is keyed by it, so it must be cheap and canonical: a small
 *   number or a short string.
 * - `partition`, when present, splits a history into slices whose operations never affect each
 *   other (e.g. per key); every operation index must appear in exactly one slice. Partitioning is
 *   what keeps the search tractable: the cost is exponential in the concurrency of one slice, not
 *   of the whole history.
 */
export interface Model<S, I, O> {
  /** Splits a history into independent slices; absent means the history is one slice. */
  partition?(history: readonly Operation<I, O>[]): readonly Partition[];
  /** The state before any operation of a slice. */
  init(): S;
  /** Applies `input` to `state`; `ok: false` when `output` is impossible from `state`. */
  step(state: S, input: I, output: O | undefined): StepResult<S>;
  /**
   * Optional hint: true when every legal step of this operation (with this output) leaves the state
   * unchanged, e.g. a read, or a compare-and-set that reported failure. The search then linearizes
   * such an operation as early as it may instead of branching on it, which is what keeps many
   * concurrent reads cheap. Claiming it for an operation that can change the state makes the
   * checker unsound; leaving it out only makes it slower.
   */
  readOnly?(input: I, output: O | undefined): boolean;
  /** A canonical key of `state` for memoisation (see the contract above). */
  stateKey(state: S): string | number;
  /** Renders an operation for reports, e.g. `get('x') → '3'`. `output` undefined: unknown. */
  describeOperation(input: I, output: O | undefined): string;
  /** Renders a state for reports; absent: reports do not show states. */
  describeState?(state: S): string;
  /**
   * Checks that an operation is well-formed for this model. Returns a description of the problem,
   * or `undefined` when the operation is fine. The checker turns a problem into a `HistoryError`.
   */
  validate?(input: I, output: O | undefined): string | undefined;
}
