/** Why a migration step refused to run or failed; `code` is stable for scripts and the console. */
export type MigrateErrorCode =
  | 'InvalidArgument'
  | 'NotEligible'
  | 'WrongMode'
  | 'IdMismatch'
  | 'CorruptCheckpoint'
  | 'CorruptSeed'
  | 'ValidationFailed'
  | 'NotLeader'
  | 'Timeout'
  | 'RemoteFailed';

export class MigrateError extends Error {
  override readonly name = 'MigrateError';
  constructor(
    readonly code: MigrateErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
