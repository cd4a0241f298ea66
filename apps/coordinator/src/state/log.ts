import { type FileHandle, open as openFile, readFile } from 'node:fs/promises';
import { crc32c } from '@node-rs/crc32';
import { CoordinatorError, corruption } from '../errors.js';

// The event log: one file per sequence number, `events-<seq>.log`.
//
//   file   = magic "NKVCLOG1" (8 bytes) ‖ seq u64 LE ‖ record*
//   record = length u32 LE ‖ type u8 ‖ payload (length bytes) ‖ crc32c(length ‖ type ‖ payload) u32 LE
//
// A record is durable once its append returned (write + fdatasync). Reading stops at a torn tail
// (an incomplete last record, a bad checksum on the very last record, or a zero-filled remainder):
// the caller cuts it. A bad checksum with more data after it is corruption.

export const LOG_MAGIC = Buffer.from('NKVCLOG1', 'latin1');
export const LOG_HEADER_BYTES = 16;
/** length + type before the payload, crc after it. */
export const RECORD_OVERHEAD = 9;
/** No event comes near this; a larger length is a damaged length field, not a torn write. */
export const MAX_RECORD_PAYLOAD = 16 * 1024 * 1024;

export interface LogRecord {
  type: number;
  payload: Uint8Array;
  /** Byte offset of the record in its file. */
  offset: number;
}

export interface ReadLogResult {
  seq: bigint;
  records: LogRecord[];
  /** Bytes up to the end of the last good record. */
  validBytes: number;
  /** Set when bytes after `validBytes` form a torn tail. */
  torn: { offset: number; bytes: number; reason: string } | undefined;
}

export function logFileName(seq: bigint): string {
  return `events-${seq.toString().padStart(20, '0')}.log`;
}

export function parseLogFileName(name: string): bigint | undefined {
  const m = /^events-(\d{20})\.log$/.exec(name);
  return m ? BigInt(m[1]!) : undefined;
}

export function encodeRecord(type: number, payload: Uint8Array): Buffer {
  if (!Number.isInteger(type) || type < 0 || type > 255) throw new Error(`record type ${type} is not a byte`);
  if (payload.length > MAX_RECORD_PAYLOAD) throw new Error(`record of ${payload.length} bytes is too large`);
  const out = Buffer.alloc(RECORD_OVERHEAD + payload.length);
  out.writeUInt32LE(payload.length, 0);
  out.writeUInt8(type, 4);
  out.set(payload, 5);
  out.writeUInt32LE(crc32c(out.subarray(0, 5 + payload.length)), 5 + payload.length);
  return out;
}

function logHeader(seq: bigint): Buffer {
  const b = Buffer.alloc(LOG_HEADER_BYTES);
  LOG_MAGIC.copy(b, 0);
  b.writeBigUInt64LE(seq, 8);
  return b;
}

function allZero(buf: Buffer, from: number): boolean {
  for (let i = from; i < buf.length; i++) if (buf[i] !== 0) return false;
  return true;
}

/** Parses a whole log file's bytes. @throws CoordinatorError `Corruption` naming `file` and the offset. */
export function parseLog(file: string, data: Buffer): ReadLogResult {
  if (data.length < LOG_HEADER_BYTES) {
    // A crash while creating the file: no record can be in it.
    if (allZero(data, 0) || LOG_MAGIC.subarray(0, data.length).equals(data.subarray(0, 8))) {
      return {
        seq: -1n,
        records: [],
        validBytes: 0,
        torn: { offset: 0, bytes: data.length, reason: 'incomplete file header' },
      };
    }
    throw corruption(file, 0, 'bad log file header');
  }
  if (!data.subarray(0, 8).equals(LOG_MAGIC)) throw corruption(file, 0, 'bad log file magic');
  const seq = data.readBigUInt64LE(8);
  const records: LogRecord[] = [];
  let off = LOG_HEADER_BYTES;
  const tornAt = (reason: string): ReadLogResult => ({
    seq,
    records,
    validBytes: off,
    torn: { offset: off, bytes: data.length - off, reason },
  });
  while (off < data.length) {
    if (allZero(data, off)) return tornAt('zero-filled tail');
    if (data.length - off < RECORD_OVERHEAD) return tornAt('incomplete record header');
    const len = data.readUInt32LE(off);
    if (len > MAX_RECORD_PAYLOAD) throw corruption(file, off, `record length ${len} exceeds the maximum`);
    const end = off + RECORD_OVERHEAD + len;
    if (end > data.length) return tornAt(`record of ${len} bytes runs past the end of the file`);
    const stored = data.readUInt32LE(end - 4);
    const actual = crc32c(data.subarray(off, end - 4));
    if (stored !== actual) {
      if (end === data.length) return tornAt('checksum mismatch on the last record');
      throw corruption(file, off, `record checksum mismatch (stored ${stored}, computed ${actual})`);
    }
    records.push({ type: data.readUInt8(off + 4), payload: data.subarray(off + 5, end - 4), offset: off });
    off = end;
  }
  return { seq, records, validBytes: off, torn: undefined };
}

export async function readLog(file: string): Promise<ReadLogResult> {
  return parseLog(file, await readFile(file));
}

/** Appends records to one log file; every append is fdatasync'ed before it resolves. */
export class LogWriter {
  private closed = false;

  private constructor(
    readonly file: string,
    readonly seq: bigint,
    private readonly fh: FileHandle,
    private size: number,
  ) {}

  /** Creates a new log file (fails if it exists); the caller fsyncs the directory. */
  static async create(file: string, seq: bigint): Promise<LogWriter> {
    const fh = await openFile(file, 'wx');
    try {
      await fh.write(logHeader(seq), 0, LOG_HEADER_BYTES, 0);
      await fh.datasync();
    } catch (err) {
      await fh.close().catch(() => {});
      throw err;
    }
    return new LogWriter(file, seq, fh, LOG_HEADER_BYTES);
  }

  /** Opens an existing log for appending at `validBytes`, cutting anything after it. */
  static async openAt(file: string, seq: bigint, validBytes: number): Promise<LogWriter> {
    const fh = await openFile(file, 'r+');
    try {
      const { size } = await fh.stat();
      if (size !== validBytes) {
        await fh.truncate(validBytes);
        await fh.sync();
      }
      if (validBytes < LOG_HEADER_BYTES) {
        await fh.write(logHeader(seq), 0, LOG_HEADER_BYTES, 0);
        await fh.datasync();
        validBytes = LOG_HEADER_BYTES;
      }
    } catch (err) {
      await fh.close().catch(() => {});
      throw err;
    }
    return new LogWriter(file, seq, fh, validBytes);
  }

  get bytes(): number {
    return this.size;
  }

  /** Writes the records in one write and fdatasyncs. On failure the file is cut back to its old end. */
  async append(records: readonly { type: number; payload: Uint8Array }[]): Promise<void> {
    if (this.closed) throw new CoordinatorError('Closed', `event log ${this.file} is closed`);
    if (records.length === 0) return;
    const buf = Buffer.concat(records.map((r) => encodeRecord(r.type, r.payload)));
    try {
      let done = 0;
      while (done < buf.length) {
        const { bytesWritten } = await this.fh.write(buf, done, buf.length - done, this.size + done);
        done += bytesWritten;
      }
      await this.fh.datasync();
    } catch (err) {
      await this.fh.truncate(this.size).catch(() => {});
      throw new CoordinatorError(
        'PersistFailed',
        `cannot append to ${this.file}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    this.size += buf.length;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }
}
