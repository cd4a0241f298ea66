/**
 * External tables: SSTable images built in memory from entries the caller supplies, and read
 * back with every byte verified. They carry data between engines (a region snapshot streamed to
 * another store) in the engine's own table format, so the format's block checksums protect the
 * bytes in transit, and a table could later be ingested as a file.
 *
 * An external table holds put and delete entries of any column family, values inline (never
 * value-log pointers), and no range tombstones.
 */

import { BlockCache } from '../cache/block-cache.js';
import { CorruptionError, InvalidArgumentError } from '../errors.js';
import { entryKind, KIND_DELETE, KIND_PUT, META_VALUE_POINTER, makeMeta } from '../keys/entry.js';
import {
  CF_COUNT,
  type ColumnFamily,
  cfId,
  cfName,
  compareInternalKeys,
  encodeInternalKey,
  internalKeyCf,
  internalKeyUserKey,
  internalKeyVersion,
  MAX_VERSION,
} from '../keys/internal-key.js';
import type { Compression } from '../sstable/format.js';
import { TableBuilder } from '../sstable/table-builder.js';
import { TableReader } from '../sstable/table-reader.js';
import type { VfsFile } from '../vfs/vfs.js';

/** One entry of an external table. */
export interface ExternalTableEntry {
  cf: ColumnFamily;
  /** The user key (without column family or version). */
  key: Uint8Array;
  /** In [0, 2^64 - 1). */
  version: bigint;
  kind: 'put' | 'delete';
  /** Unix milliseconds after which the entry reads as absent; 0 = never. */
  expiresAt: number;
  /** Empty for a delete. */
  value: Uint8Array;
}

export interface ExternalTableOptions {
  /** Target uncompressed data block size (default 16 KiB). */
  blockBytes?: number;
  /** Bloom filter bits per key (default 10). */
  bloomBitsPerKey?: number;
  /** Data block compression (default 'lz4', used only where it saves at least 1/8). */
  compression?: Compression;
  /** Recorded in the table's properties (default: now). */
  createdAtMs?: number;
}

/** What a finished external table holds, besides its bytes. */
export interface ExternalTableInfo {
  entries: number;
  /** First and last entry's internal keys (column family, user key, version); empty when empty. */
  smallest: Buffer;
  largest: Buffer;
}

/** No table may be larger than this: offsets in the footer are 48-bit, but a Buffer is smaller. */
const MAX_TABLE_BYTES = 2 ** 31 - 1;

/**
 * Builds one external table entry by entry. Entries must come in internal-key order: column
 * family, then user key bytewise, then version descending (newest first), with no duplicates.
 */
export class ExternalTableBuilder {
  private readonly builder: TableBuilder;
  private readonly createdAtMs: number;
  private last: Buffer | undefined;
  private first: Buffer | undefined;
  private count = 0;
  private done = false;

  constructor(options: ExternalTableOptions = {}) {
    this.builder = new TableBuilder({
      blockBytes: options.blockBytes ?? 16 * 1024,
      bloomBitsPerKey: options.bloomBitsPerKey ?? 10,
      compression: options.compression ?? 'lz4',
    });
    this.createdAtMs = options.createdAtMs ?? Date.now();
  }

  /** Entries added so far. */
  get entries(): number {
    return this.count;
  }

  /** About how many bytes the table would take if it were finished now (meta blocks excluded). */
  get estimatedBytes(): number {
    return this.builder.estimatedFileSize;
  }

  /** @throws InvalidArgumentError for an entry out of order or malformed. */
  add(e: ExternalTableEntry): void {
    if (this.done) throw new InvalidArgumentError('InvalidArgument', 'external table already finished');
    if (e.kind !== 'put' && e.kind !== 'delete') {
      throw new InvalidArgumentError('InvalidArgument', `unknown entry kind ${JSON.stringify(e.kind)}`);
    }
    if (typeof e.version !== 'bigint' || e.version < 0n || e.version >= MAX_VERSION) {
      throw new InvalidArgumentError('InvalidArgument', `version ${String(e.version)} is out of range`);
    }
    if (!Number.isSafeInteger(e.expiresAt) || e.expiresAt < 0) {
      throw new InvalidArgumentError('InvalidArgument', `expiresAt ${e.expiresAt} is not a valid time`);
    }
    const key = encodeInternalKey(cfId(e.cf), e.key, e.version);
    if (this.last !== undefined && compareInternalKeys(this.last, key) >= 0) {
      throw new InvalidArgumentError(
        'InvalidArgument',
        `external table entries out of order at ${e.cf}:${Buffer.from(e.key).toString('hex')}@${e.version}`,
      );
    }
    const kind = e.kind === 'put' ? KIND_PUT : KIND_DELETE;
    const value = e.kind === 'put' ? Buffer.from(e.value.buffer, e.value.byteOffset, e.value.length) : EMPTY;
    this.builder.add(key, makeMeta(kind, e.expiresAt), e.expiresAt, value);
    this.first ??= key;
    this.last = key;
    this.count++;
  }

