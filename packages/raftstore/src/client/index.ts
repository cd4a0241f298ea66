export { type ClusterClientOptions, CoordinatorClient, connectCluster } from './coordinator-client.js';
export { ClientError, type ClientErrorCode, RawClient, type RawClientOptions } from './raw-client.js';
export {
  type AdminClient,
  type MergeOutcome,
  mergeRegions,
  type RegionOpsClientOptions,
  RegionOpsError,
  type RegionOpsErrorCode,
  splitRegion,
} from './region-ops.js';
export {
  type LockInfo,
  type ResolveOutcome,
  Transaction,
  TxnClient,
  type TxnClientOptions,
  type TxnMutation,
  type TxnStatus,
} from './txn-client.js';
