import {
  type CallOptions,
  type ChannelCredentials,
  type ChannelOptions,
  Client,
  type ClientReadableStream,
  type ClientWritableStream,
  credentials as grpcCredentials,
  Metadata,
  type ServiceError,
  status as Status,
} from '@grpc/grpc-js';
import {
  type AnyMethod,
  asBuffer,
  type RequestProps,
  type ResponseOf,
  rawSerialize,
  type ServiceDescriptors,
} from './server.js';
import { RpcError, toRpcError } from './status.js';

// A typed client over one grpc-js channel: unary calls resolve with the decoded response or reject
// with an RpcError; client-streaming calls are opened as ClientStreams.

export interface ClientOptions {
  credentials?: ChannelCredentials;
  /** Keepalive ping interval (default 10 s) and how long to wait for its answer (default 5 s). */
  keepaliveTimeMs?: number;
  keepaliveTimeoutMs?: number;
  /** Message size limits (default 64 MiB each way). */
  maxSendMessageBytes?: number;
  maxReceiveMessageBytes?: number;
  /** The channel's reconnect backoff (default 100 ms growing to 5 s). */
  initialReconnectBackoffMs?: number;
  maxReconnectBackoffMs?: number;
  /** Extra grpc-js channel options (override the above). */
  channelOptions?: ChannelOptions;
}

export interface CallOpts {
  /** Relative deadline; none by default. */
  deadlineMs?: number;
  metadata?: Metadata;
  /** Wait for the channel to connect instead of failing fast with UNAVAILABLE (default false). */
  waitForReady?: boolean;
}

/** The writing side of an open client-streaming call. */
export interface ClientStream<Req, Res> {
  /** Writes one message; resolves once grpc-js has taken it (waits on flow control). */
  write(message: Req): Promise<void>;
  /** Half-closes and resolves with the response (rejects with RpcError). */
  end(): Promise<Res>;
  /** Cancels the call (the response rejects with CANCELLED). */
  cancel(): void;
  /** Settles when the call ends, whether or not `end()` was called. */
  readonly response: Promise<Res>;
  /** The underlying grpc-js stream ('metadata' fires when the server sent its headers). */
  readonly call: ClientWritableStream<unknown>;
}

/** The reading side of an open server-streaming call. */
export interface ServerStream<Res> extends AsyncIterable<Res> {
  /** Cancels the call (the iteration throws CANCELLED). */
  cancel(): void;
  /** The underlying grpc-js stream. */
  readonly call: ClientReadableStream<unknown>;
}

export interface RpcClient<S extends ServiceDescriptors> {
  readonly address: string;
  readonly service: S;
  /** A unary call. */
  call<M extends S[keyof S]>(method: M, request: RequestProps<M>, opts?: CallOpts): Promise<ResponseOf<M>>;
  /** Opens a client-streaming call whose messages are encoded with the method's codec. */
  openClientStream<M extends S[keyof S]>(
    method: M,
    opts?: CallOpts,
  ): ClientStream<RequestProps<M>, ResponseOf<M>>;
  /**
   * Opens a server-streaming call: the response messages as an async iterable (a failed call
   * throws RpcError out of the iteration; leaving the loop early cancels the call).
   */
  serverStream<M extends S[keyof S]>(
    method: M,
    request: RequestProps<M>,
    opts?: CallOpts,
  ): ServerStream<ResponseOf<M>>;
  /** Opens a client-streaming call whose messages are written as given (already encoded). */
  openRawClientStream<M extends S[keyof S]>(
    method: M,
    opts?: CallOpts,
  ): ClientStream<Uint8Array, ResponseOf<M>>;
  /** Resolves once the channel is connected; rejects after `timeoutMs`. */
  waitForReady(timeoutMs: number): Promise<void>;
  /** Closes the channel; calls in flight are cancelled. */
  close(): void;
  /** The grpc-js client, for anything not wrapped here. */
  readonly grpc: Client;
}

const MIB = 1024 * 1024;

/** The channel options `createClient` uses. */
export function clientChannelOptions(opts: ClientOptions = {}): ChannelOptions {
  return {
    'grpc.keepalive_time_ms': opts.keepaliveTimeMs ?? 10_000,
    'grpc.keepalive_timeout_ms': opts.keepaliveTimeoutMs ?? 5_000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.max_send_message_length': opts.maxSendMessageBytes ?? 64 * MIB,
    'grpc.max_receive_message_length': opts.maxReceiveMessageBytes ?? 64 * MIB,
    'grpc.initial_reconnect_backoff_ms': opts.initialReconnectBackoffMs ?? 100,
    'grpc.max_reconnect_backoff_ms': opts.maxReconnectBackoffMs ?? 5_000,
    // A channel of its own per client: closing one client never disturbs another's connection.
    'grpc.use_local_subchannel_pool': 1,
    ...opts.channelOptions,
  };
}

function callOptions(opts: CallOpts | undefined): CallOptions {
  const out: CallOptions = {};
  if (opts?.deadlineMs !== undefined) out.deadline = Date.now() + opts.deadlineMs;
  return out;
}

function callMetadata(opts: CallOpts | undefined): Metadata {
  const md = opts?.metadata?.clone() ?? new Metadata();
  if (opts?.waitForReady !== undefined) md.setOptions({ waitForReady: opts.waitForReady });
  return md;
}

