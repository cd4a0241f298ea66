/**
 * `MODE.json` records which shape a workdir is in. Missing means `standalone`. The migration
 * protocol moves a workdir through `preparing` → `seeded` → `cluster`; a plain embedded open refuses
 * those modes so a half-migrated or cluster-owned workdir is never written behind raft's back.
 *
 *     {"mode":"seeded","storeId":1,"regionId":1,"peerId":1,"crc32c":"1a2b3c4d"}
 *
 * The checksum covers the JSON text of the other fields, in the order written.
 */

import { join } from 'node:path';
import { CorruptionError, IoError, ModeError } from '../errors.js';
import { crc32c } from '../util/crc32c.js';
import { MODE_FILE } from '../util/filenames.js';
import type { Vfs } from '../vfs/vfs.js';

export const WORKDIR_MODES = ['standalone', 'preparing', 'seeded', 'cluster'] as const;
export type WorkdirMode = (typeof WORKDIR_MODES)[number];

export interface ModeRecord {
  mode: WorkdirMode;
  storeId?: number;
  regionId?: number;
  peerId?: number;
}

const HINTS: Record<WorkdirMode, string> = {
  standalone: '',
  preparing: "a migration is in progress; run 'nokv migrate status' to see how to resume it",
  seeded: "it was seeded for a cluster; start it with 'nokv serve'",
  cluster: "it belongs to a cluster store; use 'nokv serve' or the cluster client",
};

function checksum(fields: ModeRecord): string {
  return crc32c(Buffer.from(JSON.stringify(fields)))
    .toString(16)
    .padStart(8, '0');
}

/** Reads MODE.json; undefined when absent. Throws `CorruptionError` when it is damaged. */
export async function readModeFile(vfs: Vfs, dir: string): Promise<ModeRecord | undefined> {
  const path = join(dir, MODE_FILE);
  if (!(await vfs.exists(path))) return undefined;
  let text: string;
  try {
    text = (await vfs.readFile(path)).toString('utf8');
  } catch (err) {
    throw new IoError('read', path, err);
  }
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new CorruptionError(path, 0, 'MODE.json is not valid JSON');
  }
  const { crc32c: stored, ...rest } = parsed;
  if (!WORKDIR_MODES.includes(rest.mode as WorkdirMode)) {
    throw new CorruptionError(path, 0, `MODE.json names an unknown mode ${JSON.stringify(rest.mode)}`);
  }
  const record = rest as unknown as ModeRecord;
  if (stored !== checksum(record)) throw new CorruptionError(path, 0, 'MODE.json checksum mismatch');
  return record;
}

/** Writes MODE.json atomically (tmp, fsync, rename, directory fsync). */
export async function writeModeFile(vfs: Vfs, dir: string, record: ModeRecord): Promise<void> {
  const path = join(dir, MODE_FILE);
  const tmp = `${path}.tmp`;
  const body = Buffer.from(JSON.stringify({ ...record, crc32c: checksum(record) }));
  try {
    const file = await vfs.open(tmp, 'createTruncate');
    try {
      await file.write(body, 0);
      await file.sync();
    } finally {
      await file.close();
    }
    await vfs.rename(tmp, path);
    await vfs.syncDir(dir);
  } catch (err) {
    throw new IoError('write', path, err);
  }
}

/** Throws `ModeError` unless `record`'s mode is allowed (standalone always is). */
export function checkMode(
  dir: string,
  record: ModeRecord | undefined,
  allowed: readonly WorkdirMode[],
): void {
  const mode = record?.mode ?? 'standalone';
  if (mode === 'standalone' || allowed.includes(mode)) return;
  throw new ModeError(dir, mode, HINTS[mode]);
}
