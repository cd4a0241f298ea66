/**
 * The Percolator commands a store runs when it applies a committed transactional command.
 *
 * Each command reads the current engine state and returns the writes to apply atomically plus
 * the response; it never writes itself. The result depends only on the engine state and the
 * request, so every replica computes the same writes. Requirements on the caller (the store):
 *
 * - Hold the latches (`Latches`) of the command's keys from before it reads until its writes
 *   are applied, so no other command on the same store reads or writes those keys in between
 *   (regions of one store share the engine and apply concurrently).
 * - Apply the writes before the next command touching the same keys runs: the commands read
 *   the engine, not a pending batch.
 *
 * Commands are all-or-nothing: on any error the writes are empty. Logical errors (conflicts,
 * locks, a rolled-back transaction, a malformed request) come back in the response; only engine
 * failures and corrupt records throw.
 */
import type { InternalWrite } from '@nokv/engine';
import { dataKey } from '../store/keys.js';
import {
  AlreadyExistsError,
  CommitTsExpiredError,
  InvalidTxnRequestError,
  KeyLockedError,
  TxnAbortedError,
  TxnCommittedError,
  type TxnError,
  TxnLockNotFoundError,
  TxnNotFoundError,
  WriteConflictError,
} from './errors.js';
import {
  checkTs,
  checkUserKey,
  latestDataWrite,
  loadLock,
  lockInfo,
  scanLocks,
  type TxnDb,
  txnRecordStatus,
} from './mvcc.js';
import {
  decodeWrite,
  encodeLock,
  encodeWrite,
  LOCK_VERSION,
  type LockKind,
  type LockRecord,
} from './records.js';
import { MAX_TS, tsPhysicalMs } from './timestamp.js';

export interface TxnCommandResult<R> {
  /** Apply these atomically (one engine batch, with the apply index). Empty on error. */
  writes: InternalWrite[];
  response: R;
}

export interface Mutation {
  op: LockKind;
  key: Uint8Array;
  /** Required for put. */
  value?: Uint8Array;
  /** Fail with AlreadyExists when a committed put of the key is visible at the start timestamp. */
  assertNotExist?: boolean;
}

export interface PrewriteRequest {
  mutations: readonly Mutation[];
  primary: Uint8Array;
  startTs: bigint;
  /** Lock TTL in milliseconds of physical time after the start timestamp's. */
  lockTtl: number;
  /** Lower bound of the commit timestamp (default and floor: startTs + 1). */
  minCommitTs?: bigint;
}

export interface PrewriteResponse {
  /** One per failing mutation; empty = every mutation is locked for the transaction. */
  errors: TxnError[];
}

export interface CommitRequest {
  keys: readonly Uint8Array[];
  startTs: bigint;
  commitTs: bigint;
}

export interface CommitResponse {
  error?: TxnError;
}

export interface BatchRollbackRequest {
  keys: readonly Uint8Array[];
  startTs: bigint;
}

export interface BatchRollbackResponse {
  error?: TxnError;
}

export interface ResolveLockRequest {
  startTs: bigint;
  /** 0 = roll the transaction back; otherwise commit it at this timestamp. */
  commitTs: bigint;
  /** Keys to resolve; omitted = every lock of the transaction in [start, end). */
  keys?: readonly Uint8Array[];
  start?: Uint8Array;
  /** Empty or omitted = to the end. */
  end?: Uint8Array;
}

export interface ResolveLockResponse {
  /** Keys whose lock of the transaction was committed or rolled back. */
  resolved: number;
  error?: TxnError;
}

export interface CheckTxnStatusRequest {
  primaryKey: Uint8Array;
  /** The transaction's start timestamp (the lock's). */
  lockTs: bigint;
  /** A fresh TSO timestamp of the checker: TTL expiry is measured against its physical part. */
  currentTs: bigint;
  /** Start timestamp of the reader that met the lock (0 = none): the lock's min commit ts is pushed past it. */
  callerStartTs: bigint;
  /** With no lock and no record, write a rollback record (so a late prewrite fails). */
  rollbackIfNotExist: boolean;
  /** Ignored: the applying store's clock must not decide, and currentTs already carries time. */
  currentTimeMs?: number;
}

