/** Why `nokv serve` refused to start. */
export type ServeErrorCode =
  /** A flag or option is malformed (address, store id, log level, tick). */
  | 'InvalidArgument'
  /** MODE.json names another store: the workdir belongs to it. */
  | 'StoreIdMismatch'
  /** The workdir is not a cluster store's (a standalone database, or a migration in progress). */
  | 'WorkdirModeNotAllowed'
  /** An address could not be bound. */
  | 'ListenFailed';

export class ServeError extends Error {
  readonly code: ServeErrorCode;

  constructor(code: ServeErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ServeError';
    this.code = code;
  }
}

export function isServeError(err: unknown): err is ServeError {
  return err instanceof ServeError;
}
