/**
 * The engine under an error-injecting filesystem: failed writes, syncs, renames and directory
 * syncs at chosen points, torn writes, simulated power loss, and flipped bytes. After any of it,
 * a reopen either recovers every acknowledged write (and nothing that was never written), or
 * fails with a Corruption error naming a file. Never silently wrong data.
 */

import { cpSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { collect, prng, tempDir, tinyOptions } from '../../test/support.js';
import { BackgroundError, CorruptionError, IoError } from '../errors.js';
import { simulateCrash } from '../testing.js';
import { FaultVfs } from '../vfs/fault-vfs.js';
import type { VfsOp } from '../vfs/vfs.js';
import { type Database, open } from './database.js';

const settle = <T>(p: Promise<T>) =>
  p.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );

describe('write-path failures stop writes and lose nothing acknowledged', () => {
  it('a failed WAL write rejects, later writes get BackgroundError, reads go on, reopen recovers', async () => {
    const dir = tempDir();
    const vfs = new FaultVfs();
    const db = await open({ dir, vfs, syncWrites: true });
    for (let i = 0; i < 10; i++) await db.set(`k${i}`, `v${i}`);
    vfs.inject({ op: 'write', path: '.wal', when: { nth: 1 }, tornBytes: 7 });
    const failed = await settle(db.set('k10', 'v10'));
    expect(failed.ok).toBe(false);
    expect(!failed.ok && failed.error).toBeInstanceOf(IoError);
    await expect(db.set('k11', 'v11')).rejects.toBeInstanceOf(BackgroundError);
    expect((await db.get('k9'))?.toString()).toBe('v9');
    expect(db.stats().backgroundError).toMatch(/injected write failure/);
    await db.close();
    const reopened = await open({ dir });
    expect((await collect(reopened.iterate())).map(([k]) => k)).toEqual(
      [...Array(10).keys()].map((i) => `k${i}`),
    );
    expect(reopened.recovery.tornTails).toHaveLength(1);
    await reopened.close();
  });

  it('a failed WAL sync rejects the write and stops writes', async () => {
    const dir = tempDir();
    const vfs = new FaultVfs();
    const db = await open({ dir, vfs, syncWrites: true });
    await db.set('a', '1');
    vfs.inject({ op: 'sync', path: '.wal', when: { nth: 1 } });
    await expect(db.set('b', '2')).rejects.toBeInstanceOf(IoError);
    await expect(db.set('c', '3')).rejects.toBeInstanceOf(BackgroundError);
    await db.close();
    const reopened = await open({ dir });
    expect((await reopened.get('a'))?.toString()).toBe('1');
    expect(await reopened.get('c')).toBeUndefined();
    await reopened.close();
  });

  for (const [op, path] of [
    ['write', '.sst'],
    ['sync', '.sst'],
    ['syncDir', ''],
    ['sync', 'MANIFEST'],
  ] as [VfsOp, string][]) {
    it(`a flush whose ${op} on '${path || 'the directory'}' fails keeps the data readable and in the WAL`, async () => {
      const dir = tempDir();
      const vfs = new FaultVfs();
      const db = await open({ dir, vfs, syncWrites: true, autoCompaction: false });
      for (let i = 0; i < 200; i++) await db.set(`k${String(i).padStart(3, '0')}`, 'v'.repeat(50));
      vfs.inject({ op, path, when: { after: 0 } });
      // The first failure surfaces as itself (an IoError, or BackgroundError if the flush ran in
      // the background); either way every later write is refused.
      await expect(db.flush()).rejects.toMatchObject({
        code: expect.stringMatching(/^(IoError|BackgroundError)$/),
      });
      expect((await db.get('k150'))?.toString()).toBe('v'.repeat(50));
      expect((await collect(db.iterate())).length).toBe(200);
      await expect(db.set('x', 'y')).rejects.toBeInstanceOf(BackgroundError);
      vfs.clearFaults();
      await db.close();
      const reopened = await open({ dir });
      expect((await collect(reopened.iterate())).length).toBe(200);
      await reopened.flush();
      expect(reopened.stats().lsm.tables).toBe(1);
      await reopened.close();
    });
  }

  it('a failing compaction is retried and never costs data; writes keep flowing', async () => {
    const dir = tempDir();
    const vfs = new FaultVfs();
    const db = await open({ dir, vfs, ...tinyOptions });
    const undo = vfs.inject({ op: 'write', path: (p) => p.endsWith('.sst'), when: { probability: 0.3 } });
    const model = new Map<string, string>();
    for (let i = 0; i < 3000; i++) {
      const k = `k${String(i % 700).padStart(4, '0')}`;
      const v = `${i}-${'x'.repeat(40)}`;
      const r = await settle(db.set(k, v));
      if (!r.ok) break; // a failed flush stops writes: fine, everything acknowledged must survive
      model.set(k, v);
    }
    undo();
    await db.close();
    const reopened = await open({ dir, ...tinyOptions });
    const got = new Map(await collect(reopened.iterate()));
    expect(got).toEqual(model);
    await reopened.close();
  });

  it('compaction failing again and again stops writes with the error instead of stalling forever', async () => {
    const dir = tempDir();
    const first = await open({ dir, ...tinyOptions, autoCompaction: false });
    for (let i = 0; i < 50; i++) await first.set(`a${i}`, 'v'.repeat(100));
    await first.flush();
    await first.close();
    // Damage the first data block of the level-0 table: every compaction of it fails.
    const table = join(dir, readdirSync(dir).find((n) => n.endsWith('.sst'))!);
    const bytes = readFileSync(table);
    bytes[3] = bytes[3]! ^ 0xff;
    writeFileSync(table, bytes);
    const db = await open({ dir, ...tinyOptions, l0StopWritesTrigger: 3 });
    let error: unknown;
    for (let i = 0; i < 100 && error === undefined; i++) {
      const r = await settle(db.set(`k${i}`, 'v'.repeat(100)).then(() => db.flush()));
      if (!r.ok) error = r.error;
    }
    expect(error).toBeInstanceOf(BackgroundError);
    expect(String((error as BackgroundError).cause)).toMatch(/Corruption/);
    expect(db.stats().compaction.failures).toBeGreaterThanOrEqual(5);
    await db.close();
  }, 30_000);

  it('a compaction whose manifest sync fails keeps its outputs: the edit may be on disk', async () => {
    const dir = tempDir();
    const vfs = new FaultVfs();
    const db = await open({ dir, vfs, ...tinyOptions, autoCompaction: false });
    for (let i = 0; i < 500; i++) await db.set(`k${String(i).padStart(4, '0')}`, 'v'.repeat(100));
    await db.flush();
    vfs.inject({ op: 'sync', path: 'MANIFEST', when: { nth: 1 } });
    await expect(db.compact()).rejects.toMatchObject({ code: 'IoError' });
    await expect(db.set('x', 'y')).rejects.toBeInstanceOf(BackgroundError);
    // Power loss keeps the written-but-unsynced edit? Model the worst case for deletion: the OS
    // kept everything, so the manifest lists the outputs, which must still exist.
    await simulateCrash(db, vfs, { loseUnsynced: false });
    const reopened = await open({ dir, ...tinyOptions });
    expect((await collect(reopened.iterate())).length).toBe(500);
    await reopened.close();
  });

  it('a failed CURRENT swap during a manifest rewrite keeps the old manifest usable', async () => {
    const dir = tempDir();
    const vfs = new FaultVfs();
    const db = await open({ dir, vfs, ...tinyOptions, maxManifestBytes: 2048, autoCompaction: false });
    vfs.inject({ op: 'rename', path: 'CURRENT.tmp', when: { after: 0 } });
    let acked = 0;
    for (let i = 0; i < 2000; i++) {
      const r = await settle(db.set(`k${String(i).padStart(5, '0')}`, 'v'.repeat(60)));
      if (!r.ok) break;
      acked++;
    }
    vfs.clearFaults();
    await db.close().catch(() => undefined);
    const reopened = await open({ dir, ...tinyOptions });
    expect((await collect(reopened.iterate())).length).toBe(acked);
    await reopened.close();
  });
});