export type CheckTxnStatusAction =
  | 'NoAction'
  | 'TtlExpireRollback'
  | 'LockNotExistRollback'
  | 'MinCommitTsPushed';

export interface CheckTxnStatusResponse {
  action: CheckTxnStatusAction;
  /** > 0 while the lock is alive. */
  lockTtl: number;
  /** > 0 when the transaction committed. */
  commitTs: bigint;
  /** alive: the lock stands; committed: commitTs; rolledBack: now or earlier. */
  status: 'alive' | 'committed' | 'rolledBack';
  error?: TxnError;
}

const OPS: readonly LockKind[] = ['put', 'delete', 'lock'];

function lockWrite(dk: Buffer, lock: LockRecord): InternalWrite {
  return { cf: 'lock', op: 'put', key: dk, version: LOCK_VERSION, value: encodeLock(lock) };
}

function unlockWrite(dk: Buffer): InternalWrite {
  return { cf: 'lock', op: 'delete', key: dk, version: LOCK_VERSION };
}

/** Parses keys, refusing empty lists, empty keys and duplicates (a command reads each key once). */
function uniqueKeys(keys: unknown, what: string): Buffer[] {
  if (!Array.isArray(keys) || keys.length === 0)
    throw new InvalidTxnRequestError(`${what} must be a non-empty array`);
  const out: Buffer[] = [];
  const seen = new Set<string>();
  for (const k of keys as unknown[]) {
    const key = checkUserKey(k, `${what} entry`);
    const id = key.toString('latin1');
    if (seen.has(id)) throw new InvalidTxnRequestError(`duplicate key in ${what}`, key);
    seen.add(id);
    out.push(key);
  }
  return out;
}

function invalid<R>(err: unknown, response: (e: TxnError) => R): TxnCommandResult<R> {
  if (err instanceof InvalidTxnRequestError) return { writes: [], response: response(err) };
  throw err;
}

// --- prewrite ---------------------------------------------------------------------------------

/**
 * Locks every mutation's key for the transaction and writes put values at startTs. Per key:
 * another transaction's lock → Locked; this transaction's lock → nothing to do (a retry); this
 * transaction already committed on the key → nothing to do (a stale retry); rolled back →
 * Aborted; any write record at or after startTs → WriteConflict; assertNotExist and a visible
 * committed put → AlreadyExists. Errors are collected over all keys and then nothing is written.
 */
export async function prewrite(db: TxnDb, req: PrewriteRequest): Promise<TxnCommandResult<PrewriteResponse>> {
  let startTs: bigint;
  let primary: Buffer;
  let minCommitTs: bigint;
  try {
    startTs = checkTs('startTs', req.startTs);
    primary = checkUserKey(req.primary, 'primary');
    if (!Number.isSafeInteger(req.lockTtl) || req.lockTtl < 0) {
      throw new InvalidTxnRequestError(`lockTtl must be a non-negative integer (ms); got ${req.lockTtl}`);
    }
    const floor = startTs + 1n;
    minCommitTs = req.minCommitTs === undefined ? floor : checkTs('minCommitTs', req.minCommitTs, true);
    if (minCommitTs < floor) minCommitTs = floor;
    if (minCommitTs > MAX_TS)
      throw new InvalidTxnRequestError('startTs leaves no room for a commit timestamp');
    uniqueKeys(
      Array.isArray(req.mutations) ? req.mutations.map((m) => m?.key) : undefined,
      'prewrite mutations',
    );
    for (const m of req.mutations) {
      if (!OPS.includes(m.op))
        throw new InvalidTxnRequestError(`unknown mutation op ${JSON.stringify(m.op)}`);
      if (m.op === 'put' && !(m.value instanceof Uint8Array)) {
        throw new InvalidTxnRequestError('a put mutation needs a value', Buffer.from(m.key));
      }
    }
  } catch (err) {
    return invalid(err, (e) => ({ errors: [e] }));
  }

  const writes: InternalWrite[] = [];
  const errors: TxnError[] = [];
  for (const m of req.mutations) {
    const key = Buffer.from(m.key);
    const dk = dataKey(key);
    const lock = await loadLock(db, key);
    if (lock !== undefined) {
      if (lock.startTs !== startTs) errors.push(new KeyLockedError(lockInfo(key, lock)));
      continue; // our own lock: already prewritten
    }
    const st = await txnRecordStatus(db, key, startTs);
    if (st.rolledBack) {
      errors.push(new TxnAbortedError(key, startTs, 'rolled back before prewrite'));
      continue;
    }
    if (st.committed !== undefined) continue; // a stale retry after commit
    if (st.newest !== undefined && st.newest.version >= startTs) {
      errors.push(new WriteConflictError(key, startTs, st.newest.record.startTs, st.newest.version));
      continue;
    }
    if (m.assertNotExist === true) {
      const visible = await latestDataWrite(db, key, startTs);
      if (visible?.record.kind === 'put') {
        errors.push(new AlreadyExistsError(key));
        continue;
      }
    }
    if (m.op === 'put') writes.push({ cf: 'data', op: 'put', key: dk, version: startTs, value: m.value! });
    writes.push(lockWrite(dk, { primary, startTs, ttl: req.lockTtl, kind: m.op, minCommitTs }));
  }
  if (errors.length > 0) return { writes: [], response: { errors } };
  return { writes, response: { errors: [] } };
}

