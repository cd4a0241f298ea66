/** @nokv/coordinator: the coordinator process behind `nokv coordinator`. */

export { toJson } from '@nokv/server-kit';
export { Allocators, composeTs, MAX_ALLOC_COUNT, splitTs, TSO_LOGICAL_BITS } from './allocator.js';
export { Coordinator, type CoordinatorOptions } from './coordinator.js';
export { CoordinatorError, type CoordinatorErrorCode, isCoordinatorError } from './errors.js';
export { createUnaryClient, GrpcStatusError, RpcError, type UnaryClient } from './grpc.js';
export { type CoordinatorLogger, createLogger, LOG_LEVELS } from './logger.js';
export { parseCoordinatorArgs, type RunCoordinatorIo, runCoordinator } from './main.js';
export { LeaderBalancer, type SchedulerOptions, type TransferLeaderOp } from './scheduler.js';
export {
  createHttpServer,
  DEFAULT_COORDINATOR_ADDR,
  type RunningCoordinator,
  type ServeOptions,
  serve,
} from './serve.js';
export * from './state/index.js';
export { ClusterView, type ClusterViewOptions, decideRegionHeartbeat, type StoreStats } from './view.js';
