import { createHash } from 'node:crypto';
import { crc32c as nativeCrc32c } from '@node-rs/crc32';
import {
  CorruptionError,
  ExternalTableBuilder,
  type ExternalTableEntry,
  type ExternalTableInfo,
  readExternalTable,
} from '@nokv/engine';
import {
  decodeRegionMeta,
  encodeRegionMeta,
  keyInRegion,
  type RegionMeta,
  type RegionPeer,
  RegionState,
} from '@nokv/proto';
import { CorruptSnapshotError } from './errors.js';

// The data of a region snapshot (raft Snapshot.data, and the admin snapshot streams).
//
// Version 3 (written now), integers big-endian:
//
//   'NKVS'                         magic
//   u8  version                    3
//   u32 n ‖ n bytes                metadata, JSON (UTF-8):
//       { version: 3, region: {id, start_key, end_key (hex), epoch: {version, conf_version},
//         peers: [{store_id, peer_id, learner}], state}, applied_index, applied_term,
//         entry_count (default-CF pairs), record_count (transaction CF versions), table_count,
//         tables: [{name, cf: 'default' | 'txn', entries, bytes, smallest, largest, sha256}],
//         created_at (ISO 8601) }
//       u64 values are decimal strings; smallest/largest are the hex internal keys (column
//       family ‖ user key ‖ inverted version) of a table's first and last entry.
//   the tables' bytes, back to back in the order listed: engine SSTable images (external tables)
//       'default' tables: the region's raw key-value pairs (cf default, version 0), at most
//         MAX_TABLE_BYTES each (a single larger pair gets a table of its own);
//       'txn' tables: every live version of the lock, write and data column families.
//       Keys are user keys (no 'z' prefix) inside the region, ascending across tables.
//   32 bytes                       SHA-256 of every byte before it
//
// Decoding checks the magic, version and the whole-payload hash first, then the metadata, each
// table's SHA-256, each table's block checksums and internal order (readExternalTable), the key
// order across tables, that keys lie in the region, and every count.
//
// Versions 1 and 2 (still decoded; written only by encodeLegacySnapshotPayload for tests):
//
//   'NKVS' ‖ u8 version ‖ u32 n ‖ region meta (protobuf) ‖ u64 appliedIndex ‖ u64 appliedTerm
//   ‖ u64 count ‖ count × (u32 keyLen ‖ key ‖ u32 valueLen ‖ value)
//   version 2 only: u64 records ‖ records × (u8 cf ‖ u32 keyLen ‖ key ‖ u64 version
//                   ‖ u64 expiresAt ‖ u32 valueLen ‖ value)      cf: 1 lock, 2 write, 3 data
//   ‖ u32 CRC32C of every byte before it

export const SNAPSHOT_PAYLOAD_MAGIC = Buffer.from('NKVS', 'latin1');
/** Version 3: SST tables with a JSON manifest and SHA-256; versions 1 and 2 still decode. */
export const SNAPSHOT_PAYLOAD_VERSION = 3;
/** Target size of one table of a version-3 payload. */
export const MAX_TABLE_BYTES = 8 * 1024 * 1024;

export type TxnColumnFamily = 'lock' | 'write' | 'data';
const CF_CODES: Record<TxnColumnFamily, number> = { lock: 1, write: 2, data: 3 };
const CF_NAMES: Record<number, TxnColumnFamily> = { 1: 'lock', 2: 'write', 3: 'data' };

/** One version of a key in a transaction column family. */
export interface VersionedRecord {
  cf: TxnColumnFamily;
  /** User key (no 'z' prefix). */
  key: Uint8Array;
  version: bigint;
  /** Unix ms, 0 = never. */
  expiresAt: number;
  value: Uint8Array;
}

export interface SnapshotPayload {
  region: RegionMeta;
  appliedIndex: bigint;
  appliedTerm: bigint;
  /** User keys (not engine data keys) in ascending order, with their values. */
  pairs: Array<[key: Uint8Array, value: Uint8Array]>;
  /** The transaction column families' live versions (absent in version-1 payloads). */
  records?: VersionedRecord[];
}

