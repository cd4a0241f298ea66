/**
 * A version: an immutable snapshot of which tables make up each level. Level 0 holds flushed
 * memtables, newest first, and its tables may overlap. Levels 1..6 are sorted by smallest key
 * and their tables do not overlap; no user key is split across two tables of one level.
 *
 * Readers pin a version (`ref`/`unref`) for as long as they may touch its tables; a table file is
 * deleted only when no live version lists it (see `VersionSet`).
 */

import {
  compareBaseKeys,
  compareInternalKeys,
  internalKeyVersion,
  MAX_VERSION,
  VERSION_SUFFIX_BYTES,
} from '../keys/internal-key.js';
import { assert, invariantsEnabled } from '../util/invariants.js';
import type { FileMetadata, VersionEdit } from './version-edit.js';

export const NUM_LEVELS = 7;

export class Version {
  readonly levels: readonly (readonly FileMetadata[])[];
  private refs = 0;
  private readonly onFree: (v: Version) => void;

  constructor(levels: FileMetadata[][], onFree: (v: Version) => void) {
    this.levels = levels;
    this.onFree = onFree;
    if (invariantsEnabled) checkLevels(levels);
  }

  ref(): void {
    this.refs++;
  }

  unref(): void {
    assert(this.refs > 0, 'version unref below zero');
    if (--this.refs === 0) this.onFree(this);
  }

  get refCount(): number {
    return this.refs;
  }

  /** Every table of every level. */
  *allFiles(): Generator<{ level: number; file: FileMetadata }> {
    for (let level = 0; level < NUM_LEVELS; level++) {
      for (const file of this.levels[level]!) yield { level, file };
    }
  }

  levelBytes(level: number): number {
    let n = 0;
    for (const f of this.levels[level]!) n += f.size;
    return n;
  }

  /**
   * For levels >= 1: the one table that could hold `seekKey` (the first whose largest key is at or
   * after it), if its range starts at or before the key's base key.
   */
  findFile(level: number, seekKey: Buffer): FileMetadata | undefined {
    const files = this.levels[level]!;
    let lo = 0;
    let hi = files.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const largest = files[mid]!.largest;
      const c = compareInternalKeys(largest, seekKey);
      // A table whose largest key is the end sentinel of a clipped range tombstone, (k, MAX),
      // ends before k: it holds no version of k even when the seek key is that same sentinel.
      if (c < 0 || (c === 0 && isEndSentinel(largest))) lo = mid + 1;
      else hi = mid;
    }
    const file = files[lo];
    if (file === undefined || compareBaseKeys(file.smallest, seekKey) > 0) return undefined;
    return file;
  }

  /**
   * Tables of `level` whose base-key range meets [smallest, largest] (internal keys; compared by
   * base key, inclusive, so every version of a boundary user key is included).
   */
  overlapping(level: number, smallest: Buffer, largest: Buffer): FileMetadata[] {
    return this.levels[level]!.filter((f) => rangesOverlap(f.smallest, f.largest, smallest, largest));
  }
}

/** True for the key (k, MAX_VERSION) that marks the exclusive end of a range tombstone. */
export function isEndSentinel(ikey: Buffer): boolean {
  return internalKeyVersion(ikey) === MAX_VERSION;
}

/** Base-key overlap of two inclusive internal-key ranges. */
export function rangesOverlap(aSmall: Buffer, aLarge: Buffer, bSmall: Buffer, bLarge: Buffer): boolean {
  return compareBaseKeys(aLarge, bSmall) >= 0 && compareBaseKeys(bLarge, aSmall) >= 0;
}

/** Sorts a level in place: level 0 newest (highest number) first, others by smallest key. */
export function sortLevel(level: number, files: FileMetadata[]): void {
  if (level === 0) files.sort((a, b) => b.number - a.number);
  else files.sort((a, b) => compareInternalKeys(a.smallest, b.smallest));
}

/**
 * Applies `edit` to `levels`, returning new level arrays. Throws `Error` with a reason when the
 * edit does not fit (deleting a table that is not there, adding one twice).
 */
export function applyEditToLevels(
  levels: readonly (readonly FileMetadata[])[],
  edit: VersionEdit,
): FileMetadata[][] {
  const next = levels.map((files) => [...files]);
  for (const d of edit.deletedFiles) {
    if (d.level < 0 || d.level >= NUM_LEVELS)
      throw new Error(`deleted table ${d.number} has bad level ${d.level}`);
    const files = next[d.level]!;
    const i = files.findIndex((f) => f.number === d.number);
    if (i < 0) throw new Error(`edit deletes table ${d.number} from L${d.level}, which does not hold it`);
    files.splice(i, 1);
  }
  for (const { level, file } of edit.newFiles) {
    if (level < 0 || level >= NUM_LEVELS) throw new Error(`new table ${file.number} has bad level ${level}`);
    if (file.smallest.length < VERSION_SUFFIX_BYTES + 1 || file.largest.length < VERSION_SUFFIX_BYTES + 1) {
      throw new Error(`new table ${file.number} has malformed bounds`);
    }
    for (const files of next) {
      if (files.some((f) => f.number === file.number))
        throw new Error(`edit adds table ${file.number} twice`);
    }
    next[level]!.push(file);
  }
  for (let level = 0; level < NUM_LEVELS; level++) sortLevel(level, next[level]!);
  return next;
}

/** Expensive check of the level invariants (runs when invariants are enabled). */
export function checkLevels(levels: readonly (readonly FileMetadata[])[]): void {
  for (let level = 0; level < levels.length; level++) {
    const files = levels[level]!;
    for (const f of files) {
      assert(
        compareInternalKeys(f.smallest, f.largest) <= 0,
        () => `table ${f.number} has smallest > largest`,
      );
    }
    if (level === 0) continue;
    for (let i = 1; i < files.length; i++) {
      const a = files[i - 1]!;
      const b = files[i]!;
      assert(
        compareInternalKeys(a.largest, b.smallest) < 0,
        () => `L${level} tables ${a.number} and ${b.number} overlap`,
      );
    }
  }
}
