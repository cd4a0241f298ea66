/** @nokv/coordinator: the coordinator process behind `nokv coordinator`. */

export { toJson } from '@nokv/server-kit';
export { Allocators, composeTs, MAX_ALLOC_COUNT, splitTs, TSO_LOGICAL_BITS } from './allocator.js';
export {
  CLUSTER_EVENT_KINDS,
  type ClusterEvent,
  type ClusterEventKind,
  ClusterEventLog,
  type ClusterEventLogOptions,
} from './cluster-events.js';
export { Coordinator, type CoordinatorOptions, type TransferLeaderRefusal } from './coordinator.js';
export { CoordinatorError, type CoordinatorErrorCode, isCoordinatorError } from './errors.js';
export { createUnaryClient, GrpcStatusError, RpcError, type UnaryClient } from './grpc.js';
export { type CoordinatorLogger, createLogger, LOG_LEVELS } from './logger.js';
export { parseCoordinatorArgs, type RunCoordinatorIo, runCoordinator } from './main.js';
export {
  LeaderBalancer,
  type ManualTransfer,
  type SchedulerOptions,
  type TransferLeaderOp,
} from './scheduler.js';
export {
  createHttpServer,
  DEFAULT_COORDINATOR_ADDR,
  type RunningCoordinator,
  type ServeOptions,
  serve,
} from './serve.js';
export * from './state/index.js';
export { type AppRouter, appRouter, type MutationAuth, type TrpcContext } from './trpc/router.js';
export {
  isLoopbackHost,
  mutationAuth,
  type RunningTrpcServer,
  startTrpcServer,
  type TrpcServerOptions,
} from './trpc/server.js';
export {
  ClusterView,
  type ClusterViewJson,
  type ClusterViewOptions,
  decideRegionHeartbeat,
  type PeerJson,
  type ProblemsJson,
  type RegionJson,
  type StoreJson,
  type StoreStats,
} from './view.js';
