export { Catalog, compareEpoch, isStaleEpoch, rangesOverlap, sameRegion } from './catalog.js';
export {
  CHECKPOINT_FILE,
  CHECKPOINT_MAGIC,
  type CheckpointData,
  decodeCheckpoint,
  encodeCheckpoint,
  readCheckpoint,
  writeCheckpoint,
  writeFileAtomic,
} from './checkpoint.js';
export { DurableState, type DurableStateOptions, type RecoveryReport } from './durable.js';
export {
  type CoordinatorEvent,
  decodeEvent,
  EVENT_TYPE,
  encodeEvent,
  type StoreAdminState,
  type StoreRecord,
  storeFromWire,
  storeToWire,
} from './events.js';
export {
  encodeRecord,
  LOG_HEADER_BYTES,
  LOG_MAGIC,
  LogWriter,
  logFileName,
  parseLog,
  parseLogFileName,
  readLog,
} from './log.js';
