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
export {
  Coordinator,
  type CoordinatorOptions,
  OPERATIONS_FILE,
  type TransferLeaderRefusal,
} from './coordinator.js';
export {
  CoordinatorError,
  type CoordinatorErrorCode,
  isCoordinatorError,
  isOperatorError,
  OperatorError,
  type OperatorErrorCode,
} from './errors.js';
export { createUnaryClient, GrpcStatusError, RpcError, type UnaryClient } from './grpc.js';
export { type CoordinatorLogger, createLogger, LOG_LEVELS } from './logger.js';
export { parseCoordinatorArgs, type RunCoordinatorIo, runCoordinator } from './main.js';
export {
  OPERATION_KINDS,
  OPERATION_STATES,
  type Operation,
  type OperationFilter,
  type OperationJson,
  type OperationKind,
  type OperationSource,
  type OperationSpec,
  type OperationState,
  type OperatorEnv,
  OperatorQueue,
  type OperatorQueueOptions,
  operationJson,
  type StepName,
} from './operators.js';
export {
  SCHEDULER_RULES,
  Scheduler,
  type SchedulerDecision,
  type SchedulerOptions,
  type SchedulerRule,
  type SchedulerStatusJson,
} from './scheduler.js';
export {
  createHttpServer,
  DEFAULT_COORDINATOR_ADDR,
  type RunningCoordinator,
  type ServeOptions,
  serve,
} from './serve.js';
export * from './state/index.js';
export {
  type AdminRegionError,
  GrpcStoreAdmin,
  type GrpcStoreAdminOptions,
  type RegionRuntime,
  type StoreAdmin,
  type StoreRef,
} from './store-admin.js';
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
