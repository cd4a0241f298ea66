/**
 * The value log: large values live in append-only segments, and the LSM holds 12-byte pointers
 * to them (WiscKey-style key-value separation), so flushes and compactions move small entries.
 *
 * - Writes: a commit group's value records are appended to the active segment before the WAL
 *   records that point at them, and with a sync both are fsynced, the value log first.
 * - Every open starts a fresh segment on first use; an old segment is never appended to again,
 *   so a torn tail left by a crash is simply never referenced (nothing in the WAL points past a
 *   record that was fully written).
 * - Reads check both record checksums and that the record holds the key the pointer came from.
 * - Segments are removed only by GC (see `vlog-gc.ts`), through the manifest.
 */

import { join } from 'node:path';
import { CorruptionError, IoError } from '../errors.js';
import { RECORD_HEADER_BYTES, writeRecordHeader } from '../record/log-format.js';
import type { Vfs, VfsFile } from '../vfs/vfs.js';
import {
  type DecodedRecord,
  decodeValueRecord,
  sameBytes,
  type ValuePointer,
  VLOG_RECORD_VALUE,
  writePointer,
} from './vlog-format.js';

/** One value waiting to be appended by a commit group. */
export interface PendingValue {
  /** Record payload: key length, internal key, value. */
  payload: Buffer;
  /** Where the pointer to the record goes once its place is known. */
  pointer: Buffer;
}

/** Bytes GC reads at once when it walks a segment. */
const SCAN_WINDOW_BYTES = 4 << 20;
/** No record is larger than a memtable, which is at most 1 GiB. */
const MAX_RECORD_BYTES = 1 << 30;

export function vlogFileName(n: number): string {
  return `${String(n).padStart(6, '0')}.vlog`;
}

