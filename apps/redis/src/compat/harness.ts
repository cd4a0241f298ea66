/**
 * The servers the compatibility scripts run against, each started on a free loopback port and
 * stopped by its owner: the reference redis-server, the gateway over the embedded backend (a
 * temporary workdir), and the gateway over a real cluster (a coordinator and three `nokv serve`
 * processes). Used by compat.test.ts, redis-cli.test.ts and the table generator.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedBackend } from '../backend/embedded.js';
import { startRedisServer } from '../server.js';
import { startGatewayTestCluster } from '../testing/cluster.js';
import { ensureRedisTools, startRedisServerProcess } from './redis-server.js';
import type { Target } from './runner.js';

export interface RunningTarget extends Target {
  stop(): Promise<void>;
}

/** redis-server 7 (installed from Debian first when missing and root). */
export async function startReferenceTarget(): Promise<RunningTarget & { version: string }> {
  const version = ensureRedisTools();
  const proc = await startRedisServerProcess();
  return { name: 'redis-server', host: proc.host, port: proc.port, version, stop: () => proc.stop() };
}

/** The gateway over the engine in this process, FLUSHDB allowed (scripts start empty). */
export async function startEmbeddedTarget(): Promise<RunningTarget> {
  const workdir = await mkdtemp(join(tmpdir(), 'nokv-redis-compat-'));
  const backend = await EmbeddedBackend.open({ workdir });
  const server = await startRedisServer({ backend, host: '127.0.0.1', port: 0, allowFlush: true });
  return {
    name: 'gateway (embedded)',
    host: server.host,
    port: server.port,
    async stop() {
      await server.close();
      await backend.close();
      await rm(workdir, { recursive: true, force: true });
    },
  };
}

/** The gateway over a real three-store cluster with a coordinator, FLUSHDB allowed. */
export async function startClusterTarget(): Promise<RunningTarget> {
  const tc = await startGatewayTestCluster();
  try {
    const backend = await tc.backend();
    const server = await startRedisServer({ backend, host: '127.0.0.1', port: 0, allowFlush: true });
    return {
      name: 'gateway (cluster)',
      host: server.host,
      port: server.port,
      async stop() {
        await server.close();
        await tc.stop();
      },
    };
  } catch (err) {
    await tc.stop();
    throw err;
  }
}
