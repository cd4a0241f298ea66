/** Where the library reports what it does. Lines are complete sentences without a trailing newline. */
export interface RaftLogger {
  debug(line: string): void;
  info(line: string): void;
  warn(line: string): void;
  error(line: string): void;
}

/** The default: a library does not print unless asked to. */
export const silentLogger: RaftLogger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};
