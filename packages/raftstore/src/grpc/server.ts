import type {
  ServerOptions as GrpcServerOptions,
  handleClientStreamingCall,
  handleServerStreamingCall,
  handleUnaryCall,
  MethodDefinition,
  ServerReadableStream,
  ServerUnaryCall,
  ServerWritableStream,
  ServiceDefinition,
} from '@grpc/grpc-js';
import { Metadata, status as Status } from '@grpc/grpc-js';
import type { MethodDescriptor } from '@nokv/proto';
import { errorToStatus, GrpcStatusError, toServerError } from './status.js';

// Server-side plumbing. Request deserializers do not decode: handlers receive the raw bytes and
// decode them themselves, so malformed input is answered with INVALID_ARGUMENT (grpc-js answers
// INTERNAL when a deserializer throws) and oversized input is refused by our own size check.

// biome-ignore lint/suspicious/noExplicitAny: descriptors of any message types (method params are bivariant)
export type AnyMethod = MethodDescriptor<any, any, any, any>;
/** A service as `@nokv/proto` describes it: method name → descriptor. */
export type ServiceDescriptors = Readonly<Record<string, AnyMethod>>;

export type RequestProps<M> = M extends MethodDescriptor<infer P, unknown, unknown, unknown> ? P : never;
export type RequestOf<M> = M extends MethodDescriptor<unknown, infer R, unknown, unknown> ? R : never;
export type ResponseProps<M> = M extends MethodDescriptor<unknown, unknown, infer P, unknown> ? P : never;
export type ResponseOf<M> = M extends MethodDescriptor<unknown, unknown, unknown, infer R> ? R : never;

/** `Uint8Array` (a pbjs `finish()` result) as a Buffer without copying. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A serializer that writes pre-encoded bytes as they are. */
export function rawSerialize(bytes: Uint8Array): Buffer {
  return asBuffer(bytes);
}

/** A deserializer that keeps the bytes. */
export function rawDeserialize(bytes: Buffer): Buffer {
  return bytes;
}

/**
 * The grpc-js ServiceDefinition of a descriptor object (e.g. `NoKVService`): request deserializers
 * return the raw Buffer (decode with `unaryHandler` / `clientStreamHandler`); responses serialize
 * with the descriptor's codec.
 */
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
      requestDeserialize: rawDeserialize,
      responseSerialize: (res: unknown) => asBuffer(m.response.encode(res).finish()),
      responseDeserialize: (bytes: Buffer) => m.response.decode(bytes),
    };
  }
  return out as ServiceDefinition<{ [K in keyof S]: unknown }>;
}

const MIB = 1024 * 1024;

/**
 * The grpc-js receive limit to pair with a handler's `maxRequestBytes`: well above it, so an
 * oversized request reaches our check (INVALID_ARGUMENT) instead of grpc's RESOURCE_EXHAUSTED.
 */
export function grpcReceiveLimit(maxRequestBytes: number): number {
  return Math.min(2 ** 31 - 1, Math.max(2 * maxRequestBytes, maxRequestBytes + 4 * MIB));
}

export interface ServerOptions {
  /** The largest request message any handler on this server accepts (the handlers enforce it). */
  maxRequestBytes: number;
  /** Extra grpc-js server options. */
  options?: GrpcServerOptions;
}

/** grpc.Server options for services built with these helpers. */
export function grpcServerOptions(opts: ServerOptions): GrpcServerOptions {
  return {
    'grpc.max_receive_message_length': grpcReceiveLimit(opts.maxRequestBytes),
    'grpc.max_send_message_length': -1,
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    ...opts.options,
  };
}

export interface HandlerOptions {
  /** Requests (each message of a stream) larger than this are answered with INVALID_ARGUMENT. */
  maxRequestBytes: number;
  /** Called once per unary call with its outcome code ('Ok' or the error code) and duration (metrics). */
  onDone?: (method: string, code: string, ms: number) => void;
}

/** Decodes one request message, or throws GrpcStatusError INVALID_ARGUMENT. */
export function decodeRequest<M extends AnyMethod>(method: M, bytes: Buffer, maxBytes: number): RequestOf<M> {
  if (bytes.length > maxBytes) {
    throw new GrpcStatusError(
      Status.INVALID_ARGUMENT,
      `${method.name} request of ${bytes.length} bytes exceeds the limit of ${maxBytes} bytes`,
      { code: 'RequestTooLarge' },
    );
  }
  try {
    return method.request.decode(bytes) as RequestOf<M>;
  } catch (err) {
    throw new GrpcStatusError(
      Status.INVALID_ARGUMENT,
      `malformed ${method.name} request (${bytes.length} bytes): ${(err as Error).message}`,
      { code: 'MalformedMessage', cause: err },
    );
  }
}