export function parseVlogFileName(name: string): number | undefined {
  const m = /^(\d{6,})\.vlog$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

interface Segment {
  number: number;
  file: VfsFile;
  size: number;
}

export class ValueLog {
  private readonly vfs: Vfs;
  private readonly dir: string;
  private readonly segmentBytes: number;
  private readonly newFileNumber: () => number;
  private readonly segments = new Map<number, Segment>();
  private active: Segment | undefined;
  private unsynced = false;
  bytesWritten = 0;
  recordsWritten = 0;

  private constructor(vfs: Vfs, dir: string, segmentBytes: number, newFileNumber: () => number) {
    this.vfs = vfs;
    this.dir = dir;
    this.segmentBytes = segmentBytes;
    this.newFileNumber = newFileNumber;
  }

  /**
   * Opens the segments among `names` (a listing of the workdir) for reading. Segments the
   * manifest says GC deleted are removed (a crash can come between the edit and the unlink) unless
   * `readOnly`. Returns the log and the names it removed.
   */
  static async open(options: {
    vfs: Vfs;
    dir: string;
    names: readonly string[];
    deleted: ReadonlySet<number>;
    segmentBytes: number;
    newFileNumber: () => number;
    readOnly: boolean;
  }): Promise<{ log: ValueLog; removed: string[] }> {
    const log = new ValueLog(options.vfs, options.dir, options.segmentBytes, options.newFileNumber);
    const removed: string[] = [];
    try {
      for (const name of options.names) {
        const n = parseVlogFileName(name);
        if (n === undefined) continue;
        const path = join(options.dir, name);
        if (options.deleted.has(n)) {
          if (!options.readOnly) {
            await options.vfs.unlink(path);
            removed.push(name);
          }
          continue;
        }
        let file: VfsFile;
        try {
          file = await options.vfs.open(path, 'read');
        } catch (err) {
          throw new IoError('open', path, err);
        }
        log.segments.set(n, { number: n, file, size: file.size() });
      }
    } catch (err) {
      await log.close().catch(() => undefined);
      throw err;
    }
    return { log, removed };
  }

  /** Numbers and sizes of every segment, oldest first. */
  list(): { number: number; size: number; active: boolean }[] {
    return [...this.segments.values()]
      .sort((a, b) => a.number - b.number)
      .map((s) => ({ number: s.number, size: s.size, active: s === this.active }));
  }

  get activeSegment(): number | undefined {
    return this.active?.number;
  }

  has(segment: number): boolean {
    return this.segments.has(segment);
  }

  /** Seals the active segment (fsync) and starts a new one whose directory entry is durable. */
  private async rotate(): Promise<Segment> {
    if (this.active !== undefined) await this.syncActive();
    const number = this.newFileNumber();
    const path = join(this.dir, vlogFileName(number));
    let file: VfsFile;
    try {
      file = await this.vfs.open(path, 'createExclusive');
      await this.vfs.syncDir(this.dir);
    } catch (err) {
      throw new IoError('create', path, err);
    }
    const segment = { number, file, size: 0 };
    this.segments.set(number, segment);
    this.active = segment;
    return segment;
  }

  /**
   * Appends a commit group's values and writes each one's pointer. Starts a new segment when this
   * is the first write since open or the active one would grow past its size.
   */
  async append(values: readonly PendingValue[]): Promise<void> {
    let bytes = 0;
    for (const v of values) bytes += RECORD_HEADER_BYTES + v.payload.length;
    let segment = this.active;
    if (segment === undefined || (segment.size > 0 && segment.size + bytes > this.segmentBytes)) {
      segment = await this.rotate();
    }
    const headers = Buffer.allocUnsafe(values.length * RECORD_HEADER_BYTES);
    const chunks: Buffer[] = [];
    let offset = segment.size;
    for (let i = 0; i < values.length; i++) {
      const v = values[i]!;
      const header = headers.subarray(i * RECORD_HEADER_BYTES, (i + 1) * RECORD_HEADER_BYTES);
      writeRecordHeader(headers, i * RECORD_HEADER_BYTES, VLOG_RECORD_VALUE, v.payload);
      chunks.push(header, v.payload);
      const length = RECORD_HEADER_BYTES + v.payload.length;
      writePointer(v.pointer, 0, { segment: segment.number, offset, length });
      offset += length;
    }
    const path = join(this.dir, vlogFileName(segment.number));
    try {
      segment.file.writevSync(chunks, segment.size);
    } catch (err) {
      throw new IoError('write', path, err);
    }
    segment.size = offset;
    this.unsynced = true;
    this.bytesWritten += bytes;
    this.recordsWritten += values.length;
  }

  private async syncActive(): Promise<void> {
    if (this.active === undefined || !this.unsynced) return;
    try {
      await this.active.file.sync();
    } catch (err) {
      throw new IoError('sync', join(this.dir, vlogFileName(this.active.number)), err);
    }
    this.unsynced = false;
  }

  /** fsyncs what was appended since the last sync. */
  sync(): Promise<void> {
    return this.syncActive();
  }

  /**
   * The value `pointer` leads to, as a fresh buffer the caller may keep. Throws
   * `CorruptionError` when the record is damaged, missing, or holds another key than `key`.
   */
  read(pointer: ValuePointer, key: Uint8Array): Buffer {
    const record = this.readRecord(pointer);
    if (!sameBytes(record.key, key)) {
      throw new CorruptionError(
        join(this.dir, vlogFileName(pointer.segment)),
        pointer.offset,
        'value record holds a different key than the pointer to it',
      );
    }
    return record.value;
  }

  /** Reads and checks the record at `pointer`. */
  readRecord(pointer: ValuePointer): DecodedRecord {
    const path = join(this.dir, vlogFileName(pointer.segment));
    const segment = this.segments.get(pointer.segment);
    if (segment === undefined) {
      throw new CorruptionError(path, pointer.offset, `value log segment ${pointer.segment} does not exist`);
    }
    if (pointer.offset + pointer.length > segment.size) {
      throw new CorruptionError(
        path,
        pointer.offset,
        `value record of ${pointer.length} bytes runs past the segment end`,
      );
    }
    const raw = Buffer.allocUnsafe(pointer.length);
    let n: number;
    try {
      n = segment.file.readAt(raw, pointer.offset);
    } catch (err) {
      throw new IoError('read', path, err);
    }
    if (n !== pointer.length) throw new CorruptionError(path, pointer.offset, 'value record is truncated');
    return decodeValueRecord(raw, path, pointer.offset);
  }

  /**
   * Every complete record of `segment` in order, with its offset, read in large windows; stops
   * quietly at a torn tail (a crash can leave one; nothing points there). For GC.
   */
  *records(segment: number): Generator<{ offset: number; length: number; record: DecodedRecord }> {
    const s = this.segments.get(segment);
    if (s === undefined) return;
    const path = join(this.dir, vlogFileName(segment));
    let window = Buffer.alloc(0);
    let windowStart = 0;
    let offset = 0;
    const bytesAt = (at: number, length: number): Buffer | undefined => {
      if (at + length > s.size) return undefined;
      if (at < windowStart || at + length > windowStart + window.length) {
        window = Buffer.allocUnsafe(Math.min(s.size - at, Math.max(length, SCAN_WINDOW_BYTES)));
        try {
          s.file.readAt(window, at);
        } catch (err) {
          throw new IoError('read', path, err);
        }
        windowStart = at;
      }
      return window.subarray(at - windowStart, at - windowStart + length);
    };
    while (offset + RECORD_HEADER_BYTES <= s.size) {
      const header = bytesAt(offset, RECORD_HEADER_BYTES);
      if (header === undefined) return;
      const length = RECORD_HEADER_BYTES + header.readUInt32LE(4);
      const raw = length <= MAX_RECORD_BYTES ? bytesAt(offset, length) : undefined;
      if (raw === undefined) return; // torn tail (or a damaged length at the end)
      let record: DecodedRecord;
      try {
        record = decodeValueRecord(raw, path, offset);
      } catch (err) {
        // A damaged record at the very end is a torn append; anywhere else it is corruption.
        if (err instanceof CorruptionError && offset + length >= s.size) return;
        throw err;
      }
      yield { offset, length, record };
      offset += length;
    }
  }

  /** Closes and deletes `segment` (GC has made sure nothing needs it). */
  async deleteSegment(segment: number): Promise<void> {
    const s = this.segments.get(segment);
    if (s === undefined) return;
    if (s === this.active) throw new Error(`cannot delete the active value log segment ${segment}`);
    this.segments.delete(segment);
    await s.file.close().catch(() => undefined);
    await this.vfs.unlink(join(this.dir, vlogFileName(segment)));
  }

  async close(): Promise<void> {
    const errors: unknown[] = [];
    try {
      await this.syncActive();
    } catch (err) {
      errors.push(err);
    }
    for (const s of this.segments.values()) await s.file.close().catch((err: unknown) => errors.push(err));
    this.segments.clear();
    this.active = undefined;
    if (errors.length > 0) throw errors[0];
  }
}
