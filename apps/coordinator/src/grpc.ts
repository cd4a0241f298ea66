import {
  Client,
  credentials,
  type handleUnaryCall,
  Metadata,
  type MethodDefinition,
  type ServiceDefinition,
  type ServiceError,
  status as Status,
} from '@grpc/grpc-js';
import type { MethodDescriptor } from '@nokv/proto';

// gRPC plumbing for the coordinator, the same conventions as @nokv/raftstore's grpc helpers (which
// that package does not export): handlers decode the raw request bytes themselves so malformed
// input is INVALID_ARGUMENT, errors carry a string code in the `nokv-code` trailer, and the client
// turns statuses back into typed errors.

// biome-ignore lint/suspicious/noExplicitAny: descriptors of any message types
export type AnyMethod = MethodDescriptor<any, any, any, any>;
export type ServiceDescriptors = Readonly<Record<string, AnyMethod>>;
export type RequestProps<M> = M extends MethodDescriptor<infer P, unknown, unknown, unknown> ? P : never;
export type RequestOf<M> = M extends MethodDescriptor<unknown, infer R, unknown, unknown> ? R : never;
export type ResponseProps<M> = M extends MethodDescriptor<unknown, unknown, infer P, unknown> ? P : never;
export type ResponseOf<M> = M extends MethodDescriptor<unknown, unknown, unknown, infer R> ? R : never;

export const ERROR_CODE_TRAILER = 'nokv-code';

/** Error codes (a thrown error's string `code`) and their statuses; anything else → INTERNAL. */
const CODE_STATUS: Record<string, Status> = {
  InvalidArgument: Status.INVALID_ARGUMENT,
  MalformedMessage: Status.INVALID_ARGUMENT,
  ValueOutOfRange: Status.INVALID_ARGUMENT,
  RequestTooLarge: Status.INVALID_ARGUMENT,
  FailedPrecondition: Status.FAILED_PRECONDITION,
  NotFound: Status.NOT_FOUND,
  Corruption: Status.DATA_LOSS,
  PersistFailed: Status.INTERNAL,
  Closed: Status.UNAVAILABLE,
};

