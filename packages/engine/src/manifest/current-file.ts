/**
 * `CURRENT` names the live manifest: `MANIFEST-NNNNNN crc32c=XXXXXXXX\n`, the checksum covering
 * the name. It is replaced atomically: write `CURRENT.tmp`, fsync, rename over `CURRENT`, fsync
 * the directory. A crash before the rename leaves the old `CURRENT`, naming a complete manifest.
 */

import { join } from 'node:path';
import { CorruptionError, IoError } from '../errors.js';
import { crc32c } from '../util/crc32c.js';
import { CURRENT_FILE, CURRENT_TMP_FILE } from '../util/filenames.js';
import type { Vfs } from '../vfs/vfs.js';

export function encodeCurrent(manifestName: string): Buffer {
  const crc = crc32c(Buffer.from(manifestName)).toString(16).padStart(8, '0');
  return Buffer.from(`${manifestName} crc32c=${crc}\n`);
}

/** Parses CURRENT's contents; throws `CorruptionError` naming `path`. */
export function decodeCurrent(data: Buffer, path: string): string {
  const text = data.toString('latin1');
  const m = /^(MANIFEST-\d{6,}) crc32c=([0-9a-f]{8})\n$/.exec(text);
  if (!m) {
    throw new CorruptionError(
      path,
      0,
      text.length === 0 ? 'CURRENT is empty' : 'CURRENT is not in the expected form',
    );
  }
  const name = m[1]!;
  if (crc32c(Buffer.from(name)).toString(16).padStart(8, '0') !== m[2]) {
    throw new CorruptionError(path, 0, 'CURRENT checksum mismatch');
  }
  return name;
}

/** Reads CURRENT; undefined when it does not exist. */
export async function readCurrent(vfs: Vfs, dir: string): Promise<string | undefined> {
  const path = join(dir, CURRENT_FILE);
  if (!(await vfs.exists(path))) return undefined;
  let data: Buffer;
  try {
    data = await vfs.readFile(path);
  } catch (err) {
    throw new IoError('read', path, err);
  }
  return decodeCurrent(data, path);
}

/** Atomically points CURRENT at `manifestName`. */
export async function writeCurrent(vfs: Vfs, dir: string, manifestName: string): Promise<void> {
  const tmp = join(dir, CURRENT_TMP_FILE);
  const step = async (op: string, path: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      throw new IoError(op, path, err);
    }
  };
  const file = await (async () => {
    try {
      return await vfs.open(tmp, 'createTruncate');
    } catch (err) {
      throw new IoError('create', tmp, err);
    }
  })();
  try {
    await step('write', tmp, () => file.write(encodeCurrent(manifestName), 0));
    await step('sync', tmp, () => file.sync());
  } finally {
    await file.close().catch(() => undefined);
  }
  await step('rename', tmp, () => vfs.rename(tmp, join(dir, CURRENT_FILE)));
  await step('sync directory', dir, () => vfs.syncDir(dir));
}