// --- commit -----------------------------------------------------------------------------------

/**
 * Commits one key whose lock `lock` belongs to the transaction: write record at commitTs and
 * lock deletion. A rollback record of another transaction already at commitTs is kept as the
 * overlapped flag.
 */
async function commitLockedKey(
  db: TxnDb,
  key: Buffer,
  lock: LockRecord,
  commitTs: bigint,
  writes: InternalWrite[],
): Promise<TxnError | undefined> {
  const dk = dataKey(key);
  let overlappedRollback = false;
  const existing = await db.internal.get('write', dk, commitTs);
  if (existing !== undefined && existing.kind === 'put' && existing.version === commitTs) {
    const at = decodeWrite(existing.value);
    if (at.kind !== 'rollback' || at.startTs !== commitTs) {
      return new InvalidTxnRequestError(
        `commit ts ${commitTs} collides with another transaction's commit record`,
        key,
      );
    }
    overlappedRollback = true;
  }
  writes.push({
    cf: 'write',
    op: 'put',
    key: dk,
    version: commitTs,
    value: encodeWrite({ kind: lock.kind, startTs: lock.startTs, overlappedRollback }),
  });
  writes.push(unlockWrite(dk));
  return undefined;
}

async function commitKey(
  db: TxnDb,
  key: Buffer,
  startTs: bigint,
  commitTs: bigint,
  writes: InternalWrite[],
  checkMinCommitTs: boolean,
): Promise<TxnError | undefined> {
  const lock = await loadLock(db, key);
  if (lock !== undefined && lock.startTs === startTs) {
    if (checkMinCommitTs && lock.minCommitTs > commitTs) {
      return new CommitTsExpiredError(key, startTs, commitTs, lock.minCommitTs);
    }
    return commitLockedKey(db, key, lock, commitTs, writes);
  }
  const st = await txnRecordStatus(db, key, startTs);
  if (st.committed !== undefined) return undefined; // already committed (at whatever commit ts)
  if (st.rolledBack) return new TxnAbortedError(key, startTs, 'already rolled back');
  return new TxnLockNotFoundError(key, startTs);
}

/**
 * Commits the transaction on `keys`: our lock → write record at commitTs + lock deleted; already
 * committed → ok; rolled back → Aborted; nothing → TxnLockNotFound; commitTs below the lock's
 * min commit ts → CommitTsExpired. The first error wins and nothing is written.
 */
export async function commit(db: TxnDb, req: CommitRequest): Promise<TxnCommandResult<CommitResponse>> {
  let keys: Buffer[];
  let startTs: bigint;
  let commitTs: bigint;
  try {
    startTs = checkTs('startTs', req.startTs);
    commitTs = checkTs('commitTs', req.commitTs);
    if (commitTs <= startTs) {
      throw new InvalidTxnRequestError(`commitTs ${commitTs} must be greater than startTs ${startTs}`);
    }
    keys = uniqueKeys(req.keys, 'commit keys');
  } catch (err) {
    return invalid(err, (error) => ({ error }));
  }
  const writes: InternalWrite[] = [];
  for (const key of keys) {
    const error = await commitKey(db, key, startTs, commitTs, writes, true);
    if (error !== undefined) return { writes: [], response: { error } };
  }
  return { writes, response: {} };
}

