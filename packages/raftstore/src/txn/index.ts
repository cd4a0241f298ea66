export type {
  BatchRollbackRequest,
  BatchRollbackResponse,
  CheckTxnStatusAction,
  CheckTxnStatusRequest,
  CheckTxnStatusResponse,
  CommitRequest,
  CommitResponse,
  Mutation,
  PrewriteRequest,
  PrewriteResponse,
  ResolveLockRequest,
  ResolveLockResponse,
  TxnCommandResult,
} from './commands.js';
export { batchRollback, checkTxnStatus, commit, isLockExpired, prewrite, resolveLock } from './commands.js';
export type { LockInfo, TxnErrorCode } from './errors.js';
export {
  AlreadyExistsError,
  CommitTsExpiredError,
  CorruptTxnRecordError,
  InvalidTxnRequestError,
  KeyLockedError,
  TxnAbortedError,
  TxnCommittedError,
  TxnError,
  TxnLockNotFoundError,
  TxnNotFoundError,
  WriteConflictError,
} from './errors.js';
export { DEFAULT_LATCH_SLOTS, Latches, latchHash } from './latches.js';
export type {
  MvccPair,
  MvccValue,
  ReadOptions,
  ScanResult,
  TxnDb,
  TxnRecordStatus,
  VersionedWrite,
} from './mvcc.js';
export {
  get,
  latestDataWrite,
  loadLock,
  lockBlocksRead,
  scan,
  scanLocks,
  txnRecordStatus,
  writesOf,
} from './mvcc.js';
export type { LockKind, LockRecord, WriteKind, WriteRecord } from './records.js';
export { decodeLock, decodeWrite, encodeLock, encodeWrite, LOCK_VERSION } from './records.js';
export { composeTs, LOGICAL_BITS, MAX_LOGICAL, MAX_TS, tsLogical, tsPhysicalMs } from './timestamp.js';
