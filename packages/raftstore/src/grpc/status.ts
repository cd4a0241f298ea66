import { Metadata, status as Status } from '@grpc/grpc-js';

// Typed errors on both sides of a gRPC call. A handler throws (or rejects with) an error carrying a
// string `code`; `errorToStatus` turns it into a gRPC status, and the client turns the status back
// into an `RpcError` with the same `code` (carried in the `nokv-code` trailer).

/** The trailer that carries the server's string error code to the client. */
export const ERROR_CODE_TRAILER = 'nokv-code';

/** The canonical name of each gRPC status (`DEADLINE_EXCEEDED` → `DeadlineExceeded`). */
const STATUS_NAMES: Record<number, string> = {
  [Status.OK]: 'Ok',
  [Status.CANCELLED]: 'Cancelled',
  [Status.UNKNOWN]: 'Unknown',
  [Status.INVALID_ARGUMENT]: 'InvalidArgument',
  [Status.DEADLINE_EXCEEDED]: 'DeadlineExceeded',
  [Status.NOT_FOUND]: 'NotFound',
  [Status.ALREADY_EXISTS]: 'AlreadyExists',
  [Status.PERMISSION_DENIED]: 'PermissionDenied',
  [Status.RESOURCE_EXHAUSTED]: 'ResourceExhausted',
  [Status.FAILED_PRECONDITION]: 'FailedPrecondition',
  [Status.ABORTED]: 'Aborted',
  [Status.OUT_OF_RANGE]: 'OutOfRange',
  [Status.UNIMPLEMENTED]: 'Unimplemented',
  [Status.INTERNAL]: 'Internal',
  [Status.UNAVAILABLE]: 'Unavailable',
  [Status.DATA_LOSS]: 'DataLoss',
  [Status.UNAUTHENTICATED]: 'Unauthenticated',
};

/** `grpc.status.DEADLINE_EXCEEDED` → `'DeadlineExceeded'`. */
export function statusName(status: number): string {
  return STATUS_NAMES[status] ?? `Status${status}`;
}

/**
 * Error `code`s (the `code` string property of a thrown error) and the gRPC status each maps to.
 * Every canonical status name but `Ok` maps to its status; the rest are the typed codes of NoKV's own
 * errors (`ProtoError`, engine `NoKVError`). A code not listed → INTERNAL.
 */
export const ERROR_CODE_STATUS: Readonly<Record<string, Status>> = {
  ...Object.fromEntries(
    Object.entries(STATUS_NAMES)
      .filter(([s]) => Number(s) !== Status.OK)
      .map(([s, name]) => [name, Number(s) as Status]),
  ),
  // @nokv/proto ProtoError
  MalformedMessage: Status.INVALID_ARGUMENT,
  ValueOutOfRange: Status.INVALID_ARGUMENT,
  // @nokv/engine NoKVError
  EmptyKey: Status.INVALID_ARGUMENT,
  KeyTooLarge: Status.INVALID_ARGUMENT,
  ValueTooLarge: Status.INVALID_ARGUMENT,
  NilValue: Status.INVALID_ARGUMENT,
  BatchTooLarge: Status.INVALID_ARGUMENT,
  Closed: Status.UNAVAILABLE,
  ReadOnly: Status.FAILED_PRECONDITION,
};

/** An error a handler throws to answer with a chosen gRPC status. */
export class GrpcStatusError extends Error {
  override readonly name = 'GrpcStatusError';
  /** The string code sent to the client in the `nokv-code` trailer (defaults to the status name). */
  readonly code: string;

  constructor(
    readonly status: Status,
    message: string,
    options?: { code?: string; cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = options?.code ?? statusName(status);
  }
}

/** A failed RPC as the client sees it. */
export class RpcError extends Error {
  override readonly name = 'RpcError';

  constructor(
    /** The gRPC status number (`grpc.status.*`). */
    readonly status: Status,
    /** The server's typed code when it sent one, else the status name (`'DeadlineExceeded'`). */
    readonly code: string,
    /** The status details. */
    readonly details: string,
    readonly method: string,
    readonly metadata?: Metadata,
  ) {
    super(`${method}: ${code} (${statusName(status)}): ${details}`);
  }
}

export interface StatusResult {
  status: Status;
  code: string;
  message: string;
}

function errorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('code' in err)) return undefined;
  const code = (err as { code: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** How a thrown error is answered: GrpcStatusError as is, a known `code` by the table, else INTERNAL. */
export function errorToStatus(err: unknown): StatusResult {
  if (err instanceof GrpcStatusError) return { status: err.status, code: err.code, message: err.message };
  const message = err instanceof Error ? err.message : String(err);
  const code = errorCode(err);
  if (code !== undefined) {
    const status = ERROR_CODE_STATUS[code];
    if (status !== undefined) return { status, code, message };
    return { status: Status.INTERNAL, code, message };
  }
  return { status: Status.INTERNAL, code: statusName(Status.INTERNAL), message };
}

/** The object grpc-js's handler callbacks accept as an error (status, details, trailers). */
export interface ServerErrorObject extends Error {
  code: Status;
  details: string;
  metadata: Metadata;
}

/** An error value for a grpc-js handler callback. */
export function toServerError(err: unknown): ServerErrorObject {
  const s = errorToStatus(err);
  const metadata = new Metadata();
  metadata.set(ERROR_CODE_TRAILER, s.code);
  const out = new Error(s.message) as ServerErrorObject;
  out.code = s.status;
  out.details = s.message;
  out.metadata = metadata;
  return out;
}

/** Converts a grpc-js ServiceError (or anything a call rejected with) into an RpcError. */
export function toRpcError(err: unknown, method: string): RpcError {
  if (err instanceof RpcError) return err;
  const e = err as { code?: unknown; details?: unknown; message?: unknown; metadata?: unknown };
  const status = typeof e?.code === 'number' ? (e.code as Status) : Status.UNKNOWN;
  const details =
    typeof e?.details === 'string' ? e.details : typeof e?.message === 'string' ? e.message : String(err);
  const metadata = e?.metadata instanceof Metadata ? e.metadata : undefined;
  const trailer = metadata?.get(ERROR_CODE_TRAILER)[0];
  const code = typeof trailer === 'string' && trailer.length > 0 ? trailer : statusName(status);
  return new RpcError(status, code, details, method, metadata);
}
