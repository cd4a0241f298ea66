/** Why a coordinator operation failed. Each code maps to a gRPC status (see grpc.ts). */
export type CoordinatorErrorCode =
  /** Malformed input: missing ids, bad counts, bad keys (INVALID_ARGUMENT). */
  | 'InvalidArgument'
  /** The request conflicts with the coordinator's state: epoch mismatch and the like (FAILED_PRECONDITION). */
  | 'FailedPrecondition'
  /** A durable file failed its checksum or framing (DATA_LOSS); `file` and `offset` say where. */
  | 'Corruption'
  /** Writing durable state failed; nothing was handed out (INTERNAL). */
  | 'PersistFailed'
  /** The coordinator is stopping or stopped (UNAVAILABLE). */
  | 'Closed'
  /** An address could not be bound. */
  | 'ListenFailed';

export class CoordinatorError extends Error {
  override readonly name = 'CoordinatorError';
  readonly code: CoordinatorErrorCode;
  /** For `Corruption`: the damaged file and the byte offset of the bad record. */
  readonly file: string | undefined;
  readonly offset: number | undefined;

  constructor(
    code: CoordinatorErrorCode,
    message: string,
    options?: { cause?: unknown; file?: string; offset?: number },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.file = options?.file;
    this.offset = options?.offset;
  }
}

export function isCoordinatorError(err: unknown, code?: CoordinatorErrorCode): err is CoordinatorError {
  return err instanceof CoordinatorError && (code === undefined || err.code === code);
}

export function corruption(file: string, offset: number, what: string): CoordinatorError {
  return new CoordinatorError('Corruption', `${file}: ${what} at offset ${offset}`, { file, offset });
}
