import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { open } from '@nokv/engine';
import { afterEach, describe, expect, it } from 'vitest';
import { main } from './main.js';
import type { Output } from './output.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

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

/** A workdir with tables, WAL data and a torn WAL tail, as a crash would leave it. */
async function workdir(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'nokv-cli-'));
  dirs.push(dir);
  const db = await open({ dir, memtableBytes: 64 * 1024, l0CompactionTrigger: 2, valueThreshold: 64 });
  for (let i = 0; i < 2000; i++)
    await db.set(`user:${String(i).padStart(5, '0')}`, `value-${i}`.padEnd(80, '.'));
  await db.flush();
  await db.deleteRange('user:00100', 'user:00200');
  await db.set('late', 'in the WAL');
  await db.close();
  const wal = readdirSync(dir).find((n) => n.endsWith('.wal'))!;
  appendFileSync(join(dir, wal), Buffer.from([1, 2, 3, 4, 5]));
  return dir;
}

function fingerprint(dir: string): string {
  const h = createHash('sha256');
  for (const name of readdirSync(dir).sort()) {
    const st = statSync(join(dir, name));
    h.update(`${name}:${st.size}:${st.mtimeMs}:`);
    h.update(readFileSync(join(dir, name)));
  }
  return h.digest('hex');
}

