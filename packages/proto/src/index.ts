export { nokv } from '@nokv/proto/gen/nokv';
export { ProtoError, type ProtoErrorCode } from './errors.js';
export * from './meta.js';
export * from './raft.js';
export * from './services.js';
export * from './transport.js';
export { uint64FromWire, uint64ToWire } from './uint64.js';
