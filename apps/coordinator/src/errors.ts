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

/** Why an operation could not be added or changed (the operator queue, tRPC `operators.*`). */
export type OperatorErrorCode =
  /** The region is not in the catalog. */
  | 'RegionNotFound'
  /** The store is not registered. */
  | 'StoreNotFound'
  /** The peer is not one of the region's peers. */
  | 'PeerNotFound'
  /** No operation has this id (or it dropped out of the bounded history). */
  | 'OperationNotFound'
  /** The operation makes no sense for the region: a key outside its range, a peer already there... */
  | 'InvalidOperation'
  /** A store the operation needs is not up. */
  | 'StoreNotUp'
  /** Pause, resume or cancel in a state that does not allow it (e.g. cancel a finished operation). */
  | 'InvalidState'
  /** Too many operations waiting. */
  | 'QueueFull';

export class OperatorError extends Error {
  override readonly name = 'OperatorError';
  readonly code: OperatorErrorCode;

  constructor(code: OperatorErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

export function isOperatorError(err: unknown, code?: OperatorErrorCode): err is OperatorError {
  return err instanceof OperatorError && (code === undefined || err.code === code);
}
