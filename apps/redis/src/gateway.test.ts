import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, test } from 'vitest';
import { GatewayError, type RunningGateway, serveGateway } from './gateway.js';
import { parseRedisArgs } from './main.js';

// The process around the server: flags, the embedded backend, HTTP. Cluster mode runs in
// backend/cluster.test.ts (it needs a cluster).

const quiet = new Writable({ write: (_c, _e, cb) => cb() });

function usage(argv: string[]): string {
  try {
    parseRedisArgs(argv);
    return 'ok';
  } catch (err) {
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe('InvalidArgument');
    return (err as GatewayError).message;
  }
}

describe('parseRedisArgs', () => {
  test('exactly one backend, well-formed addresses and limits, cluster flags only in cluster mode', () => {
    expect(parseRedisArgs(['--workdir', 'w'])).toEqual({ workdir: 'w' });
    expect(
      parseRedisArgs([
        '--coordinator',
        '127.0.0.1:2379',
        '--addr',
        '0.0.0.0:7000',
        '--http-addr',
        '127.0.0.1:0',
        '--allow-flush',
        '--log-level',
        'warn',
        '--max-clients',
        '10',
        '--max-args',
        '20',
        '--max-bulk-bytes',
        '30',
        '--max-inline-bytes',
        '40',
        '--timeout-ms',
        '50',
        '--no-group-commit',
      ]),
    ).toEqual({
      coordinator: '127.0.0.1:2379',
      addr: '0.0.0.0:7000',
      httpAddr: '127.0.0.1:0',
      allowFlush: true,
      logLevel: 'warn',
      groupCommit: false,
      maxClients: 10,
      maxArgs: 20,
      maxBulkBytes: 30,
      maxInlineBytes: 40,
      timeoutMs: 50,
    });
    expect(usage([])).toMatch(/one of --workdir <dir> \(embedded\) or --coordinator/);
    expect(usage(['--workdir', 'w', '--coordinator', 'h:1'])).toMatch(/cannot be used together/);
    expect(usage(['--coordinator', 'nohost'])).toMatch(/--coordinator 'nohost' is not host:port/);
    expect(usage(['--workdir', 'w', '--addr', 'x'])).toMatch(/--addr 'x' is not host:port/);
    expect(usage(['--workdir', 'w', '--max-clients', '0'])).toMatch(
      /--max-clients must be a positive integer/,
    );
    expect(usage(['--workdir', 'w', '--max-args', '1.5'])).toMatch(/--max-args must be a positive integer/);
    expect(usage(['--workdir', 'w', '--log-level', 'loud'])).toMatch(/unknown log level 'loud'/);
    expect(usage(['--workdir', 'w', '--timeout-ms', '100'])).toMatch(/cluster mode/);
    expect(usage(['--workdir', 'w', '--bogus'])).toMatch(/Unknown option '--bogus'/);
  });
});

describe('serveGateway (embedded)', () => {
  let dir: string | undefined;
  let gw: RunningGateway | undefined;
  afterEach(async () => {
    await gw?.stop();
    gw = undefined;
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  test('serves RESP on --addr and /healthz, /stats, /metrics on --http-addr; stop closes everything', async () => {
    dir = await mkdtemp(join(tmpdir(), 'nokv-redis-gw-'));
    gw = await serveGateway({
      workdir: dir,
      addr: '127.0.0.1:0',
      httpAddr: '127.0.0.1:0',
      logDestination: quiet,
    });
    expect(gw.mode).toBe('embedded');
    const client = new Redis({ host: '127.0.0.1', port: gw.port, lazyConnect: true });
    try {
      expect(await client.set('hello', 'world')).toBe('OK');
      expect(await client.get('hello')).toBe('world');
    } finally {
      client.disconnect();
    }
    const http = `http://${gw.httpAddr}`;
    expect(await (await fetch(`${http}/healthz`)).text()).toBe('ok\n');
    expect(await (await fetch(`${http}/stats`)).json()).toEqual({ mode: 'embedded' });
    const metrics = await (await fetch(`${http}/metrics`)).text();
    expect(metrics).toContain('nokv_redis_commands_total');
    expect(metrics).toContain('nokv_redis_process_cpu_seconds_total');
    const port = gw.port;
    await gw.stop();
    gw = undefined;
    const late = new Redis({ host: '127.0.0.1', port, lazyConnect: true, retryStrategy: () => null });
    late.on('error', () => {});
    await expect(late.connect()).rejects.toThrow();
    late.disconnect();
  });

  test('startup failures are typed: a taken port, an unreachable coordinator', async () => {
    dir = await mkdtemp(join(tmpdir(), 'nokv-redis-gw-'));
    gw = await serveGateway({ workdir: join(dir, 'a'), addr: '127.0.0.1:0', logDestination: quiet });
    const taken = await serveGateway({
      workdir: join(dir, 'b'),
      addr: `127.0.0.1:${gw.port}`,
      logDestination: quiet,
    }).catch((err: unknown) => err);
    expect(taken).toBeInstanceOf(GatewayError);
    expect((taken as GatewayError).code).toBe('ListenFailed');
    const nobody = await serveGateway({
      coordinator: '127.0.0.1:1',
      addr: '127.0.0.1:0',
      connectTimeoutMs: 300,
      logDestination: quiet,
    }).catch((err: unknown) => err);
    expect(nobody).toBeInstanceOf(GatewayError);
    expect((nobody as GatewayError).code).toBe('BackendFailed');
    expect((nobody as GatewayError).message).toMatch(/cannot reach the coordinator at 127.0.0.1:1/);
  });
});