/** One table of a version-3 payload, as its metadata lists it. */
export interface SnapshotTableMeta {
  name: string;
  cf: 'default' | 'txn';
  entries: number;
  bytes: number;
  /** Hex internal keys of the first and last entry ('' when empty). */
  smallest: string;
  largest: string;
  /** Hex SHA-256 of the table's bytes. */
  sha256: string;
}

export interface EncodeSnapshotOptions {
  /** Target size of one table (default MAX_TABLE_BYTES). */
  maxTableBytes?: number;
  /** Recorded as created_at (default: now). */
  createdAt?: Date;
}

const HASH_BYTES = 32;
const V3_MIN_BYTES = 4 + 1 + 4 + HASH_BYTES;

function sha256(...parts: Uint8Array[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
}

/**
 * Encodes a region snapshot's data (version 3). Pairs must be user keys in ascending order;
 * records are sorted here if they are not in (column family, key, version descending) order.
 * @throws InvalidArgumentError (engine) for keys out of order or duplicated.
 */
export function encodeSnapshotPayload(p: SnapshotPayload, opts: EncodeSnapshotOptions = {}): Buffer {
  const maxTableBytes = opts.maxTableBytes ?? MAX_TABLE_BYTES;
  const createdAtMs = (opts.createdAt ?? new Date()).getTime();
  const tables: { meta: SnapshotTableMeta; bytes: Buffer }[] = [];
  const cut = (cf: 'default' | 'txn', entries: Iterable<ExternalTableEntry>): void => {
    let builder: ExternalTableBuilder | undefined;
    const seal = (): void => {
      if (!builder) return;
      const { bytes, info } = builder.finish();
      tables.push({ meta: tableMeta(tables.length + 1, cf, bytes, info), bytes });
      builder = undefined;
    };
    for (const e of entries) {
      const size = e.key.length + e.value.length + 32;
      if (builder && builder.entries > 0 && builder.estimatedBytes + size > maxTableBytes) seal();
      builder ??= new ExternalTableBuilder({ createdAtMs });
      builder.add(e);
    }
    seal();
  };
  cut('default', defaultEntries(p.pairs));
  const records = p.records ?? [];
  cut('txn', txnEntries(isSorted(records) ? records : [...records].sort(compareRecords)));

  const meta = {
    version: SNAPSHOT_PAYLOAD_VERSION,
    region: regionToJson(p.region),
    applied_index: String(p.appliedIndex),
    applied_term: String(p.appliedTerm),
    entry_count: p.pairs.length,
    record_count: records.length,
    table_count: tables.length,
    tables: tables.map((t) => t.meta),
    created_at: new Date(createdAtMs).toISOString(),
  };
  const json = Buffer.from(JSON.stringify(meta, null, 2), 'utf8');
  const head = Buffer.allocUnsafe(9);
  SNAPSHOT_PAYLOAD_MAGIC.copy(head, 0);
  head[4] = SNAPSHOT_PAYLOAD_VERSION;
  head.writeUInt32BE(json.length, 5);
  const body = [head, json, ...tables.map((t) => t.bytes)];
  return Buffer.concat([...body, sha256(...body)]);
}

function tableMeta(
  n: number,
  cf: 'default' | 'txn',
  bytes: Buffer,
  info: ExternalTableInfo,
): SnapshotTableMeta {
  return {
    name: `${String(n).padStart(6, '0')}.sst`,
    cf,
    entries: info.entries,
    bytes: bytes.length,
    smallest: info.smallest.toString('hex'),
    largest: info.largest.toString('hex'),
    sha256: sha256(bytes).toString('hex'),
  };
}

function* defaultEntries(pairs: SnapshotPayload['pairs']): Generator<ExternalTableEntry> {
  for (const [key, value] of pairs) {
    yield { cf: 'default', key, version: 0n, kind: 'put', expiresAt: 0, value };
  }
}

function* txnEntries(records: readonly VersionedRecord[]): Generator<ExternalTableEntry> {
  for (const r of records) {
    yield { cf: r.cf, key: r.key, version: r.version, kind: 'put', expiresAt: r.expiresAt, value: r.value };
  }
}

function compareRecords(a: VersionedRecord, b: VersionedRecord): number {
  return (
    CF_CODES[a.cf] - CF_CODES[b.cf] ||
    Buffer.compare(a.key, b.key) ||
    (a.version > b.version ? -1 : a.version < b.version ? 1 : 0)
  );
}

function isSorted(records: readonly VersionedRecord[]): boolean {
  for (let i = 1; i < records.length; i++)
    if (compareRecords(records[i - 1]!, records[i]!) >= 0) return false;
  return true;
}

/**
 * Decodes and verifies a region snapshot's data (any version). The returned keys and values are
 * views into `bytes` (versions 1 and 2) or into buffers owned by the result (version 3).
 * @throws CorruptSnapshotError for any damage: bad magic, version, hash or checksum, truncation,
 *   trailing bytes, an undecodable region or metadata, a damaged table, or keys out of order or
 *   outside the region.
 */
export function decodeSnapshotPayload(bytes: Uint8Array): SnapshotPayload {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length < 5) {
    throw new CorruptSnapshotError(`payload of ${b.length} bytes is too short for a header`);
  }
  if (!b.subarray(0, 4).equals(SNAPSHOT_PAYLOAD_MAGIC)) {
    throw new CorruptSnapshotError(`bad magic ${b.subarray(0, 4).toString('hex')}`);
  }
  const version = b[4]!;
  if (version === 1 || version === 2) return decodeLegacy(b, version);
  if (version !== SNAPSHOT_PAYLOAD_VERSION) {
    throw new CorruptSnapshotError(
      `unknown payload version ${version} (expected ${SNAPSHOT_PAYLOAD_VERSION}, 2 or 1)`,
    );
  }
  return decodeV3(b);
}

