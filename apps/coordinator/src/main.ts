#!/usr/bin/env node
/**
 * The coordinator process entry: `runCoordinator` starts a coordinator and keeps it running until
 * SIGINT or SIGTERM, then stops it gracefully. `nokv coordinator` calls it; running this file
 * directly takes the same flags:
 *
 *     node apps/coordinator/dist/src/main.js --addr 127.0.0.1:2379 --workdir DIR [--http-addr H:P] [--log-level L]
 */

import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadTopology } from '@nokv/config';
import { type RunningCoordinator, type ServeOptions, serve } from './serve.js';

export interface RunCoordinatorIo {
  error(text: string): void;
  signals?: readonly NodeJS.Signals[];
  onStarted?(c: RunningCoordinator): void;
}

const stderrIo: RunCoordinatorIo = { error: (text) => process.stderr.write(`${text}\n`) };

/** Starts, waits for a signal, stops; resolves with the exit code (0 clean, 1 failure). */
export async function runCoordinator(
  options: ServeOptions,
  io: RunCoordinatorIo = stderrIo,
): Promise<number> {
  let running: RunningCoordinator;
  try {
    running = await serve(options);
  } catch (err) {
    io.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
  const signals = io.signals ?? ['SIGINT', 'SIGTERM'];
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
    io.error(`error: stopping failed: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  } finally {
    for (const s of signals) process.off(s, force);
  }
}

/**
 * Parses the flags. Without --addr, the address comes from --config's `coordinator.addr`, else
 * 127.0.0.1:2379.
 */
export async function parseCoordinatorArgs(argv: readonly string[]): Promise<ServeOptions> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      addr: { type: 'string' },
      workdir: { type: 'string' },
      'http-addr': { type: 'string' },
      'log-level': { type: 'string' },
      'heartbeat-timeout-ms': { type: 'string' },
      config: { type: 'string' },
    },
    strict: true,
  });
  if (values.workdir === undefined) throw new Error("required option '--workdir <dir>' not specified");
  let addr = values.addr;
  if (addr === undefined && values.config !== undefined) {
    addr = (await loadTopology(values.config)).coordinator?.addr;
  }
  const hb = values['heartbeat-timeout-ms'];
  if (hb !== undefined && !/^\d+$/.test(hb))
    throw new Error('--heartbeat-timeout-ms must be a positive integer');
  return {
    workdir: values.workdir,
    ...(addr !== undefined ? { addr } : {}),
    ...(values['http-addr'] !== undefined ? { httpAddr: values['http-addr'] } : {}),
    ...(values['log-level'] !== undefined ? { logLevel: values['log-level'] } : {}),
    ...(hb !== undefined ? { heartbeatTimeoutMs: Number(hb) } : {}),
  };
}

function isEntry(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntry()) {
  let options: ServeOptions | undefined;
  try {
    options = await parseCoordinatorArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message}\n`);
    process.exitCode = 2;
  }
  if (options) process.exitCode = await runCoordinator(options);
}
