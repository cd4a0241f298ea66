/**
 * @nokv/engine: NoKV's embedded LSM storage engine.
 *
 *     import { open } from '@nokv/engine';
 *     const db = await open({ dir: './data' });
 *     await db.set('hello', 'world');
 *     (await db.get('hello'))?.toString(); // 'world'
 *     await db.close();
 */

export type { IterateOptions, ReadOptions, WriteOptions } from './db/database.js';
export { Database, MAX_SCAN_LIMIT, open } from './db/database.js';
export type { RecoveryReport } from './db/engine-core.js';
export type { InternalApi, InternalRecord, InternalScanOptions, InternalWrite } from './db/internal-api.js';
export { isDeleteRecord } from './db/internal-api.js';
export type { ModeRecord, WorkdirMode } from './db/mode-file.js';
export { readModeFile, WORKDIR_MODES, writeModeFile } from './db/mode-file.js';
export type { Logger, OpenOptions } from './db/options.js';
export { MAX_KEY_BYTES, MAX_VALUE_BYTES } from './db/options.js';
export { Snapshot } from './db/snapshots.js';
export type { EngineStats, LevelStats } from './db/stats.js';
export type { ValueLogGcResult, ValueLogGcStats } from './db/value-log-gc.js';
export type { BytesInput, PutOptions, WriteOp } from './db/write-batch.js';
export { WriteBatch } from './db/write-batch.js';
export type { ErrorCode, InvalidArgumentCode } from './errors.js';
export {
  BackgroundError,
  ClosedError,
  CorruptionError,
  InvalidArgumentError,
  IoError,
  isCorruption,
  isNoKVError,
  LockedError,
  ModeError,
  NoKVError,
  ReadOnlyError,
} from './errors.js';
export type {
  ExternalTableEntry,
  ExternalTableInfo,
  ExternalTableOptions,
  ReadExternalTableOptions,
} from './external/external-table.js';
export { buildExternalTable, ExternalTableBuilder, readExternalTable } from './external/external-table.js';
export type { LevelReport, TableReport, WorkdirReport } from './inspect/inspect-workdir.js';
export { inspectWorkdir } from './inspect/inspect-workdir.js';
export type { VersionRecord } from './iterator/db-iterator.js';
export type { ColumnFamily } from './keys/internal-key.js';
export { COLUMN_FAMILIES, MAX_VERSION } from './keys/internal-key.js';
export type { TornTail } from './record/log-format.js';
export { NodeVfs, nodeVfs } from './vfs/node-vfs.js';
export type { OpenMode, Vfs, VfsFile, VfsOp } from './vfs/vfs.js';