function decodeV3(b: Buffer): SnapshotPayload {
  if (b.length < V3_MIN_BYTES) {
    throw new CorruptSnapshotError(
      `payload of ${b.length} bytes is shorter than the ${V3_MIN_BYTES}-byte minimum`,
    );
  }
  const bodyEnd = b.length - HASH_BYTES;
  const actual = sha256(b.subarray(0, bodyEnd));
  if (!actual.equals(b.subarray(bodyEnd))) {
    throw new CorruptSnapshotError(`SHA-256 mismatch over ${bodyEnd} bytes`);
  }
  const jsonLen = b.readUInt32BE(5);
  if (jsonLen > bodyEnd - 9) {
    throw new CorruptSnapshotError(`metadata of ${jsonLen} bytes runs past the payload`);
  }
  const meta = parseMeta(b.subarray(9, 9 + jsonLen));
  const { region } = meta;
  const fail = (reason: string) => new CorruptSnapshotError(reason, region.id);
  let o = 9 + jsonLen;
  const pairs: Array<[Uint8Array, Uint8Array]> = [];
  const records: VersionedRecord[] = [];
  let prevPair: Uint8Array | undefined;
  let prevRecord: VersionedRecord | undefined;
  let seenTxn = false;
  for (const [i, t] of meta.tables.entries()) {
    if (t.bytes > bodyEnd - o) throw fail(`table ${t.name} of ${t.bytes} bytes runs past the payload`);
    const image = b.subarray(o, o + t.bytes);
    o += t.bytes;
    if (sha256(image).toString('hex') !== t.sha256) throw fail(`table ${t.name}: SHA-256 mismatch`);
    let entries: ExternalTableEntry[];
    try {
      entries = readExternalTable(image, { name: t.name });
    } catch (err) {
      // The table's hash matched, so only a forged payload gets here; whatever the reader
      // tripped over, the snapshot is unusable.
      const detail = err instanceof CorruptionError ? err.detail : (err as Error).message;
      throw new CorruptSnapshotError(`table ${t.name}: ${detail}`, region.id, { cause: err });
    }
    if (entries.length !== t.entries) {
      throw fail(`table ${t.name} holds ${entries.length} entries; the metadata says ${t.entries}`);
    }
    if (t.cf === 'default' && seenTxn) throw fail(`table ${i + 1}: a default table after a txn table`);
    for (const e of entries) {
      if (!keyInRegion(e.key, region)) {
        throw fail(`table ${t.name}: key ${Buffer.from(e.key).toString('hex')} is outside the region`);
      }
      if (e.kind !== 'put') throw fail(`table ${t.name}: holds a delete`);
    }
    if (t.cf === 'default') {
      for (const e of entries) {
        if (e.cf !== 'default' || e.version !== 0n || e.expiresAt !== 0) {
          throw fail(`table ${t.name}: an entry that is not a raw pair`);
        }
        if (prevPair !== undefined && Buffer.compare(prevPair, e.key) >= 0) {
          throw fail(`table ${t.name}: keys are not in ascending order`);
        }
        prevPair = e.key;
        pairs.push([e.key, e.value]);
      }
    } else {
      seenTxn = true;
      for (const e of entries) {
        if (e.cf === 'default') throw fail(`table ${t.name}: a default-CF entry in a txn table`);
        const r: VersionedRecord = {
          cf: e.cf,
          key: e.key,
          version: e.version,
          expiresAt: e.expiresAt,
          value: e.value,
        };
        if (prevRecord !== undefined && compareRecords(prevRecord, r) >= 0) {
          throw fail(`table ${t.name}: records are not in order`);
        }
        prevRecord = r;
        records.push(r);
      }
    }
    if (entries.length > 0) {
      const first = entries[0]!;
      const last = entries[entries.length - 1]!;
      if (internalKeyHex(first) !== t.smallest || internalKeyHex(last) !== t.largest) {
        throw fail(`table ${t.name}: smallest/largest do not match its entries`);
      }
    } else if (t.smallest !== '' || t.largest !== '') {
      throw fail(`table ${t.name}: an empty table with bounds`);
    }
  }
  if (o !== bodyEnd) throw fail(`${bodyEnd - o} bytes after the last table`);
  if (pairs.length !== meta.entryCount) {
    throw fail(`${pairs.length} pairs; the metadata says ${meta.entryCount}`);
  }
  if (records.length !== meta.recordCount) {
    throw fail(`${records.length} records; the metadata says ${meta.recordCount}`);
  }
  return { region, appliedIndex: meta.appliedIndex, appliedTerm: meta.appliedTerm, pairs, records };
}

