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
} from './peer-storage.js';
export {
  decodeSnapshotPayload,
  encodeSnapshotPayload,
  SNAPSHOT_PAYLOAD_MAGIC,
  SNAPSHOT_PAYLOAD_VERSION,
  type SnapshotPayload,
} from './snapshot-payload.js';
