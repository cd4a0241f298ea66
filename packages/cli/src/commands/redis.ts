import { CliError, ExitCode } from '../errors.js';
import type { Output } from '../output.js';

export interface RedisFlags {
  addr: string;
  workdir?: string;
  coordinator?: string;
  httpAddr?: string;
  allowFlush?: boolean;
  logLevel: string;
  maxClients?: number;
  maxArgs?: number;
  maxBulkBytes?: number;
  maxInlineBytes?: number;
  timeoutMs?: number;
  /** Commander's negated flag: `--no-group-commit` sets it false. */
  groupCommit?: boolean;
}

/**
 * `nokv redis (--workdir DIR | --coordinator H:P) [--addr H:P] ...`: runs the Redis gateway until
 * SIGINT/SIGTERM (see apps/redis/README.md). Bad flag combinations are usage errors (exit 2);
 * a backend or listener that cannot start is a failure (exit 1).
 */
export async function redisCommand(flags: RedisFlags, out: Output): Promise<void> {
  // Loaded on demand: the gateway pulls in the engine, gRPC and the raftstore client.
  const { GatewayError, runRedis, validateGatewayOptions } = await import('@nokv/redis');
  const options = {
    addr: flags.addr,
    logLevel: flags.logLevel,
    ...(flags.workdir !== undefined ? { workdir: flags.workdir } : {}),
    ...(flags.coordinator !== undefined ? { coordinator: flags.coordinator } : {}),
    ...(flags.httpAddr !== undefined ? { httpAddr: flags.httpAddr } : {}),
    ...(flags.allowFlush ? { allowFlush: true } : {}),
    ...(flags.maxClients !== undefined ? { maxClients: flags.maxClients } : {}),
    ...(flags.maxArgs !== undefined ? { maxArgs: flags.maxArgs } : {}),
    ...(flags.maxBulkBytes !== undefined ? { maxBulkBytes: flags.maxBulkBytes } : {}),
    ...(flags.maxInlineBytes !== undefined ? { maxInlineBytes: flags.maxInlineBytes } : {}),
    ...(flags.timeoutMs !== undefined ? { timeoutMs: flags.timeoutMs } : {}),
    ...(flags.groupCommit === false ? { groupCommit: false } : {}),
  };
  try {
    validateGatewayOptions(options);
  } catch (err) {
    if (err instanceof GatewayError && err.code === 'InvalidArgument') throw new CliError(err.message, 2);
    throw err;
  }
  const code = await runRedis(options, { error: (text) => out.error(text) });
  if (code !== 0) throw new ExitCode(code);
}
