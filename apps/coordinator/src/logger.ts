import { pino } from 'pino';
import { CoordinatorError } from './errors.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

export type CoordinatorLogger = pino.Logger;

/** JSON lines on `destination` (stdout by default): base field `component: "coordinator"`, ISO times. */
export function createLogger(level = 'info', destination?: pino.DestinationStream): CoordinatorLogger {
  if (!(LOG_LEVELS as readonly string[]).includes(level)) {
    throw new CoordinatorError(
      'InvalidArgument',
      `unknown log level '${level}' (one of ${LOG_LEVELS.join(', ')})`,
    );
  }
  const options: pino.LoggerOptions = {
    level,
    base: { component: 'coordinator' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  };
  return destination ? pino(options, destination) : pino(options, pino.destination({ dest: 1, sync: true }));
}