// --- rollback ---------------------------------------------------------------------------------

/**
 * Rolls the transaction back on one key: deletes its lock and data (if there), and leaves a
 * rollback record at startTs so a late prewrite fails. Already rolled back → nothing more;
 * committed → Committed. A commit record of another transaction at exactly startTs gets the
 * overlapped-rollback flag instead of being replaced.
 */
async function rollbackKey(
  db: TxnDb,
  key: Buffer,
  startTs: bigint,
  writes: InternalWrite[],
): Promise<TxnError | undefined> {
  const dk = dataKey(key);
  const st = await txnRecordStatus(db, key, startTs);
  if (st.committed !== undefined) return new TxnCommittedError(key, startTs, st.committed.version);
  const lock = await loadLock(db, key);
  if (lock !== undefined && lock.startTs === startTs) {
    writes.push(unlockWrite(dk));
    if (lock.kind === 'put') writes.push({ cf: 'data', op: 'delete', key: dk, version: startTs });
  }
  if (st.rolledBack) return undefined;
  if (st.atStartTs !== undefined) {
    // another transaction committed at exactly our start timestamp: keep its record, flag ours
    writes.push({
      cf: 'write',
      op: 'put',
      key: dk,
      version: startTs,
      value: encodeWrite({ ...st.atStartTs.record, overlappedRollback: true }),
    });
  } else {
    writes.push({
      cf: 'write',
      op: 'put',
      key: dk,
      version: startTs,
      value: encodeWrite({ kind: 'rollback', startTs, overlappedRollback: false }),
    });
  }
  return undefined;
}

/**
 * Rolls the transaction back on `keys` (locked or not: an unlocked key still gets a rollback
 * record, so a prewrite arriving later fails). Already committed on a key → Committed, and
 * nothing is written.
 */
export async function batchRollback(
  db: TxnDb,
  req: BatchRollbackRequest,
): Promise<TxnCommandResult<BatchRollbackResponse>> {
  let keys: Buffer[];
  let startTs: bigint;
  try {
    startTs = checkTs('startTs', req.startTs);
    keys = uniqueKeys(req.keys, 'rollback keys');
  } catch (err) {
    return invalid(err, (error) => ({ error }));
  }
  const writes: InternalWrite[] = [];
  for (const key of keys) {
    const error = await rollbackKey(db, key, startTs, writes);
    if (error !== undefined) return { writes: [], response: { error } };
  }
  return { writes, response: {} };
}

// --- resolve lock -----------------------------------------------------------------------------

/**
 * Commits (commitTs > 0) or rolls back (commitTs = 0) the transaction's locks on `keys`, or on
 * every key in [start, end) it holds a lock on. Keys without a lock of the transaction are
 * skipped. A commit here does not check the lock's min commit ts: the primary's commit already
 * decided the transaction's fate and timestamp.
 */
export async function resolveLock(
  db: TxnDb,
  req: ResolveLockRequest,
): Promise<TxnCommandResult<ResolveLockResponse>> {
  let startTs: bigint;
  let commitTs: bigint;
  let keys: Buffer[];
  try {
    startTs = checkTs('startTs', req.startTs);
    commitTs = checkTs('commitTs', req.commitTs, true);
    if (commitTs !== 0n && commitTs <= startTs) {
      throw new InvalidTxnRequestError(`commitTs ${commitTs} must be 0 or greater than startTs ${startTs}`);
    }
    if (req.keys !== undefined) {
      keys = uniqueKeys(req.keys, 'resolve keys');
    } else {
      const range: { start?: Uint8Array; end?: Uint8Array; startTs: bigint } = { startTs };
      if (req.start !== undefined) range.start = req.start;
      if (req.end !== undefined) range.end = req.end;
      keys = (await scanLocks(db, range)).map((l) => l.key);
    }
  } catch (err) {
    return invalid(err, (error) => ({ resolved: 0, error }));
  }
  const writes: InternalWrite[] = [];
  let resolved = 0;
  for (const key of keys) {
    const lock = await loadLock(db, key);
    if (lock === undefined || lock.startTs !== startTs) continue;
    const error =
      commitTs === 0n
        ? await rollbackKey(db, key, startTs, writes)
        : await commitLockedKey(db, key, lock, commitTs, writes);
    if (error !== undefined) return { writes: [], response: { resolved: 0, error } };
    resolved++;
  }
  return { writes, response: { resolved } };
}