/** A typed client of `service` at `address` (`host:port`). */
export function createClient<S extends ServiceDescriptors>(
  service: S,
  address: string,
  opts: ClientOptions = {},
): RpcClient<S> {
  const client = new Client(
    address,
    opts.credentials ?? grpcCredentials.createInsecure(),
    clientChannelOptions(opts),
  );
  const paths = new Set(Object.values(service).map((m) => m.path));
  const check = (method: AnyMethod, streaming: boolean, responseStream = false): void => {
    if (!paths.has(method.path)) throw new Error(`${method.path} is not a method of this client's service`);
    if (method.requestStream !== streaming || method.responseStream !== responseStream) {
      const kind = responseStream ? 'server-streaming' : streaming ? 'client-streaming' : 'unary';
      throw new Error(`${method.path} is not a ${kind} method`);
    }
  };

  function openStream<Req, Res>(
    method: AnyMethod,
    serialize: (value: Req) => Buffer,
    opts: CallOpts | undefined,
  ): ClientStream<Req, Res> {
    check(method, true);
    let settle!: { resolve: (r: Res) => void; reject: (e: unknown) => void };
    const response = new Promise<Res>((resolve, reject) => {
      settle = { resolve, reject };
    });
    // A caller that never awaits `response` must not crash the process with an unhandled rejection.
    response.catch(() => {});
    const call = client.makeClientStreamRequest<Req, Res>(
      method.path,
      serialize,
      (bytes: Buffer) => method.response.decode(bytes) as Res,
      callMetadata(opts),
      callOptions(opts),
      (err: ServiceError | null, res?: Res) => {
        if (err) settle.reject(toRpcError(err, method.path));
        else settle.resolve(res as Res);
      },
    );
    // Errors are reported through the callback; an 'error' event without a listener would throw.
    call.on('error', () => {});
    // Writes still waiting when the call ends fail with it.
    const waiting = new Set<(err: unknown) => void>();
    let endedWith: { err: unknown } | undefined;
    const failWaiting = (err: unknown): void => {
      endedWith = { err };
      for (const reject of waiting) reject(err);
      waiting.clear();
    };
    response.then(() => failWaiting(new Error(`${method.path}: the stream has ended`)), failWaiting);
    return {
      call: call as ClientWritableStream<unknown>,
      response,
      write(message: Req): Promise<void> {
        if (endedWith) return Promise.reject(endedWith.err);
        return new Promise<void>((resolve, reject) => {
          waiting.add(reject);
          call.write(message, (err?: Error | null) => {
            waiting.delete(reject);
            if (err) reject(err);
            else resolve();
          });
        });
      },
      end(): Promise<Res> {
        call.end();
        return response;
      },
      cancel(): void {
        call.cancel();
      },
    };
  }

  return {
    address,
    service,
    grpc: client,
    call<M extends S[keyof S]>(method: M, request: RequestProps<M>, o?: CallOpts): Promise<ResponseOf<M>> {
      check(method, false);
      let bytes: Buffer;
      try {
        bytes = asBuffer(method.request.encode(request).finish());
      } catch (err) {
        return Promise.reject(err);
      }
      return new Promise<ResponseOf<M>>((resolve, reject) => {
        client.makeUnaryRequest<Buffer, ResponseOf<M>>(
          method.path,
          rawSerialize,
          (b: Buffer) => method.response.decode(b) as ResponseOf<M>,
          bytes,
          callMetadata(o),
          callOptions(o),
          (err: ServiceError | null, res?: ResponseOf<M>) => {
            if (err) reject(toRpcError(err, method.path));
            else resolve(res as ResponseOf<M>);
          },
        );
      });
    },
    openClientStream<M extends S[keyof S]>(method: M, o?: CallOpts) {
      return openStream<RequestProps<M>, ResponseOf<M>>(
        method,
        (value) => asBuffer(method.request.encode(value).finish()),
        o,
      );
    },
    serverStream<M extends S[keyof S]>(method: M, request: RequestProps<M>, o?: CallOpts) {
      check(method, false, true);
      const bytes = asBuffer(method.request.encode(request).finish());
      const call = client.makeServerStreamRequest<Buffer, ResponseOf<M>>(
        method.path,
        rawSerialize,
        (b: Buffer) => method.response.decode(b) as ResponseOf<M>,
        bytes,
        callMetadata(o),
        callOptions(o),
      );
      // Errors surface through the iteration; one arriving while nobody iterates must not crash.
      call.on('error', () => {});
      let ended = false;
      call.once('end', () => {
        ended = true;
      });
      return {
        call: call as ClientReadableStream<unknown>,
        cancel: () => call.cancel(),
        async *[Symbol.asyncIterator]() {
          try {
            for await (const message of call) yield message as ResponseOf<M>;
          } catch (err) {
            throw toRpcError(err, method.path);
          } finally {
            if (!ended) call.cancel();
          }
        },
      };
    },
    openRawClientStream<M extends S[keyof S]>(method: M, o?: CallOpts) {
      return openStream<Uint8Array, ResponseOf<M>>(method, rawSerialize, o);
    },
    waitForReady(timeoutMs: number): Promise<void> {
      return new Promise<void>((resolve, reject) => {
        client.waitForReady(Date.now() + timeoutMs, (err?: Error) => {
          if (err) reject(new RpcError(Status.UNAVAILABLE, 'Unavailable', err.message, address));
          else resolve();
        });
      });
    },
    close(): void {
      client.close();
    },
  };
}
