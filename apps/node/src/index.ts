/** @nokv/node: the store server process behind `nokv serve`. */

export { toJson } from '@nokv/server-kit';
export { isServeError, ServeError, type ServeErrorCode } from './errors.js';
export { createLogger, LOG_LEVELS, type LogLevel, type NodeLogger } from './logger.js';
export { parseServeArgs, type RunNodeIo, runNode } from './main.js';
export {
  createHttpServer,
  type HttpSources,
  type RunningNode,
  type ServeOptions,
  serve,
} from './serve.js';
