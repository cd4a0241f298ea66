/**
 * The manifest and the chain of versions it describes.
 *
 * The manifest (`MANIFEST-NNNNNN`) is a log of version edits in the record framing of
 * `record/log-format.ts`; `CURRENT` names the live one. Every edit is written and fsynced before it
 * takes effect in memory, so a change the engine acts on (deleting a WAL segment, a compacted
 * table) is always on disk first. When the manifest grows past a threshold it is rewritten as one
 * snapshot edit into a new file and `CURRENT` is swapped atomically.
 *
 * A failed manifest write leaves the file's tail unknown; the set then refuses further edits
 * (`BackgroundError`) until the database is reopened, where replay cuts the torn tail.
 */

import { join } from 'node:path';
import { BackgroundError, CorruptionError, IoError } from '../errors.js';
import { encodeRecord, scanRecords, type TornTail } from '../record/log-format.js';
import { manifestFileName } from '../util/filenames.js';
import { assert } from '../util/invariants.js';
import { AsyncMutex } from '../util/mutex.js';
import type { Vfs, VfsFile } from '../vfs/vfs.js';
import { readCurrent, writeCurrent } from './current-file.js';
import { applyEditToLevels, NUM_LEVELS, Version } from './version.js';
import { decodeEdit, emptyEdit, encodeEdit, MANIFEST_RECORD_EDIT, type VersionEdit } from './version-edit.js';

export interface VersionSetOptions {
  vfs: Vfs;
  dir: string;
  /** Rewrite the manifest once it exceeds this many bytes. */
  maxManifestBytes: number;
  /** Called when a table is no longer listed by any live version; the owner deletes it. */
  onObsoleteTable: (fileNumber: number) => void;
}

/** State read back from a manifest. */
export interface RecoveredManifest {
  manifestNumber: number;
  levels: ReturnType<typeof applyEditToLevels>;
  logNumber: number;
  nextFileNumber: number;
  lastVersion: bigint;
  vlog: VlogState;
  validEnd: number;
  edits: number;
  tornTail?: TornTail;
}

/** What the manifest knows of the value log: segments GC deleted, garbage found per segment. */
export interface VlogState {
  deleted: Set<number>;
  discard: Map<number, number>;
}

/** Folds an edit's value log changes into `state`. */
function applyVlogEdit(state: VlogState, edit: VersionEdit): void {
  for (const d of edit.vlogDiscard ?? [])
    state.discard.set(d.segment, (state.discard.get(d.segment) ?? 0) + d.bytes);
  for (const n of edit.vlogDeleted ?? []) {
    state.deleted.add(n);
    state.discard.delete(n);
  }
}

/** Reads and replays the manifest CURRENT names, without changing anything on disk. */
export async function readManifest(vfs: Vfs, dir: string): Promise<RecoveredManifest | undefined> {
  const name = await readCurrent(vfs, dir);
  if (name === undefined) return undefined;
  const path = join(dir, name);
  if (!(await vfs.exists(path))) {
    throw new CorruptionError(join(dir, 'CURRENT'), 0, `CURRENT names ${name}, which does not exist`);
  }
  let data: Buffer;
  try {
    data = await vfs.readFile(path);
  } catch (err) {
    throw new IoError('read', path, err);
  }
  const scan = scanRecords(data, path, true);
  if (scan.records.length === 0) throw new CorruptionError(path, 0, 'manifest holds no complete edit');
  let levels = applyEditToLevels(
    Array.from({ length: NUM_LEVELS }, () => []),
    emptyEdit(),
  );
  let logNumber = 0;
  let nextFileNumber = 0;
  let lastVersion = 0n;
  const vlog: VlogState = { deleted: new Set(), discard: new Map() };
  for (const record of scan.records) {
    if (record.type !== MANIFEST_RECORD_EDIT) {
      throw new CorruptionError(path, record.offset, `unknown manifest record type ${record.type}`);
    }
    let edit: VersionEdit;
    try {
      edit = decodeEdit(record.payload);
      levels = applyEditToLevels(levels, edit);
    } catch (err) {
      throw new CorruptionError(path, record.offset, (err as Error).message);
    }
    if (edit.logNumber !== undefined) logNumber = Math.max(logNumber, edit.logNumber);
    if (edit.nextFileNumber !== undefined) nextFileNumber = Math.max(nextFileNumber, edit.nextFileNumber);
    if (edit.lastVersion !== undefined && edit.lastVersion > lastVersion) lastVersion = edit.lastVersion;
    applyVlogEdit(vlog, edit);
  }
  const manifestNumber = Number(name.slice('MANIFEST-'.length));
  const result: RecoveredManifest = {
    manifestNumber,
    levels,
    logNumber,
    nextFileNumber: Math.max(nextFileNumber, manifestNumber + 1),
    lastVersion,
    vlog,
    validEnd: scan.validEnd,
    edits: scan.records.length,
  };
  if (scan.tornTail) result.tornTail = scan.tornTail;
  return result;
}