/** A deterministic workload that exercises WAL, flush, compaction and manifest rewrites. */
async function workload(db: Database, acked: Map<string, string | undefined>, seed: number): Promise<void> {
  const rand = prng(seed);
  for (let i = 0; i < 260; i++) {
    const k = `k${String(Math.floor(rand() * 120)).padStart(3, '0')}`;
    const r = rand();
    if (r < 0.1) {
      await db.delete(k);
      acked.set(k, undefined);
    } else if (r < 0.15) {
      const k2 = `k${String(Math.floor(rand() * 120)).padStart(3, '0')}`;
      const ops = [
        { type: 'put' as const, key: k, value: `b${i}` },
        { type: 'put' as const, key: k2, value: `c${i}` },
      ];
      await db.write(ops);
      acked.set(k, `b${i}`);
      acked.set(k2, `c${i}`);
    } else {
      const v = `${i}-${'v'.repeat(Math.floor(rand() * 200))}`;
      await db.set(k, v);
      acked.set(k, v);
    }
  }
}

describe('every fault point', () => {
  const options = {
    ...tinyOptions,
    memtableBytes: 64 * 1024,
    syncWrites: true,
    maxManifestBytes: 2048,
    valueThreshold: 100,
    vlogSegmentBytes: 64 * 1024,
  };

  async function countOps(): Promise<Map<VfsOp, number>> {
    const dir = tempDir();
    const vfs = new FaultVfs();
    const db = await open({ dir, vfs, ...options });
    await workload(db, new Map(), 7);
    await db.close();
    const counts = new Map<VfsOp, number>();
    for (const op of ['write', 'sync', 'syncDir', 'rename', 'open', 'unlink', 'truncate'] as VfsOp[]) {
      counts.set(op, vfs.count(op));
    }
    return counts;
  }

  it('power loss right after the n-th failing operation never loses an acknowledged write', async () => {
    const counts = await countOps();
    expect(counts.get('write')).toBeGreaterThan(200);
    const rand = prng(2024);
    let runs = 0;
    for (const [op, total] of counts) {
      if (total === 0) continue;
      const picks = new Set<number>([1, total]);
      while (picks.size < Math.min(total, 6)) picks.add(1 + Math.floor(rand() * total));
      for (const nth of picks) {
        runs++;
        const dir = tempDir();
        const vfs = new FaultVfs();
        const acked = new Map<string, string | undefined>();
        const db = await open({ dir, vfs, ...options });
        vfs.inject({ op, when: { nth }, ...(op === 'write' ? { tornBytes: 5 } : {}) });
        const outcome = await settle(workload(db, acked, 7));
        // Whatever the workload was doing when the fault hit is unacknowledged; then the power goes.
        await simulateCrash(db, vfs, { loseUnsynced: true });
        const reopened = await open({ dir, ...options }).catch((err: unknown) => {
          throw new Error(
            `reopen after failing ${op} #${nth} (${outcome.ok ? 'no error' : String(outcome.error)}): ${String(err)}`,
          );
        });
        const got = new Map(await collect(reopened.iterate()));
        for (const [k, v] of acked) {
          // The one write in flight when the fault hit may or may not have landed.
          if (got.get(k) !== v) {
            expect({ op, nth, key: k, value: got.get(k) }).toEqual({ op, nth, key: k, value: v });
          }
        }
        for (const k of got.keys()) expect(acked.has(k) || k.startsWith('k')).toBe(true);
        await reopened.close();
      }
    }
    expect(runs).toBeGreaterThan(15);
  }, 120_000);
});

