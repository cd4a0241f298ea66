import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { collect, tempDir, tinyOptions } from '../../test/support.js';
import { CorruptionError, LockedError, ModeError } from '../errors.js';
import { simulateCrash } from '../testing.js';
import { FaultVfs } from '../vfs/fault-vfs.js';
import { nodeVfs } from '../vfs/node-vfs.js';
import { open } from './database.js';
import { writeModeFile } from './mode-file.js';

const files = (dir: string, suffix: string) =>
  readdirSync(dir)
    .filter((n) => n.endsWith(suffix))
    .sort();

function flipByte(path: string, offset: number): void {
  const data = readFileSync(path);
  data[offset] = data[offset]! ^ 0x40;
  writeFileSync(path, data);
}

describe('WAL replay', () => {
  it('restores writes after a crash that flushed nothing', async () => {
    const dir = tempDir();
    const vfs = new FaultVfs();
    const db = await open({ dir, vfs });
    await db.set('a', '1');
    await db.write(db.batch().put('b', '2').delete('a').deleteRange('c', 'e'));
    await db.set('d', 'hidden?');
    await db.set('c', 'later');
    await simulateCrash(db, vfs, { loseUnsynced: false });
    const reopened = await open({ dir });
    expect(await collect(reopened.iterate())).toEqual([
      ['b', '2'],
      ['c', 'later'],
      ['d', 'hidden?'],
    ]);
    expect(reopened.recovery.walEntries).toBe(6);
    await reopened.close();
  });

  it('is idempotent across repeated reopen', async () => {
    const dir = tempDir();
    let db = await open({ dir });
    for (let i = 0; i < 50; i++) await db.set(`k${i}`, `v${i}`);
    await db.close();
    for (let round = 0; round < 3; round++) {
      db = await open({ dir });
      expect((await collect(db.iterate())).length).toBe(50 + round);
      await db.set(`round${round}`, 'x');
      await db.close();
    }
    db = await open({ dir });
    expect((await collect(db.iterate())).length).toBe(53);
    await db.close();
  });

  it('drops a torn final batch whole and reports the cut', async () => {
    const dir = tempDir();
    let db = await open({ dir });
    await db.set('before', 'kept');
    await db.write(db.batch().put('b1', '1').put('b2', '2').put('b3', '3'));
    await db.close();
    const [wal] = files(dir, '.wal');
    const path = join(dir, wal!);
    const size = statSync(path).size;
    truncateSync(path, size - 3);
    db = await open({ dir });
    expect(await collect(db.iterate())).toEqual([['before', 'kept']]);
    expect(db.recovery.tornTails).toHaveLength(1);
    expect(db.recovery.tornTails[0]).toMatchObject({ file: path, droppedBytes: expect.any(Number) });
    expect(db.stats().recovery.tornTails).toHaveLength(1);
    await db.set('after', 'ok');
    await db.close();
    db = await open({ dir });
    expect((await collect(db.iterate())).map(([k]) => k)).toEqual(['after', 'before']);
    expect(db.recovery.tornTails).toHaveLength(0);
    await db.close();
  });

  it('fails with Corruption naming the file and offset when a middle WAL record is damaged', async () => {
    const dir = tempDir();
    const db = await open({ dir });
    await db.set('k1', 'x'.repeat(100));
    await db.set('k2', 'y'.repeat(100));
    await db.set('k3', 'z'.repeat(100));
    await db.close();
    const path = join(dir, files(dir, '.wal')[0]!);
    const firstRecordBytes = statSync(path).size / 3;
    flipByte(path, Math.floor(firstRecordBytes + 40));
    const err = await open({ dir }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CorruptionError);
    expect((err as CorruptionError).file).toBe(path);
    expect((err as CorruptionError).offset).toBe(firstRecordBytes);
    expect(String(err)).toContain(path);
    // The failed open released the lock and changed nothing; a read-only open reports the same.
    await expect(open({ dir, readOnly: true })).rejects.toBeInstanceOf(CorruptionError);
  });

  it('replays range deletes and keeps them after flush and reopen', async () => {
    const dir = tempDir();
    let db = await open({ dir, ...tinyOptions });
    for (let i = 0; i < 100; i++) await db.set(`k${String(i).padStart(3, '0')}`, 'v');
    await db.deleteRange('k010', 'k090');
    await db.close();
    db = await open({ dir, ...tinyOptions });
    expect((await collect(db.iterate())).length).toBe(20);
    await db.flush();
    await db.close();
    db = await open({ dir, ...tinyOptions });
    expect((await collect(db.iterate())).length).toBe(20);
    expect(db.stats().lsm.levels.reduce((n, l) => n + l.rangeDeletions, 0)).toBe(1);
    await db.close();
  });
});

