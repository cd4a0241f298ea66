import { loadTopology } from '@nokv/config';
import { ExitCode } from '../errors.js';
import type { Output } from '../output.js';

export interface CoordinatorFlags {
  workdir: string;
  addr?: string;
  httpAddr?: string;
  trpcAddr?: string;
  adminToken?: string;
  config?: string;
  logLevel: string;
  heartbeatTimeoutMs?: number;
  regionHeartbeatTimeoutMs?: number;
  replicaReplaceAfterMs?: number;
  /** Commander's negated flag: `--no-scheduler` sets it false. */
  scheduler?: boolean;
}

/**
 * `nokv coordinator --workdir DIR [--addr H:P] ...`: runs the coordinator until SIGINT/SIGTERM (see
 * apps/coordinator/README.md). Without --addr the address comes from --config's coordinator.addr,
 * else 127.0.0.1:2379. The admin token for tRPC mutations comes from --admin-token or NOKV_ADMIN_TOKEN.
 */
export async function coordinatorCommand(
  flags: CoordinatorFlags,
  out: Output,
  env: NodeJS.ProcessEnv = process.env,
): Promise<void> {
  // Loaded on demand: gRPC and the coordinator are not needed by the other commands.
  const { runCoordinator } = await import('@nokv/coordinator');
  const addr =
    flags.addr ??
    (flags.config !== undefined ? (await loadTopology(flags.config)).coordinator?.addr : undefined);
  const adminToken = flags.adminToken || env.NOKV_ADMIN_TOKEN || undefined;
  const code = await runCoordinator(
    {
      workdir: flags.workdir,
      logLevel: flags.logLevel,
      ...(addr !== undefined ? { addr } : {}),
      ...(flags.httpAddr !== undefined ? { httpAddr: flags.httpAddr } : {}),
      ...(flags.trpcAddr !== undefined ? { trpcAddr: flags.trpcAddr } : {}),
      ...(adminToken !== undefined ? { adminToken } : {}),
      ...(flags.heartbeatTimeoutMs !== undefined ? { heartbeatTimeoutMs: flags.heartbeatTimeoutMs } : {}),
      ...(flags.regionHeartbeatTimeoutMs !== undefined
        ? { regionHeartbeatTimeoutMs: flags.regionHeartbeatTimeoutMs }
        : {}),
      scheduler: {
        ...(flags.scheduler === false ? { disabled: true } : {}),
        ...(flags.replicaReplaceAfterMs !== undefined
          ? { replicaReplaceAfterMs: flags.replicaReplaceAfterMs }
          : {}),
      },
    },
    { error: (text) => out.error(text) },
  );
  if (code !== 0) throw new ExitCode(code);
}
