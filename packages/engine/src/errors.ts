/**
 * Operating errors of the engine. Every error the engine raises on purpose is a `NoKVError` with a
 * typed `code`, so callers match on `err.code` (or `instanceof`) rather than on message text.
 * Programmer bugs are not errors of this kind: they are `AssertionError`s (see `invariants.ts`).
 */

export type InvalidArgumentCode =
  | 'EmptyKey'
  | 'KeyTooLarge'
  | 'ValueTooLarge'
  | 'NilValue'
  | 'InvalidArgument'
  | 'BatchTooLarge';

export type ErrorCode =
  | InvalidArgumentCode
  | 'Closed'
  | 'Locked'
  | 'ModeNotAllowed'
  | 'Corruption'
  | 'IoError'
  | 'ReadOnly'
  | 'BackgroundError';

/** Base class of every error the engine raises deliberately. */
export class NoKVError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** The caller passed something the engine refuses; nothing was written. */
export class InvalidArgumentError extends NoKVError {
  declare readonly code: InvalidArgumentCode;

  constructor(code: InvalidArgumentCode, message: string) {
    super(code, message);
  }
}

/** The database was closed (or is closing); the operation did not run. */
export class ClosedError extends NoKVError {
  constructor(message = 'the database is closed') {
    super('Closed', message);
  }
}

/** Another process (or another `open` in this process) holds the workdir's lock. */
export class LockedError extends NoKVError {
  readonly dir: string;
  readonly holderPid: number | undefined;

  constructor(dir: string, holderPid: number | undefined, detail: string) {
    super('Locked', `Cannot open workdir '${dir}': ${detail}`);
    this.dir = dir;
    this.holderPid = holderPid;
  }
}

/** The workdir is in a mode (migration, cluster) that this open does not allow. */
export class ModeError extends NoKVError {
  readonly mode: string;

  constructor(dir: string, mode: string, hint: string) {
    super('ModeNotAllowed', `Cannot open workdir '${dir}': mode is '${mode}' (${hint})`);
    this.mode = mode;
  }
}

/**
 * Stored bytes failed a checksum or could not be decoded. Names the file and the byte offset of the
 * damaged record or block so an operator can look at it.
 */
export class CorruptionError extends NoKVError {
  readonly file: string;
  readonly offset: number;
  /** What was wrong, without the location. */
  readonly detail: string;

  constructor(file: string, offset: number, detail: string) {
    super('Corruption', `Corruption in '${file}' at offset ${offset}: ${detail}`);
    this.file = file;
    this.offset = offset;
    this.detail = detail;
  }
}

/** A filesystem call failed. `op` and `path` say which one; `cause` holds the system error. */
export class IoError extends NoKVError {
  readonly op: string;
  readonly path: string;

  constructor(op: string, path: string, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super('IoError', `${op} '${path}' failed: ${reason}`, { cause });
    this.op = op;
    this.path = path;
  }
}

/** The database was opened read-only and the call would change it. */
export class ReadOnlyError extends NoKVError {
  constructor(what: string) {
    super('ReadOnly', `the database is open read-only; ${what} is not allowed`);
  }
}

/**
 * An earlier write-path failure (WAL or manifest I/O) left the on-disk state uncertain, so the
 * engine refuses further writes until it is reopened. Reads keep working. `cause` is the failure.
 */
export class BackgroundError extends NoKVError {
  constructor(cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(
      'BackgroundError',
      `writes are stopped after an earlier failure (${reason}); close and reopen the database to recover`,
      { cause },
    );
  }
}

/** True when `err` is a `CorruptionError`. */
export function isCorruption(err: unknown): err is CorruptionError {
  return err instanceof CorruptionError;
}

/** True when `err` is any error the engine raised deliberately. */
export function isNoKVError(err: unknown): err is NoKVError {
  return err instanceof NoKVError;
}
