import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BackgroundError, CorruptionError, IoError } from '../errors.js';
import { encodeInternalKey } from '../keys/internal-key.js';
import { encodeRecord, scanRecords } from '../record/log-format.js';
import { AssertionError } from '../util/invariants.js';
import { FaultVfs, InjectedFault } from '../vfs/fault-vfs.js';
import { nodeVfs } from '../vfs/node-vfs.js';
import type { Vfs } from '../vfs/vfs.js';
import { encodeCurrent } from './current-file.js';
import { type FileMetadata, MANIFEST_RECORD_EDIT, type VersionEdit } from './version-edit.js';
import { type RecoveredManifest, readManifest, VersionSet, type VersionSetOptions } from './version-set.js';

const ik = (user: string, version: bigint) => encodeInternalKey(0, Buffer.from(user), version);

function table(number: number, small: string, large: string): FileMetadata {
  return {
    number,
    size: 1000 + number,
    smallest: ik(small, 9n),
    largest: ik(large, 1n),
    minVersion: 1n,
    maxVersion: 9n,
    entries: 10 * number,
    deletions: 1,
    rangeDeletions: 0,
    rawKeyBytes: 100,
    rawValueBytes: 200,
    createdAtMs: 1_700_000_000_000 + number,
  };
}

const edit = (over: Partial<VersionEdit> = {}): VersionEdit => ({ deletedFiles: [], newFiles: [], ...over });

/** Plain view of a level set, for comparisons. */
function levelsView(
  levels: readonly (readonly FileMetadata[])[],
): { level: number; number: number; smallest: string; largest: string; size: number }[][] {
  return levels.map((files, level) =>
    files.map((f) => ({
      level,
      number: f.number,
      smallest: f.smallest.toString('hex'),
      largest: f.largest.toString('hex'),
      size: f.size,
    })),
  );
}

let dir: string;
let sets: VersionSet[] = [];
let obsolete: number[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(join(os.tmpdir(), 'nokv-'));
  sets = [];
  obsolete = [];
});

afterEach(async () => {
  for (const s of sets) await s.close().catch(() => undefined);
  fs.rmSync(dir, { recursive: true, force: true });
});

function options(vfs: Vfs = nodeVfs, maxManifestBytes = 1 << 20): VersionSetOptions {
  return { vfs, dir, maxManifestBytes, onObsoleteTable: (n) => obsolete.push(n) };
}

async function create(vfs: Vfs = nodeVfs, maxManifestBytes = 1 << 20): Promise<VersionSet> {
  const set = await VersionSet.create(options(vfs, maxManifestBytes));
  sets.push(set);
  return set;
}

async function mustRead(vfs: Vfs = nodeVfs): Promise<RecoveredManifest> {
  const r = await readManifest(vfs, dir);
  expect(r).toBeDefined();
  return r!;
}

const manifests = () =>
  fs
    .readdirSync(dir)
    .filter((n) => n.startsWith('MANIFEST-'))
    .sort();
const currentText = () => fs.readFileSync(join(dir, 'CURRENT'), 'latin1');

/** Applies a few edits that add, move and delete tables; returns the set. */
async function populate(set: VersionSet): Promise<void> {
  const a = set.newFileNumber();
  const b = set.newFileNumber();
  const c = set.newFileNumber();
  await set.logAndApply(
    edit({ logNumber: 3, lastVersion: 10n, newFiles: [{ level: 0, file: table(a, 'a', 'm') }] }),
  );
  await set.logAndApply(
    edit({ logNumber: 5, lastVersion: 20n, newFiles: [{ level: 0, file: table(b, 'c', 'z') }] }),
  );
  await set.logAndApply(
    edit({
      deletedFiles: [
        { level: 0, number: a },
        { level: 0, number: b },
      ],
      newFiles: [
        { level: 1, file: table(c, 'a', 'k') },
        { level: 1, file: table(set.newFileNumber(), 'l', 'z') },
      ],
    }),
  );
}

