import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { open } from '@nokv/engine';
import { serve } from '@nokv/node';
import { freeLoopbackPort } from '@nokv/server-kit';
import { afterEach, describe, expect, it } from 'vitest';
import { main } from './main.js';
import type { Output } from './output.js';

const dirs: string[] = [];
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'nokv-cli-cluster-'));
  dirs.push(dir);
  return dir;
}

function capture(): Output & { out: string; err: string } {
  const o = {
    out: '',
    err: '',
    write(text: string) {
      o.out += `${text}\n`;
    },
    error(text: string) {
      o.err += `${text}\n`;
    },
  };
  return o;
}

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const io = capture();
  const code = await main(args, io);
  return { code, out: io.out, err: io.err };
}

/** A one-store topology: regions [-, m) (with a hex-keyed split below it) and [m, -) on store 1. */
function singleStoreConfig(): string {
  const dir = tempDir();
  const config = join(dir, 'nokv.config.json');
  writeFileSync(
    config,
    JSON.stringify({
      stores: [{ id: 1, addr: '127.0.0.1:1', httpAddr: '127.0.0.1:2', workdir: './store-1' }],
      regions: [
        { id: 1, startKey: '', endKey: 'hex:00ff', peers: [{ storeId: 1, peerId: 101 }] },
        { id: 2, startKey: 'hex:00ff', endKey: 'm', peers: [{ storeId: 1, peerId: 102 }] },
        { id: 3, startKey: 'm', endKey: '', peers: [{ storeId: 1, peerId: 103 }] },
      ],
    }),
  );
  return config;
}