/** The internal key of an entry as the metadata writes it (cf ‖ user key ‖ inverted version). */
function internalKeyHex(e: ExternalTableEntry): string {
  const k = Buffer.allocUnsafe(e.key.length + 9);
  k[0] = e.cf === 'default' ? 0 : CF_CODES[e.cf];
  k.set(e.key, 1);
  k.writeBigUInt64BE(0xffff_ffff_ffff_ffffn - e.version, e.key.length + 1);
  return k.toString('hex');
}

// --- metadata JSON ----------------------------------------------------------------------------------

interface ParsedMeta {
  region: RegionMeta;
  appliedIndex: bigint;
  appliedTerm: bigint;
  entryCount: number;
  recordCount: number;
  tables: SnapshotTableMeta[];
}

const U64_MAX = (1n << 64n) - 1n;
const REGION_STATES = new Set<number>(Object.values(RegionState));

function regionToJson(r: RegionMeta) {
  return {
    id: String(r.id),
    start_key: Buffer.from(r.startKey).toString('hex'),
    end_key: Buffer.from(r.endKey).toString('hex'),
    epoch: { version: String(r.epoch.version), conf_version: String(r.epoch.confVersion) },
    peers: r.peers.map((p) => ({
      store_id: String(p.storeId),
      peer_id: String(p.peerId),
      learner: p.learner,
    })),
    state: r.state,
  };
}

/** Strict reading of untrusted JSON: each accessor throws CorruptSnapshotError on a wrong shape. */
class JsonReader {
  constructor(
    private readonly v: unknown,
    private readonly path: string,
  ) {}

