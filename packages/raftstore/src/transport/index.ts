export { type LinkFault, seededRandom, validateLinkFault } from './faults.js';
export type { DropReason } from './metrics.js';
export {
  type RaftMessageSink,
  type RaftTransportServiceEntry,
  type RaftTransportServiceOptions,
  raftTransportService,
} from './server.js';
export {
  RaftTransport,
  type RaftTransportOptions,
  type SnapshotStatus,
  type StoreLinkStats,
  type StoreStatus,
  type TransportLogger,
  type TransportStats,
} from './transport.js';
export { encodeRaftMessage, frameBatch } from './wire.js';
