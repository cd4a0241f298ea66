import { pino } from 'pino';
import { ServeError } from './errors.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type NodeLogger = pino.Logger;

/**
 * The node's logger: one JSON object per line on `destination` (stdout by default) with the base
 * field `store`, ISO timestamps and level names (`"level":"info"`), pino's shape otherwise.
 */
export function createLogger(
  storeId: bigint,
  level: string = 'info',
  destination?: pino.DestinationStream,
): NodeLogger {
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new ServeError('InvalidArgument', `unknown log level '${level}' (one of ${LOG_LEVELS.join(', ')})`);
  }
  const options: pino.LoggerOptions = {
    level,
    base: { store: Number(storeId) },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  return destination ? pino(options, destination) : pino(options, pino.destination({ dest: 1, sync: true }));
}
