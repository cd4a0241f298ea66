/**
 * The MVCC reader: point and range reads at a timestamp, and the per-key lookups the commands
 * build on. Everything here only reads the engine (`db.internal`).
 */
import type { InternalApi, VersionRecord } from '@nokv/engine';
import { DATA_PREFIX, dataKey, userKeyOf } from '../store/keys.js';
import {
  CorruptTxnRecordError,
  InvalidTxnRequestError,
  KeyLockedError,
  type LockInfo,
  TxnError,
} from './errors.js';
import { decodeLock, decodeWrite, LOCK_VERSION, type LockRecord, type WriteRecord } from './records.js';
import { MAX_TS } from './timestamp.js';

/** What the transaction layer needs of an engine (a `Database` is one). */
export interface TxnDb {
  readonly internal: Pick<InternalApi, 'get' | 'scan'>;
}

/** Engine entry meta: bits 0-1 kind, 1 = delete (engine README, "Keys"). */
const META_KIND_MASK = 0x03;
const META_KIND_DELETE = 0x01;

function isDelete(rec: VersionRecord): boolean {
  return (rec.meta & META_KIND_MASK) === META_KIND_DELETE;
}

/** The smallest engine key after every version of `dk`: [dk, dk ‖ 0x00) holds exactly dk. */
function keyEnd(dk: Buffer): Buffer {
  return Buffer.concat([dk, Buffer.from([0])]);
}

function withKey<T>(key: Uint8Array, decode: () => T): T {
  try {
    return decode();
  } catch (err) {
    if (err instanceof TxnError && err.key === undefined) {
      throw new CorruptTxnRecordError(
        `${err.message} (key ${Buffer.from(key).toString('hex')})`,
        Buffer.from(key),
      );
    }
    throw err;
  }
}

export function checkTs(name: string, ts: unknown, allowZero = false): bigint {
  if (typeof ts !== 'bigint' || ts < (allowZero ? 0n : 1n) || ts > MAX_TS) {
    throw new InvalidTxnRequestError(
      `${name} must be a bigint in [${allowZero ? 0 : 1}, 2^64-2]; got ${String(ts)}`,
    );
  }
  return ts;
}

export function checkUserKey(key: unknown, what = 'key'): Buffer {
  if (!(key instanceof Uint8Array) || key.length === 0) {
    throw new InvalidTxnRequestError(`${what} must be a non-empty Uint8Array`);
  }
  return Buffer.from(key.buffer, key.byteOffset, key.length);
}

/** The lock on a user key, if any. */
export async function loadLock(db: TxnDb, key: Uint8Array): Promise<LockRecord | undefined> {
  const rec = await db.internal.get('lock', dataKey(key), LOCK_VERSION);
  if (rec === undefined || rec.kind === 'delete') return undefined;
  return withKey(key, () => decodeLock(rec.value));
}

export function lockInfo(key: Uint8Array, lock: LockRecord): LockInfo {
  return {
    key: Buffer.from(key),
    primary: lock.primary,
    lockTs: lock.startTs,
    ttl: lock.ttl,
    kind: lock.kind,
    minCommitTs: lock.minCommitTs,
  };
}

export interface ReadOptions {
  /**
   * Start timestamps of transactions whose locks this read may ignore (the caller knows they
   * commit after the read timestamp, or are its own).
   */
  bypassLocks?: readonly bigint[];
}

/**
 * Whether `lock` must stop a read at `readTs`: it can still commit at or below `readTs` and it
 * can change the value. A lock started after `readTs`, a lock whose min commit timestamp was
 * pushed above `readTs` (checkTxnStatus) and a `lock`-kind lock (it never changes data) do not.
 */
export function lockBlocksRead(lock: LockRecord, readTs: bigint, options?: ReadOptions): boolean {
  if (lock.kind === 'lock') return false;
  if (lock.startTs > readTs || lock.minCommitTs > readTs) return false;
  return !(options?.bypassLocks?.includes(lock.startTs) ?? false);
}

export interface VersionedWrite {
  /** Engine version: the commit timestamp (a rollback record's: its start timestamp). */
  version: bigint;
  record: WriteRecord;
}

