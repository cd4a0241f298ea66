import { Metadata, type ServiceError, type status as Status } from '@grpc/grpc-js';
import {
  asBuffer,
  createClient,
  ERROR_CODE_TRAILER,
  type RequestProps,
  type ResponseOf,
  RpcError,
  type ServiceDescriptors,
  statusName,
} from '@nokv/raftstore/grpc';

// The coordinator serves and calls gRPC with the raftstore's plumbing (malformed input →
// INVALID_ARGUMENT, typed codes in the `nokv-code` trailer, RpcError on the client). The only
// addition here is `callRaw`, which tests use to send bytes that are not a valid request.

export {
  type AnyMethod,
  errorToStatus,
  GrpcStatusError,
  type RequestOf,
  type RequestProps,
  type ResponseOf,
  type ResponseProps,
  RpcError,
  type ServiceDescriptors,
  serverDefinition,
  unaryHandler,
} from '@nokv/raftstore/grpc';

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
  const client = createClient(service, address);
  return {
    address,
    call: (method, request, opts) => client.call(method, request, opts),
    callRaw<M extends S[keyof S]>(method: M, bytes: Uint8Array, opts?: { deadlineMs?: number }) {
      return new Promise<ResponseOf<M>>((resolve, reject) => {
        client.grpc.makeUnaryRequest<Buffer, ResponseOf<M>>(
          method.path,
          (b) => b,
          (b: Buffer) => method.response.decode(b) as ResponseOf<M>,
          asBuffer(bytes),
          new Metadata(),
          opts?.deadlineMs === undefined ? {} : { deadline: Date.now() + opts.deadlineMs },
          (err: ServiceError | null, res?: ResponseOf<M>) => {
            if (err) {
              const trailer = err.metadata?.get(ERROR_CODE_TRAILER)[0];
              const code = typeof trailer === 'string' && trailer !== '' ? trailer : statusName(err.code);
              reject(new RpcError(err.code as Status, code, err.details, method.path));
            } else resolve(res as ResponseOf<M>);
          },
        );
      });
    },
    waitForReady: (timeoutMs) => client.waitForReady(timeoutMs),
    close: () => client.close(),
  };
}