  private bad(what: string): CorruptSnapshotError {
    return new CorruptSnapshotError(`metadata ${this.path}: ${what}`);
  }

  field(name: string): JsonReader {
    if (typeof this.v !== 'object' || this.v === null || Array.isArray(this.v))
      throw this.bad('not an object');
    if (!Object.hasOwn(this.v, name)) throw this.bad(`missing ${name}`);
    return new JsonReader((this.v as Record<string, unknown>)[name], `${this.path}.${name}`);
  }

  array(): JsonReader[] {
    if (!Array.isArray(this.v)) throw this.bad('not an array');
    return this.v.map((x, i) => new JsonReader(x, `${this.path}[${i}]`));
  }

  string(): string {
    if (typeof this.v !== 'string') throw this.bad('not a string');
    return this.v;
  }

  hex(): Buffer {
    const s = this.string();
    if (!/^(?:[0-9a-f]{2})*$/.test(s)) throw this.bad('not lowercase hex');
    return Buffer.from(s, 'hex');
  }

  u64(): bigint {
    const s = this.string();
    if (!/^(?:0|[1-9][0-9]{0,19})$/.test(s) || BigInt(s) > U64_MAX) throw this.bad('not a u64');
    return BigInt(s);
  }

  count(): number {
    if (typeof this.v !== 'number' || !Number.isSafeInteger(this.v) || this.v < 0) {
      throw this.bad('not a count');
    }
    return this.v;
  }

  boolean(): boolean {
    if (typeof this.v !== 'boolean') throw this.bad('not a boolean');
    return this.v;
  }
}

function parseMeta(raw: Buffer): ParsedMeta {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(raw));
  } catch (err) {
    throw new CorruptSnapshotError(`metadata is not JSON: ${(err as Error).message}`, undefined, {
      cause: err,
    });
  }
  const m = new JsonReader(value, 'snapshot');
  if (m.field('version').count() !== SNAPSHOT_PAYLOAD_VERSION) {
    throw new CorruptSnapshotError('metadata version does not match the payload version');
  }
  const r = m.field('region');
  const peers: RegionPeer[] = r
    .field('peers')
    .array()
    .map((p) => ({
      storeId: p.field('store_id').u64(),
      peerId: p.field('peer_id').u64(),
      learner: p.field('learner').boolean(),
    }));
  const state = r.field('state').count();
  if (!REGION_STATES.has(state)) throw new CorruptSnapshotError(`metadata: unknown region state ${state}`);
  const region: RegionMeta = {
    id: r.field('id').u64(),
    startKey: r.field('start_key').hex(),
    endKey: r.field('end_key').hex(),
    epoch: {
      version: r.field('epoch').field('version').u64(),
      confVersion: r.field('epoch').field('conf_version').u64(),
    },
    peers,
    state: state as RegionState,
  };
  if (region.endKey.length > 0 && Buffer.compare(region.startKey, region.endKey) >= 0) {
    throw new CorruptSnapshotError('metadata: region start key is not below its end key', region.id);
  }
  const tables = m
    .field('tables')
    .array()
    .map((t): SnapshotTableMeta => {
      const cf = t.field('cf').string();
      if (cf !== 'default' && cf !== 'txn') throw new CorruptSnapshotError(`metadata: table cf '${cf}'`);
      const sha = t.field('sha256').string();
      if (!/^[0-9a-f]{64}$/.test(sha)) throw new CorruptSnapshotError('metadata: table sha256 malformed');
      t.field('smallest').hex();
      t.field('largest').hex();
      return {
        name: t.field('name').string(),
        cf,
        entries: t.field('entries').count(),
        bytes: t.field('bytes').count(),
        smallest: t.field('smallest').string(),
        largest: t.field('largest').string(),
        sha256: sha,
      };
    });
  if (m.field('table_count').count() !== tables.length) {
    throw new CorruptSnapshotError('metadata: table_count does not match the tables listed', region.id);
  }
  m.field('created_at').string();
  return {
    region,
    appliedIndex: m.field('applied_index').u64(),
    appliedTerm: m.field('applied_term').u64(),
    entryCount: m.field('entry_count').count(),
    recordCount: m.field('record_count').count(),
    tables,
  };
}

