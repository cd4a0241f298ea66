#!/usr/bin/env node
/**
 * The gateway process entry: `runRedis` starts the gateway and keeps it running until SIGINT or
 * SIGTERM, then stops it gracefully. `nokv redis` calls it; running this file directly takes the
 * same flags:
 *
 *     node apps/redis/dist/src/main.js [--addr 127.0.0.1:6380] (--workdir DIR | --coordinator H:P)
 *       [--http-addr H:P] [--allow-flush] [--log-level L] [--max-clients N] [--max-args N]
 *       [--max-bulk-bytes N] [--max-inline-bytes N] [--timeout-ms N] [--no-group-commit]
 *
 * Exit codes: 2 bad flags, 1 startup or shutdown failure, 0 after a signal and a clean stop.
 */

import { parseArgs } from 'node:util';
import { type RunIo, runIfEntry, runUntilSignal, stderrIo } from '@nokv/server-kit';
import {
  GatewayError,
  type GatewayOptions,
  type RunningGateway,
  serveGateway,
  validateGatewayOptions,
} from './gateway.js';

export type RunRedisIo = RunIo<RunningGateway>;

/** Starts, waits for a signal, stops; resolves with the exit code (0 clean, 1 failure). */
export function runRedis(options: GatewayOptions, io: RunRedisIo = stderrIo): Promise<number> {
  return runUntilSignal(() => serveGateway(options), io);
}

function positiveInt(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(n) || n <= 0) {
    throw new GatewayError('InvalidArgument', `${flag} must be a positive integer; got '${text}'`);
  }
  return n;
}

/** Parses and checks the flags. @throws GatewayError `InvalidArgument` */
export function parseRedisArgs(argv: readonly string[]): GatewayOptions {
  let values: ReturnType<typeof parse>['values'];
  try {
    values = parse(argv).values;
  } catch (err) {
    throw new GatewayError('InvalidArgument', (err as Error).message, { cause: err });
  }
  const opts: GatewayOptions = {
    ...(values.addr !== undefined ? { addr: values.addr } : {}),
    ...(values.workdir !== undefined ? { workdir: values.workdir } : {}),
    ...(values.coordinator !== undefined ? { coordinator: values.coordinator } : {}),
    ...(values['http-addr'] !== undefined ? { httpAddr: values['http-addr'] } : {}),
    ...(values['allow-flush'] ? { allowFlush: true } : {}),
    ...(values['log-level'] !== undefined ? { logLevel: values['log-level'] } : {}),
    ...(values['no-group-commit'] ? { groupCommit: false } : {}),
  };
  const limits = {
    maxClients: positiveInt(values['max-clients'], '--max-clients'),
    maxArgs: positiveInt(values['max-args'], '--max-args'),
    maxBulkBytes: positiveInt(values['max-bulk-bytes'], '--max-bulk-bytes'),
    maxInlineBytes: positiveInt(values['max-inline-bytes'], '--max-inline-bytes'),
    timeoutMs: positiveInt(values['timeout-ms'], '--timeout-ms'),
  };
  for (const [k, v] of Object.entries(limits)) if (v !== undefined) Object.assign(opts, { [k]: v });
  validateGatewayOptions(opts);
  return opts;
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    options: {
      addr: { type: 'string' },
      workdir: { type: 'string' },
      coordinator: { type: 'string' },
      'http-addr': { type: 'string' },
      'allow-flush': { type: 'boolean' },
      'log-level': { type: 'string' },
      'max-clients': { type: 'string' },
      'max-args': { type: 'string' },
      'max-bulk-bytes': { type: 'string' },
      'max-inline-bytes': { type: 'string' },
      'timeout-ms': { type: 'string' },
      'no-group-commit': { type: 'boolean' },
    },
    strict: true,
    allowPositionals: false,
  });
}

await runIfEntry(import.meta.url, parseRedisArgs, runRedis);
