/**
 * Exclusive workdir lock. Node has no `flock`, so the lock is the `LOCK` file itself, created with
 * O_EXCL and holding the owner's pid and process start time:
 *
 *     {"pid":1234,"startTime":"98765","host":"box","acquiredAt":"2026-11-24T10:00:00.000Z"}
 *
 * A second open in the same process is refused through an in-process registry. A `LOCK` left by a
 * dead process (pid gone, or pid reused by a process with a different start time) is stale and is
 * taken over: the stale file is first renamed aside, so of two processes racing for it only one
 * wins the rename, and the loser re-checks and reports the lock as held.
 *
 * Locks go through the real filesystem (not the VFS): fault injection targets the data path, and
 * a simulated crash must be able to release the lock the way process death would.
 */

import * as fs from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { IoError, LockedError } from '../errors.js';
import { LOCK_FILE } from '../util/filenames.js';

interface LockInfo {
  pid: number;
  startTime: string;
  host: string;
  acquiredAt: string;
}

const heldInProcess = new Set<string>();

/** Start time of process `pid` from /proc (Linux), or undefined where unavailable. */
function processStartTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

function isAlive(info: LockInfo): boolean {
  if (info.host !== hostname()) return true; // cannot tell for another host: assume held
  try {
    process.kill(info.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  const start = processStartTime(info.pid);
  return start === undefined || info.startTime === '' || start === info.startTime;
}

function readLockInfo(path: string): LockInfo | undefined {
  try {
    const parsed = JSON.parse(fs.readFileSync(path, 'utf8')) as Partial<LockInfo>;
    if (typeof parsed.pid !== 'number') return undefined;
    return {
      pid: parsed.pid,
      startTime: String(parsed.startTime ?? ''),
      host: String(parsed.host ?? hostname()),
      acquiredAt: String(parsed.acquiredAt ?? ''),
    };
  } catch {
    return undefined;
  }
}

export class DirLock {
  readonly dir: string;
  private released = false;

  private constructor(dir: string) {
    this.dir = dir;
  }

  /** Takes the lock on `dir` (which must exist); throws `LockedError` when it is held. */
  static acquire(dir: string): DirLock {
    const key = resolve(dir);
    if (heldInProcess.has(key)) {
      throw new LockedError(dir, process.pid, 'it is already open in this process');
    }
    const path = join(dir, LOCK_FILE);
    const info: LockInfo = {
      pid: process.pid,
      startTime: processStartTime(process.pid) ?? '',
      host: hostname(),
      acquiredAt: new Date().toISOString(),
    };
    for (let attempt = 0; attempt < 3; attempt++) {
      // The lock appears whole or not at all: written to a private file, then linked into place
      // (link fails with EEXIST if LOCK exists), so no one ever reads a half-written LOCK.
      const tmp = `${path}.${process.pid}.${attempt}.tmp`;
      try {
        fs.writeFileSync(tmp, JSON.stringify(info), { flag: 'w', mode: 0o644 });
        const fd = fs.openSync(tmp, 'r');
        try {
          fs.fsyncSync(fd);
        } finally {
          fs.closeSync(fd);
        }
        fs.linkSync(tmp, path);
        heldInProcess.add(key);
        return new DirLock(key);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new IoError('create', path, err);
      } finally {
        fs.rmSync(tmp, { force: true });
      }
      const holder = readLockInfo(path);
      // Our own pid without a registry entry is a lock an abandoned (crash-simulated) open left.
      const ownAbandoned = holder !== undefined && holder.pid === process.pid && holder.host === hostname();
      if (holder !== undefined && !ownAbandoned && isAlive(holder)) {
        throw new LockedError(
          dir,
          holder.pid,
          `it is locked by process ${holder.pid} on ${holder.host} since ${holder.acquiredAt}`,
        );
      }
      // Stale (or unreadable) lock: move it aside; only one contender's rename succeeds.
      const aside = `${path}.stale-${process.pid}-${Date.now()}`;
      try {
        fs.renameSync(path, aside);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw new IoError('rename stale lock', path, err);
      }
      const moved = readLockInfo(aside);
      if (moved !== undefined && moved.pid !== process.pid && isAlive(moved)) {
        // Another process took the lock between our check and our rename: give it back.
        try {
          fs.linkSync(aside, path);
        } catch {
          // it already re-created one; either way the lock is held by someone else
        }
        fs.rmSync(aside, { force: true });
        throw new LockedError(dir, moved.pid, `it is locked by process ${moved.pid}`);
      }
      fs.rmSync(aside, { force: true });
    }
    throw new LockedError(
      dir,
      undefined,
      'the lock file keeps changing; another process is contending for it',
    );
  }

  /** Whether `dir` holds a LOCK file of a live process; `undefined` when unlocked. */
  static holder(dir: string): { pid: number; host: string } | undefined {
    const info = readLockInfo(join(dir, LOCK_FILE));
    if (info === undefined || !isAlive(info)) return undefined;
    return { pid: info.pid, host: info.host };
  }

  /** Releases the lock; idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    heldInProcess.delete(this.dir);
    try {
      fs.rmSync(join(this.dir, LOCK_FILE), { force: true });
    } catch {
      // a lock file we cannot remove is stale once this process exits
    }
  }

  /** Forgets the lock as if the process had died, leaving the LOCK file behind (crash tests). */
  abandon(): void {
    this.released = true;
    heldInProcess.delete(this.dir);
  }
}