// --- versions 1 and 2 -------------------------------------------------------------------------------

const LEGACY_FIXED_BYTES = 4 + 1 + 4 + 8 + 8 + 8 + 4;
const U32_MAX = 0xffff_ffff;

function crc32c(data: Uint8Array): number {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return nativeCrc32c(buf, 0) >>> 0;
}

/**
 * Encodes a payload in the version-1 or version-2 layout (version 1 drops the records). Only for
 * tests of the compatibility decoder: stores write version 3.
 */
export function encodeLegacySnapshotPayload(p: SnapshotPayload, version: 1 | 2 = 2): Buffer {
  const region = encodeRegionMeta(p.region);
  let size = LEGACY_FIXED_BYTES + region.length;
  for (const [k, v] of p.pairs) {
    if (k.length > U32_MAX || v.length > U32_MAX) throw new RangeError('snapshot pair too large');
    size += 8 + k.length + v.length;
  }
  const records = version === 2 ? (p.records ?? []) : [];
  if (version === 2) size += 8;
  for (const r of records) size += 1 + 4 + r.key.length + 8 + 8 + 4 + r.value.length;
  const out = Buffer.allocUnsafe(size);
  let o = 0;
  SNAPSHOT_PAYLOAD_MAGIC.copy(out, o);
  o += 4;
  out[o++] = version;
  out.writeUInt32BE(region.length, o);
  o += 4;
  out.set(region, o);
  o += region.length;
  out.writeBigUInt64BE(p.appliedIndex, o);
  o += 8;
  out.writeBigUInt64BE(p.appliedTerm, o);
  o += 8;
  out.writeBigUInt64BE(BigInt(p.pairs.length), o);
  o += 8;
  for (const [k, v] of p.pairs) {
    out.writeUInt32BE(k.length, o);
    o += 4;
    out.set(k, o);
    o += k.length;
    out.writeUInt32BE(v.length, o);
    o += 4;
    out.set(v, o);
    o += v.length;
  }
  if (version === 2) {
    out.writeBigUInt64BE(BigInt(records.length), o);
    o += 8;
  }
  for (const r of records) {
    out[o++] = CF_CODES[r.cf];
    out.writeUInt32BE(r.key.length, o);
    o += 4;
    out.set(r.key, o);
    o += r.key.length;
    out.writeBigUInt64BE(r.version, o);
    o += 8;
    out.writeBigUInt64BE(BigInt(r.expiresAt), o);
    o += 8;
    out.writeUInt32BE(r.value.length, o);
    o += 4;
    out.set(r.value, o);
    o += r.value.length;
  }
  out.writeUInt32BE(crc32c(out.subarray(0, o)), o);
  return out;
}