  /** Closes the table and returns its bytes and a summary. The builder is spent afterwards. */
  finish(): { bytes: Buffer; info: ExternalTableInfo } {
    if (this.done) throw new InvalidArgumentError('InvalidArgument', 'external table already finished');
    this.done = true;
    this.builder.finish(this.createdAtMs, { allowEmpty: true });
    const size = this.builder.fileSize;
    if (size > MAX_TABLE_BYTES) {
      throw new InvalidArgumentError('InvalidArgument', `external table of ${size} bytes is too large`);
    }
    const bytes = Buffer.concat(this.builder.takeOutput(), size);
    return {
      bytes,
      info: {
        entries: this.count,
        smallest: Buffer.from(this.first ?? EMPTY),
        largest: Buffer.from(this.last ?? EMPTY),
      },
    };
  }
}

/** Builds an external table image from entries in internal-key order (see ExternalTableBuilder). */
export function buildExternalTable(
  entries: Iterable<ExternalTableEntry>,
  options?: ExternalTableOptions,
): Buffer {
  const b = new ExternalTableBuilder(options);
  for (const e of entries) b.add(e);
  return b.finish().bytes;
}

export interface ReadExternalTableOptions {
  /** Names the table in error messages (default 'external table'). */
  name?: string;
}

/**
 * Reads an external table image, verifying it whole before returning anything: footer, every
 * block checksum (meta blocks and data blocks), key order, entry count and bounds against the
 * properties, and the entries' kinds. Keys and values are views into buffers owned by the result.
 * @throws CorruptionError for any damage (or a table that is not an external table).
 */
export function readExternalTable(
  bytes: Uint8Array,
  options: ReadExternalTableOptions = {},
): ExternalTableEntry[] {
  const name = options.name ?? 'external table';
  const file = memoryFile(name, bytes);
  const reader = TableReader.fromFile(file, 0, new BlockCache(0));
  if (reader.tombstones.length > 0) {
    throw new CorruptionError(name, 0, `holds ${reader.tombstones.length} range tombstones`);
  }
  const out: ExternalTableEntry[] = [];
  let first: Buffer | undefined;
  let last: Buffer | undefined;
  let deletions = 0;
  for (const p of reader.verifiedEntries()) {
    if (internalKeyCf(p.key) >= CF_COUNT) {
      throw new CorruptionError(name, 0, `entry ${out.length} has unknown column family ${p.key[0]}`);
    }
    if ((p.meta & META_VALUE_POINTER) !== 0) {
      throw new CorruptionError(name, 0, `entry ${out.length} holds a value pointer, not a value`);
    }
    const kind = entryKind(p.meta);
    if (kind !== KIND_PUT && kind !== KIND_DELETE) {
      throw new CorruptionError(name, 0, `entry ${out.length} has kind ${kind}`);
    }
    if (kind === KIND_DELETE) deletions++;
    first ??= p.key;
    last = p.key;
    out.push({
      cf: cfName(internalKeyCf(p.key)),
      key: internalKeyUserKey(p.key),
      version: internalKeyVersion(p.key),
      kind: kind === KIND_PUT ? 'put' : 'delete',
      expiresAt: p.expiresAt,
      value: p.value,
    });
  }
  const props = reader.props;
  if (deletions !== props.deletions) {
    throw new CorruptionError(name, 0, `holds ${deletions} deletes; properties say ${props.deletions}`);
  }
  if (!props.smallest.equals(first ?? EMPTY) || !props.largest.equals(last ?? EMPTY)) {
    throw new CorruptionError(name, 0, 'entries do not match the bounds in the properties');
  }
  return out;
}

const EMPTY = Buffer.alloc(0);

/** A read-only VfsFile over bytes in memory. */
function memoryFile(path: string, bytes: Uint8Array): VfsFile {
  const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const readOnly = (): Promise<never> =>
    Promise.reject(new Error(`${path}: an in-memory external table is read-only`));
  return {
    path,
    readAt(buffer: Uint8Array, position: number): number {
      if (position >= data.length) return 0;
      return data.copy(buffer, 0, position, Math.min(data.length, position + buffer.length));
    },
    write: readOnly,
    writevSync(): void {
      throw new Error(`${path}: an in-memory external table is read-only`);
    },
    sync: () => Promise.resolve(),
    truncate: readOnly,
    size: () => data.length,
    close: () => Promise.resolve(),
  };
}
