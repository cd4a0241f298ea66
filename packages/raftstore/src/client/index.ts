export { type ClusterClientOptions, CoordinatorClient, connectCluster } from './coordinator-client.js';
export { ClientError, type ClientErrorCode, RawClient, type RawClientOptions } from './raw-client.js';