/** The write records of a key at or below `maxVersion`, newest first. */
export async function* writesOf(
  db: TxnDb,
  key: Uint8Array,
  maxVersion = MAX_TS,
): AsyncGenerator<VersionedWrite> {
  const dk = dataKey(key);
  for await (const rec of db.internal.scan({ cf: 'write', gte: dk, lt: keyEnd(dk), version: maxVersion })) {
    if (isDelete(rec)) continue;
    yield { version: rec.version, record: withKey(key, () => decodeWrite(rec.value)) };
  }
}

/** What the write family says about transaction `startTs` on one key. */
export interface TxnRecordStatus {
  /** The newest write record of the key (any transaction, any kind). */
  newest?: VersionedWrite;
  /** The transaction's commit record. */
  committed?: VersionedWrite;
  /** The transaction was rolled back on the key (a rollback record or an overlapped flag). */
  rolledBack: boolean;
  /** The record stored at version `startTs` itself, whoever's it is. */
  atStartTs?: VersionedWrite;
}

/**
 * Looks through the write records at or above `startTs` (the only place the transaction's
 * records can be: commit timestamps exceed start timestamps).
 */
export async function txnRecordStatus(db: TxnDb, key: Uint8Array, startTs: bigint): Promise<TxnRecordStatus> {
  const out: TxnRecordStatus = { rolledBack: false };
  for await (const w of writesOf(db, key)) {
    if (out.newest === undefined) out.newest = w;
    if (w.version < startTs) break;
    if (w.version === startTs) {
      out.atStartTs = w;
      if (w.record.overlappedRollback) out.rolledBack = true;
    }
    if (w.record.startTs === startTs) {
      if (w.record.kind === 'rollback') out.rolledBack = true;
      else out.committed = w;
    }
  }
  return out;
}

/** The newest put or delete record committed at or below `ts` (rollback and lock records skipped). */
export async function latestDataWrite(
  db: TxnDb,
  key: Uint8Array,
  ts: bigint,
): Promise<VersionedWrite | undefined> {
  for await (const w of writesOf(db, key, ts)) {
    if (w.record.kind === 'put' || w.record.kind === 'delete') return w;
  }
  return undefined;
}

async function committedValue(db: TxnDb, key: Uint8Array, w: VersionedWrite): Promise<Buffer | undefined> {
  if (w.record.kind !== 'put') return undefined;
  const rec = await db.internal.get('data', dataKey(key), w.record.startTs);
  if (rec === undefined || rec.kind !== 'put' || rec.version !== w.record.startTs) {
    throw new CorruptTxnRecordError(
      `no data at ${w.record.startTs} for the put committed at ${w.version} on key ${Buffer.from(key).toString('hex')}`,
      Buffer.from(key),
    );
  }
  return rec.value;
}

export interface MvccValue {
  value: Buffer;
  /** Commit timestamp of the version read. */
  commitTs: bigint;
}

/**
 * Snapshot read of a user key at `readTs`: throws `KeyLockedError` when a lock may still commit
 * at or below `readTs` (never a dirty read, never a silent skip); otherwise the newest committed
 * put at or below `readTs`, or undefined (none, or deleted).
 */
export async function get(
  db: TxnDb,
  key: Uint8Array,
  readTs: bigint,
  options?: ReadOptions,
): Promise<MvccValue | undefined> {
  const k = checkUserKey(key);
  checkTs('readTs', readTs);
  const lock = await loadLock(db, k);
  if (lock !== undefined && lockBlocksRead(lock, readTs, options))
    throw new KeyLockedError(lockInfo(k, lock));
  const w = await latestDataWrite(db, k, readTs);
  if (w === undefined || w.record.kind !== 'put') return undefined;
  const value = await committedValue(db, k, w);
  return value === undefined ? undefined : { value, commitTs: w.version };
}

export interface MvccPair extends MvccValue {
  key: Buffer;
}

export interface ScanResult {
  /** Visible pairs in key order, up to the limit or up to the first blocking lock. */
  pairs: MvccPair[];
  /** The first blocking lock met; the scan stopped there (resolve it and continue from its key). */
  locked?: KeyLockedError;
}

function engineRange(start: Uint8Array, end: Uint8Array): { lo: Buffer; hi: Buffer } {
  return { lo: dataKey(start), hi: end.length === 0 ? Buffer.from([DATA_PREFIX + 1]) : dataKey(end) };
}

