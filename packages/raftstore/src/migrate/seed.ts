import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RegionMeta } from '@nokv/proto';
import { decodeSnapshotPayload, type SnapshotPayload } from '../peer-storage/index.js';
import { MigrateError } from './errors.js';
import { writeFileDurably } from './progress.js';

/** Where `init` keeps the seed snapshot of a region (spec §3.4). */
export function seedDir(workdir: string, regionId: bigint): string {
  return join(workdir, 'RAFTSTORE_SNAPSHOTS', `region-${String(regionId).padStart(20, '0')}`);
}

export interface SeedManifest {
  regionId: string;
  entryCount: number;
  bytes: number;
  sha256: string;
  createdAt: string;
}

/** Writes the payload, then its manifest (the manifest's presence marks a complete seed). */
export async function writeSeed(
  workdir: string,
  region: RegionMeta,
  payload: Uint8Array,
  entryCount: number,
) {
  const dir = seedDir(workdir, region.id);
  await writeFileDurably(join(dir, 'snapshot.bin'), payload);
  const manifest: SeedManifest = {
    regionId: String(region.id),
    entryCount,
    bytes: payload.length,
    sha256: createHash('sha256').update(payload).digest('hex'),
    createdAt: new Date().toISOString(),
  };
  await writeFileDurably(join(dir, 'snapshot.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/**
 * Reads and verifies the seed snapshot: its manifest, the payload's SHA-256 and the payload's own
 * checksums. Undefined when no complete seed exists; `CorruptSeed` when one exists but is damaged.
 */
export async function readSeed(
  workdir: string,
  regionId: bigint,
): Promise<{ manifest: SeedManifest; payload: SnapshotPayload } | undefined> {
  const dir = seedDir(workdir, regionId);
  let manifest: SeedManifest;
  try {
    manifest = JSON.parse(await readFile(join(dir, 'snapshot.json'), 'utf8')) as SeedManifest;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new MigrateError('CorruptSeed', `seed manifest in ${dir} is unreadable: ${(err as Error).message}`);
  }
  let bytes: Buffer;
  try {
    bytes = await readFile(join(dir, 'snapshot.bin'));
  } catch (err) {
    throw new MigrateError('CorruptSeed', `seed payload in ${dir} is unreadable: ${(err as Error).message}`);
  }
  const sha = createHash('sha256').update(bytes).digest('hex');
  if (bytes.length !== manifest.bytes || sha !== manifest.sha256) {
    throw new MigrateError(
      'CorruptSeed',
      `seed payload in ${dir} does not match its manifest (size or SHA-256)`,
    );
  }
  let payload: SnapshotPayload;
  try {
    payload = decodeSnapshotPayload(bytes);
  } catch (err) {
    throw new MigrateError('CorruptSeed', `seed payload in ${dir} is damaged: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (payload.region.id !== regionId || payload.pairs.length !== manifest.entryCount) {
    throw new MigrateError('CorruptSeed', `seed payload in ${dir} does not describe region ${regionId}`);
  }
  return { manifest, payload };
}