/**
 * A grpc-js unary handler: checks the size, decodes (malformed → INVALID_ARGUMENT), runs `impl`,
 * and answers a thrown error with the status `errorToStatus` picks.
 */
export function unaryHandler<M extends AnyMethod>(
  method: M,
  impl: (req: RequestOf<M>, call: ServerUnaryCall<Buffer, ResponseProps<M>>) => Promise<ResponseProps<M>>,
  opts: HandlerOptions,
): handleUnaryCall<Buffer, ResponseProps<M>> {
  return (call, callback) => {
    const started = performance.now();
    const fail = (err: unknown) => {
      opts.onDone?.(method.name, errorToStatus(err).code, performance.now() - started);
      callback(toServerError(err));
    };
    let req: RequestOf<M>;
    try {
      req = decodeRequest(method, call.request, opts.maxRequestBytes);
    } catch (err) {
      fail(err);
      return;
    }
    let pending: Promise<ResponseProps<M>>;
    try {
      pending = impl(req, call);
    } catch (err) {
      fail(err);
      return;
    }
    pending.then((res) => {
      opts.onDone?.(method.name, 'Ok', performance.now() - started);
      callback(null, res);
    }, fail);
  };
}

/**
 * A grpc-js client-streaming handler: `impl` reads the decoded request messages as an async
 * iterable (a malformed or oversized message throws GrpcStatusError INVALID_ARGUMENT out of the
 * iteration) and returns the response; a thrown error ends the call with its mapped status.
 * Response headers are sent at once, so the client learns the call is established before it ends.
 */
export function clientStreamHandler<M extends AnyMethod>(
  method: M,
  impl: (
    requests: AsyncIterable<RequestOf<M>>,
    call: ServerReadableStream<Buffer, ResponseProps<M>>,
  ) => Promise<ResponseProps<M>>,
  opts: HandlerOptions & { sendHeaders?: boolean },
): handleClientStreamingCall<Buffer, ResponseProps<M>> {
  return (call, callback) => {
    if (opts.sendHeaders !== false) call.sendMetadata(new Metadata());
    async function* requests(): AsyncGenerator<RequestOf<M>> {
      for await (const chunk of call as AsyncIterable<Buffer>) {
        yield decodeRequest(method, chunk, opts.maxRequestBytes);
      }
    }
    let pending: Promise<ResponseProps<M>>;
    try {
      pending = impl(requests(), call);
    } catch (err) {
      callback(toServerError(err));
      return;
    }
    pending.then(
      (res) => callback(null, res),
      (err: unknown) => {
        if (call.cancelled) return;
        callback(toServerError(err));
      },
    );
  };
}

/**
 * A grpc-js server-streaming handler: decodes the request (malformed or oversized →
 * INVALID_ARGUMENT), then `impl` sends response messages with `send`, which waits while the
 * client is not reading (flow control) and rejects once the call is cancelled. Resolving ends the
 * call with OK; a thrown error ends it with the status `errorToStatus` picks.
 */
export function serverStreamHandler<M extends AnyMethod>(
  method: M,
  impl: (
    req: RequestOf<M>,
    send: (message: ResponseProps<M>) => Promise<void>,
    call: ServerWritableStream<Buffer, ResponseProps<M>>,
  ) => Promise<void>,
  opts: HandlerOptions,
): handleServerStreamingCall<Buffer, ResponseProps<M>> {
  return (call) => {
    const started = performance.now();
    const finish = (err?: unknown): void => {
      opts.onDone?.(
        method.name,
        err === undefined ? 'Ok' : errorToStatus(err).code,
        performance.now() - started,
      );
      if (call.cancelled) return;
      if (err === undefined) call.end();
      else call.emit('error', toServerError(err));
    };
    let cancelled: Promise<never> | undefined;
    const whenCancelled = (): Promise<never> => {
      cancelled ??= new Promise<never>((_, reject) => {
        const fail = () =>
          reject(new GrpcStatusError(Status.CANCELLED, `${method.name}: the client cancelled the call`));
        if (call.cancelled) fail();
        else call.once('cancelled', fail);
      });
      cancelled.catch(() => {});
      return cancelled;
    };
    const send = async (message: ResponseProps<M>): Promise<void> => {
      if (call.cancelled) await whenCancelled();
      if (call.write(message)) return;
      await Promise.race([new Promise<void>((resolve) => call.once('drain', resolve)), whenCancelled()]);
    };
    let req: RequestOf<M>;
    try {
      req = decodeRequest(method, call.request, opts.maxRequestBytes);
    } catch (err) {
      finish(err);
      return;
    }
    let pending: Promise<void>;
    try {
      pending = impl(req, send, call);
    } catch (err) {
      finish(err);
      return;
    }
    pending.then(
      () => finish(),
      (err: unknown) => finish(err),
    );
  };
}
