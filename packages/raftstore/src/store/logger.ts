/** The logging surface the store uses: pino's (object first, then message). */
export interface StoreLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentStoreLogger: StoreLogger = {
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
};
