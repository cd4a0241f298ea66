/**
 * Errors of the transaction layer. Every one carries a string `code`; key errors carry the user
 * key (without the 'z' prefix). Commands return them in their responses (an apply must produce
 * the same response on every replica, so they are values, not exceptions); reads throw
 * `KeyLockedError`, and a damaged record throws `CorruptTxnRecordError`.
 */
import type { LockKind } from './records.js';

export type TxnErrorCode =
  /** Another transaction's lock is on the key (prewrite, read, check of a primary). */
  | 'Locked'
  /** A write committed (or rolled back) at or after the prewriting transaction's start. */
  | 'WriteConflict'
  /** `assertNotExist` and a committed put is visible at the start timestamp. */
  | 'AlreadyExists'
  /** The transaction was rolled back on the key (prewrite or commit after a rollback). */
  | 'Aborted'
  /** Commit found neither the transaction's lock nor any record of it on the key. */
  | 'TxnLockNotFound'
  /** Commit timestamp below the lock's min commit timestamp (a reader pushed it). */
  | 'CommitTsExpired'
  /** Rollback of a transaction already committed on the key. */
  | 'Committed'
  /** checkTxnStatus found nothing of the transaction and was not allowed to roll it back. */
  | 'TxnNotFound'
  /** A malformed request (bad timestamps, duplicate keys, empty key lists, ...). */
  | 'InvalidRequest'
  /** A lock, write or data record that does not decode, or data missing for a committed put. */
  | 'CorruptTxnRecord';

export class TxnError extends Error {
  override readonly name: string = 'TxnError';
  constructor(
    readonly code: TxnErrorCode,
    message: string,
    /** The user key concerned, when there is one. */
    readonly key?: Buffer,
  ) {
    super(message);
  }
}

function show(key: Uint8Array): string {
  return JSON.stringify(Buffer.from(key).toString('latin1'));
}

/** What a reader or writer learns about a lock that is in its way. */
export interface LockInfo {
  key: Buffer;
  primary: Buffer;
  lockTs: bigint;
  ttl: number;
  kind: LockKind;
  minCommitTs: bigint;
}

export class KeyLockedError extends TxnError {
  override readonly name = 'KeyLockedError';
  declare readonly key: Buffer;
  readonly primary: Buffer;
  readonly lockTs: bigint;
  readonly ttl: number;
  readonly lockKind: LockKind;
  readonly minCommitTs: bigint;
  constructor(readonly lock: LockInfo) {
    super('Locked', `key ${show(lock.key)} is locked by the transaction started at ${lock.lockTs}`, lock.key);
    this.primary = lock.primary;
    this.lockTs = lock.lockTs;
    this.ttl = lock.ttl;
    this.lockKind = lock.kind;
    this.minCommitTs = lock.minCommitTs;
  }
}

export class WriteConflictError extends TxnError {
  override readonly name = 'WriteConflictError';
  constructor(
    key: Buffer,
    /** The prewriting transaction's start timestamp. */
    readonly startTs: bigint,
    /** Start timestamp of the transaction whose record conflicts. */
    readonly conflictStartTs: bigint,
    /** Version of the conflicting record (its commit timestamp; a rollback's start timestamp). */
    readonly conflictTs: bigint,
  ) {
    super(
      'WriteConflict',
      `write conflict on ${show(key)}: start ${startTs}, a record at ${conflictTs} (txn ${conflictStartTs})`,
      key,
    );
  }
}

export class AlreadyExistsError extends TxnError {
  override readonly name = 'AlreadyExistsError';
  constructor(key: Buffer) {
    super('AlreadyExists', `key ${show(key)} already exists`, key);
  }
}

export class TxnAbortedError extends TxnError {
  override readonly name = 'TxnAbortedError';
  constructor(
    key: Buffer,
    readonly startTs: bigint,
    reason: string,
  ) {
    super('Aborted', `transaction ${startTs} aborted on ${show(key)}: ${reason}`, key);
  }
}

export class TxnLockNotFoundError extends TxnError {
  override readonly name = 'TxnLockNotFoundError';
  constructor(
    key: Buffer,
    readonly startTs: bigint,
  ) {
    super('TxnLockNotFound', `no lock or record of transaction ${startTs} on ${show(key)}`, key);
  }
}

export class CommitTsExpiredError extends TxnError {
  override readonly name = 'CommitTsExpiredError';
  constructor(
    key: Buffer,
    readonly startTs: bigint,
    readonly commitTs: bigint,
    readonly minCommitTs: bigint,
  ) {
    super(
      'CommitTsExpired',
      `commit ts ${commitTs} of transaction ${startTs} is below the min commit ts ${minCommitTs} of ${show(key)}`,
      key,
    );
  }
}

export class TxnCommittedError extends TxnError {
  override readonly name = 'TxnCommittedError';
  constructor(
    key: Buffer,
    readonly startTs: bigint,
    readonly commitTs: bigint,
  ) {
    super('Committed', `transaction ${startTs} is already committed at ${commitTs} on ${show(key)}`, key);
  }
}

export class TxnNotFoundError extends TxnError {
  override readonly name = 'TxnNotFoundError';
  constructor(
    key: Buffer,
    readonly startTs: bigint,
  ) {
    super('TxnNotFound', `transaction ${startTs} not found on its primary ${show(key)}`, key);
  }
}

export class InvalidTxnRequestError extends TxnError {
  override readonly name = 'InvalidTxnRequestError';
  constructor(message: string, key?: Buffer) {
    super('InvalidRequest', message, key);
  }
}

export class CorruptTxnRecordError extends TxnError {
  override readonly name = 'CorruptTxnRecordError';
  constructor(message: string, key?: Buffer) {
    super('CorruptTxnRecord', message, key);
  }
}