// --- check txn status -------------------------------------------------------------------------

/** Whether a lock has outlived its TTL at `currentTs` (physical milliseconds of both stamps). */
export function isLockExpired(lock: Pick<LockRecord, 'startTs' | 'ttl'>, currentTs: bigint): boolean {
  return tsPhysicalMs(currentTs) >= tsPhysicalMs(lock.startTs) + lock.ttl;
}

/**
 * The state of a transaction, decided on its primary key:
 * - the transaction's lock, expired at currentTs → rolled back (TtlExpireRollback);
 * - the lock alive and a reader at callerStartTs >= its min commit ts → min commit ts pushed to
 *   callerStartTs + 1 (MinCommitTsPushed), so the reader may ignore it; else NoAction;
 * - no lock of the transaction (another transaction's lock does not matter): committed →
 *   commitTs; rolled back → NoAction with status rolledBack; nothing → rollback record
 *   (LockNotExistRollback) if rollbackIfNotExist, else TxnNotFound.
 */
export async function checkTxnStatus(
  db: TxnDb,
  req: CheckTxnStatusRequest,
): Promise<TxnCommandResult<CheckTxnStatusResponse>> {
  let primary: Buffer;
  let lockTs: bigint;
  let currentTs: bigint;
  let callerStartTs: bigint;
  const failed = (error: TxnError): CheckTxnStatusResponse => ({
    action: 'NoAction',
    lockTtl: 0,
    commitTs: 0n,
    status: 'alive',
    error,
  });
  try {
    primary = checkUserKey(req.primaryKey, 'primaryKey');
    lockTs = checkTs('lockTs', req.lockTs);
    currentTs = checkTs('currentTs', req.currentTs, true);
    callerStartTs = checkTs('callerStartTs', req.callerStartTs, true);
  } catch (err) {
    return invalid(err, failed);
  }
  const dk = dataKey(primary);
  const writes: InternalWrite[] = [];
  const lock = await loadLock(db, primary);
  if (lock !== undefined && lock.startTs === lockTs) {
    if (isLockExpired(lock, currentTs)) {
      const error = await rollbackKey(db, primary, lockTs, writes);
      if (error !== undefined) return { writes: [], response: failed(error) };
      return {
        writes,
        response: { action: 'TtlExpireRollback', lockTtl: 0, commitTs: 0n, status: 'rolledBack' },
      };
    }
    if (callerStartTs > 0n && callerStartTs < MAX_TS && lock.minCommitTs <= callerStartTs) {
      writes.push(lockWrite(dk, { ...lock, minCommitTs: callerStartTs + 1n }));
      return {
        writes,
        response: { action: 'MinCommitTsPushed', lockTtl: lock.ttl, commitTs: 0n, status: 'alive' },
      };
    }
    return { writes, response: { action: 'NoAction', lockTtl: lock.ttl, commitTs: 0n, status: 'alive' } };
  }
  const st = await txnRecordStatus(db, primary, lockTs);
  if (st.committed !== undefined) {
    return {
      writes,
      response: { action: 'NoAction', lockTtl: 0, commitTs: st.committed.version, status: 'committed' },
    };
  }
  if (st.rolledBack) {
    return { writes, response: { action: 'NoAction', lockTtl: 0, commitTs: 0n, status: 'rolledBack' } };
  }
  if (!req.rollbackIfNotExist) return { writes: [], response: failed(new TxnNotFoundError(primary, lockTs)) };
  const error = await rollbackKey(db, primary, lockTs, writes);
  if (error !== undefined) return { writes: [], response: failed(error) };
  return {
    writes,
    response: { action: 'LockNotExistRollback', lockTtl: 0, commitTs: 0n, status: 'rolledBack' },
  };
}
