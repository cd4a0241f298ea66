export { type ClusterClientOptions, CoordinatorClient, connectCluster } from './coordinator-client.js';
export { ClientError, type ClientErrorCode, RawClient, type RawClientOptions } from './raw-client.js';
export {
  type LockInfo,
  type ResolveOutcome,
  Transaction,
  TxnClient,
  type TxnClientOptions,
  type TxnStatus,
} from './txn-client.js';
