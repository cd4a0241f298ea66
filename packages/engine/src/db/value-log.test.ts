import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { collect, tempDir } from '../../test/support.js';
import { CorruptionError, IoError } from '../errors.js';
import { simulateCrash } from '../testing.js';
import { FaultVfs } from '../vfs/fault-vfs.js';
import { open } from './database.js';

const separated = {
  valueThreshold: 64,
  vlogSegmentBytes: 64 * 1024,
  memtableBytes: 64 * 1024,
  l0CompactionTrigger: 2,
  targetFileBytes: 16 * 1024,
  vlogGcIntervalMs: 0,
} as const;

const big = (tag: string) => `${tag}:`.padEnd(400, '#');
const vlogFiles = (dir: string) =>
  readdirSync(dir)
    .filter((n) => n.endsWith('.vlog'))
    .sort();

describe('value log', () => {
  it('stores large values out of the LSM and reads them back everywhere', async () => {
    const dir = tempDir();
    let db = await open({ dir, ...separated });
    for (let i = 0; i < 300; i++) await db.set(`k${String(i).padStart(3, '0')}`, big(`v${i}`));
    await db.set('small', 'inline');
    expect((await db.get('k150'))?.toString()).toBe(big('v150'));
    await db.compact();
    const stats = db.stats();
    expect(stats.valueLog.recordsWritten).toBe(300);
    // Pointers, not values: the tables are a small fraction of the data.
    expect(stats.lsm.totalBytes).toBeLessThan(300 * 400 * 0.2);
    expect((await db.scan({ gte: 'k298', limit: 5 })).map(([k, v]) => [k.toString(), v.toString()])).toEqual([
      ['k298', big('v298')],
      ['k299', big('v299')],
      ['small', 'inline'],
    ]);
    const snap = db.snapshot();
    await db.set('k000', big('new'));
    expect((await db.get('k000', { snapshot: snap }))?.toString()).toBe(big('v0'));
    snap.release();
    const versions: string[] = [];
    for await (const r of db.internal.scan({ cf: 'default', gte: 'k000', lt: 'k001' }))
      versions.push(r.value.toString());
    expect(versions).toEqual([big('new'), big('v0')]);
    await db.close();
    db = await open({ dir, ...separated });
    expect((await collect(db.iterate())).length).toBe(301);
    expect((await db.get('k000'))?.toString()).toBe(big('new'));
    await db.close();
  });

  it('survives power loss with syncWrites: acknowledged values are there, with their pointers', async () => {
    const dir = tempDir();
    const vfs = new FaultVfs();
    const db = await open({ dir, vfs, syncWrites: true, ...separated });
    for (let i = 0; i < 200; i++) await db.set(`k${i}`, big(`v${i}`));
    await db.flush();
    for (let i = 200; i < 260; i++) await db.set(`k${i}`, big(`v${i}`));
    await simulateCrash(db, vfs, { loseUnsynced: true });
    const reopened = await open({ dir, ...separated });
    for (let i = 0; i < 260; i++) expect((await reopened.get(`k${i}`))?.toString()).toBe(big(`v${i}`));
    await reopened.close();
  });

  it('stops writes after a failed value log write; reopen keeps every acknowledged value', async () => {
    const dir = tempDir();
    const vfs = new FaultVfs();
    const db = await open({ dir, vfs, syncWrites: true, ...separated });
    for (let i = 0; i < 20; i++) await db.set(`k${i}`, big(`v${i}`));
    vfs.inject({ op: 'write', path: '.vlog', when: { nth: 1 }, tornBytes: 10 });
    await expect(db.set('k20', big('v20'))).rejects.toBeInstanceOf(IoError);
    await expect(db.set('small', 'x')).rejects.toMatchObject({ code: 'BackgroundError' });
    await db.close();
    const reopened = await open({ dir, ...separated });
    for (let i = 0; i < 20; i++) expect((await reopened.get(`k${i}`))?.toString()).toBe(big(`v${i}`));
    expect(await reopened.get('k20')).toBeUndefined();
    await reopened.close();
  });

  it('reports a damaged value record as corruption, never as a wrong value', async () => {
    const dir = tempDir();
    const db = await open({ dir, ...separated });
    await db.set('a', big('a'));
    await db.close();
    const file = join(dir, vlogFiles(dir)[0]!);
    const data = readFileSync(file);
    data[100] = data[100]! ^ 0x01;
    writeFileSync(file, data);
    const reopened = await open({ dir, ...separated });
    await expect(reopened.get('a')).rejects.toBeInstanceOf(CorruptionError);
    await reopened.close();
  });
});

