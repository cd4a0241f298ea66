export * from './client/index.js';
export { readRegionStates } from './peer-storage/index.js';
export * from './raft/index.js';
export * from './store/index.js';