describe('VersionSet: create, apply, replay', () => {
  it('creates an empty manifest and points CURRENT at it', async () => {
    const set = await create();
    expect(set.manifestNumber).toBe(1);
    expect(set.manifestName).toBe('MANIFEST-000001');
    expect(manifests()).toEqual(['MANIFEST-000001']);
    expect(currentText()).toBe(encodeCurrent('MANIFEST-000001').toString('latin1'));
    expect(currentText()).toMatch(/^MANIFEST-000001 crc32c=[0-9a-f]{8}\n$/);
    expect(fs.existsSync(join(dir, 'CURRENT.tmp'))).toBe(false);
    expect([...set.current.allFiles()]).toEqual([]);
    const r = await mustRead();
    expect(r.manifestNumber).toBe(1);
    expect(r.edits).toBe(1);
    expect(r.logNumber).toBe(0);
    expect(r.lastVersion).toBe(0n);
    expect(r.nextFileNumber).toBe(2);
    expect(r.tornTail).toBeUndefined();
    expect(r.validEnd).toBe(fs.statSync(join(dir, 'MANIFEST-000001')).size);
    expect(levelsView(r.levels)).toEqual(levelsView(set.current.levels));
  });

  it('readManifest is undefined without CURRENT', async () => {
    expect(await readManifest(nodeVfs, dir)).toBeUndefined();
  });

  it('logAndApply adds and deletes tables, and readManifest replays the same state', async () => {
    const set = await create();
    await populate(set);
    const levels = set.current.levels;
    expect(levels[0]).toEqual([]);
    expect(levels[1]!.map((f) => f.number)).toEqual([4, 5]);
    expect(set.logNumber).toBe(5);
    expect(set.lastVersion).toBe(20n);
    expect(set.nextFileNumber).toBe(6);
    // the deleted L0 tables are obsolete now that no version lists them
    expect(obsolete.sort()).toEqual([2, 3]);
    expect(set.isLive(2)).toBe(false);
    expect(set.isLive(4)).toBe(true);

    const r = await mustRead();
    expect(r.edits).toBe(4);
    expect(levelsView(r.levels)).toEqual(levelsView(levels));
    expect(r.levels[1]![0]).toEqual(levels[1]![0]); // every field, not just the view
    expect(r.logNumber).toBe(5);
    expect(r.lastVersion).toBe(20n);
    expect(r.nextFileNumber).toBe(6);
    expect(r.validEnd).toBe(set.manifestBytes);
  });

  it('records lastVersion monotonically and nextFileNumber as the set knows it', async () => {
    const set = await create();
    await set.logAndApply(edit({ lastVersion: 50n }));
    await set.logAndApply(edit({ lastVersion: 7n })); // lower: the set keeps 50
    expect(set.lastVersion).toBe(50n);
    set.newFileNumber();
    set.newFileNumber();
    const e = edit();
    await set.logAndApply(e);
    expect(e.nextFileNumber).toBe(4);
    const r = await mustRead();
    expect(r.lastVersion).toBe(50n);
    expect(r.nextFileNumber).toBe(4);
  });

  it('rejects edits that do not fit the current version, without writing them', async () => {
    const set = await create();
    await populate(set);
    const before = set.manifestBytes;
    const current = set.current;
    await expect(set.logAndApply(edit({ deletedFiles: [{ level: 2, number: 4 }] }))).rejects.toThrow(
      /does not hold it/,
    );
    await expect(
      set.logAndApply(edit({ newFiles: [{ level: 2, file: table(4, 'x', 'y') }] })),
    ).rejects.toThrow(/twice/);
    expect(set.manifestBytes).toBe(before);
    expect(set.current).toBe(current);
    expect(set.failed).toBe(false);
    // still usable
    await set.logAndApply(edit({ logNumber: 6 }));
    expect((await mustRead()).logNumber).toBe(6);
  });

  it('keeps a table alive while an older version that lists it is referenced', async () => {
    const set = await create();
    const n = set.newFileNumber();
    await set.logAndApply(edit({ newFiles: [{ level: 0, file: table(n, 'a', 'b') }] }));
    const pinned = set.current;
    pinned.ref();
    await set.logAndApply(edit({ deletedFiles: [{ level: 0, number: n }] }));
    expect(obsolete).toEqual([]);
    expect(set.isLive(n)).toBe(true);
    pinned.unref();
    expect(obsolete).toEqual([n]);
    expect(set.isLive(n)).toBe(false);
  });

  it('openForWrite continues appending to the recovered manifest', async () => {
    const set = await create();
    await populate(set);
    await set.close();
    const r = await mustRead();
    const reopened = await VersionSet.openForWrite(options(), r, 100);
    sets.push(reopened);
    expect(reopened.nextFileNumber).toBe(100);
    expect(levelsView(reopened.current.levels)).toEqual(levelsView(r.levels));
    await reopened.logAndApply(edit({ deletedFiles: [{ level: 1, number: 4 }] }));
    const again = await mustRead();
    expect(again.edits).toBe(5);
    expect(again.levels[1]!.map((f) => f.number)).toEqual([5]);
    expect(again.nextFileNumber).toBe(100);
  });

  it('a read-only version set refuses edits', async () => {
    const set = await create();
    await populate(set);
    const ro = VersionSet.fromRecovered(options(), await mustRead());
    await expect(ro.logAndApply(edit())).rejects.toThrow(AssertionError);
  });
});

