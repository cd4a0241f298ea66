import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from '@nokv/engine';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readRegionStates } from '../peer-storage/index.js';
import { dataRange, userKeyOf } from '../store/keys.js';
import { MigrateError } from './errors.js';
import { init, localStatus, PairDigest, plan } from './local.js';
import { MIGRATION_STAGES, type MigrationStage, PROGRESS_FILE, readProgress } from './progress.js';
import { seedDir } from './seed.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nokv-migrate-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const ids = { storeId: 1n, regionId: 7n, peerId: 101n };

/** A standalone database whose keys include ones shaped like the store's own local and data keys. */
async function makeStandalone(n: number): Promise<string> {
  const db = await open({ dir });
  const digest = new PairDigest();
  const pairs: [Buffer, Buffer][] = [];
  for (let i = 0; i < n; i++)
    pairs.push([Buffer.from(`key-${String(i).padStart(6, '0')}`), Buffer.from(`v${i}`)]);
  pairs.push([Buffer.from([0x01, 0x03, 0, 0, 0, 0, 0, 0, 0, 7]), Buffer.from('looks like a region state')]);
  pairs.push([Buffer.from('zebra'), Buffer.from('looks like a data key')]);
  pairs.push([Buffer.from([0xff, 0xff]), Buffer.alloc(5000, 1)]);
  pairs.sort((a, b) => Buffer.compare(a[0], b[0]));
  for (const [k, v] of pairs) await db.set(k, v);
  await db.delete(`key-${String(1).padStart(6, '0')}`);
  await db.close();
  const check = await open({ dir, readOnly: true });
  for await (const [k, v] of check.iterate()) digest.add(k, v);
  await check.close();
  return digest.hex();
}

async function clusterDigest(): Promise<{ hex: string; count: number }> {
  const db = await open({ dir, readOnly: true, allowedModes: ['seeded', 'cluster', 'preparing'] });
  const d = new PairDigest();
  const { lo, hi } = dataRange(new Uint8Array(0), new Uint8Array(0));
  for await (const [k, v] of db.iterate({ gte: lo, lt: hi })) d.add(userKeyOf(k), v);
  await db.close();
  return { hex: d.hex(), count: d.count };
}

describe('migrate plan', () => {
  it('finds a standalone database eligible and changes nothing', async () => {
    await makeStandalone(50);
    const r = await plan(dir);
    expect(r.eligible).toBe(true);
    expect(r.blockers).toEqual([]);
    expect(r.keys).toBe(52);
    expect(r.next).toContain('nokv migrate init');
    await expect(readProgress(dir)).resolves.toBeUndefined();
  });

  it('lists blockers for a missing dir, a non-database and a seeded workdir', async () => {
    expect((await plan(join(dir, 'nope'))).blockers[0]).toMatch(/does not exist/);
    await writeFile(join(dir, 'readme.txt'), 'hi');
    expect((await plan(dir)).blockers.join()).toMatch(/no CURRENT/);
    await rm(join(dir, 'readme.txt'));
    await makeStandalone(3);
    await init({ workdir: dir, ...ids });
    const r = await plan(dir);
    expect(r.eligible).toBe(false);
    expect(r.blockers.join()).toMatch(/mode 'seeded'/);
  });
});

describe('migrate init', () => {
  it('seeds one full-range region holding exactly the standalone data', async () => {
    const before = await makeStandalone(300);
    const r = await init({ workdir: dir, ...ids });
    expect(r.alreadySeeded).toBe(false);
    expect(r.entries).toBe(302);
    expect(r.stages).toEqual([
      'mode-preparing-written',
      'seed-snapshot-exported',
      'local-catalog-persisted',
      'raft-seed-initialized',
      'seeded-finalized',
    ]);
    expect((await clusterDigest()).hex).toBe(before);
    const db = await open({ dir, readOnly: true, allowedModes: ['seeded'] });
    const states = await readRegionStates(db);
    await db.close();
    expect(states.map((s) => s.region.id)).toEqual([7n]);
    expect(states[0]!.region.peers).toEqual([{ storeId: 1n, peerId: 101n, learner: false }]);
    // A plain embedded open is refused with a hint.
    await expect(open({ dir })).rejects.toThrow(/nokv serve/);
    // Idempotent: the same ids again is a success that does nothing; other ids are refused.
    expect((await init({ workdir: dir, ...ids })).alreadySeeded).toBe(true);
    await expect(init({ workdir: dir, ...ids, peerId: 102n })).rejects.toMatchObject({ code: 'IdMismatch' });
    const st = await localStatus(dir);
    expect(st).toMatchObject({ mode: 'seeded', storeId: 1, regionId: 7, peerId: 101, catalogRegions: 1 });
    expect(st.seed).toMatchObject({ present: true, entries: 302 });
    expect(st.resumeHint).toMatch(/nokv serve/);
  });

  it.each(MIGRATION_STAGES.slice(0, 4))('resumes after an interruption at %s', async (stage) => {
    const before = await makeStandalone(120);
    const interrupted = new Error('interrupted');
    await expect(
      init({
        workdir: dir,
        ...ids,
        afterCheckpoint: (s: MigrationStage) => {
          if (s === stage) throw interrupted;
        },
      }),
    ).rejects.toBe(interrupted);
    const st = await localStatus(dir);
    expect(st.mode).toBe('preparing');
    expect(st.progress?.stage).toBe(stage);
    expect(st.resumeHint).toMatch(/re-run 'nokv migrate init/);
    await expect(open({ dir })).rejects.toThrow(/migrate status/);
    await expect(init({ workdir: dir, ...ids, regionId: 8n })).rejects.toMatchObject({ code: 'IdMismatch' });
    const r = await init({ workdir: dir, ...ids });
    expect(r.resumedAfter).toBe(stage);
    expect((await clusterDigest()).hex).toBe(before);
  });

  it('refuses to resume from a damaged seed once the standalone data may be gone', async () => {
    await makeStandalone(40);
    await expect(
      init({
        workdir: dir,
        ...ids,
        afterCheckpoint: (s: MigrationStage) => {
          if (s === 'seed-snapshot-exported') throw new Error('stop');
        },
      }),
    ).rejects.toThrow('stop');
    const bin = join(seedDir(dir, 7n), 'snapshot.bin');
    const { readFile } = await import('node:fs/promises');
    const bytes = await readFile(bin);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x40;
    await writeFile(bin, bytes);
    const err = await init({ workdir: dir, ...ids }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrateError);
    expect((err as MigrateError).code).toBe('CorruptSeed');
  });

  it('refuses a damaged checkpoint file', async () => {
    await makeStandalone(5);
    await expect(
      init({
        workdir: dir,
        ...ids,
        afterCheckpoint: (s: MigrationStage) => {
          if (s === 'mode-preparing-written') throw new Error('stop');
        },
      }),
    ).rejects.toThrow('stop');
    await writeFile(join(dir, PROGRESS_FILE), '{"progress":{"stage":"seeded-finalized"},"checksum":"x"}');
    await expect(init({ workdir: dir, ...ids })).rejects.toMatchObject({ code: 'CorruptCheckpoint' });
  });

  it('rejects bad ids before touching anything', async () => {
    await makeStandalone(5);
    await expect(init({ workdir: dir, ...ids, storeId: 0n })).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
    expect((await localStatus(dir)).mode).toBe('standalone');
  });
});
