export { ProtoError, type ProtoErrorCode } from './errors.js';
export * from './raft.js';
export { uint64FromWire, uint64ToWire } from './uint64.js';
