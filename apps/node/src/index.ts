/** @nokv/node: the store server process behind `nokv serve`. */

export { isServeError, ServeError, type ServeErrorCode } from './errors.js';
export { createHttpServer, type HttpSources, toJson } from './http.js';
export { createLogger, LOG_LEVELS, type LogLevel, type NodeLogger } from './logger.js';
export { parseServeArgs, type RunNodeIo, runNode } from './main.js';
export { type RunningNode, type ServeOptions, serve } from './serve.js';
