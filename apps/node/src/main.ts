#!/usr/bin/env node
/**
 * The store process entry: `runNode` starts a store and keeps it running until SIGINT or SIGTERM,
 * then stops it gracefully. The `nokv serve` command calls it; running this file directly
 * (`node apps/node/dist/src/main.js --config FILE --store-id N ...`) takes the same flags.
 */

import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type RunningNode, type ServeOptions, serve } from './serve.js';

export interface RunNodeIo {
  /** Where `error: <message>` goes (default stderr). */
  error(text: string): void;
  /** Signals to stop on (default SIGINT and SIGTERM). */
  signals?: readonly NodeJS.Signals[];
  /** Called once the node listens (tests use it to reach the node, or to stop it). */
  onStarted?(node: RunningNode): void;
}

const stderrIo: RunNodeIo = { error: (text) => process.stderr.write(`${text}\n`) };

/**
 * Starts a store and resolves with the process exit code once it has stopped: 0 after a signal and
 * a clean stop, 1 when startup or the stop failed (the message is printed as `error: <message>`).
 * A second signal while stopping exits the process at once with code 1.
 */
export async function runNode(options: ServeOptions, io: RunNodeIo = stderrIo): Promise<number> {
  let node: RunningNode;
  try {
    node = await serve(options);
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
    io.onStarted?.(node);
  });
  node.logger.info({ signal }, `received ${signal}, stopping`);
  const force = () => {
    io.error('error: second signal while stopping; exiting at once');
    process.exit(1);
  };
  for (const s of signals) process.once(s, force);
  try {
    await node.stop();
    return 0;
  } catch (err) {
    io.error(`error: stopping failed: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  } finally {
    for (const s of signals) process.off(s, force);
  }
}

/** Parses the `nokv serve` flags (for direct execution of this file). */
export function parseServeArgs(argv: readonly string[]): ServeOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      config: { type: 'string' },
      'store-id': { type: 'string' },
      workdir: { type: 'string' },
      addr: { type: 'string' },
      'http-addr': { type: 'string' },
      scope: { type: 'string' },
      'log-level': { type: 'string' },
      'raft-tick-ms': { type: 'string' },
      'coordinator-addr': { type: 'string' },
    },
    strict: true,
  });
  if (values.config === undefined) throw new Error("required option '--config <file>' not specified");
  if (values['store-id'] === undefined) throw new Error("required option '--store-id <id>' not specified");
  const scope = values.scope ?? 'host';
  if (scope !== 'host' && scope !== 'docker')
    throw new Error(`--scope must be host or docker, got '${scope}'`);
  return {
    configPath: values.config,
    storeId: Number(values['store-id']),
    scope,
    ...(values.workdir !== undefined ? { workdir: values.workdir } : {}),
    ...(values.addr !== undefined ? { addr: values.addr } : {}),
    ...(values['http-addr'] !== undefined ? { httpAddr: values['http-addr'] } : {}),
    ...(values['log-level'] !== undefined ? { logLevel: values['log-level'] } : {}),
    ...(values['raft-tick-ms'] !== undefined ? { raftTickMs: Number(values['raft-tick-ms']) } : {}),
    ...(values['coordinator-addr'] !== undefined ? { coordinatorAddr: values['coordinator-addr'] } : {}),
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
    options = parseServeArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message}\n`);
    process.exitCode = 2;
  }
  if (options) process.exitCode = await runNode(options);
}
