import { createServer as createNetServer } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterEach, expect, it } from 'vitest';
import { bindGrpc, freeLoopbackPort, shutdownGrpc } from './listen.js';

const servers: grpc.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.forceShutdown();
});

const listenFailed = (message: string, cause: Error) =>
  Object.assign(new Error(message, { cause }), { code: 'ListenFailed' });

function newServer(): grpc.Server {
  const server = new grpc.Server();
  servers.push(server);
  return server;
}

// A unary method on raw bytes whose handler never answers (an in-flight call for the grace period).
const identity = (b: Buffer) => b;
const HANG: grpc.ServiceDefinition = {
  hang: {
    path: '/nokv.test.Hang/Hang',
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

it('binds a free port, and reports a taken one through the factory', async () => {
  const first = newServer();
  const port = await bindGrpc(first, '127.0.0.1:0', listenFailed);
  expect(port).toBeGreaterThan(0);
  const err = await bindGrpc(newServer(), `127.0.0.1:${port}`, listenFailed).catch((e: unknown) => e);
  expect(err).toMatchObject({
    code: 'ListenFailed',
    message: expect.stringMatching(new RegExp(`^cannot listen on 127\\.0\\.0\\.1:${port} \\(gRPC\\): `)),
    cause: expect.any(Error),
  });
});

it('shuts down at once when no call is running', async () => {
  const server = newServer();
  await bindGrpc(server, '127.0.0.1:0', listenFailed);
  const warnings: object[] = [];
  const t0 = Date.now();
  await shutdownGrpc(server, 10_000, { warn: (obj) => warnings.push(obj) });
  expect(Date.now() - t0).toBeLessThan(5_000);
  expect(warnings).toEqual([]);
});

it('cancels calls still running after the grace period, with a warning', async () => {
  const server = newServer();
  let arrived!: () => void;
  const reached = new Promise<void>((r) => {
    arrived = r;
  });
  server.addService(HANG, { hang: () => arrived() });
  const port = await bindGrpc(server, '127.0.0.1:0', listenFailed);
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  try {
    const call = new Promise<grpc.ServiceError | null>((resolve) => {
      client.makeUnaryRequest(
        '/nokv.test.Hang/Hang',
        identity,
        identity,
        Buffer.from('x'),
        (err: grpc.ServiceError | null) => resolve(err),
      );
    });
    await reached;
    const warnings: Array<[object, string]> = [];
    await shutdownGrpc(server, 100, { warn: (obj, msg) => warnings.push([obj, msg]) });
    expect(warnings).toEqual([
      [{ graceMs: 100 }, 'gRPC calls still running after the grace period; cancelling them'],
    ]);
    expect(await call).toMatchObject({ code: expect.any(Number) });
  } finally {
    client.close();
  }
});

it('freeLoopbackPort returns a port a server can then bind', async () => {
  const port = await freeLoopbackPort();
  expect(port).toBeGreaterThan(0);
  const srv = createNetServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => resolve());
  });
  await new Promise<void>((resolve) => srv.close(() => resolve()));
});
