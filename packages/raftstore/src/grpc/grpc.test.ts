import * as grpc from '@grpc/grpc-js';
import { NoKVService } from '@nokv/proto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createClient, type RpcClient } from './client.js';
import { grpcServerOptions, rawDeserialize, rawSerialize, serverDefinition, unaryHandler } from './server.js';
import { GrpcStatusError, RpcError } from './status.js';

const MAX_REQUEST = 1024;

function startServer(): Promise<{ server: grpc.Server; address: string }> {
  const server = new grpc.Server(grpcServerOptions({ maxRequestBytes: MAX_REQUEST }));
  server.addService(serverDefinition(NoKVService), {
    RawGet: unaryHandler(
      NoKVService.RawGet,
      async (req) => {
        const key = Buffer.from(req.key ?? []).toString();
        switch (key) {
          case 'status':
            throw new GrpcStatusError(grpc.status.NOT_FOUND, 'no such thing', { code: 'NoSuchThing' });
          case 'precondition':
            throw Object.assign(new Error('not now'), { code: 'FailedPrecondition' });
          case 'closed':
            throw Object.assign(new Error('engine closed'), { code: 'Closed' });
          case 'odd-code':
            throw Object.assign(new Error('odd'), { code: 'SomethingElse' });
          case 'plain':
            throw new Error('boom');
          case 'slow':
            await new Promise((r) => setTimeout(r, 400));
            return { value: Buffer.from('late') };
          default:
            return { value: Buffer.from(`value of ${key}`) };
        }
      },
      { maxRequestBytes: MAX_REQUEST },
    ),
  });
  return new Promise((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
      if (err) reject(err);
      else resolve({ server, address: `127.0.0.1:${port}` });
    });
  });
}

describe('grpc plumbing', () => {
  let server: grpc.Server;
  let address: string;
  let client: RpcClient<typeof NoKVService>;

  beforeEach(async () => {
    ({ server, address } = await startServer());
    client = createClient(NoKVService, address);
  });

  afterEach(() => {
    client.close();
    server.forceShutdown();
  });

  const get = (key: string, deadlineMs?: number) =>
    client.call(
      NoKVService.RawGet,
      { key: Buffer.from(key) },
      deadlineMs === undefined ? {} : { deadlineMs },
    );

  async function rpcError(p: Promise<unknown>): Promise<RpcError> {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(RpcError);
    return err as RpcError;
  }

  it('answers a well-formed request with the decoded response', async () => {
    const res = await get('k1');
    expect(Buffer.from(res.value).toString()).toBe('value of k1');
  });

  it('answers malformed bytes with INVALID_ARGUMENT', async () => {
    const raw = new grpc.Client(address, grpc.credentials.createInsecure());
    try {
      const err = await new Promise<grpc.ServiceError | null>((resolve) => {
        raw.makeUnaryRequest(
          NoKVService.RawGet.path,
          rawSerialize,
          rawDeserialize,
          // field 1 (key), length 100, but only two bytes follow
          Buffer.from([0x0a, 0x64, 0x01, 0x02]),
          (e) => resolve(e),
        );
      });
      expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err?.details).toMatch(/malformed RawGet request/);
    } finally {
      raw.close();
    }
  });

  it('answers an oversized request with INVALID_ARGUMENT (our check, not grpc RESOURCE_EXHAUSTED)', async () => {
    const err = await rpcError(get('x'.repeat(MAX_REQUEST + 10)));
    expect(err.status).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.code).toBe('RequestTooLarge');
    expect(err.details).toMatch(/exceeds the limit of 1024 bytes/);
  });

  it('maps thrown errors to statuses and carries the typed code', async () => {
    const notFound = await rpcError(get('status'));
    expect(notFound.status).toBe(grpc.status.NOT_FOUND);
    expect(notFound.code).toBe('NoSuchThing');
    expect(notFound.details).toBe('no such thing');

    const precondition = await rpcError(get('precondition'));
    expect(precondition.status).toBe(grpc.status.FAILED_PRECONDITION);
    expect(precondition.code).toBe('FailedPrecondition');

    const closed = await rpcError(get('closed'));
    expect(closed.status).toBe(grpc.status.UNAVAILABLE);
    expect(closed.code).toBe('Closed');

    const odd = await rpcError(get('odd-code'));
    expect(odd.status).toBe(grpc.status.INTERNAL);
    expect(odd.code).toBe('SomethingElse');

    const plain = await rpcError(get('plain'));
    expect(plain.status).toBe(grpc.status.INTERNAL);
    expect(plain.code).toBe('Internal');
  });

  it('reports a client deadline as DEADLINE_EXCEEDED', async () => {
    const err = await rpcError(get('slow', 50));
    expect(err.status).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(err.code).toBe('DeadlineExceeded');
  });

  it('refuses a method of another service', async () => {
    const other = { path: '/x.Y/Z', name: 'Z' } as unknown as typeof NoKVService.RawGet;
    expect(() => client.call(other, {})).toThrow(/not a method/);
  });
});