describe('flipped bytes', () => {
  it('give Corruption or correct data (a cut torn tail at most), never wrong data', async () => {
    const base = tempDir();
    const states: Map<string, string>[] = [];
    const model = new Map<string, string>();
    const db = await open({ dir: base, ...tinyOptions, autoCompaction: false });
    for (let i = 0; i < 300; i++) {
      model.set(`s${String(i).padStart(3, '0')}`, `table-${i}-${'t'.repeat(30)}`);
      await db.set(`s${String(i).padStart(3, '0')}`, model.get(`s${String(i).padStart(3, '0')}`)!);
    }
    await db.flush();
    states.push(new Map(model));
    for (let i = 0; i < 20; i++) {
      model.set(`w${i}`, `wal-${i}`);
      await db.set(`w${i}`, `wal-${i}`);
      states.push(new Map(model));
    }
    await db.close();

    const rand = prng(99);
    const names = readdirSync(base).filter((n) => n !== 'LOCK');
    let corruptions = 0;
    let clean = 0;
    for (let round = 0; round < 60; round++) {
      const dir = tempDir();
      cpSync(base, dir, { recursive: true });
      const name = names[round % names.length]!;
      const path = join(dir, name);
      const size = statSync(path).size;
      if (size === 0) continue;
      const data = readFileSync(path);
      const offset = Math.floor(rand() * size);
      data[offset] = data[offset]! ^ (1 << Math.floor(rand() * 8));
      writeFileSync(path, data);
      let got: Map<string, string>;
      let torn = false;
      try {
        const reopened = await open({ dir, readOnly: true });
        torn = reopened.recovery.tornTails.length > 0;
        try {
          got = new Map(await collect(reopened.iterate()));
          for (const k of ['s000', 's150', 's299', 'w0', 'w19']) {
            const v = await reopened.get(k);
            if (v !== undefined) expect(v.toString()).toBe(got.get(k));
          }
        } finally {
          await reopened.close();
        }
      } catch (err) {
        if (!(err instanceof CorruptionError)) throw new Error(`flip in ${name}@${offset}: ${String(err)}`);
        expect(err.file).toContain(dir);
        corruptions++;
        continue;
      }
      clean++;
      const matches = torn
        ? states.some((s) => equalMaps(s, got))
        : equalMaps(states[states.length - 1]!, got);
      if (!matches) throw new Error(`flip in ${name}@${offset} (torn=${torn}) gave wrong data`);
    }
    expect(corruptions).toBeGreaterThan(0);
    expect(clean + corruptions).toBeGreaterThan(40);
  });
});

function equalMaps(a: Map<string, string>, b: Map<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}
