/**
 * Opening a workdir: check the mode, take the lock, replay the manifest, open every table it
 * lists, replay the WAL segments the manifest has not covered into memtables, and remove files
 * nothing references. A read-only open does the same reads and changes nothing on disk: torn
 * tails are reported, not cut, and leftovers are left alone.
 *
 * Failure at any step closes what was opened and releases the lock; the error says what is wrong:
 * `Corruption` (with file and offset) for damaged or missing files, `Locked`, `ModeNotAllowed`.
 */

import { join } from 'node:path';
import { CorruptionError, InvalidArgumentError, IoError } from '../errors.js';
import { readManifest, VersionSet, type VersionSetOptions } from '../manifest/version-set.js';
import { Memtable } from '../memtable/memtable.js';
import { TableReader } from '../sstable/table-reader.js';
import { CURRENT_TMP_FILE, parseFileName, tableFileName, walFileName } from '../util/filenames.js';
import { ValueLog } from '../vlog/value-log.js';
import { readWalSegment, WalWriter } from '../wal/wal.js';
import { DirLock } from './dir-lock.js';
import { EngineCore } from './engine-core.js';
import { checkMode, readModeFile } from './mode-file.js';
import type { ResolvedOptions } from './options.js';

export async function recover(options: ResolvedOptions): Promise<EngineCore> {
  const started = performance.now();
  const { vfs, dir, readOnly } = options;
  const core = new EngineCore(options);
  if (readOnly) {
    if (!(await vfs.exists(dir))) {
      throw new InvalidArgumentError('InvalidArgument', `workdir '${dir}' does not exist`);
    }
  } else {
    try {
      await vfs.mkdirp(dir);
    } catch (err) {
      throw new IoError('create directory', dir, err);
    }
  }
  checkMode(dir, await readModeFile(vfs, dir), options.allowedModes);
  if (!readOnly) core.lock = DirLock.acquire(dir);
  try {
    await openState(core);
  } catch (err) {
    await teardown(core);
    throw err;
  }
  core.recovery.durationMs = performance.now() - started;
  return core;
}

/** Closes whatever a failed open managed to open, and releases the lock. */
async function teardown(core: EngineCore): Promise<void> {
  for (const t of core.tables.values()) await t.close().catch(() => undefined);
  core.tables.clear();
  await core.wal?.close().catch(() => undefined);
  await core.versions?.close().catch(() => undefined);
  await core.vlog?.close().catch(() => undefined);
  core.lock?.release();
}

async function openState(core: EngineCore): Promise<void> {
  const { vfs, dir, readOnly } = core.options;
  const names = await vfs.readdir(dir);
  const parsed = names.map((name) => ({ name, file: parseFileName(name) }));
  const setOptions: VersionSetOptions = {
    vfs,
    dir,
    maxManifestBytes: core.options.maxManifestBytes,
    onObsoleteTable: (n) => core.onObsoleteTable(n),
  };

  // A CURRENT.tmp is a swap that never happened (or already happened); CURRENT is authoritative.
  if (!readOnly && names.includes(CURRENT_TMP_FILE)) {
    await vfs.unlink(join(dir, CURRENT_TMP_FILE)).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        throw new IoError('remove', join(dir, CURRENT_TMP_FILE), err);
    });
    core.recovery.obsoleteFilesRemoved.push(CURRENT_TMP_FILE);
  }

  const recovered = await readManifest(vfs, dir);
  if (recovered === undefined) {
    const engineFiles = parsed.filter((p) => p.file && ['wal', 'table'].includes(p.file.kind));
    if (engineFiles.length > 0) {
      throw new CorruptionError(
        join(dir, 'CURRENT'),
        0,
        `CURRENT is missing but the workdir holds engine files (${engineFiles
          .slice(0, 5)
          .map((p) => p.name)
          .join(', ')})`,
      );
    }
    if (readOnly)
      throw new InvalidArgumentError('InvalidArgument', `workdir '${dir}' holds no NoKV database`);
    // Manifests without CURRENT and without any table or WAL are what a crash while creating the
    // database leaves behind: nothing was ever written, so start over.
    for (const p of parsed) {
      if (p.file?.kind === 'manifest') {
        await vfs.unlink(join(dir, p.name));
        core.recovery.obsoleteFilesRemoved.push(p.name);
      }
    }
    core.versions = await VersionSet.create(setOptions);
  } else {
    core.recovery.manifestEdits = recovered.edits;
    if (recovered.tornTail) {
      core.recovery.tornTails.push(recovered.tornTail);
      core.options.logger.warn(
        { ...recovered.tornTail },
        'manifest had a torn final edit; it was never applied',
      );
    }
    const maxOnDisk = Math.max(0, ...parsed.map((p) => p.file?.number ?? 0));
    core.versions = readOnly
      ? VersionSet.fromRecovered(setOptions, recovered)
      : await VersionSet.openForWrite(setOptions, recovered, maxOnDisk + 1);
  }
  core.lastVersion = core.versions.lastVersion;

  for (const { level, file } of core.versions.current.allFiles()) {
    const path = join(dir, tableFileName(file.number));
    if (!(await vfs.exists(path))) {
      throw new CorruptionError(
        path,
        0,
        `table ${file.number} (L${level}) is listed in ${core.versions.manifestName} but missing`,
      );
    }
    const reader = await TableReader.open(vfs, path, file.number, core.cache);
    core.tables.set(file.number, reader);
    if (reader.fileSize !== file.size) {
      throw new CorruptionError(
        path,
        0,
        `table is ${reader.fileSize} bytes; ${core.versions.manifestName} says ${file.size}`,
      );
    }
  }

  const { log, removed } = await ValueLog.open({
    vfs,
    dir,
    names,
    deleted: core.versions.vlog.deleted,
    segmentBytes: core.options.vlogSegmentBytes,
    newFileNumber: () => core.versions.newFileNumber(),
    readOnly,
  });
  core.vlog = log;
  core.recovery.obsoleteFilesRemoved.push(...removed);

  await replayWal(core, parsed);
  if (!readOnly) await removeObsoleteFiles(core, parsed);
  core.visibleVersion = core.lastVersion;
}

