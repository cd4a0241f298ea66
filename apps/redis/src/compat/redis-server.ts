/**
 * The reference: a real `redis-server` (Debian's redis-server / redis-tools) on a free loopback
 * port, with persistence off so it never writes into the working directory, started and killed
 * by the caller. Also the check (and, as root, the install) of the redis binaries the
 * compatibility, redis-cli and benchmark runs need.
 */

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freeLoopbackPort } from '@nokv/server-kit';
import { RawRespClient } from './resp-client.js';

const BINARIES = ['redis-server', 'redis-cli', 'redis-benchmark'] as const;
export type RedisBinary = (typeof BINARIES)[number];

/** `redis-server --version` (first line) or undefined when the binary is missing. */
export function redisVersion(binary: RedisBinary = 'redis-server'): string | undefined {
  const r = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  if (r.status !== 0 || r.error) return undefined;
  return r.stdout.split('\n')[0]?.trim();
}

/**
 * Makes sure redis-server, redis-cli and redis-benchmark are installed: installs Debian's
 * `redis-server redis-tools` when one is missing and this process is root, otherwise throws an
 * error that says what to install. Returns the redis-server version line.
 */
export function ensureRedisTools(): string {
  const missing = () => BINARIES.filter((b) => redisVersion(b) === undefined);
  if (missing().length > 0) {
    const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
    if (!isRoot) {
      throw new Error(
        `${missing().join(', ')} not found and this process is not root: install them with ` +
          '`sudo apt-get install -y redis-server redis-tools` (Debian/Ubuntu) and run again',
      );
    }
    const apt = (args: string[]) =>
      spawnSync('apt-get', args, {
        encoding: 'utf8',
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
        timeout: 300_000,
      });
    let r = apt(['install', '-y', 'redis-server', 'redis-tools']);
    // A fresh container has no package lists yet.
    if (r.status !== 0) {
      apt(['update']);
      r = apt(['install', '-y', 'redis-server', 'redis-tools']);
    }
    if (r.status !== 0 || missing().length > 0) {
      throw new Error(
        `apt-get install -y redis-server redis-tools failed (status ${r.status}): ${(r.stderr ?? '').slice(-2000)}`,
      );
    }
  }
  return redisVersion('redis-server')!;
}

export interface RedisServerProcess {
  host: string;
  port: number;
  /** The last lines it printed (for failure messages). */
  output(): string;
  stop(): Promise<void>;
}

/** Starts redis-server on a free loopback port; ready when it answers PING. */
export async function startRedisServerProcess(extraArgs: string[] = []): Promise<RedisServerProcess> {
  const host = '127.0.0.1';
  const dir = mkdtempSync(join(tmpdir(), 'nokv-redis-ref-'));
  const port = await freeLoopbackPort();
  const args = [
    '--port',
    String(port),
    '--bind',
    host,
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
    '--daemonize',
    'no',
    '--logfile',
    '',
    ...extraArgs,
  ];
  const proc: ChildProcess = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    lines.push(chunk.toString());
    if (lines.length > 100) lines.splice(0, lines.length - 100);
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGKILL');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (proc.exitCode !== null) {
      await stop();
      throw new Error(`redis-server exited with ${proc.exitCode}: ${lines.join('')}`);
    }
    try {
      const c = await RawRespClient.connect(port, host, 1000);
      const r = await c.command(['PING'], 1000);
      c.close();
      if (r.kind === 'reply' && r.value.type === 'simple' && r.value.value === 'PONG') break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`redis-server did not answer PING on ${host}:${port}: ${lines.join('')}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { host, port, output: () => lines.join('').slice(-4000), stop };
}
