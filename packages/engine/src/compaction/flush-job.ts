/**
 * Flush: writes a frozen memtable as one level-0 table. Everything goes in, deletes and range
 * tombstones included (dropping is compaction's job). The table is fsynced; the caller syncs the
 * directory before a manifest edit names it.
 *
 * In a worker thread the memtable is not at hand, so `flushWalSegment` rebuilds its contents from
 * its WAL segment, which holds exactly the memtable's writes (the segment rotates with the
 * memtable and is fsynced when it does): sorting the decoded entries is cheaper than inserting
 * them into a memtable.
 */

import { join } from 'node:path';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { type Entry, entryKind, KIND_RANGE_DELETE } from '../keys/entry.js';
import {
  compareInternalKeys,
  internalKeyCf,
  internalKeyUserKey,
  internalKeyVersion,
} from '../keys/internal-key.js';
import type { FileMetadata } from '../manifest/version-edit.js';
import type { Memtable } from '../memtable/memtable.js';
import type { RangeTombstone } from '../rangedel/tombstone-index.js';
import { TableBuilder, type TableBuilderOptions } from '../sstable/table-builder.js';
import { TableFileWriter } from '../sstable/table-file-writer.js';
import { tableFileName } from '../util/filenames.js';
import type { Vfs } from '../vfs/vfs.js';
import { readWalSegment } from '../wal/wal.js';

export interface FlushTask {
  dir: string;
  walNumber: number;
  /** File number of the table to write. */
  outputNumber: number;
  builder: TableBuilderOptions;
  createdAtMs: number;
}

/** Entries written between yields when running on the event loop. */
const ENTRIES_PER_YIELD = 4096;

/** Writes `mem` as table `number`; returns its metadata. Deletes the partial file on failure. */
export function writeMemtableTable(
  vfs: Vfs,
  dir: string,
  number: number,
  mem: Memtable,
  builderOptions: TableBuilderOptions,
  createdAtMs: number,
): Promise<FileMetadata> {
  return writeTable(vfs, dir, number, memtableEntries(mem), mem.rangeTombstones, builderOptions, createdAtMs);
}

function* memtableEntries(mem: Memtable): Generator<Entry> {
  const it = mem.iterator();
  for (it.seekToFirst(); it.valid(); it.next()) {
    yield { key: it.key(), meta: it.meta(), expiresAt: it.expiresAt(), value: it.value() };
  }
}

/** Writes sorted point entries and range tombstones as table `number`. */
async function writeTable(
  vfs: Vfs,
  dir: string,
  number: number,
  entries: Iterable<Entry>,
  tombstones: readonly RangeTombstone[],
  builderOptions: TableBuilderOptions,
  createdAtMs: number,
): Promise<FileMetadata> {
  const writer = await TableFileWriter.create(vfs, join(dir, tableFileName(number)));
  try {
    const builder = new TableBuilder(builderOptions);
    let n = 0;
    for (const e of entries) {
      builder.add(e.key, e.meta, e.expiresAt, e.value);
      if (++n % ENTRIES_PER_YIELD === 0) {
        await writer.write(builder.takeOutput());
        await yieldToEventLoop();
      }
    }
    for (const t of tombstones) builder.addTombstone(t);
    const p = builder.finish(createdAtMs);
    await writer.write(builder.takeOutput());
    await writer.finish();
    return {
      number,
      size: builder.fileSize,
      smallest: p.smallest,
      largest: p.largest,
      minVersion: p.minVersion,
      maxVersion: p.maxVersion,
      entries: p.entries,
      deletions: p.deletions,
      rangeDeletions: p.rangeDeletions,
      rawKeyBytes: p.rawKeyBytes,
      rawValueBytes: p.rawValueBytes,
      createdAtMs,
    };
  } catch (err) {
    await writer.abort();
    throw err;
  }
}

/**
 * The WAL segment's writes in internal-key order, as the memtable held them: a stable sort, then
 * the last write of each internal key (a rewrite of the same version replaces it). Range
 * tombstones come back separately.
 */
function sortSegment(batches: readonly { entries: Entry[] }[]): {
  points: Entry[];
  tombstones: RangeTombstone[];
} {
  const all: Entry[] = [];
  const tombstones: RangeTombstone[] = [];
  for (const batch of batches) {
    for (const e of batch.entries) {
      if (entryKind(e.meta) === KIND_RANGE_DELETE) {
        tombstones.push({
          cf: internalKeyCf(e.key),
          start: internalKeyUserKey(e.key),
          end: e.value,
          version: internalKeyVersion(e.key),
        });
      } else {
        all.push(e);
      }
    }
  }
  all.sort((a, b) => compareInternalKeys(a.key, b.key));
  const points: Entry[] = [];
  for (let i = 0; i < all.length; i++) {
    const next = all[i + 1];
    if (next !== undefined && compareInternalKeys(all[i]!.key, next.key) === 0) continue;
    points.push(all[i]!);
  }
  return { points, tombstones };
}

/** Rebuilds the memtable of WAL segment `task.walNumber` and writes it; undefined if it is empty. */
export async function flushWalSegment(vfs: Vfs, task: FlushTask): Promise<FileMetadata | undefined> {
  const segment = await readWalSegment(vfs, task.dir, task.walNumber, false);
  const { points, tombstones } = sortSegment(segment.batches);
  if (points.length === 0 && tombstones.length === 0) return undefined;
  return writeTable(vfs, task.dir, task.outputNumber, points, tombstones, task.builder, task.createdAtMs);
}