async function replayWal(
  core: EngineCore,
  parsed: { name: string; file: ReturnType<typeof parseFileName> }[],
): Promise<void> {
  const { vfs, dir, readOnly } = core.options;
  const logNumber = core.versions.logNumber;
  const segments = parsed
    .filter((p) => p.file?.kind === 'wal' && p.file.number >= logNumber)
    .map((p) => p.file!.number)
    .sort((a, b) => a - b);
  const memtables: Memtable[] = [];
  let lastValidEnd = 0;
  for (let i = 0; i < segments.length; i++) {
    const number = segments[i]!;
    const isNewest = i === segments.length - 1;
    const segment = await readWalSegment(vfs, dir, number, isNewest);
    if (segment.tornTail) {
      core.recovery.tornTails.push(segment.tornTail);
      core.options.logger.warn({ ...segment.tornTail, readOnly }, 'WAL segment had a torn tail; it was cut');
      if (!readOnly) {
        const file = await vfs.open(segment.path, 'readwrite');
        try {
          await file.truncate(segment.validEnd);
          await file.sync();
        } catch (err) {
          throw new IoError('truncate torn tail of', segment.path, err);
        } finally {
          await file.close().catch(() => undefined);
        }
      }
    }
    const mem = new Memtable(number);
    for (const batch of segment.batches) {
      core.recovery.walRecords++;
      for (const e of batch.entries) {
        mem.add(e);
        core.recovery.walEntries++;
      }
    }
    mem.walBytes = segment.validEnd;
    if (mem.maxDefaultVersion > core.lastVersion) core.lastVersion = mem.maxDefaultVersion;
    memtables.push(mem);
    lastValidEnd = segment.validEnd;
    core.recovery.walSegments++;
  }
  const active = memtables.pop();
  core.immutables.push(...memtables);
  if (readOnly) {
    core.memtable = active ?? new Memtable(0);
    return;
  }
  if (active !== undefined) {
    core.memtable = active;
    core.wal = await WalWriter.reopen(vfs, dir, active.walNumber, lastValidEnd);
  } else {
    const number = core.versions.newFileNumber();
    core.memtable = new Memtable(number);
    core.wal = await WalWriter.create(vfs, dir, number);
  }
}

/** Deletes files no live state references: flushed WAL segments, orphan tables, old manifests. */
async function removeObsoleteFiles(
  core: EngineCore,
  parsed: { name: string; file: ReturnType<typeof parseFileName> }[],
): Promise<void> {
  const { vfs, dir } = core.options;
  const logNumber = core.versions.logNumber;
  const live = new Set<number>();
  for (const { file } of core.versions.current.allFiles()) live.add(file.number);
  for (const { name, file } of parsed) {
    if (file === undefined) continue;
    const obsolete =
      (file.kind === 'wal' && file.number < logNumber && name !== walFileName(core.memtable.walNumber)) ||
      (file.kind === 'table' && !live.has(file.number)) ||
      file.kind === 'temp' ||
      (file.kind === 'manifest' && file.number !== core.versions.manifestNumber);
    if (!obsolete) continue;
    try {
      await vfs.unlink(join(dir, name));
      core.recovery.obsoleteFilesRemoved.push(name);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new IoError('remove obsolete file', join(dir, name), err);
    }
  }
}
