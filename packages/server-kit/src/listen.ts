import { createServer as createNetServer } from 'node:net';
/**
 * Binding and closing the gRPC and HTTP listeners. Listen failures are turned into the caller's
 * error type by `makeError` (each server keeps its own error class and codes).
 */

import type { Server as HttpServer } from 'node:http';
import * as grpc from '@grpc/grpc-js';
import { formatHostPort } from '@nokv/config';

/** Builds the error for a failed listen: `message` is `cannot listen on ADDR (gRPC|HTTP): why`. */
export type ListenErrorFactory = (message: string, cause: Error) => Error;

/** Binds `server` to `addr` (`host:port`, port 0 = any free port) without TLS; resolves with the port. */
export function bindGrpc(server: grpc.Server, addr: string, makeError: ListenErrorFactory): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), (err, port) => {
      if (err) reject(makeError(`cannot listen on ${addr} (gRPC): ${err.message}`, err));
      else resolve(port);
    });
  });
}

/** Starts `server` listening on `host:port` (port 0 = any free port); resolves with the bound port. */
export function listenHttp(
  server: HttpServer,
  host: string,
  port: number,
  makeError: ListenErrorFactory,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) =>
      reject(makeError(`cannot listen on ${formatHostPort(host, port)} (HTTP): ${err.message}`, err));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : port);
    });
  });
}

/** Closes `server` and its open connections; resolves at once when it is not listening. */
export function closeHttp(server: HttpServer): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/**
 * Graceful gRPC shutdown: stops accepting calls and waits for the running ones, cancelling them
 * (with a warning on `logger`) once `graceMs` have passed.
 */
export function shutdownGrpc(
  server: grpc.Server,
  graceMs: number,
  logger?: { warn(obj: object, msg: string): void },
): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      logger?.warn({ graceMs }, 'gRPC calls still running after the grace period; cancelling them');
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it). For tests and benchmarks
 * that must write addresses into a topology file before the servers start; a race with another
 * process taking the port is possible but rare.
 */
export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}