/** A local HTTP server answering `/stats` with `payload` (and 404 elsewhere). */
async function fakeNode(payload: unknown): Promise<string> {
  const server: Server = createServer((req, res) => {
    if (req.url === '/stats') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(payload));
    } else {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":"not found"}');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

const CANNED = {
  storeId: '2',
  addr: '127.0.0.1:20171',
  uptimeMs: 3_723_000,
  engine: {
    dir: '/data/store-2',
    entries: 1234,
    memtable: { activeEntries: 12, activeBytes: 4096, immutables: 1 },
    wal: { segments: 2 },
    lsm: { tables: 3, totalBytes: 1.5 * 1024 * 1024 },
    compaction: { backlog: 0 },
    versions: { lastVersion: '987' },
    backgroundError: null,
  },
  store: { regions: 2, leaders: 1, hibernating: 1, tombstones: 0 },
  regions: [
    {
      regionId: '1',
      peerId: '201',
      role: 'leader',
      leaderPeerId: '201',
      term: '7',
      commitIndex: '40',
      appliedIndex: '40',
      startKey: '',
      endKey: 'm',
      hibernating: false,
    },
    {
      regionId: '2',
      peerId: '202',
      role: 'follower',
      leaderPeerId: '0',
      term: '6',
      commitIndex: '12',
      appliedIndex: '11',
      startKey: 'm',
      endKey: '',
      hibernating: true,
    },
  ],
};

describe('nokv serve flags', () => {
  it('bad usage exits 2 with commander messages', async () => {
    let r = await run(['serve', '--store-id', '1']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/required option '--config <file>' not specified/);
    r = await run(['serve', '--config', 'x.json']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/required option '--store-id <id>' not specified/);
    for (const bad of ['abc', '0', '-1', '1.5', '9007199254740993']) {
      r = await run(['serve', '--config', 'x.json', '--store-id', bad]);
      expect(r.code).toBe(2);
      expect(r.err).toContain(
        `option '--store-id <id>' argument '${bad}' is invalid. expected a positive integer`,
      );
    }
    r = await run(['serve', '--config', 'x.json', '--store-id', '1', '--scope', 'k8s']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/argument 'k8s' is invalid. Allowed choices are host, docker/);
    r = await run(['serve', '--config', 'x.json', '--store-id', '1', '--addr', 'localhost']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/option '--addr <host:port>' argument 'localhost' is invalid. expected host:port/);
    r = await run(['serve', '--config', 'x.json', '--store-id', '1', '--http-addr', 'x:99999']);
    expect(r.code).toBe(2);
    r = await run(['serve', '--config', 'x.json', '--store-id', '1', '--log-level', 'loud']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/Allowed choices are trace, debug, info/);
    r = await run(['serve', '--config', 'x.json', '--store-id', '1', '--raft-tick-ms', 'fast']);
    expect(r.code).toBe(2);
  });

  it('startup errors print error: <message> and exit 1', async () => {
    let r = await run(['serve', '--config', join(tempDir(), 'missing.json'), '--store-id', '1']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error: topology file .*missing\.json not found\n$/);
    const config = singleStoreConfig();
    r = await run(['serve', '--config', config, '--store-id', '7']);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`error: store 7 is not in topology file ${config} (stores: 1)\n`);
    const bad = join(tempDir(), 'bad.json');
    writeFileSync(bad, JSON.stringify({ stores: [{ id: 1, addr: 'nope' }], regions: [] }));
    r = await run(['serve', '--config', bad, '--store-id', '1']);
    expect(r.code).toBe(1);
    expect(r.err).toContain(`error: invalid topology file ${bad}: stores[0].addr: expected host:port`);
  });
});

describe('nokv stats --url', () => {
  it('prints a readable summary of a running store', async () => {
    const url = await fakeNode(CANNED);
    const r = await run(['stats', '--url', url]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Store\s+2 at 127\.0\.0\.1:20171$/m);
    expect(r.out).toMatch(/^Uptime\s+1h 02m 03s$/m);
    expect(r.out).toMatch(/^Regions\s+2 hosted, 1 leader\(s\), 1 hibernating$/m);
    expect(r.out).toMatch(/^Engine keys\s+1234 entries, last version 987$/m);
    expect(r.out).toMatch(/^LSM\s+3 table\(s\), 1\.5 MiB; compaction backlog 0$/m);
    expect(r.out).toMatch(/^region\s+peer\s+role\s+leader\s+term\s+commit\s+applied\s+range\s+quiet$/m);
    expect(r.out).toMatch(/^1\s+201\s+leader\s+201\s+7\s+40\s+40\s+\[-, m\)\s+no$/m);
    expect(r.out).toMatch(/^2\s+202\s+follower\s+-\s+6\s+12\s+11\s+\[m, -\)\s+yes$/m);
  });

  it('--json prints the payload; host:port without a scheme works', async () => {
    const url = await fakeNode(CANNED);
    const r = await run(['stats', '--url', url.replace('http://', ''), '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual(CANNED);
  });

  it('unreachable, non-stats and malformed URLs are clear errors', async () => {
    const port = await freeLoopbackPort();
    let r = await run(['stats', '--url', `http://127.0.0.1:${port}`]);
    expect(r.code).toBe(1);
    expect(r.err).toBe(`error: cannot reach http://127.0.0.1:${port}/stats: ECONNREFUSED\n`);
    const url = await fakeNode(CANNED);
    r = await run(['stats', '--url', `${url}/other`]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^error: http:\/\/127\.0\.0\.1:\d+\/other answered 404 Not Found/);
    r = await run(['stats', '--url', 'ftp://x']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/is not an http\(s\) URL/);
  });

  it('needs exactly one of --workdir and --url', async () => {
    let r = await run(['stats']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/required option '--workdir <dir>' or '--url <url>' not specified/);
    r = await run(['stats', '--workdir', '/x', '--url', 'http://127.0.0.1:1']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/cannot be used together/);
  });
});

describe('nokv regions', () => {
  it("lists a store workdir's regions as text and JSON, while the store runs", async () => {
    const config = singleStoreConfig();
    const node = await serve({
      configPath: config,
      storeId: 1,
      addr: '127.0.0.1:0',
      httpAddr: '127.0.0.1:0',
      logLevel: 'silent',
      raftTickMs: 10,
      shutdownGraceMs: 200,
    });
    cleanups.push(() => node.stop());
    const text = await run(['regions', '--workdir', node.workdir]);
    expect(text.err).toBe('');
    expect(text.code).toBe(0);
    const lines = text.out.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(
      /^id=1 state=running epoch=\{ver:1 conf:1\} range=\[-, hex:00ff\) peers=\[\{store:1 peer:101\}\] applied=\d+$/,
    );
    expect(lines[1]).toMatch(/^id=2 .* range=\[hex:00ff, m\) peers=\[\{store:1 peer:102\}\]/);
    expect(lines[2]).toMatch(/^id=3 .* range=\[m, -\) /);

    const json = await run(['regions', '--workdir', node.workdir, '--json']);
    const parsed = JSON.parse(json.out) as { regions: Record<string, unknown>[] };
    expect(parsed.regions).toHaveLength(3);
    expect(parsed.regions[1]).toMatchObject({
      id: '2',
      state: 'running',
      startKey: 'hex:00ff',
      endKey: 'm',
      epoch: { version: '1', confVersion: '1' },
      peers: [{ storeId: '1', peerId: '102', learner: false }],
    });
    expect(typeof parsed.regions[0]!.appliedIndex).toBe('string');
  });

  it('a workdir with no regions, and a missing one', async () => {
    const dir = tempDir();
    const db = await open({ dir });
    await db.close();
    const r = await run(['regions', '--workdir', dir]);
    expect(r.code).toBe(0);
    expect(r.out).toBe(`no regions in ${dir}\n`);
    const missing = await run(['regions', '--workdir', join(dir, 'nope')]);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/does not exist/);
    expect((await run(['regions'])).code).toBe(2);
  });
});

describe('nokv serve as a process', () => {
  it('starts from a topology file, answers nokv stats, and exits 0 on SIGTERM', async () => {
    const config = singleStoreConfig();
    const bin = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'nokv.mjs');
    const child: ChildProcess = spawn(
      process.execPath,
      [
        bin,
        'serve',
        '--config',
        config,
        '--store-id',
        '1',
        '--addr',
        '127.0.0.1:0',
        '--http-addr',
        '127.0.0.1:0',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    cleanups.push(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    let stdout = '';
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const httpUrl = await new Promise<string>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        stdout += d.toString();
        const m = /HTTP listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout);
        if (m) resolve(m[1]!);
      });
      child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${stderr}`)));
    });
    const lines = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { msg: string; store: number; level: string });
    expect(lines.every((l) => l.store === 1)).toBe(true);
    expect(lines.map((l) => l.msg)).toContain(`bootstrapped 3 regions from ${config}`);

    const r = await run(['stats', '--url', httpUrl]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Store\s+1 at 127\.0\.0\.1:\d+$/m);

    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stdout).toMatch(/"msg":"stopped"/);
    expect(stderr).toBe('');
  }, 120_000);
});
