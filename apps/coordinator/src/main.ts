#!/usr/bin/env node
/**
 * The coordinator process entry: `runCoordinator` starts a coordinator and keeps it running until
 * SIGINT or SIGTERM, then stops it gracefully. `nokv coordinator` calls it; running this file
 * directly takes the same flags:
 *
 *     node apps/coordinator/dist/src/main.js --addr 127.0.0.1:2379 --workdir DIR [--http-addr H:P]
 *       [--trpc-addr H:P] [--admin-token T] [--log-level L] [--heartbeat-timeout-ms N]
 *       [--region-heartbeat-timeout-ms N] [--replica-replace-after-ms N] [--no-scheduler]
 *
 * The admin token may come from NOKV_ADMIN_TOKEN instead (kept out of the process list), and
 * --replica-replace-after-ms from NOKV_REPLICA_REPLACE_AFTER_MS (tests that start the process
 * through a harness without flags).
 */

import { parseArgs } from 'node:util';
import { loadTopology } from '@nokv/config';
import { type RunIo, runIfEntry, runUntilSignal, stderrIo } from '@nokv/server-kit';
import { type RunningCoordinator, type ServeOptions, serve } from './serve.js';

export type RunCoordinatorIo = RunIo<RunningCoordinator>;

/** Starts, waits for a signal, stops; resolves with the exit code (0 clean, 1 failure). */
export function runCoordinator(options: ServeOptions, io: RunCoordinatorIo = stderrIo): Promise<number> {
  return runUntilSignal(() => serve(options), io);
}

/**
 * Parses the flags. Without --addr, the address comes from --config's `coordinator.addr`, else
 * 127.0.0.1:2379.
 */
export async function parseCoordinatorArgs(
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<ServeOptions> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      addr: { type: 'string' },
      workdir: { type: 'string' },
      'http-addr': { type: 'string' },
      'trpc-addr': { type: 'string' },
      'admin-token': { type: 'string' },
      'log-level': { type: 'string' },
      'heartbeat-timeout-ms': { type: 'string' },
      'region-heartbeat-timeout-ms': { type: 'string' },
      'replica-replace-after-ms': { type: 'string' },
      'no-scheduler': { type: 'boolean' },
      config: { type: 'string' },
    },
    strict: true,
  });
  if (values.workdir === undefined) throw new Error("required option '--workdir <dir>' not specified");
  let addr = values.addr;
  if (addr === undefined && values.config !== undefined) {
    addr = (await loadTopology(values.config)).coordinator?.addr;
  }
  const ms = (flag: string, text: string | undefined): number | undefined => {
    if (text === undefined) return undefined;
    if (!/^\d+$/.test(text) || Number(text) <= 0) throw new Error(`--${flag} must be a positive integer`);
    return Number(text);
  };
  const hb = ms('heartbeat-timeout-ms', values['heartbeat-timeout-ms']);
  const regionHb = ms('region-heartbeat-timeout-ms', values['region-heartbeat-timeout-ms']);
  const replaceAfter = ms(
    'replica-replace-after-ms',
    values['replica-replace-after-ms'] ?? (env.NOKV_REPLICA_REPLACE_AFTER_MS || undefined),
  );
  const scheduler = {
    ...(replaceAfter !== undefined ? { replicaReplaceAfterMs: replaceAfter } : {}),
    ...(values['no-scheduler'] ? { disabled: true } : {}),
  };
  const adminToken = values['admin-token'] || env.NOKV_ADMIN_TOKEN || undefined;
  return {
    workdir: values.workdir,
    ...(addr !== undefined ? { addr } : {}),
    ...(values['http-addr'] !== undefined ? { httpAddr: values['http-addr'] } : {}),
    ...(values['trpc-addr'] !== undefined ? { trpcAddr: values['trpc-addr'] } : {}),
    ...(adminToken !== undefined ? { adminToken } : {}),
    ...(values['log-level'] !== undefined ? { logLevel: values['log-level'] } : {}),
    ...(hb !== undefined ? { heartbeatTimeoutMs: hb } : {}),
    ...(regionHb !== undefined ? { regionHeartbeatTimeoutMs: regionHb } : {}),
    ...(Object.keys(scheduler).length > 0 ? { scheduler } : {}),
  };
}

await runIfEntry(import.meta.url, parseCoordinatorArgs, runCoordinator);