describe('nokv inspection commands', () => {
  it('are read-only: the workdir is byte-for-byte unchanged, torn tail included', async () => {
    const dir = await workdir();
    const before = fingerprint(dir);
    for (const args of [
      ['stats', '--workdir', dir],
      ['stats', '--workdir', dir, '--json'],
      ['manifest', '--workdir', dir],
      ['manifest', '--workdir', dir, '--json'],
      ['sst', '--workdir', dir, '--verify'],
      ['sst', '--workdir', dir, '--json'],
      ['vlog', '--workdir', dir],
      ['vlog', '--workdir', dir, '--json'],
    ]) {
      const io = capture();
      expect(await main(args, io)).toBe(0);
      expect(io.err).toBe('');
    }
    expect(fingerprint(dir)).toBe(before);
  });

  it('stats reports entries, levels, recovery and the torn tail, as text and JSON', async () => {
    const dir = await workdir();
    const text = capture();
    await main(['stats', '--workdir', dir], text);
    expect(text.out).toMatch(/Entries\s+\d+/);
    expect(text.out).toMatch(/LSM levels:/);
    expect(text.out).toMatch(/Torn tails\s+.*\.wal@\d+ \(5 B/);
    const json = capture();
    await main(['stats', '--workdir', dir, '--json'], json);
    const stats = JSON.parse(json.out) as {
      entries: number;
      lsm: { tables: number };
      recovery: { tornTails: unknown[] };
    };
    expect(stats.entries).toBeGreaterThanOrEqual(2000);
    expect(stats.lsm.tables).toBeGreaterThan(0);
    expect(stats.recovery.tornTails).toHaveLength(1);
  });

  it('manifest and sst describe levels, tables and key ranges', async () => {
    const dir = await workdir();
    const m = capture();
    await main(['manifest', '--workdir', dir, '--json'], m);
    const manifest = JSON.parse(m.out) as {
      levels: { tables: number }[];
      manifest: { file: string };
      walSegments: unknown[];
    };
    expect(manifest.manifest.file).toMatch(/^MANIFEST-\d{6}$/);
    expect(manifest.levels.reduce((n, l) => n + l.tables, 0)).toBeGreaterThan(0);
    expect(manifest.walSegments.length).toBeGreaterThan(0);
    const s = capture();
    await main(['sst', '--workdir', dir, '--verify'], s);
    expect(s.out).toMatch(/default:"user:\d{5}"@\d+/);
    expect(s.out).toMatch(/all checksums match/);
  });

  it('vlog lists the value log segments and the head', async () => {
    const dir = await workdir();
    const text = capture();
    expect(await main(['vlog', '--workdir', dir], text)).toBe(0);
    expect(text.out).toMatch(/Segments\s+1 \(/);
    expect(text.out).toMatch(/Head\s+segment \d+ at offset \d+/);
    const json = capture();
    await main(['vlog', '--workdir', dir, '--json'], json);
    const report = JSON.parse(json.out) as { segments: { sizeBytes: number }[]; head: { offset: number } };
    expect(report.segments).toHaveLength(1);
    expect(report.head.offset).toBe(report.segments[0]!.sizeBytes);
  });

  it('works on a workdir another open database holds', async () => {
    const dir = await workdir();
    const db = await open({ dir });
    try {
      const io = capture();
      expect(await main(['manifest', '--workdir', dir], io)).toBe(0);
      expect(io.out).toContain(`pid ${process.pid}`);
      expect(await main(['stats', '--workdir', dir], capture())).toBe(0);
    } finally {
      await db.close();
    }
  });

  it('exits 2 on bad usage and 1 with a typed message on a bad workdir', async () => {
    const io = capture();
    expect(await main(['stats'], io)).toBe(2);
    expect(io.err).toMatch(/required option '--workdir <dir>'/);
    expect(await main(['stats', '--workdir', '/x', '--bogus'], capture())).toBe(2);
    expect(await main(['frobnicate'], capture())).toBe(2);
    const missing = capture();
    expect(await main(['stats', '--workdir', '/nonexistent/nokv'], missing)).toBe(1);
    expect(missing.err).toMatch(/does not exist \[InvalidArgument\]/);
    const empty = mkdtempSync(join(tmpdir(), 'nokv-cli-'));
    dirs.push(empty);
    const none = capture();
    expect(await main(['manifest', '--workdir', empty], none)).toBe(1);
    expect(none.err).toMatch(/holds no NoKV database/);
  });
});

describe('the nokv binary', () => {
  it('runs as a real process', async () => {
    const dir = await workdir();
    const bin = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'nokv.mjs');
    const r = spawnSync(process.execPath, [bin, 'stats', '--workdir', dir, '--json'], { encoding: 'utf8' });
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.status).toBe(0);
    expect((JSON.parse(r.stdout) as { dir: string }).dir).toBe(dir);
    const bad = spawnSync(process.execPath, [bin, 'sst'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
  }, 120_000);
});

describe('nokv redis', () => {
  it('exits 2 on bad flags, 1 when the gateway cannot start', async () => {
    const none = capture();
    expect(await main(['redis'], none)).toBe(2);
    expect(none.err).toMatch(/'--workdir <dir>' \(embedded\) or '--coordinator <host:port>' \(cluster\)/);
    const both = capture();
    expect(await main(['redis', '--workdir', '/x', '--coordinator', '127.0.0.1:2379'], both)).toBe(2);
    expect(both.err).toMatch(/cannot be used together/);
    expect(await main(['redis', '--coordinator', 'nohost'], capture())).toBe(2);
    expect(await main(['redis', '--workdir', '/x', '--addr', 'nohost'], capture())).toBe(2);
    expect(await main(['redis', '--workdir', '/x', '--max-clients', '0'], capture())).toBe(2);
    const clusterOnly = capture();
    expect(await main(['redis', '--workdir', '/x', '--no-group-commit'], clusterOnly)).toBe(2);
    expect(clusterOnly.err).toMatch(/cluster mode \(--coordinator\) only/);
    // A listener that cannot be bound: a startup failure.
    const dir = mkdtempSync(join(tmpdir(), 'nokv-cli-redis-'));
    dirs.push(dir);
    const taken = capture();
    expect(
      await main(['redis', '--workdir', dir, '--addr', '203.0.113.1:6380', '--log-level', 'silent'], taken),
    ).toBe(1);
    expect(taken.err).toMatch(/error: cannot listen on 203\.0\.113\.1:6380/);
  });
});