describe('metadata recovery', () => {
  async function withTable(dir: string): Promise<string> {
    const db = await open({ dir });
    for (let i = 0; i < 100; i++) await db.set(`k${i}`, 'v'.repeat(30));
    await db.flush();
    await db.close();
    return join(dir, files(dir, '.sst')[0]!);
  }

  it('fails open on a missing table, naming it, and leaves the manifest alone', async () => {
    const dir = tempDir();
    const table = await withTable(dir);
    const manifestBefore = readFileSync(join(dir, files(dir, '').find((n) => n.startsWith('MANIFEST'))!));
    const { unlinkSync } = await import('node:fs');
    unlinkSync(table);
    await expect(open({ dir })).rejects.toThrow(/missing/);
    await expect(open({ dir })).rejects.toMatchObject({ code: 'Corruption', file: table });
    const manifestAfter = readFileSync(join(dir, files(dir, '').find((n) => n.startsWith('MANIFEST'))!));
    expect(manifestAfter.equals(manifestBefore)).toBe(true);
  });

  it('fails open on a corrupt table footer, naming file and offset', async () => {
    const dir = tempDir();
    const table = await withTable(dir);
    flipByte(table, statSync(table).size - 20);
    const err = (await open({ dir }).catch((e: unknown) => e)) as CorruptionError;
    expect(err).toBeInstanceOf(CorruptionError);
    expect(err.file).toBe(table);
  });

  it('reports a damaged data block on read, never a wrong value', async () => {
    const dir = tempDir();
    const table = await withTable(dir);
    flipByte(table, 10);
    const db = await open({ dir });
    const err = (await db.get('k0').catch((e: unknown) => e)) as CorruptionError;
    expect(err).toBeInstanceOf(CorruptionError);
    expect(err.file).toBe(table);
    expect(err.offset).toBe(0);
    await expect(db.verify()).rejects.toBeInstanceOf(CorruptionError);
    await db.close();
  });

  it('ignores and removes a leftover CURRENT.tmp and orphan files', async () => {
    const dir = tempDir();
    await withTable(dir);
    writeFileSync(join(dir, 'CURRENT.tmp'), 'MANIFEST-999999 bogus');
    writeFileSync(join(dir, '999998.sst'), 'orphan from an interrupted compaction');
    writeFileSync(join(dir, '000001.sst.tmp'), 'partial');
    const db = await open({ dir });
    expect((await collect(db.iterate())).length).toBe(100);
    expect(db.recovery.obsoleteFilesRemoved.sort()).toEqual(['000001.sst.tmp', '999998.sst', 'CURRENT.tmp']);
    expect(existsSync(join(dir, 'CURRENT.tmp'))).toBe(false);
    expect(existsSync(join(dir, '999998.sst'))).toBe(false);
    await db.close();
  });

  it('starts over after a crash while creating the database (a manifest but no CURRENT yet)', async () => {
    const dir = tempDir();
    const vfs = new FaultVfs();
    vfs.inject({ op: 'rename', path: 'CURRENT.tmp', when: { nth: 1 } });
    await expect(open({ dir, vfs })).rejects.toMatchObject({ code: 'IoError' });
    expect(existsSync(join(dir, 'CURRENT'))).toBe(false);
    const db = await open({ dir });
    await db.set('k', 'v');
    await db.close();
  });

  it('fails on a missing CURRENT when engine files exist, and on a damaged CURRENT', async () => {
    const dir = tempDir();
    await withTable(dir);
    const current = readFileSync(join(dir, 'CURRENT'));
    const { unlinkSync } = await import('node:fs');
    unlinkSync(join(dir, 'CURRENT'));
    await expect(open({ dir })).rejects.toThrow(/CURRENT is missing/);
    writeFileSync(join(dir, 'CURRENT'), current.toString().replace('MANIFEST-0', 'MANIFEST-9'));
    await expect(open({ dir })).rejects.toMatchObject({ code: 'Corruption' });
    writeFileSync(join(dir, 'CURRENT'), '');
    await expect(open({ dir })).rejects.toThrow(/CURRENT is empty/);
    writeFileSync(join(dir, 'CURRENT'), current);
    const db = await open({ dir });
    expect((await collect(db.iterate())).length).toBe(100);
    await db.close();
  });

  it('survives many manifest rewrites', async () => {
    const dir = tempDir();
    let db = await open({ dir, ...tinyOptions, maxManifestBytes: 1024 });
    for (let i = 0; i < 3000; i++) await db.set(`k${String(i).padStart(5, '0')}`, 'v'.repeat(60));
    await db.compact();
    expect(db.stats().manifest.rewrites).toBeGreaterThan(0);
    await db.close();
    expect(files(dir, '').filter((n) => n.startsWith('MANIFEST-'))).toHaveLength(1);
    db = await open({ dir, ...tinyOptions, maxManifestBytes: 1024 });
    expect((await collect(db.iterate())).length).toBe(3000);
    await db.close();
  });
});