export class VersionSet {
  private readonly vfs: Vfs;
  private readonly dir: string;
  private readonly maxManifestBytes: number;
  private readonly onObsoleteTable: (fileNumber: number) => void;
  private readonly mutex = new AsyncMutex();
  /** Number of live versions listing each table. */
  private readonly tableRefs = new Map<number, number>();
  private currentVersion!: Version;
  private manifestFile: VfsFile | undefined;
  private manifestSize = 0;
  private failure: unknown;

  manifestNumber = 0;
  logNumber = 0;
  nextFileNumber = 2;
  /** Highest default-CF version recorded in the manifest. */
  lastVersion = 0n;
  /** Value log state (see `VlogState`). */
  vlog: VlogState = { deleted: new Set(), discard: new Map() };
  manifestRewrites = 0;

  private constructor(options: VersionSetOptions) {
    this.vfs = options.vfs;
    this.dir = options.dir;
    this.maxManifestBytes = options.maxManifestBytes;
    this.onObsoleteTable = options.onObsoleteTable;
  }

  /** A version set over recovered state, without a writable manifest (read-only opens). */
  static fromRecovered(options: VersionSetOptions, recovered: RecoveredManifest): VersionSet {
    const set = new VersionSet(options);
    set.manifestNumber = recovered.manifestNumber;
    set.logNumber = recovered.logNumber;
    set.nextFileNumber = recovered.nextFileNumber;
    set.lastVersion = recovered.lastVersion;
    set.vlog = recovered.vlog;
    set.manifestSize = recovered.validEnd;
    set.install(set.makeVersion(recovered.levels));
    return set;
  }

  /**
   * Makes recovered state writable: cuts a torn tail off the manifest and opens it for appends.
   * `minNextFileNumber` bumps the counter past files found on disk (WAL segments are created
   * before any edit mentions them).
   */
  static async openForWrite(
    options: VersionSetOptions,
    recovered: RecoveredManifest,
    minNextFileNumber: number,
  ): Promise<VersionSet> {
    const set = VersionSet.fromRecovered(options, recovered);
    set.nextFileNumber = Math.max(set.nextFileNumber, minNextFileNumber);
    const path = join(options.dir, manifestFileName(recovered.manifestNumber));
    try {
      set.manifestFile = await options.vfs.open(path, 'readwrite');
      if (set.manifestFile.size() > recovered.validEnd) {
        await set.manifestFile.truncate(recovered.validEnd);
        await set.manifestFile.sync();
      }
    } catch (err) {
      await set.manifestFile?.close().catch(() => undefined);
      throw new IoError('open for append', path, err);
    }
    if (set.manifestSize > set.maxManifestBytes) await set.rewrite();
    return set;
  }

  /** Creates the manifest of a new, empty database and points CURRENT at it. */
  static async create(options: VersionSetOptions): Promise<VersionSet> {
    const set = new VersionSet(options);
    set.manifestNumber = 1;
    set.nextFileNumber = 2;
    set.install(set.makeVersion(Array.from({ length: NUM_LEVELS }, () => [])));
    await set.writeNewManifest(1);
    return set;
  }

  get current(): Version {
    return this.currentVersion;
  }

  get manifestBytes(): number {
    return this.manifestSize;
  }

  get manifestName(): string {
    return manifestFileName(this.manifestNumber);
  }

  /** True when a manifest write failed and edits are refused. */
  get failed(): boolean {
    return this.failure !== undefined;
  }

  newFileNumber(): number {
    return this.nextFileNumber++;
  }

  private makeVersion(levels: ReturnType<typeof applyEditToLevels>): Version {
    const version = new Version(levels, (v) => this.release(v));
    for (const { file } of version.allFiles()) {
      this.tableRefs.set(file.number, (this.tableRefs.get(file.number) ?? 0) + 1);
    }
    return version;
  }

  private release(version: Version): void {
    for (const { file } of version.allFiles()) {
      const n = (this.tableRefs.get(file.number) ?? 0) - 1;
      assert(n >= 0, () => `table ${file.number} reference count below zero`);
      if (n === 0) {
        this.tableRefs.delete(file.number);
        this.onObsoleteTable(file.number);
      } else {
        this.tableRefs.set(file.number, n);
      }
    }
  }

  private install(version: Version): void {
    version.ref();
    const old = this.currentVersion as Version | undefined;
    this.currentVersion = version;
    old?.unref();
  }

  /** True when some live version lists table `fileNumber`. */
  isLive(fileNumber: number): boolean {
    return this.tableRefs.has(fileNumber);
  }

