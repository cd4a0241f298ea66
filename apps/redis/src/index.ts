/**
 * @nokv/redis: a Redis-compatible gateway over NoKV. See README.md.
 */

export type { BackendErrorCode, BackendTxn, KvBackend } from './backend/backend.js';
export { BackendError } from './backend/backend.js';
export {
  ClusterBackend,
  type ClusterBackendOptions,
  type ClusterBackendStats,
  type GroupCommitOptions,
} from './backend/cluster.js';
export { EmbeddedBackend, type EmbeddedBackendOptions } from './backend/embedded.js';
export {
  decodeEnvelope,
  ENVELOPE_HEADER_BYTES,
  EnvelopeError,
  encodeEnvelope,
  type StoredValue,
  type ValueType,
} from './backend/envelope.js';
export { KEY_PREFIX } from './commands/keyspace.js';
export {
  DEFAULT_REDIS_ADDR,
  GatewayError,
  type GatewayErrorCode,
  type GatewayOptions,
  type RunningGateway,
  serveGateway,
  validateGatewayOptions,
} from './gateway.js';
export { parseRedisArgs, type RunRedisIo, runRedis } from './main.js';
export type { GatewayMetrics } from './metrics.js';
export { encodeReply, type Protocol } from './resp/encoder.js';
export { type ParseResult, type ParserLimits, RespParser } from './resp/parser.js';
export type { Reply } from './resp/reply.js';
export { type RedisServerOptions, type RunningRedis, startRedisServer } from './server.js';
export type { SweeperOptions } from './sweeper.js';