describe('directory lock', () => {
  it('refuses a second open in the same process', async () => {
    const dir = tempDir();
    const db = await open({ dir });
    await expect(open({ dir })).rejects.toBeInstanceOf(LockedError);
    await db.close();
    const again = await open({ dir });
    await again.close();
  });

  it('refuses a workdir another live process holds, naming the pid', async () => {
    const dir = tempDir();
    const first = await open({ dir });
    await first.close();
    const child = spawn(
      process.execPath,
      [
        '-e',
        `const fs=require('fs');fs.writeFileSync(${JSON.stringify(join(dir, 'LOCK'))},JSON.stringify({pid:process.pid,startTime:fs.readFileSync('/proc/self/stat','latin1').split(') ')[1].split(' ')[19],host:require('os').hostname(),acquiredAt:'now'}));console.log('locked');setTimeout(()=>{},60000)`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
      const err = (await open({ dir }).catch((e: unknown) => e)) as LockedError;
      expect(err).toBeInstanceOf(LockedError);
      expect(err.holderPid).toBe(child.pid);
      expect(err.message).toContain(String(child.pid));
    } finally {
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
    }
    // The holder died: its lock is stale and is taken over.
    const db = await open({ dir });
    await db.close();
  });
});

describe('workdir modes', () => {
  it('refuses migration and cluster modes with a hint, accepts allowed ones', async () => {
    const dir = tempDir();
    const db = await open({ dir });
    await db.set('k', 'v');
    await db.close();
    await writeModeFile(nodeVfs, dir, { mode: 'preparing', storeId: 1, regionId: 1, peerId: 1 });
    const err = (await open({ dir }).catch((e: unknown) => e)) as ModeError;
    expect(err).toBeInstanceOf(ModeError);
    expect(err.code).toBe('ModeNotAllowed');
    expect(err.message).toMatch(/mode is 'preparing'.*nokv migrate status/);
    await writeModeFile(nodeVfs, dir, { mode: 'cluster', storeId: 1 });
    await expect(open({ dir })).rejects.toThrow(/mode is 'cluster'/);
    const allowed = await open({ dir, allowedModes: ['cluster'] });
    expect((await allowed.get('k'))?.toString()).toBe('v');
    await allowed.close();
    await writeModeFile(nodeVfs, dir, { mode: 'standalone' });
    const plain = await open({ dir });
    await plain.close();
  });

  it('treats a damaged MODE.json as corruption', async () => {
    const dir = tempDir();
    await writeModeFile(nodeVfs, dir, { mode: 'seeded', storeId: 2 });
    writeFileSync(
      join(dir, 'MODE.json'),
      readFileSync(join(dir, 'MODE.json'), 'utf8').replace('"storeId":2', '"storeId":3'),
    );
    await expect(open({ dir, allowedModes: ['seeded'] })).rejects.toMatchObject({ code: 'Corruption' });
    writeFileSync(join(dir, 'MODE.json'), '{not json');
    await expect(open({ dir })).rejects.toMatchObject({ code: 'Corruption' });
  });
});
