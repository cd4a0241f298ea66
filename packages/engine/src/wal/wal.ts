/**
 * WAL segments. Each memtable owns exactly one segment (`NNNNNN.wal`); the segment rotates only
 * when the memtable does, so a flushed memtable's segment can be deleted whole. Records use the
 * framing of `record/log-format.ts`; every record is one write request (`batch-codec.ts`).
 */

import { join } from 'node:path';
import { CorruptionError, IoError } from '../errors.js';
import type { Entry } from '../keys/entry.js';
import { scanRecords, type TornTail } from '../record/log-format.js';
import { walFileName } from '../util/filenames.js';
import type { Vfs, VfsFile } from '../vfs/vfs.js';
import { BatchDecodeError, decodeBatch, WAL_RECORD_WRITE_BATCH } from './batch-codec.js';

/** Appends records to one WAL segment. Not safe for concurrent appends: the commit loop owns it. */
export class WalWriter {
  readonly number: number;
  readonly path: string;
  private readonly file: VfsFile;
  private writeOffset: number;

  private constructor(number: number, file: VfsFile, offset: number) {
    this.number = number;
    this.path = file.path;
    this.file = file;
    this.writeOffset = offset;
  }

  /** Creates segment `number` and makes its directory entry durable. */
  static async create(vfs: Vfs, dir: string, number: number): Promise<WalWriter> {
    const path = join(dir, walFileName(number));
    let file: VfsFile;
    try {
      file = await vfs.open(path, 'createExclusive');
    } catch (err) {
      throw new IoError('create', path, err);
    }
    try {
      await vfs.syncDir(dir);
    } catch (err) {
      await file.close().catch(() => undefined);
      throw new IoError('sync directory', dir, err);
    }
    return new WalWriter(number, file, 0);
  }

  /** Reopens a recovered segment to append after its last valid record. */
  static async reopen(vfs: Vfs, dir: string, number: number, validEnd: number): Promise<WalWriter> {
    const path = join(dir, walFileName(number));
    try {
      const file = await vfs.open(path, 'readwrite');
      return new WalWriter(number, file, validEnd);
    } catch (err) {
      throw new IoError('open', path, err);
    }
  }

  /** Bytes written so far. */
  get size(): number {
    return this.writeOffset;
  }

  /**
   * Appends already-framed records (`bytes` in all) synchronously: a WAL append lands in the page
   * cache in microseconds. On failure the segment's tail is unknown; the caller stops writing.
   */
  appendSync(chunks: readonly Uint8Array[], bytes: number): void {
    try {
      this.file.writevSync(chunks, this.writeOffset);
    } catch (err) {
      throw new IoError('write', this.path, err);
    }
    this.writeOffset += bytes;
  }

  async sync(): Promise<void> {
    try {
      await this.file.sync();
    } catch (err) {
      throw new IoError('sync', this.path, err);
    }
  }

  async close(): Promise<void> {
    try {
      await this.file.close();
    } catch (err) {
      throw new IoError('close', this.path, err);
    }
  }
}

export interface ReplayedBatch {
  entries: Entry[];
  /** Offset of the record in the segment. */
  offset: number;
}

export interface ReplayedSegment {
  number: number;
  path: string;
  batches: ReplayedBatch[];
  /** End of the last valid record: where appends continue. */
  validEnd: number;
  tornTail?: TornTail;
}

/**
 * Reads and decodes a whole segment. `allowTornTail` is true only for the newest segment (older
 * ones were synced before the rotation that sealed them, so any damage there is corruption).
 * Does not modify the file.
 */
export async function readWalSegment(
  vfs: Vfs,
  dir: string,
  number: number,
  allowTornTail: boolean,
): Promise<ReplayedSegment> {
  const path = join(dir, walFileName(number));
  let data: Buffer;
  try {
    data = await vfs.readFile(path);
  } catch (err) {
    throw new IoError('read', path, err);
  }
  const scan = scanRecords(data, path, allowTornTail);
  const batches: ReplayedBatch[] = [];
  for (const record of scan.records) {
    if (record.type !== WAL_RECORD_WRITE_BATCH) {
      throw new CorruptionError(path, record.offset, `unknown WAL record type ${record.type}`);
    }
    try {
      batches.push({ entries: decodeBatch(record.payload), offset: record.offset });
    } catch (err) {
      if (err instanceof BatchDecodeError) throw new CorruptionError(path, record.offset, err.message);
      throw err;
    }
  }
  const result: ReplayedSegment = { number, path, batches, validEnd: scan.validEnd };
  if (scan.tornTail) result.tornTail = scan.tornTail;
  return result;
}
