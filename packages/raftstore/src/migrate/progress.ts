import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { MigrateError } from './errors.js';

/** The checkpoint file a migration writes after every milestone (spec §5.2). */
export const PROGRESS_FILE = 'MIGRATION_PROGRESS.json';

export const MIGRATION_STAGES = [
  'mode-preparing-written',
  'seed-snapshot-exported',
  'local-catalog-persisted',
  'raft-seed-initialized',
  'seeded-finalized',
  'expand-rollout-started',
  'expand-target-pending',
  'expand-target-hosted',
  'transfer-leader-started',
  'transfer-leader-finished',
  'remove-peer-started',
  'remove-peer-finished',
] as const;
export type MigrationStage = (typeof MIGRATION_STAGES)[number];

export interface MigrationProgress {
  stage: MigrationStage;
  storeId: number;
  regionId: number;
  peerId: number;
  targetStoreId?: number;
  targetPeerId?: number;
  completedTargets?: number;
  totalTargets?: number;
  /** RFC 3339, UTC. */
  updatedAt: string;
}

function digest(body: string): string {
  return createHash('sha256').update(body).digest('hex').slice(0, 16);
}

/** Reads the checkpoint; undefined when there is none. A damaged file is an error, never ignored. */
export async function readProgress(workdir: string): Promise<MigrationProgress | undefined> {
  const path = join(workdir, PROGRESS_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let parsed: { checksum?: unknown; progress?: unknown };
  try {
    parsed = JSON.parse(text) as typeof parsed;
  } catch {
    throw new MigrateError('CorruptCheckpoint', `${path} is not valid JSON`);
  }
  const body = JSON.stringify(parsed.progress);
  if (typeof parsed.checksum !== 'string' || parsed.checksum !== digest(body)) {
    throw new MigrateError('CorruptCheckpoint', `${path} fails its checksum; it was damaged or edited`);
  }
  const p = parsed.progress as MigrationProgress;
  if (!MIGRATION_STAGES.includes(p.stage)) {
    throw new MigrateError('CorruptCheckpoint', `${path} names an unknown stage ${JSON.stringify(p.stage)}`);
  }
  return p;
}

/** Writes the checkpoint atomically (tmp, fsync, rename, directory fsync). */
export async function writeProgress(
  workdir: string,
  progress: Omit<MigrationProgress, 'updatedAt'>,
): Promise<MigrationProgress> {
  const full: MigrationProgress = { ...progress, updatedAt: new Date().toISOString() };
  const body = JSON.stringify(full);
  await writeFileDurably(
    join(workdir, PROGRESS_FILE),
    `${JSON.stringify({ progress: full, checksum: digest(body) }, null, 2)}\n`,
  );
  return full;
}

/** tmp + fsync + rename + directory fsync: the file is either the old or the new one after a crash. */
export async function writeFileDurably(path: string, data: string | Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** What to run next, from the workdir's mode and the last checkpoint. */
export function resumeHint(mode: string, progress: MigrationProgress | undefined): string {
  if (mode === 'standalone') return "run 'nokv migrate plan', then 'nokv migrate init'";
  if (mode === 'preparing') {
    const ids = progress
      ? ` --store ${progress.storeId} --region ${progress.regionId} --peer ${progress.peerId}`
      : '';
    return `an init was interrupted${progress ? ` after '${progress.stage}'` : ''}: re-run 'nokv migrate init --workdir <dir>${ids}'`;
  }
  if (mode === 'seeded') return "seeded: start the store with 'nokv serve' on this workdir";
  if (!progress) return 'cluster mode: expand the region with nokv migrate expand';
  switch (progress.stage) {
    case 'expand-rollout-started':
    case 'expand-target-pending':
      return `an expand was interrupted toward store ${progress.targetStoreId} peer ${progress.targetPeerId}: re-run 'nokv migrate expand' with the same targets`;
    case 'transfer-leader-started':
      return `a leader transfer to peer ${progress.targetPeerId} was interrupted: re-run 'nokv migrate transfer-leader'`;
    case 'remove-peer-started':
      return `a peer removal of peer ${progress.targetPeerId} was interrupted: re-run 'nokv migrate remove-peer'`;
    default:
      return 'cluster mode: expand, transfer leadership or remove peers as needed';
  }
}
