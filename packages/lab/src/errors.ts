/**
 * Errors the lab raises on purpose. Each carries a typed `code`, so callers match on `err.code` (or
 * `instanceof`) rather than on message text. All of them signal a bug in the caller (a malformed
 * history, a model that breaks its contract, a bad option): a history that is merely not
 * linearizable is a normal result, never an error.
 */

/** The `code` of a `LabError`. */
export type LabErrorCode = 'InvalidHistory' | 'InvalidModel' | 'InvalidArgument';

/** Base class of every error the lab raises deliberately. */
export class LabError extends Error {
  readonly code: LabErrorCode;

  constructor(code: LabErrorCode, message: string) {
    super(message);
    this.code = code;
    this.name = new.target.name;
  }
}

/**
 * The history is malformed: a time is NaN, an operation returned before it was called, a completed
 * operation has no output, or the model rejected an input. `index` is the offending operation's
 * position in the history passed to the checker.
 */
export class HistoryError extends LabError {
  declare readonly code: 'InvalidHistory';
  readonly index: number;

  constructor(index: number, message: string) {
    super('InvalidHistory', message);
    this.index = index;
  }
}

/** The model broke its contract, e.g. its `partition` lost or duplicated an operation. */
export class ModelError extends LabError {
  declare readonly code: 'InvalidModel';

  constructor(message: string) {
    super('InvalidModel', message);
  }
}

/** An option passed to the checker is out of range (e.g. a negative or NaN `timeoutMs`). */
export class InvalidArgumentError extends LabError {
  declare readonly code: 'InvalidArgument';

  constructor(message: string) {
    super('InvalidArgument', message);
  }
}
