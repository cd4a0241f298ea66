export type { RaftCommand, WriteRequest } from './command.js';
export { RegionError, type RegionErrorKind, StoreError, type StoreErrorCode, showKey } from './errors.js';
export * as storeKeys from './keys.js';
export { type StoreLogger, silentStoreLogger } from './logger.js';
export { applyMembership, Peer, type PeerOptions, type PeerRole } from './peer.js';
export {
  adminService,
  DEFAULT_SCAN_LIMIT,
  kvService,
  MAX_KEY_BYTES,
  MAX_SCAN_LIMIT,
  MAX_VALUE_BYTES,
  type ServiceEntry,
  storeServices,
} from './services.js';
export {
  DEFAULT_SPLIT_CHECK_INTERVAL_MS,
  DEFAULT_SPLIT_SIZE_BYTES,
  type PrepareMergeResult,
  type SplitResult,
} from './split-merge.js';
export {
  type RegionStatusView,
  type RequestContext,
  Store,
  type StoreRaftOptions,
  type StoreStartOptions,
} from './store.js';