describe('VersionSet: damaged manifests and CURRENT', () => {
  it('a torn last edit is reported, and openForWrite cuts it off', async () => {
    const set = await create();
    await populate(set);
    await set.close();
    const path = join(dir, 'MANIFEST-000001');
    const intact = fs.readFileSync(path);
    const next = encodeRecord(MANIFEST_RECORD_EDIT, Buffer.from([1, 9]));
    fs.appendFileSync(path, next.subarray(0, next.length - 1)); // payload cut short

    const r = await mustRead();
    expect(r.edits).toBe(4);
    expect(r.validEnd).toBe(intact.length);
    expect(r.tornTail).toMatchObject({ file: path, offset: intact.length, droppedBytes: next.length - 1 });
    expect(r.logNumber).toBe(5); // the torn edit (logNumber 9) is not applied
    // reading does not change the file
    expect(fs.statSync(path).size).toBe(intact.length + next.length - 1);

    const reopened = await VersionSet.openForWrite(options(), r, 0);
    sets.push(reopened);
    expect(fs.readFileSync(path).equals(intact)).toBe(true);
    await reopened.logAndApply(edit({ logNumber: 8 }));
    const again = await mustRead();
    expect(again.tornTail).toBeUndefined();
    expect(again.edits).toBe(5);
    expect(again.logNumber).toBe(8);
  });

  it('a partial header at the end is a torn tail too', async () => {
    const set = await create();
    await populate(set);
    await set.close();
    fs.appendFileSync(join(dir, 'MANIFEST-000001'), Buffer.from([1, 2, 3]));
    const r = await mustRead();
    expect(r.tornTail?.droppedBytes).toBe(3);
    expect(r.edits).toBe(4);
  });

  it('a bad checksum in a middle record is corruption naming the manifest and the record', async () => {
    const set = await create();
    await populate(set);
    await set.close();
    const path = join(dir, 'MANIFEST-000001');
    const data = fs.readFileSync(path);
    const recs = scanRecords(data, path, false).records;
    expect(recs.length).toBe(4);
    const victim = recs[1]!;
    data[victim.offset + 16 + 1] = data[victim.offset + 16 + 1]! ^ 0x01;
    fs.writeFileSync(path, data);
    const err = await readManifest(nodeVfs, dir).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CorruptionError);
    expect((err as CorruptionError).file).toBe(path);
    expect((err as CorruptionError).offset).toBe(victim.offset);
  });

  it('an edit that decodes but does not apply is corruption at its record', async () => {
    const set = await create();
    await populate(set);
    await set.close();
    const path = join(dir, 'MANIFEST-000001');
    const size = fs.statSync(path).size;
    // delete a table that is not there: tag 4, level 3, number 77
    fs.appendFileSync(path, encodeRecord(MANIFEST_RECORD_EDIT, Buffer.from([4, 3, 77])));
    const err = await readManifest(nodeVfs, dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorruptionError);
    expect((err as CorruptionError).offset).toBe(size);
    // an unknown record type
    fs.truncateSync(path, size);
    fs.appendFileSync(path, encodeRecord(2, Buffer.alloc(0)));
    const err2 = await readManifest(nodeVfs, dir).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(CorruptionError);
    expect((err2 as CorruptionError).message).toMatch(/record type 2/);
  });

  it('a manifest with no complete edit is corruption', async () => {
    await create();
    fs.writeFileSync(join(dir, 'MANIFEST-000001'), Buffer.alloc(0));
    await expect(readManifest(nodeVfs, dir)).rejects.toBeInstanceOf(CorruptionError);
  });

  it.each([
    ['empty', ''],
    ['garbage', 'hello\n'],
    ['missing newline', 'MANIFEST-000001 crc32c=00000000'],
    ['bad checksum', 'MANIFEST-000001 crc32c=00000000\n'],
    ['checksum of another name', encodeCurrent('MANIFEST-000002').toString().replace('000002', '000001')],
  ])('CURRENT %s is corruption', async (_name, text) => {
    await create();
    fs.writeFileSync(join(dir, 'CURRENT'), text);
    const err = await readManifest(nodeVfs, dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorruptionError);
    expect((err as CorruptionError).file).toBe(join(dir, 'CURRENT'));
  });

  it('CURRENT naming a manifest that does not exist is corruption', async () => {
    await create();
    fs.writeFileSync(join(dir, 'CURRENT'), encodeCurrent('MANIFEST-000009'));
    const err = await readManifest(nodeVfs, dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorruptionError);
    expect((err as CorruptionError).message).toMatch(/MANIFEST-000009/);
  });
});