/**
 * Forward snapshot scan of user keys in [start, end) (empty end = to the end) at `readTs`, at
 * most `limit` pairs. Keys are visited in order; a blocking lock on a key (whether or not the key
 * has committed versions) ends the scan with `locked`, and the pairs before it are returned.
 * Rollback and lock records are skipped without hiding older puts; a delete hides the key.
 */
export async function scan(
  db: TxnDb,
  start: Uint8Array,
  end: Uint8Array,
  readTs: bigint,
  limit: number,
  options?: ReadOptions,
): Promise<ScanResult> {
  checkTs('readTs', readTs);
  if (!(start instanceof Uint8Array) || !(end instanceof Uint8Array)) {
    throw new InvalidTxnRequestError('scan bounds must be Uint8Arrays');
  }
  if (!(limit >= 1)) throw new InvalidTxnRequestError(`scan limit must be at least 1; got ${limit}`);
  const { lo, hi } = engineRange(start, end);
  const pairs: MvccPair[] = [];
  if (Buffer.compare(lo, hi) >= 0) return { pairs };

  const locks = db.internal
    .scan({ cf: 'lock', gte: lo, lt: hi, version: LOCK_VERSION })
    [Symbol.asyncIterator]();
  const writes = db.internal.scan({ cf: 'write', gte: lo, lt: hi, version: readTs })[Symbol.asyncIterator]();
  try {
    const nextLock = async (): Promise<{ key: Buffer; lock: LockRecord } | undefined> => {
      for (;;) {
        const r = await locks.next();
        if (r.done) return undefined;
        if (isDelete(r.value)) continue;
        const key = Buffer.from(userKeyOf(r.value.key));
        const lock = withKey(key, () => decodeLock(r.value.value));
        if (lockBlocksRead(lock, readTs, options)) return { key, lock };
      }
    };
    const nextWrite = async (): Promise<VersionRecord | undefined> => {
      const r = await writes.next();
      return r.done ? undefined : r.value;
    };
    const lock = await nextLock();
    let w = await nextWrite();
    while (pairs.length < limit) {
      if (w === undefined && lock === undefined) break;
      if (lock !== undefined && (w === undefined || Buffer.compare(lock.key, userKeyOf(w.key)) <= 0)) {
        return { pairs, locked: new KeyLockedError(lockInfo(lock.key, lock.lock)) };
      }
      const cur = w!.key;
      const key = Buffer.from(userKeyOf(cur));
      let visible: VersionedWrite | undefined;
      while (w?.key.equals(cur)) {
        if (visible === undefined && !isDelete(w)) {
          const record = withKey(key, () => decodeWrite(w!.value));
          if (record.kind === 'put' || record.kind === 'delete') visible = { version: w.version, record };
        }
        w = await nextWrite();
      }
      if (visible?.record.kind === 'put') {
        const value = await committedValue(db, key, visible);
        if (value !== undefined) pairs.push({ key, value, commitTs: visible.version });
      }
    }
    return { pairs };
  } finally {
    await locks.return?.();
    await writes.return?.();
  }
}

/** Locks in [start, end) (empty end = to the end) with start timestamp <= maxTs, in key order. */
export async function scanLocks(
  db: TxnDb,
  options: { start?: Uint8Array; end?: Uint8Array; maxTs?: bigint; startTs?: bigint; limit?: number },
): Promise<LockInfo[]> {
  const { lo, hi } = engineRange(options.start ?? Buffer.alloc(0), options.end ?? Buffer.alloc(0));
  const out: LockInfo[] = [];
  const limit = options.limit ?? Number.POSITIVE_INFINITY;
  if (Buffer.compare(lo, hi) >= 0 || limit <= 0) return out;
  for await (const rec of db.internal.scan({ cf: 'lock', gte: lo, lt: hi, version: LOCK_VERSION })) {
    if (isDelete(rec)) continue;
    const key = Buffer.from(userKeyOf(rec.key));
    const lock = withKey(key, () => decodeLock(rec.value));
    if (options.maxTs !== undefined && lock.startTs > options.maxTs) continue;
    if (options.startTs !== undefined && lock.startTs !== options.startTs) continue;
    out.push(lockInfo(key, lock));
    if (out.length >= limit) break;
  }
  return out;
}
