/**
 * Read-only description of a workdir from its files alone (manifest, table properties, WAL
 * segment sizes), for `nokv manifest` and `nokv sst`. Opens nothing for writing, takes no lock,
 * and works while another process has the database open.
 */

import { join } from 'node:path';
import { DirLock } from '../db/dir-lock.js';
import { readModeFile } from '../db/mode-file.js';
import { InvalidArgumentError } from '../errors.js';
import {
  cfName,
  internalKeyCf,
  internalKeyUserKey,
  internalKeyVersion,
  MAX_VERSION,
} from '../keys/internal-key.js';
import { NUM_LEVELS } from '../manifest/version.js';
import { readManifest } from '../manifest/version-set.js';
import type { TornTail } from '../record/log-format.js';
import { describeKey } from '../util/bytes.js';
import { parseFileName } from '../util/filenames.js';
import { nodeVfs } from '../vfs/node-vfs.js';
import type { Vfs } from '../vfs/vfs.js';

export interface KeyBound {
  cf: string;
  /** Printable text or 0x-hex. */
  key: string;
  /** Decimal version, or 'end' for the exclusive end of a range tombstone. */
  version: string;
}

export interface TableReport {
  number: number;
  file: string;
  sizeBytes: number;
  smallest: KeyBound;
  largest: KeyBound;
  entries: number;
  deletions: number;
  rangeDeletions: number;
  minVersion: string;
  maxVersion: string;
  createdAt: string;
}

export interface LevelReport {
  level: number;
  tables: TableReport[];
  sizeBytes: number;
}

export interface WorkdirReport {
  dir: string;
  mode: string;
  /** Process holding the lock, if the database is open somewhere. */
  lockedBy: { pid: number; host: string } | null;
  manifest: {
    file: string;
    edits: number;
    sizeBytes: number;
    logNumber: number;
    nextFileNumber: number;
    lastVersion: string;
    tornTail: TornTail | null;
  };
  levels: LevelReport[];
  walSegments: { number: number; file: string; sizeBytes: number; replayed: boolean }[];
  valueLog: {
    /** Segments on disk, oldest first (each read-write open appends to a new one). */
    segments: {
      number: number;
      file: string;
      sizeBytes: number;
      discardBytes: number;
      discardRatio: number;
    }[];
    /** The newest segment and how far it is written: where the log's head was at last close. */
    head: { segment: number; offset: number } | null;
    /** Segments GC has deleted (from the manifest). */
    collectedSegments: number;
    /** Segments the manifest says were collected but are still on disk (removed at the next read-write open). */
    pendingDeletes: number[];
  };
  /** Engine files nothing references (removed by the next read-write open). */
  unreferenced: string[];
}

function bound(ikey: Buffer): KeyBound {
  const version = internalKeyVersion(ikey);
  return {
    cf: cfName(internalKeyCf(ikey)),
    key: describeKey(internalKeyUserKey(ikey), 64),
    version: version === MAX_VERSION ? 'end' : version.toString(),
  };
}

/** Describes the workdir `dir`; throws when it holds no database or its manifest is damaged. */
export async function inspectWorkdir(dir: string, vfs: Vfs = nodeVfs): Promise<WorkdirReport> {
  if (!(await vfs.exists(dir)))
    throw new InvalidArgumentError('InvalidArgument', `workdir '${dir}' does not exist`);
  const recovered = await readManifest(vfs, dir);
  if (recovered === undefined)
    throw new InvalidArgumentError('InvalidArgument', `workdir '${dir}' holds no NoKV database (no CURRENT)`);
  const mode = (await readModeFile(vfs, dir))?.mode ?? 'standalone';
  const names = await vfs.readdir(dir);
  const sizes = new Map<string, number>();
  for (const name of names) {
    const file = await vfs.open(join(dir, name), 'read').catch(() => undefined);
    if (file === undefined) continue;
    sizes.set(name, file.size());
    await file.close();
  }
  const live = new Set<number>();
  const levels: LevelReport[] = [];
  for (let level = 0; level < NUM_LEVELS; level++) {
    const tables: TableReport[] = recovered.levels[level]!.map((f) => {
      live.add(f.number);
      return {
        number: f.number,
        file: `${String(f.number).padStart(6, '0')}.sst`,
        sizeBytes: f.size,
        smallest: bound(f.smallest),
        largest: bound(f.largest),
        entries: f.entries,
        deletions: f.deletions,
        rangeDeletions: f.rangeDeletions,
        minVersion: f.minVersion.toString(),
        maxVersion: f.maxVersion.toString(),
        createdAt: new Date(f.createdAtMs).toISOString(),
      };
    });
    levels.push({ level, tables, sizeBytes: tables.reduce((n, t) => n + t.sizeBytes, 0) });
  }
  const walSegments: WorkdirReport['walSegments'] = [];
  const vlogSegments: WorkdirReport['valueLog']['segments'] = [];
  const pendingDeletes: number[] = [];
  const unreferenced: string[] = [];
  const manifestName = `MANIFEST-${String(recovered.manifestNumber).padStart(6, '0')}`;
  for (const name of names.sort()) {
    const p = parseFileName(name);
    if (p === undefined) continue;
    if (p.kind === 'wal') {
      const replayed = p.number >= recovered.logNumber;
      walSegments.push({ number: p.number, file: name, sizeBytes: sizes.get(name) ?? 0, replayed });
      if (!replayed) unreferenced.push(name);
    } else if (p.kind === 'vlog') {
      const sizeBytes = sizes.get(name) ?? 0;
      if (recovered.vlog.deleted.has(p.number)) {
        pendingDeletes.push(p.number);
        continue;
      }
      const discardBytes = recovered.vlog.discard.get(p.number) ?? 0;
      vlogSegments.push({
        number: p.number,
        file: name,
        sizeBytes,
        discardBytes,
        discardRatio: sizeBytes === 0 ? 0 : Math.round(Math.min(1, discardBytes / sizeBytes) * 1000) / 1000,
      });
    } else if ((p.kind === 'table' && !live.has(p.number)) || p.kind === 'temp' || p.kind === 'currentTmp') {
      unreferenced.push(name);
    } else if (p.kind === 'manifest' && name !== manifestName) {
      unreferenced.push(name);
    }
  }
  return {
    dir,
    mode,
    lockedBy: DirLock.holder(dir) ?? null,
    manifest: {
      file: manifestName,
      edits: recovered.edits,
      sizeBytes: sizes.get(manifestName) ?? 0,
      logNumber: recovered.logNumber,
      nextFileNumber: recovered.nextFileNumber,
      lastVersion: recovered.lastVersion.toString(),
      tornTail: recovered.tornTail ?? null,
    },
    levels,
    walSegments,
    valueLog: {
      segments: vlogSegments,
      head:
        vlogSegments.length === 0
          ? null
          : { segment: vlogSegments.at(-1)!.number, offset: vlogSegments.at(-1)!.sizeBytes },
      collectedSegments: recovered.vlog.deleted.size,
      pendingDeletes,
    },
    unreferenced,
  };
}
