/**
 * The tRPC listener (standalone adapter: plain HTTP, batching, SSE subscriptions). Queries and
 * subscriptions are open; mutations are open on a loopback listener and need
 * `authorization: Bearer <adminToken>` otherwise (refused outright without a configured token).
 */

import { createHash, timingSafeEqual } from 'node:crypto';
import type { Server as HttpServer } from 'node:http';
import { formatHostPort } from '@nokv/config';
import * as kit from '@nokv/server-kit';
import { createHTTPServer } from '@trpc/server/adapters/standalone';
import type { Coordinator } from '../coordinator.js';
import { CoordinatorError } from '../errors.js';
import type { CoordinatorLogger } from '../logger.js';
import { appRouter, type MutationAuth } from './router.js';

export interface TrpcServerOptions {
  coordinator: Coordinator;
  host: string;
  /** 0 = any free port. */
  port: number;
  /** Required for mutations when `host` is not a loopback address. */
  adminToken?: string;
  logger?: CoordinatorLogger;
  /** Request bodies above this are refused (default 1 MiB). */
  maxBodySize?: number;
}

export interface RunningTrpcServer {
  server: HttpServer;
  host: string;
  port: number;
  /** host:port as bound. */
  addr: string;
  /** Closes the listener and its connections (event streams end). Idempotent. */
  stop(): Promise<void>;
}

/** 127.0.0.0/8, ::1 (also IPv4-mapped) and `localhost`. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice('::ffff:'.length) : h;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

/** The mutation rule for a listener on `host`. */
export function mutationAuth(host: string, adminToken: string | undefined): MutationAuth {
  if (isLoopbackHost(host)) return { kind: 'loopback' };
  if (!adminToken) return { kind: 'refuse' };
  const want = createHash('sha256').update(adminToken).digest();
  return {
    kind: 'token',
    check: (presented) => timingSafeEqual(createHash('sha256').update(presented).digest(), want),
  };
}

/** Starts the tRPC listener; resolves once it listens. */
export async function startTrpcServer(opts: TrpcServerOptions): Promise<RunningTrpcServer> {
  const auth = mutationAuth(opts.host, opts.adminToken);
  const logger = opts.logger;
  const server = createHTTPServer({
    router: appRouter,
    maxBodySize: opts.maxBodySize ?? 1024 * 1024,
    createContext: ({ req }) => ({
      coordinator: opts.coordinator,
      auth,
      authorization: req.headers.authorization,
    }),
    onError: ({ error, path, type }) => {
      if (error.code === 'INTERNAL_SERVER_ERROR')
        logger?.error({ err: error, path, type }, 'tRPC call failed');
      else logger?.debug({ code: error.code, path, type, message: error.message }, 'tRPC call refused');
    },
  });
  const port = await kit.listenHttp(
    server,
    opts.host,
    opts.port,
    (message, cause) => new CoordinatorError('ListenFailed', message, { cause }),
  );
  const addr = formatHostPort(opts.host, port);
  let stopping: Promise<void> | undefined;
  return {
    server,
    host: opts.host,
    port,
    addr,
    stop: () => {
      stopping ??= kit.closeHttp(server);
      return stopping;
    },
  };
}
