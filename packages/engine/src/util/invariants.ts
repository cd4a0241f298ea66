/**
 * Cheap assertions always run; expensive self-checks run only when invariants are enabled
 * (`NOKV_INVARIANTS=1`, which the test suite sets). A failed assertion is a bug in the engine, never
 * an operating error, so it throws an `AssertionError` that callers should not catch.
 */

export class AssertionError extends Error {
  constructor(message: string) {
    super(`assertion failed: ${message}`);
    this.name = 'AssertionError';
  }
}

/** Whether expensive self-checks run. Read once: the hot path tests a constant. */
export const invariantsEnabled: boolean = process.env.NOKV_INVARIANTS === '1';

/** Throws an `AssertionError` with `message` (a string or a thunk building it) when `cond` is false. */
export function assert(cond: unknown, message: string | (() => string)): asserts cond {
  if (!cond) throw new AssertionError(typeof message === 'string' ? message : message());
}
