/**
 * The life of a server process: start it, keep it running until SIGINT or SIGTERM, stop it
 * gracefully, and turn the outcome into an exit code.
 */

/** What `runUntilSignal` needs of a started server. */
export interface StartedServer {
  /** Graceful stop; a rejection makes the exit code 1. */
  stop(): Promise<void>;
  logger: { info(obj: object, msg: string): void };
}

export interface RunIo<R extends StartedServer = StartedServer> {
  /** Where `error: <message>` goes (default stderr). */
  error(text: string): void;
  /** Signals to stop on (default SIGINT and SIGTERM). */
  signals?: readonly NodeJS.Signals[];
  /** Called once the server runs (tests use it to reach the server, or to stop it). */
  onStarted?(running: R): void;
}

/** `error:` lines to stderr, the default signals. */
export const stderrIo: Pick<RunIo, 'error'> = { error: (text) => process.stderr.write(`${text}\n`) };

const DEFAULT_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Starts a server and resolves with the process exit code once it has stopped: 0 after a signal
 * and a clean stop, 1 when startup or the stop failed (the message is printed as
 * `error: <message>`). A second signal while stopping exits the process at once with code 1.
 */
export async function runUntilSignal<R extends StartedServer>(
  start: () => Promise<R>,
  io: RunIo<R> = stderrIo,
): Promise<number> {
  let running: R;
  try {
    running = await start();
  } catch (err) {
    io.error(`error: ${message(err)}`);
    return 1;
  }
  const signals = io.signals ?? DEFAULT_SIGNALS;
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const handlers = new Map<NodeJS.Signals, () => void>();
    for (const s of signals) {
      const handler = () => {
        for (const [name, h] of handlers) process.off(name, h);
        resolve(s);
      };
      handlers.set(s, handler);
      process.on(s, handler);
    }
    io.onStarted?.(running);
  });
  running.logger.info({ signal }, `received ${signal}, stopping`);
  const force = () => {
    io.error('error: second signal while stopping; exiting at once');
    process.exit(1);
  };
  for (const s of signals) process.once(s, force);
  try {
    await running.stop();
    return 0;
  } catch (err) {
    io.error(`error: stopping failed: ${message(err)}`);
    return 1;
  } finally {
    for (const s of signals) process.off(s, force);
  }
}
