#!/usr/bin/env node
/**
 * The store process entry: `runNode` starts a store and keeps it running until SIGINT or SIGTERM,
 * then stops it gracefully. The `nokv serve` command calls it; running this file directly
 * (`node apps/node/dist/src/main.js --config FILE --store-id N ...`) takes the same flags.
 */

import { parseArgs } from 'node:util';
import { type RunIo, runIfEntry, runUntilSignal, stderrIo } from '@nokv/server-kit';
import { type RunningNode, type ServeOptions, serve } from './serve.js';

/**
 * Where `error: <message>` goes (default stderr), the signals to stop on (default SIGINT and
 * SIGTERM), and `onStarted`, called once the node listens (tests use it to reach the node, or to
 * stop it).
 */
export type RunNodeIo = RunIo<RunningNode>;

/**
 * Starts a store and resolves with the process exit code once it has stopped: 0 after a signal and
 * a clean stop, 1 when startup or the stop failed (the message is printed as `error: <message>`).
 * A second signal while stopping exits the process at once with code 1.
 */
export function runNode(options: ServeOptions, io: RunNodeIo = stderrIo): Promise<number> {
  return runUntilSignal(() => serve(options), io);
}

function positive(text: string, flag: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n <= 0)
    throw new Error(`${flag} must be a positive integer`);
  return n;
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
      'enable-fault-injection': { type: 'boolean' },
      'raft-log-retain': { type: 'string' },
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
    ...(values['enable-fault-injection'] ? { faultInjection: true } : {}),
    ...(values['raft-log-retain'] !== undefined
      ? { raftLogRetainEntries: positive(values['raft-log-retain'], '--raft-log-retain') }
      : {}),
  };
}

await runIfEntry(import.meta.url, parseServeArgs, runNode);