/** An error a handler throws to answer with a chosen status. */
export class GrpcStatusError extends Error {
  override readonly name = 'GrpcStatusError';
  constructor(
    readonly status: Status,
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** A failed call as the client sees it: `code` is the server's typed code (or the status name). */
export class RpcError extends Error {
  override readonly name = 'RpcError';
  constructor(
    readonly status: Status,
    readonly code: string,
    readonly details: string,
    readonly method: string,
  ) {
    super(`${method}: ${code} (${Status[status]}): ${details}`);
  }
}

export function errorToStatus(err: unknown): { status: Status; code: string; message: string } {
  if (err instanceof GrpcStatusError) return { status: err.status, code: err.code, message: err.message };
  const message = err instanceof Error ? err.message : String(err);
  const code =
    typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string'
      ? (err as { code: string }).code
      : 'Internal';
  return { status: CODE_STATUS[code] ?? Status.INTERNAL, code, message };
}

function toServerError(err: unknown): Partial<ServiceError> {
  const s = errorToStatus(err);
  const metadata = new Metadata();
  metadata.set(ERROR_CODE_TRAILER, s.code);
  return { code: s.status, details: s.message, metadata, message: s.message, name: 'Error' };
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The grpc-js ServiceDefinition of a descriptor object; requests arrive as raw Buffers. */
export function serverDefinition<S extends ServiceDescriptors>(
  service: S,
): ServiceDefinition<{ [K in keyof S]: unknown }> {
  const out: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const [name, m] of Object.entries(service)) {
    out[name] = {
      path: m.path,
      originalName: name,
      requestStream: m.requestStream,
      responseStream: m.responseStream,
      requestSerialize: (req: unknown) => asBuffer(m.request.encode(req).finish()),
      requestDeserialize: (b: Buffer) => b,
      responseSerialize: (res: unknown) => asBuffer(m.response.encode(res).finish()),
      responseDeserialize: (b: Buffer) => m.response.decode(b),
    };
  }
  return out as ServiceDefinition<{ [K in keyof S]: unknown }>;
}

/** A unary handler: size check, decode (malformed → INVALID_ARGUMENT), `impl`, typed error status. */
export function unaryHandler<M extends AnyMethod>(
  method: M,
  impl: (req: RequestOf<M>) => Promise<ResponseProps<M>>,
  opts: { maxRequestBytes: number; onDone?: (method: string, code: string, ms: number) => void },
): handleUnaryCall<Buffer, ResponseProps<M>> {
  return (call, callback) => {
    const started = performance.now();
    const done = (err: unknown, res?: ResponseProps<M>) => {
      const code = err === null ? 'Ok' : errorToStatus(err).code;
      opts.onDone?.(method.name, code, performance.now() - started);
      if (err === null) callback(null, res);
      else callback(toServerError(err));
    };
    let req: RequestOf<M>;
    const bytes = call.request;
    try {
      if (bytes.length > opts.maxRequestBytes) {
        throw new GrpcStatusError(
          Status.INVALID_ARGUMENT,
          `${method.name} request of ${bytes.length} bytes exceeds ${opts.maxRequestBytes}`,
          'RequestTooLarge',
        );
      }
      try {
        req = method.request.decode(bytes) as RequestOf<M>;
      } catch (err) {
        throw new GrpcStatusError(
          Status.INVALID_ARGUMENT,
          `malformed ${method.name} request (${bytes.length} bytes): ${(err as Error).message}`,
          'MalformedMessage',
        );
      }
    } catch (err) {
      done(err);
      return;
    }
    let pending: Promise<ResponseProps<M>>;
    try {
      pending = impl(req);
    } catch (err) {
      done(err);
      return;
    }
    pending.then(
      (res) => done(null, res),
      (err: unknown) => done(err),
    );
  };
}

export interface UnaryClient<S extends ServiceDescriptors> {
  readonly address: string;
  call<M extends S[keyof S]>(
    method: M,
    request: RequestProps<M>,
    opts?: { deadlineMs?: number },
  ): Promise<ResponseOf<M>>;
  /** Sends raw bytes as the request (tests of malformed input). */
  callRaw<M extends S[keyof S]>(
    method: M,
    bytes: Uint8Array,
    opts?: { deadlineMs?: number },
  ): Promise<ResponseOf<M>>;
  waitForReady(timeoutMs: number): Promise<void>;
  close(): void;
}

/** A unary client of `service` at `host:port`. */
export function createUnaryClient<S extends ServiceDescriptors>(service: S, address: string): UnaryClient<S> {
  const client = new Client(address, credentials.createInsecure(), {
    'grpc.use_local_subchannel_pool': 1,
    'grpc.initial_reconnect_backoff_ms': 100,
    'grpc.max_reconnect_backoff_ms': 2000,
  });
  const paths = new Set(Object.values(service).map((m) => m.path));
  const raw = <M extends AnyMethod>(method: M, bytes: Buffer, deadlineMs?: number): Promise<ResponseOf<M>> =>
    new Promise((resolve, reject) => {
      if (!paths.has(method.path)) throw new Error(`${method.path} is not a method of this client's service`);
      client.makeUnaryRequest<Buffer, ResponseOf<M>>(
        method.path,
        (b) => b,
        (b: Buffer) => method.response.decode(b) as ResponseOf<M>,
        bytes,
        new Metadata(),
        deadlineMs === undefined ? {} : { deadline: Date.now() + deadlineMs },
        (err: ServiceError | null, res?: ResponseOf<M>) => {
          if (err) {
            const trailer = err.metadata?.get(ERROR_CODE_TRAILER)[0];
            const code = typeof trailer === 'string' && trailer !== '' ? trailer : Status[err.code];
            reject(new RpcError(err.code, code ?? 'Unknown', err.details, method.path));
          } else resolve(res as ResponseOf<M>);
        },
      );
    });
  return {
    address,
    call(method, request, opts) {
      let bytes: Buffer;
      try {
        bytes = asBuffer(method.request.encode(request).finish());
      } catch (err) {
        return Promise.reject(err);
      }
      return raw(method, bytes, opts?.deadlineMs);
    },
    callRaw(method, bytes, opts) {
      return raw(method, asBuffer(bytes), opts?.deadlineMs);
    },
    waitForReady(timeoutMs) {
      return new Promise((resolve, reject) => {
        client.waitForReady(Date.now() + timeoutMs, (err?: Error) => (err ? reject(err) : resolve()));
      });
    },
    close() {
      client.close();
    },
  };
}