describe('value log GC', () => {
  async function churn(dir: string) {
    const db = await open({ dir, ...separated });
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 150; i++) await db.set(`k${String(i).padStart(3, '0')}`, big(`r${round}-${i}`));
    }
    return db;
  }

  it('reclaims segments once compaction has counted their garbage, keeping every live value', async () => {
    const dir = tempDir();
    const db = await churn(dir);
    await db.compact();
    const before = db.stats().valueLog;
    expect(before.discardBytes).toBeGreaterThan(0);
    let deleted = 0;
    for (;;) {
      const r = await db.runValueLogGc({ discardRatio: 0.2 });
      if (r.outcome === 'nothing-to-do') break;
      expect(r.outcome).toBe('deleted');
      deleted++;
    }
    expect(deleted).toBeGreaterThan(0);
    const after = db.stats().valueLog;
    expect(after.totalBytes).toBeLessThan(before.totalBytes);
    expect(after.gc.segmentsDeleted).toBe(deleted);
    const values = await collect(db.iterate());
    expect(values).toHaveLength(150);
    for (const [k, v] of values) expect(v).toBe(big(`r3-${Number(k.slice(1))}`));
    await db.close();
    // The deletions are in the manifest: a reopen does not bring the files back.
    const reopened = await open({ dir, ...separated });
    expect((await collect(reopened.iterate())).length).toBe(150);
    expect(reopened.stats().valueLog.segments).toBe(after.segments);
    await reopened.close();
  });

  it('gives up on a segment while a snapshot still reads older values in it', async () => {
    const dir = tempDir();
    const db = await open({ dir, ...separated });
    for (let i = 0; i < 150; i++) await db.set(`k${i}`, big(`old${i}`));
    const snap = db.snapshot();
    for (let round = 0; round < 3; round++)
      for (let i = 0; i < 150; i++) await db.set(`k${i}`, big(`new${round}-${i}`));
    await db.compact();
    const oldest = Math.min(...vlogFiles(dir).map((n) => Number(n.slice(0, 6))));
    const r = await db.runValueLogGc({ segment: oldest });
    expect(r.outcome).toBe('gave-up');
    expect((await db.get('k7', { snapshot: snap }))?.toString()).toBe(big('old7'));
    snap.release();
    await db.compact();
    expect((await db.runValueLogGc({ segment: oldest })).outcome).toBe('deleted');
    expect((await db.get('k7'))?.toString()).toBe(big('new2-7'));
    await db.close();
  });

  it('keeps a segment on disk while an iterator that started before the rewrite is open', async () => {
    const dir = tempDir();
    const db = await churn(dir);
    await db.compact();
    // The newest values live in the last-written segments; rewrite one that holds live ones.
    const live = db.stats().valueLog.activeSegment!;
    await db.set('spill', big('spill')); // keep writing so the target is not the active segment
    const files = vlogFiles(dir).map((n) => Number(n.slice(0, 6)));
    const target = files.filter((n) => n !== live).pop()!;
    const it = db.iterate()[Symbol.asyncIterator]();
    await it.next();
    const gc = db.runValueLogGc({ segment: target });
    await new Promise((resolve) => setTimeout(resolve, 100));
    // The rewrite is done but the file waits for the iterator.
    expect(vlogFiles(dir).map((n) => Number(n.slice(0, 6)))).toContain(target);
    let count = 1;
    for (let r = await it.next(); !r.done; r = await it.next()) count++;
    expect(count).toBe(151);
    expect((await gc).outcome).toBe('deleted');
    expect(vlogFiles(dir).map((n) => Number(n.slice(0, 6)))).not.toContain(target);
    expect((await collect(db.iterate())).length).toBe(151);
    await db.close();
  });

  it('rewrites under concurrent writes without resurrecting or losing anything', async () => {
    const dir = tempDir();
    const db = await churn(dir);
    await db.compact();
    const model = new Map<string, string>();
    for (let i = 0; i < 150; i++) model.set(`k${String(i).padStart(3, '0')}`, big(`r3-${i}`));
    const writer = (async () => {
      for (let i = 0; i < 300; i++) {
        const k = `k${String(i % 150).padStart(3, '0')}`;
        if (i % 7 === 0) {
          await db.delete(k);
          model.delete(k);
        } else {
          await db.set(k, big(`w${i}`));
          model.set(k, big(`w${i}`));
        }
      }
    })();
    for (let i = 0; i < 5; i++) await db.runValueLogGc({ discardRatio: 0.01 });
    await writer;
    await db.compact();
    for (let i = 0; i < 5; i++) await db.runValueLogGc({ discardRatio: 0.01 });
    expect(new Map(await collect(db.iterate()))).toEqual(model);
    await db.close();
  });
});