  /**
   * Writes `edit` to the manifest (fsynced), then installs the resulting version. Edits are
   * serialised. Throws `BackgroundError` if an earlier manifest write failed.
   */
  logAndApply(edit: VersionEdit): Promise<Version> {
    return this.mutex.run(async () => {
      if (this.failure !== undefined) throw new BackgroundError(this.failure);
      assert(this.manifestFile !== undefined, 'logAndApply on a read-only version set');
      const levels = applyEditToLevels(this.currentVersion.levels, edit);
      if (edit.logNumber !== undefined) assert(edit.logNumber >= this.logNumber, 'log number went backwards');
      edit.nextFileNumber = this.nextFileNumber;
      if (edit.lastVersion === undefined || edit.lastVersion < this.lastVersion)
        edit.lastVersion = this.lastVersion;
      const record = encodeRecord(MANIFEST_RECORD_EDIT, encodeEdit(edit));
      const path = join(this.dir, this.manifestName);
      try {
        await this.manifestFile.write(record, this.manifestSize);
        await this.manifestFile.sync();
      } catch (err) {
        this.failure = new IoError('append edit to', path, err);
        throw this.failure;
      }
      this.manifestSize += record.length;
      if (edit.logNumber !== undefined) this.logNumber = edit.logNumber;
      this.lastVersion = edit.lastVersion;
      applyVlogEdit(this.vlog, edit);
      const version = this.makeVersion(levels);
      this.install(version);
      // The edit is durable and installed, so it must not be reported as failed: callers undo their
      // side of an edit that rejects. A rewrite failure that leaves CURRENT uncertain has already
      // set `failure`, which stops the next edit with BackgroundError.
      if (this.manifestSize > this.maxManifestBytes) await this.rewrite().catch(() => undefined);
      return version;
    });
  }

  /** The whole current state as one edit. */
  private snapshotEdit(): VersionEdit {
    const edit = emptyEdit();
    edit.isSnapshot = true;
    edit.logNumber = this.logNumber;
    edit.nextFileNumber = this.nextFileNumber;
    edit.lastVersion = this.lastVersion;
    for (const { level, file } of this.currentVersion.allFiles()) edit.newFiles.push({ level, file });
    edit.vlogDeleted = [...this.vlog.deleted].sort((a, b) => a - b);
    edit.vlogDiscard = [...this.vlog.discard].map(([segment, bytes]) => ({ segment, bytes }));
    return edit;
  }

  /** Writes a snapshot into manifest `number`, swaps CURRENT to it and makes it the live one. */
  private async writeNewManifest(number: number): Promise<void> {
    const name = manifestFileName(number);
    const path = join(this.dir, name);
    const record = encodeRecord(MANIFEST_RECORD_EDIT, encodeEdit(this.snapshotEdit()));
    let file: VfsFile;
    try {
      file = await this.vfs.open(path, 'createTruncate');
    } catch (err) {
      throw new IoError('create', path, err);
    }
    try {
      await file.write(record, 0);
      await file.sync();
      await this.vfs.syncDir(this.dir);
    } catch (err) {
      await file.close().catch(() => undefined);
      await this.vfs.unlink(path).catch(() => undefined);
      throw new IoError('write', path, err);
    }
    try {
      await writeCurrent(this.vfs, this.dir, name);
    } catch (err) {
      // Whether the rename reached the disk is unknown, so neither manifest can be trusted to be
      // the one CURRENT names after a crash: stop taking edits until reopen.
      await file.close().catch(() => undefined);
      this.failure = err;
      throw err;
    }
    const old = this.manifestFile;
    const oldNumber = this.manifestNumber;
    this.manifestFile = file;
    this.manifestSize = record.length;
    this.manifestNumber = number;
    if (old !== undefined) {
      await old.close().catch(() => undefined);
      if (oldNumber !== number)
        await this.vfs.unlink(join(this.dir, manifestFileName(oldNumber))).catch(() => undefined);
    }
  }

  /** Rewrites the manifest as a snapshot into a new file. */
  private async rewrite(): Promise<void> {
    const number = this.newFileNumber();
    try {
      await this.writeNewManifest(number);
      this.manifestRewrites++;
    } catch (err) {
      if (this.failure !== undefined) throw err;
      // The old manifest is intact and still live; a later edit retries the rewrite.
    }
  }

  /** Forces a manifest rewrite (maintenance and tests). */
  forceRewrite(): Promise<void> {
    return this.mutex.run(() => this.rewrite());
  }

  async close(): Promise<void> {
    await this.mutex.run(async () => {
      const file = this.manifestFile;
      this.manifestFile = undefined;
      await file?.close();
    });
  }
}
