export {
  CorruptRaftStateError,
  CorruptSnapshotError,
  isPeerStorageError,
  PeerStorageError,
  type PeerStorageErrorCode,
} from './errors.js';
export {
  confStateOfRegion,
  type DataWrite,
  type GeneratedSnapshot,
  generateRegionSnapshot,
  PeerStorage,
  type PeerStorageLogger,
  type PeerStorageOptions,
  RAFT_INIT_INDEX,
  RAFT_INIT_TERM,
  readRegionStates,
  snapshotDataWrites,
  txnRangeDeletes,
} from './peer-storage.js';
export {
  decodeSnapshotPayload,
  type EncodeSnapshotOptions,
  encodeSnapshotPayload,
  MAX_TABLE_BYTES,
  SNAPSHOT_PAYLOAD_MAGIC,
  SNAPSHOT_PAYLOAD_VERSION,
  type SnapshotPayload,
  type SnapshotTableMeta,
  type VersionedRecord,
} from './snapshot-payload.js';