describe('VersionSet: write failures', () => {
  it('a failed manifest sync rejects the edit, keeps the current version and stops further edits', async () => {
    const vfs = new FaultVfs();
    const set = await create(vfs);
    await populate(set);
    const before = set.current;
    const beforeLevels = levelsView(before.levels);
    const beforeLog = set.logNumber;
    vfs.inject({ op: 'sync', path: 'MANIFEST', when: { nth: 1 } });

    const n = set.newFileNumber();
    const err = await set
      .logAndApply(edit({ logNumber: 50, newFiles: [{ level: 0, file: table(n, 'a', 'b') }] }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IoError);
    expect((err as IoError).cause).toBeInstanceOf(InjectedFault);
    expect(vfs.faultsFired).toBe(1);
    expect(set.current).toBe(before);
    expect(levelsView(set.current.levels)).toEqual(beforeLevels);
    expect(set.logNumber).toBe(beforeLog);
    expect(set.isLive(n)).toBe(false);
    expect(set.failed).toBe(true);

    // the fault was one-shot, but the set refuses edits until reopened
    const later = await set.logAndApply(edit({ logNumber: 51 })).catch((e: unknown) => e);
    expect(later).toBeInstanceOf(BackgroundError);
    expect((later as BackgroundError).code).toBe('BackgroundError');
    expect((later as BackgroundError).cause).toBe(err);
    await expect(set.logAndApply(edit())).rejects.toBeInstanceOf(BackgroundError);
    expect(set.current).toBe(before);
  });

  it('a failed manifest write (torn) rejects, and a reopen cuts the torn record', async () => {
    const vfs = new FaultVfs();
    const set = await create(vfs);
    await populate(set);
    const size = set.manifestBytes;
    vfs.inject({ op: 'write', path: 'MANIFEST', when: { nth: 1 }, tornBytes: 10 });
    await expect(set.logAndApply(edit({ logNumber: 99 }))).rejects.toBeInstanceOf(IoError);
    await expect(set.logAndApply(edit())).rejects.toBeInstanceOf(BackgroundError);
    const r = await mustRead();
    expect(r.tornTail).toMatchObject({ offset: size, droppedBytes: 10 });
    expect(r.logNumber).toBe(5);
  });

  it('forceRewrite writes a new manifest, swaps CURRENT and deletes the old one', async () => {
    const set = await create();
    await populate(set);
    const before = await mustRead();
    const expectedNumber = set.nextFileNumber;
    await set.forceRewrite();
    expect(set.manifestRewrites).toBe(1);
    expect(set.manifestNumber).toBe(expectedNumber);
    const name = `MANIFEST-${String(expectedNumber).padStart(6, '0')}`;
    expect(manifests()).toEqual([name]);
    expect(currentText()).toBe(encodeCurrent(name).toString('latin1'));
    expect(fs.existsSync(join(dir, 'CURRENT.tmp'))).toBe(false);

    const after = await mustRead();
    expect(after.manifestNumber).toBe(expectedNumber);
    expect(after.edits).toBe(1); // one snapshot edit
    expect(levelsView(after.levels)).toEqual(levelsView(before.levels));
    expect(after.logNumber).toBe(before.logNumber);
    expect(after.lastVersion).toBe(before.lastVersion);
    expect(after.nextFileNumber).toBeGreaterThan(expectedNumber);
    expect(after.validEnd).toBe(set.manifestBytes);

    // edits continue in the new manifest
    await set.logAndApply(edit({ deletedFiles: [{ level: 1, number: 5 }] }));
    const latest = await mustRead();
    expect(latest.edits).toBe(2);
    expect(latest.levels[1]!.map((f) => f.number)).toEqual([4]);
    // a rewrite does not make any table obsolete
    expect(obsolete.sort()).toEqual([2, 3, 5]);
  });

  it('the manifest is rewritten automatically once it outgrows maxManifestBytes', async () => {
    const set = await create(nodeVfs, 1024);
    let last = 0;
    for (let i = 0; i < 40; i++) {
      last = set.newFileNumber();
      await set.logAndApply(
        edit({ logNumber: i, newFiles: [{ level: 0, file: table(last, `k${i}`, `k${i}z`) }] }),
      );
    }
    expect(set.manifestRewrites).toBeGreaterThan(0);
    expect(manifests()).toEqual([set.manifestName]);
    const r = await mustRead();
    expect(r.levels[0]!.length).toBe(40);
    expect(r.levels[0]![0]!.number).toBe(last); // L0 newest first
    expect(r.logNumber).toBe(39);
  });

  it('a failed rename of CURRENT.tmp during a rewrite leaves CURRENT on the old, complete manifest', async () => {
    const vfs = new FaultVfs();
    const set = await create(vfs);
    await populate(set);
    const before = await mustRead();
    const oldName = set.manifestName;
    vfs.inject({ op: 'rename', path: 'CURRENT.tmp', when: { nth: 1 } });

    const err = await set.forceRewrite().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IoError);
    expect((err as IoError).op).toBe('rename');
    expect(set.manifestName).toBe(oldName);
    expect(set.manifestRewrites).toBe(0);
    expect(currentText()).toBe(encodeCurrent(oldName).toString('latin1'));
    expect(fs.existsSync(join(dir, oldName))).toBe(true);

    const after = await mustRead();
    expect(after.manifestNumber).toBe(before.manifestNumber);
    expect(after.edits).toBe(before.edits);
    expect(after.tornTail).toBeUndefined();
    expect(levelsView(after.levels)).toEqual(levelsView(before.levels));
    // which manifest a crash would have left live is unknown, so edits stop
    await expect(set.logAndApply(edit())).rejects.toBeInstanceOf(BackgroundError);
  });

  it('a failed automatic rewrite does not make an edit that was logged and installed look failed', async () => {
    const vfs = new FaultVfs();
    const set = await create(vfs, 1024);
    vfs.inject({ op: 'rename', path: 'CURRENT.tmp', when: { nth: 1 } });
    let added = 0;
    let version = set.current;
    // grow the manifest past 1 KiB; the edit that crosses the limit triggers the failing rewrite
    while (set.manifestRewrites === 0 && !set.failed) {
      added = set.newFileNumber();
      version = await set.logAndApply(
        edit({ newFiles: [{ level: 0, file: table(added, `k${added}`, `k${added}z`) }] }),
      );
    }
    expect(vfs.faultsFired).toBe(1);
    expect(set.failed).toBe(true);
    // the crossing edit resolved: it is installed and it is in the (old, still live) manifest
    expect(set.current).toBe(version);
    expect(set.isLive(added)).toBe(true);
    const r = await mustRead();
    expect(r.levels[0]!.map((f) => f.number)).toContain(added);
    expect(levelsView(r.levels)).toEqual(levelsView(set.current.levels));
    // later edits are refused until reopen
    await expect(set.logAndApply(edit())).rejects.toBeInstanceOf(BackgroundError);
  });

  it('a crash between the CURRENT swap and its directory sync leaves a readable manifest', async () => {
    const vfs = new FaultVfs();
    const set = await create(vfs);
    await populate(set);
    const before = await mustRead();
    // the rewrite syncs the directory twice: after creating the new manifest, then after the rename
    vfs.inject({ op: 'syncDir', when: { nth: 2 } });
    await expect(set.forceRewrite()).rejects.toBeInstanceOf(IoError);
    await vfs.crash({ loseUnsynced: true });
    sets = [];
    const after = await readManifest(new FaultVfs(), dir);
    expect(after).toBeDefined();
    expect(levelsView(after!.levels)).toEqual(levelsView(before.levels));
    expect(after!.logNumber).toBe(before.logNumber);
  });

  it('a failure while writing the new manifest leaves the old one live and edits working', async () => {
    const vfs = new FaultVfs();
    const set = await create(vfs);
    await populate(set);
    const oldName = set.manifestName;
    const next = set.nextFileNumber;
    // fail the sync of the new manifest (the first manifest sync after arming is the rewrite's)
    vfs.inject({ op: 'sync', path: `MANIFEST-${String(next).padStart(6, '0')}`, when: { nth: 1 } });
    await set.forceRewrite(); // swallowed: the old manifest is intact and still live
    expect(set.manifestRewrites).toBe(0);
    expect(set.failed).toBe(false);
    expect(set.manifestName).toBe(oldName);
    expect(manifests()).toEqual([oldName]); // the half-written new one is removed
    await set.logAndApply(edit({ logNumber: 77 }));
    expect((await mustRead()).logNumber).toBe(77);
  });
});
