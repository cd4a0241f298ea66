import { HistoryError, InvalidArgumentError } from '../errors.js';
import type { Model, Operation } from './model.js';

/** A best-effort rendering of an input that may be malformed, for error messages. */
function rawInput(input: unknown): string {
  try {
    return JSON.stringify(input) ?? String(input);
  } catch {
    return String(input);
  }
}

/**
 * Checks that `history` is a well-formed list of operations for `model`. Throws
 * `InvalidArgumentError` when `history` is not an array, and `HistoryError` naming the first bad
 * operation when an operation is not an object, a time is not a number, `call` is not finite,
 * `return` is NaN or before `call`, a completed operation (finite `return`) has no output, an
 * operation that never returned has one, or `model.validate` rejects it.
 */
export function validateHistory<S, I, O>(model: Model<S, I, O>, history: readonly Operation<I, O>[]): void {
  if (!Array.isArray(history)) {
    throw new InvalidArgumentError(`history must be an array of operations, got ${typeof history}`);
  }
  for (let i = 0; i < history.length; i++) {
    const op: Operation<I, O> | undefined = history[i];
    if (typeof op !== 'object' || op === null) {
      throw new HistoryError(i, `operation #${i} is not an object: ${rawInput(op)}`);
    }
    const where = () => `operation #${i} ${rawInput(op.input)} by client ${op.clientId}`;
    if (typeof op.clientId !== 'number' || !Number.isFinite(op.clientId)) {
      throw new HistoryError(i, `${where()}: clientId must be a finite number`);
    }
    if (typeof op.call !== 'number' || !Number.isFinite(op.call)) {
      throw new HistoryError(i, `${where()}: call time must be a finite number, got ${op.call}`);
    }
    if (typeof op.return !== 'number' || Number.isNaN(op.return)) {
      throw new HistoryError(i, `${where()}: return time must be a number or Infinity, got ${op.return}`);
    }
    if (op.return < op.call) {
      throw new HistoryError(i, `${where()}: return ${op.return} is before call ${op.call}`);
    }
    if (op.return === Number.POSITIVE_INFINITY) {
      if (op.output !== undefined) {
        throw new HistoryError(
          i,
          `${where()}: never returned (return Infinity) but has output ${rawInput(op.output)}; ` +
            'an operation with an unknown outcome must have no output',
        );
      }
    } else if (op.output === undefined) {
      throw new HistoryError(
        i,
        `${where()}: returned at ${op.return} but has no output; ` +
          'an operation whose outcome is unknown must have return Infinity',
      );
    }
    const problem = model.validate?.(op.input, op.output);
    if (problem !== undefined) throw new HistoryError(i, `${where()}: ${problem}`);
  }
}

/**
 * Renders history entry `index` for reports: `#3 get('x') → '3' by client 2 [call 10, return 12]`.
 * Throws whatever `model.describeOperation` throws.
 */
export function describeEntry<S, I, O>(
  model: Model<S, I, O>,
  history: readonly Operation<I, O>[],
  index: number,
): string {
  const op = history[index]!;
  const ret = op.return === Number.POSITIVE_INFINITY ? 'never returned' : `return ${op.return}`;
  return `#${index} ${model.describeOperation(op.input, op.output)} by client ${op.clientId} [call ${op.call}, ${ret}]`;
}
