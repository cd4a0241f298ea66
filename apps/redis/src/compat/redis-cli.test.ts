import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  type RunningTarget,
  startClusterTarget,
  startEmbeddedTarget,
  startReferenceTarget,
} from './harness.js';
import { encodeCommand, RawRespClient } from './resp-client.js';

// Debian's redis-cli against the gateway (both backends): single commands, a heredoc of commands
// on stdin, and `--pipe` mass insertion. Outputs are compared with the same run against a real
// redis-server. The gateway runs in this process, so redis-cli must run asynchronously.

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function redisCli(port: number, args: string[], input?: Buffer | string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const proc = spawn('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    proc.stdout.on('data', (d: Buffer) => out.push(d));
    proc.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => proc.kill('SIGKILL'), 60_000);
    proc.on('error', reject);
    proc.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
    proc.stdin.end(input ?? '');
  });
}

/** Commands typed one per line, as `redis-cli < file` reads them. */
const HEREDOC = [
  'PING',
  'SET greeting "hello world"',
  'GET greeting',
  'APPEND greeting !',
  'STRLEN greeting',
  'SET counter 10',
  'INCR counter',
  'INCRBY counter 5',
  'DECR counter',
  'INCRBYFLOAT counter 0.5',
  'MSET a 1 b 2 c 3',
  'MGET a b c missing',
  'EXISTS a b missing',
  'DEL a b',
  'SET t v EX 100 NX',
  'SET t v EX 100 NX',
  'PERSIST t',
  'TTL t',
  'GETRANGE greeting 0 4',
  'SETRANGE greeting 0 J',
  'GET greeting',
  'TYPE greeting',
  'KEYS c',
  'INCR greeting',
  'NOSUCHCOMMAND x',
  'GETEX t PX 100000',
  'GETDEL t',
  'DBSIZE',
  '',
].join('\n');

/** A mass insertion in RESP: `n` SETs, `n` INCRs of one counter, and one error reply. */
function pipeInput(n: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < n; i++) parts.push(encodeCommand(['SET', `key:${i}`, `value-${i}`]));
  for (let i = 0; i < n; i++) parts.push(encodeCommand(['INCR', 'pipe:counter']));
  parts.push(encodeCommand(['INCR', 'key:0']));
  return Buffer.concat(parts);
}

async function command(t: RunningTarget, args: string[]): Promise<string> {
  const c = await RawRespClient.connect(t.port, t.host);
  try {
    const r = await c.command(args, 10_000);
    return r.kind === 'reply' ? r.raw.toString('latin1') : `<${r.kind}>`;
  } finally {
    c.close();
  }
}

describe('redis-cli against the gateway', () => {
  let redis: RunningTarget | undefined;
  const gateways: RunningTarget[] = [];
  // The cluster commits each pipelined SET through 2PC and Raft (~20 ms each on loopback, one
  // after another per connection), so its pipeline is shorter to keep the test quick.
  const PIPE_N = { embedded: 5000, cluster: 300 } as const;
  let expectedHeredoc: CliResult;
  const expectedPipe = new Map<number, CliResult>();

  beforeAll(async () => {
    redis = await startReferenceTarget();
    expectedHeredoc = await redisCli(redis.port, [], HEREDOC);
    for (const n of Object.values(PIPE_N)) {
      await redisCli(redis.port, ['flushdb']);
      expectedPipe.set(n, await redisCli(redis.port, ['--pipe'], pipeInput(n)));
    }
    gateways.push(await startEmbeddedTarget());
    gateways.push(await startClusterTarget());
  }, 180_000);

  afterAll(async () => {
    for (const g of gateways) await g.stop();
    await redis?.stop();
  });

  test('the reference run is what these tests assume', () => {
    expect(expectedHeredoc.code).toBe(0);
    expect(expectedHeredoc.stdout).toContain('hello world');
    for (const [n, r] of expectedPipe) expect(r.stdout).toContain(`errors: 1, replies: ${2 * n + 1}`);
  });

  for (const backend of ['embedded', 'cluster'] as const) {
    const gateway = () => gateways.find((g) => g.name.includes(backend))!;

    test(`${backend}: redis-cli set hello world / get hello`, async () => {
      const port = gateway().port;
      expect(await redisCli(port, ['set', 'hello', 'world'])).toEqual({
        code: 0,
        stdout: 'OK\n',
        stderr: '',
      });
      expect(await redisCli(port, ['get', 'hello'])).toEqual({ code: 0, stdout: 'world\n', stderr: '' });
      expect(await redisCli(port, ['del', 'hello'])).toEqual({ code: 0, stdout: '1\n', stderr: '' });
      expect((await redisCli(port, ['get', 'hello'])).stdout).toBe('\n');
    });

    test(`${backend}: a heredoc of commands on stdin prints what redis-server prints`, async () => {
      const got = await redisCli(gateway().port, [], HEREDOC);
      expect(got).toEqual(expectedHeredoc);
    });

    test(`${backend}: redis-cli --pipe mass insertion`, async () => {
      const n = PIPE_N[backend];
      const got = await redisCli(gateway().port, ['--pipe'], pipeInput(n));
      expect(got.stdout).toBe(expectedPipe.get(n)!.stdout);
      expect(got.code).toBe(expectedPipe.get(n)!.code);
      expect(got.stdout).toContain(`errors: 1, replies: ${2 * n + 1}`);
      expect(await command(gateway(), ['GET', 'pipe:counter'])).toBe(`$${String(n).length}\r\n${n}\r\n`);
      const last = `value-${n - 1}`;
      expect(await command(gateway(), ['GET', `key:${n - 1}`])).toBe(`$${last.length}\r\n${last}\r\n`);
    }, 90_000);
  }
});