function decodeLegacy(b: Buffer, version: 1 | 2): SnapshotPayload {
  if (b.length < LEGACY_FIXED_BYTES) {
    throw new CorruptSnapshotError(
      `payload of ${b.length} bytes is shorter than the ${LEGACY_FIXED_BYTES}-byte minimum`,
    );
  }
  const bodyEnd = b.length - 4;
  const stored = b.readUInt32BE(bodyEnd);
  const actual = crc32c(b.subarray(0, bodyEnd));
  if (stored !== actual) {
    throw new CorruptSnapshotError(
      `checksum mismatch: stored ${stored.toString(16)}, computed ${actual.toString(16)} over ${bodyEnd} bytes`,
    );
  }
  let o = 5;
  const need = (n: number, what: string): void => {
    if (n > bodyEnd - o) {
      throw new CorruptSnapshotError(`${what} needs ${n} bytes at offset ${o}; only ${bodyEnd - o} left`);
    }
  };
  need(4, 'region length');
  const regionLen = b.readUInt32BE(o);
  o += 4;
  need(regionLen, 'region meta');
  let region: RegionMeta;
  try {
    region = decodeRegionMeta(b.subarray(o, o + regionLen));
  } catch (err) {
    throw new CorruptSnapshotError(`region meta does not decode: ${(err as Error).message}`, undefined, {
      cause: err,
    });
  }
  o += regionLen;
  need(24, 'applied index, term and pair count');
  const appliedIndex = b.readBigUInt64BE(o);
  const appliedTerm = b.readBigUInt64BE(o + 8);
  const count = b.readBigUInt64BE(o + 16);
  o += 24;
  // Each pair takes at least 8 bytes, which bounds a forged count before anything is allocated.
  if (count > BigInt(Math.floor((bodyEnd - o) / 8))) {
    throw new CorruptSnapshotError(
      `pair count ${count} cannot fit in the ${bodyEnd - o} bytes left`,
      region.id,
    );
  }
  const n = Number(count);
  const pairs: Array<[Uint8Array, Uint8Array]> = new Array(n);
  let prev: Buffer | undefined;
  for (let i = 0; i < n; i++) {
    need(4, `key length of pair ${i}`);
    const kl = b.readUInt32BE(o);
    o += 4;
    need(kl, `key of pair ${i}`);
    const key = b.subarray(o, o + kl);
    o += kl;
    need(4, `value length of pair ${i}`);
    const vl = b.readUInt32BE(o);
    o += 4;
    need(vl, `value of pair ${i}`);
    const value = b.subarray(o, o + vl);
    o += vl;
    if (prev !== undefined && Buffer.compare(prev, key) >= 0) {
      throw new CorruptSnapshotError(`pair ${i}: keys are not in ascending order`, region.id);
    }
    if (!keyInRegion(key, region)) {
      throw new CorruptSnapshotError(
        `pair ${i}: key ${key.toString('hex')} is outside the region`,
        region.id,
      );
    }
    prev = key;
    pairs[i] = [key, value];
  }
  let records: VersionedRecord[] | undefined;
  if (version >= 2) {
    need(8, 'record count');
    const rc = b.readBigUInt64BE(o);
    o += 8;
    // Each record takes at least 25 bytes.
    if (rc > BigInt(Math.floor((bodyEnd - o) / 25))) {
      throw new CorruptSnapshotError(
        `record count ${rc} cannot fit in the ${bodyEnd - o} bytes left`,
        region.id,
      );
    }
    records = new Array(Number(rc));
    for (let i = 0; i < records.length; i++) {
      need(5, `header of record ${i}`);
      const cf = CF_NAMES[b[o]!];
      if (cf === undefined)
        throw new CorruptSnapshotError(`record ${i}: unknown column family ${b[o]}`, region.id);
      const kl = b.readUInt32BE(o + 1);
      o += 5;
      need(kl + 16 + 4, `key and version of record ${i}`);
      const key = b.subarray(o, o + kl);
      o += kl;
      const rv = b.readBigUInt64BE(o);
      const exp = b.readBigUInt64BE(o + 8);
      const vl = b.readUInt32BE(o + 16);
      o += 20;
      need(vl, `value of record ${i}`);
      const value = b.subarray(o, o + vl);
      o += vl;
      if (!keyInRegion(key, region)) {
        throw new CorruptSnapshotError(
          `record ${i}: key ${key.toString('hex')} is outside the region`,
          region.id,
        );
      }
      if (exp > BigInt(Number.MAX_SAFE_INTEGER)) {
        throw new CorruptSnapshotError(`record ${i}: expiry ${exp} is out of range`, region.id);
      }
      records[i] = { cf, key, version: rv, expiresAt: Number(exp), value };
    }
  }
  if (o !== bodyEnd) {
    throw new CorruptSnapshotError(`${bodyEnd - o} trailing bytes after ${n} pairs`, region.id);
  }
  return records === undefined
    ? { region, appliedIndex, appliedTerm, pairs }
    : { region, appliedIndex, appliedTerm, pairs, records };
}
