import { ExitCode } from '../errors.js';
import type { Output } from '../output.js';

export interface ServeFlags {
  config: string;
  storeId: number;
  workdir?: string;
  addr?: string;
  httpAddr?: string;
  scope: 'host' | 'docker';
  logLevel: string;
  raftTickMs?: number;
  coordinatorAddr?: string;
  enableFaultInjection?: boolean;
  raftLogRetain?: number;
}

/**
 * `nokv serve --config FILE --store-id N ...`: runs a store until SIGINT/SIGTERM (see
 * apps/node/README.md). Startup errors are printed as `error: <message>`, exit code 1.
 */
export async function serveCommand(flags: ServeFlags, out: Output): Promise<void> {
  // Loaded on demand: the store pulls in gRPC and the raftstore, which the other commands never need.
  const { runNode } = await import('@nokv/node');
  const code = await runNode(
    {
      configPath: flags.config,
      storeId: flags.storeId,
      scope: flags.scope,
      logLevel: flags.logLevel,
      ...(flags.workdir !== undefined ? { workdir: flags.workdir } : {}),
      ...(flags.addr !== undefined ? { addr: flags.addr } : {}),
      ...(flags.httpAddr !== undefined ? { httpAddr: flags.httpAddr } : {}),
      ...(flags.raftTickMs !== undefined ? { raftTickMs: flags.raftTickMs } : {}),
      ...(flags.coordinatorAddr !== undefined ? { coordinatorAddr: flags.coordinatorAddr } : {}),
      ...(flags.enableFaultInjection ? { faultInjection: true } : {}),
      ...(flags.raftLogRetain !== undefined ? { raftLogRetainEntries: flags.raftLogRetain } : {}),
    },
    { error: (text) => out.error(text) },
  );
  if (code !== 0) throw new ExitCode(code);
}
