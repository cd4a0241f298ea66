/**
 * A read view: the memtables and the version a read runs against, plus the point-lookup and
 * visibility rules shared by `get` and the iterators.
 *
 * Versions can arrive out of order (the transaction layer writes explicit timestamps), so a point
 * lookup does not stop at the first source with a hit: it takes the highest version <= the read
 * version over every source, skipping any source whose max version cannot beat what it has. For
 * the default column family, whose versions grow with time, that skip prunes nearly everything
 * after the first hit. On equal versions the newer source wins (memtables, then level 0 newest
 * first, then levels 1..6).
 */

import { entryKind, isExpired, KIND_PUT } from '../keys/entry.js';
import {
  compareBaseKeys,
  encodeInternalKey,
  internalKeyVersion,
  VERSION_SUFFIX_BYTES,
} from '../keys/internal-key.js';
import type { Version } from '../manifest/version.js';
import type { FileMetadata } from '../manifest/version-edit.js';
import type { Memtable } from '../memtable/memtable.js';
import { maxCoveringVersionOf, type RangeTombstone, TombstoneIndex } from '../rangedel/tombstone-index.js';
import { bloomHash } from '../sstable/bloom.js';
import type { TableReader } from '../sstable/table-reader.js';

export interface TableSource {
  /** The open reader of table `fileNumber` (every table of a live version is open). */
  table(fileNumber: number): TableReader;
}

export interface ReadView {
  /** Newest first: the active memtable, then frozen ones from newest to oldest. */
  memtables: readonly Memtable[];
  version: Version;
  tables: TableSource;
}

export interface FoundEntry {
  key: Buffer;
  meta: number;
  expiresAt: number;
  value: Buffer;
  version: bigint;
}

const versionTombstones = new WeakMap<Version, TombstoneIndex>();

/** The range tombstone index of every table in `version` (built once per version). */
export function versionTombstoneIndex(version: Version, tables: TableSource): TombstoneIndex {
  let index = versionTombstones.get(version);
  if (index === undefined) {
    const all: RangeTombstone[] = [];
    for (const { file } of version.allFiles()) {
      if (file.rangeDeletions > 0) all.push(...tables.table(file.number).tombstones);
    }
    index = TombstoneIndex.build(all);
    versionTombstones.set(version, index);
  }
  return index;
}

/** Every tombstone index a read through `view` must consult. */
export function tombstoneIndexes(view: ReadView): TombstoneIndex[] {
  const out: TombstoneIndex[] = [];
  for (const m of view.memtables) {
    if (m.rangeTombstones.length > 0) out.push(m.tombstoneIndex());
  }
  const v = versionTombstoneIndex(view.version, view.tables);
  if (!v.isEmpty) out.push(v);
  return out;
}

function baseInRange(file: FileMetadata, seekKey: Buffer): boolean {
  return compareBaseKeys(file.smallest, seekKey) <= 0 && compareBaseKeys(seekKey, file.largest) <= 0;
}

/**
 * The newest point record (put or delete) of `userKey` with version <= `readVersion`, before
 * range tombstones and expiry are applied. Values are views: copy before keeping them.
 */
export function lookupNewest(
  view: ReadView,
  cf: number,
  userKey: Uint8Array,
  readVersion: bigint,
): FoundEntry | undefined {
  return lookupNewestAt(view, encodeInternalKey(cf, userKey, readVersion), readVersion);
}

/**
 * `lookupNewest` for a ready seek key `(cf, userKey, readVersion)`; the key is only read during
 * the call, so callers may pass a reused scratch buffer.
 */
export function lookupNewestAt(
  view: ReadView,
  seekKey: Buffer,
  readVersion: bigint,
  hash = bloomHash(seekKey, 0, seekKey.length - VERSION_SUFFIX_BYTES),
): FoundEntry | undefined {
  let best: FoundEntry | undefined;
  let bestVersion = -1n;
  for (const mem of view.memtables) {
    if (mem.maxVersion === undefined || mem.maxVersion <= bestVersion || mem.minVersion! > readVersion) {
      continue;
    }
    const node = mem.get(seekKey, hash);
    if (node !== undefined && node.version > bestVersion) {
      best = {
        key: node.key,
        meta: node.meta,
        expiresAt: node.expiresAt,
        value: node.value,
        version: node.version,
      };
      bestVersion = node.version;
    }
  }
  const levels = view.version.levels;
  const l0 = levels[0]!;
  for (let i = 0; i < l0.length; i++) {
    const file = l0[i]!;
    if (file.maxVersion <= bestVersion || file.minVersion > readVersion || !baseInRange(file, seekKey))
      continue;
    const found = probeTable(view.tables.table(file.number), seekKey, hash);
    if (found !== undefined && found.version > bestVersion) {
      best = found;
      bestVersion = found.version;
    }
  }
  for (let level = 1; level < levels.length; level++) {
    if (levels[level]!.length === 0) continue;
    const file = view.version.findFile(level, seekKey);
    if (file === undefined || file.maxVersion <= bestVersion || file.minVersion > readVersion) continue;
    const found = probeTable(view.tables.table(file.number), seekKey, hash);
    if (found !== undefined && found.version > bestVersion) {
      best = found;
      bestVersion = found.version;
    }
  }
  return best;
}

/**
 * Whether a found record is a live value for a reader at `readVersion`: a put, not expired, and
 * not hidden by a range tombstone the reader can see.
 */
export function isVisible(
  found: FoundEntry,
  cf: number,
  userKey: Uint8Array,
  readVersion: bigint,
  nowMs: number,
  tombstones: readonly TombstoneIndex[],
): boolean {
  if (entryKind(found.meta) !== KIND_PUT) return false;
  if (isExpired(found.expiresAt, nowMs)) return false;
  if (tombstones.length > 0 && maxCoveringVersionOf(tombstones, cf, userKey, readVersion) > found.version)
    return false;
  return true;
}

/** A table's newest version of the seek key's base key at or below its version (bloom first). */
function probeTable(table: TableReader, seekKey: Buffer, hash: number): FoundEntry | undefined {
  if (!table.mayContain(hash)) return undefined;
  const r = table.get(seekKey);
  if (r === undefined) return undefined;
  return {
    key: r.key,
    meta: r.meta,
    expiresAt: r.expiresAt,
    value: r.value,
    version: internalKeyVersion(r.key),
  };
}
