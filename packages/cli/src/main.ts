/**
 * The `nokv` command. Thin: each subcommand parses its flags and calls into the packages.
 * Returns the process exit code: 0 ok, 1 the operation failed, 2 bad usage.
 */

import { isConfigError, parseHostPort } from '@nokv/config';
import { isNoKVError } from '@nokv/engine';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { CoordinatorFlags } from './commands/coordinator.js';
import { demoCommand } from './commands/demo.js';
import { manifestCommand } from './commands/manifest.js';
import { registerMigrate } from './commands/migrate.js';
import type { RedisFlags } from './commands/redis.js';
import { remoteStatsCommand } from './commands/remote-stats.js';
import type { ServeFlags } from './commands/serve.js';
import { sstCommand } from './commands/sst.js';
import { statsCommand } from './commands/stats.js';
import { vlogCommand } from './commands/vlog.js';
import { CliError, ExitCode } from './errors.js';
import { type Output, processOutput } from './output.js';

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n <= 0) {
    throw new InvalidArgumentError('expected a positive integer');
  }
  return n;
}

function hostPort(value: string): string {
  if (!parseHostPort(value)) throw new InvalidArgumentError('expected host:port');
  return value;
}

function listenAddr(value: string): string {
  if (!parseHostPort(value, { allowZeroPort: true })) throw new InvalidArgumentError('expected host:port');
  return value;
}

export function buildProgram(out: Output): Command {
  const program = new Command('nokv')
    .description('NoKV: an embedded LSM engine that grows into a replicated multi-Raft cluster')
    .exitOverride()
    .configureOutput({ writeOut: (s) => out.write(s.trimEnd()), writeErr: (s) => out.error(s.trimEnd()) })
    .showHelpAfterError();

  program
    .command('stats')
    .description(
      'print engine stats of a workdir (opens it read-only: changes nothing), or the stats of a running store (--url)',
    )
    .option('--workdir <dir>', 'database directory')
    .option('--url <url>', "a running store's HTTP address (http://HOST:PORT; reads /stats)")
    .option('--json', 'JSON for scripts')
    .action(function (this: Command, o: { workdir?: string; url?: string; json?: boolean }) {
      if ((o.workdir === undefined) === (o.url === undefined)) {
        this.error(
          o.workdir === undefined
            ? "error: required option '--workdir <dir>' or '--url <url>' not specified"
            : 'error: --workdir and --url cannot be used together',
          { exitCode: 2, code: 'nokv.usage' },
        );
      }
      const json = o.json === true;
      return o.url !== undefined
        ? remoteStatsCommand({ url: o.url, json }, out)
        : statsCommand({ workdir: o.workdir!, json }, out);
    });

  program
    .command('serve')
    .description('run a store: engine + raftstore behind gRPC, /metrics /stats /healthz over HTTP')
    .requiredOption('--config <file>', 'topology file (nokv.config.json)')
    .requiredOption('--store-id <id>', 'which store of the topology this process is', positiveInt)
    .option('--workdir <dir>', "the store's workdir (default: the topology file's)")
    .option('--addr <host:port>', "gRPC listen address (default: the topology file's)", listenAddr)
    .option('--http-addr <host:port>', "HTTP listen address (default: the topology file's)", listenAddr)
    .addOption(
      new Option('--scope <scope>', 'which addresses of the topology file to use')
        .choices(['host', 'docker'])
        .default('host'),
    )
    .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS).default('info'))
    .option('--raft-tick-ms <ms>', 'milliseconds per Raft tick (default 100)', positiveInt)
    .option(
      '--coordinator-addr <host:port>',
      "coordinator to heartbeat to (default: the topology file's; '' = none)",
    )
    .option('--enable-fault-injection', 'accept the SetLinkFault admin RPC (chaos for tests and the lab)')
    .option(
      '--raft-log-retain <n>',
      'applied Raft entries kept for lagging followers (default 4096)',
      positiveInt,
    )
    .action(async (o: ServeFlags) => (await import('./commands/serve.js')).serveCommand(o, out));

  program
    .command('coordinator')
    .description(
      'run the coordinator: routing, store discovery, heartbeats, leader balancing, ID and TSO (gRPC); /metrics /view /healthz over HTTP; the console API over tRPC',
    )
    .requiredOption('--workdir <dir>', 'where the event log and checkpoint live')
    .option(
      '--addr <host:port>',
      "gRPC listen address (default: --config's coordinator.addr, else 127.0.0.1:2379)",
      listenAddr,
    )
    .option('--http-addr <host:port>', 'HTTP listen address (default: none)', listenAddr)
    .option('--trpc-addr <host:port>', 'tRPC (console API) listen address (default: none)', listenAddr)
    .option(
      '--admin-token <token>',
      'bearer token for tRPC mutations, required when --trpc-addr is not loopback (default: $NOKV_ADMIN_TOKEN)',
    )
    .option('--config <file>', 'topology file to take the coordinator address from')
    .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS).default('info'))
    .option(
      '--heartbeat-timeout-ms <ms>',
      'a store is down after this long without a heartbeat (default 10000)',
      positiveInt,
    )
    .option(
      '--region-heartbeat-timeout-ms <ms>',
      "a region's leader is trusted this long after its last region heartbeat (default 3 × the store timeout)",
      positiveInt,
    )
    .option(
      '--replica-replace-after-ms <ms>',
      'a store down this long has its replicas replaced on other stores (default 1800000 = 30 min)',
      positiveInt,
    )
    .option('--no-scheduler', 'no automatic operations (operator-added ones still run)')
    .action(async (o: CoordinatorFlags) =>
      (await import('./commands/coordinator.js')).coordinatorCommand(o, out),
    );

  program
    .command('redis')
    .description(
      'run the Redis-compatible gateway: embedded over a workdir, or over a cluster through its coordinator; /metrics /healthz over HTTP',
    )
    .option('--addr <host:port>', 'RESP listen address', listenAddr, '127.0.0.1:6380')
    .option('--workdir <dir>', 'embedded mode: the engine directory (created if missing)')
    .option(
      '--coordinator <host:port>',
      'cluster mode: the coordinator (transactions, routes, TSO)',
      hostPort,
    )
    .option(
      '--http-addr <host:port>',
      'HTTP listen address for /metrics /stats /healthz (default: none)',
      listenAddr,
    )
    .option('--allow-flush', 'accept FLUSHDB/FLUSHALL (refused by default)')
    .addOption(new Option('--log-level <level>', 'log level').choices(LOG_LEVELS).default('info'))
    .option('--max-clients <n>', 'connections at once', positiveInt)
    .option('--max-args <n>', 'arguments of one command (default 1048576)', positiveInt)
    .option('--max-bulk-bytes <n>', 'bytes of one argument (default 32 MiB)', positiveInt)
    .option('--max-inline-bytes <n>', 'bytes of one inline command line (default 64 KiB)', positiveInt)
    .option(
      '--timeout-ms <ms>',
      'cluster: deadline of one storage operation, retries included (default 5000)',
      positiveInt,
    )
    .option('--no-group-commit', 'cluster: run every transaction alone instead of merging concurrent ones')
    .action(async function (this: Command, o: RedisFlags) {
      if ((o.workdir === undefined) === (o.coordinator === undefined)) {
        this.error(
          o.workdir === undefined
            ? "error: required option '--workdir <dir>' (embedded) or '--coordinator <host:port>' (cluster) not specified"
            : 'error: --workdir and --coordinator cannot be used together',
          { exitCode: 2, code: 'nokv.usage' },
        );
      }
      return (await import('./commands/redis.js')).redisCommand(o, out);
    });

  program
    .command('regions')
    .description("list a store workdir's regions (read-only; works while the store runs)")
    .requiredOption('--workdir <dir>', 'store workdir')
    .option('--json', 'JSON for scripts')
    .action(async (o: { workdir: string; json?: boolean }) =>
      (await import('./commands/regions.js')).regionsCommand(o, out),
    );

  program
    .command('manifest')
    .description("print the live manifest's state: levels, log number, WAL segments (read-only)")
    .requiredOption('--workdir <dir>', 'database directory')
    .option('--json', 'JSON for scripts')
    .action((o: { workdir: string; json?: boolean }) => manifestCommand(o, out));

  program
    .command('sst')
    .description('list tables per level with key ranges and sizes (read-only)')
    .requiredOption('--workdir <dir>', 'database directory')
    .option('--json', 'JSON for scripts')
    .option('--verify', 'also read every block and check its checksum')
    .action((o: { workdir: string; json?: boolean; verify?: boolean }) => sstCommand(o, out));

  program
    .command('vlog')
    .description('list value log segments, the head and GC state (read-only)')
    .requiredOption('--workdir <dir>', 'database directory')
    .option('--json', 'JSON for scripts')
    .action((o: { workdir: string; json?: boolean }) => vlogCommand(o, out));

  const lab = program
    .command('lab')
    .description('the local lab: the coordinator and the stores of a topology file');
  lab
    .command('up')
    .description('start the coordinator and every store as child processes; Ctrl+C stops them')
    .option('--config <file>', 'topology file', 'nokv.config.json')
    .option('--artifacts <dir>', 'where logs and the pid file go', 'artifacts/lab')
    .addOption(
      new Option('--log-level <level>', 'log level of the processes').choices(LOG_LEVELS).default('info'),
    )
    .action(async (o: { config: string; artifacts: string; logLevel: string }) =>
      (await import('./commands/lab.js')).labUpCommand(o, out),
    );
  lab
    .command('down')
    .description("stop a lab started by 'nokv lab up' elsewhere")
    .option('--artifacts <dir>', 'where the pid file is', 'artifacts/lab')
    .action(async (o: { artifacts: string }) => (await import('./commands/lab.js')).labDownCommand(o, out));
  lab
    .command('clean')
    .description("remove the lab's workdirs and logs (refused while it runs)")
    .option('--config <file>', 'topology file', 'nokv.config.json')
    .option('--artifacts <dir>', 'where logs and the pid file go', 'artifacts/lab')
    .action(async (o: { config: string; artifacts: string }) =>
      (await import('./commands/lab.js')).labCleanCommand(o, out),
    );

  const kv = program.command('kv').description('raw reads and writes against a running cluster');
  const kvOptions = (c: Command) =>
    c
      .option('--config <file>', 'topology file (routes by its regions)', 'nokv.config.json')
      .option('--coordinator <host:port>', 'route through the coordinator instead of the topology file')
      .option('--json', 'JSON for scripts')
      .option('--timeout-ms <ms>', 'deadline of the operation, retries included', positiveInt, 5000);
  type KvOpts = { config: string; coordinator?: string; json?: boolean; timeoutMs: number; limit?: number };
  const kvRun = async (op: 'get' | 'put' | 'delete' | 'scan', args: string[], o: KvOpts) =>
    (await import('./commands/kv.js')).kvCommand(op, args, { ...o, json: o.json === true }, out);
  kvOptions(kv.command('get <key>').description('read a key (linearizable)')).action((k: string, o: KvOpts) =>
    kvRun('get', [k], o),
  );
  kvOptions(kv.command('put <key> <value>').description('write a key')).action(
    (k: string, v: string, o: KvOpts) => kvRun('put', [k, v], o),
  );
  kvOptions(kv.command('delete <key>').description('delete a key')).action((k: string, o: KvOpts) =>
    kvRun('delete', [k], o),
  );
  kvOptions(kv.command('scan [start] [end]').description('keys in [start, end) across regions'))
    .option('--limit <n>', 'at most this many keys', positiveInt, 100)
    .action((s: string | undefined, e: string | undefined, o: KvOpts) =>
      kvRun('scan', [s ?? '', e ?? ''], o),
    );

  registerMigrate(program, out);

  program
    .command('demo')
    .description('a short tour of the embedded engine')
    .option('--workdir <dir>', 'database directory', 'artifacts/demo')
    .action((o: { workdir: string }) => demoCommand(o, out));

  return program;
}

/** Runs the CLI with `argv` (without node and script); resolves to the exit code. */
export async function main(argv: readonly string[], out: Output = processOutput): Promise<number> {
  const program = buildProgram(out);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0)
        return 0;
      return 2;
    }
    if (err instanceof ExitCode) return err.exitCode;
    if (err instanceof CliError) {
      out.error(`error: ${err.message}`);
      return err.exitCode;
    }
    if (isConfigError(err)) {
      out.error(`error: ${err.message}`);
      return 1;
    }
    if (isNoKVError(err)) {
      out.error(`nokv: ${err.message} [${err.code}]`);
      return 1;
    }
    if (isTypedError(err)) {
      // A typed failure (the lab, the cluster client, the store's RPCs): its message is the report.
      out.error(`error: ${err.message} [${err.code}]`);
      return 1;
    }
    out.error(`nokv: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return 1;
  }
}

const TYPED_ERRORS = new Set([
  'LabError',
  'GatewayError',
  'ClientError',
  'RpcError',
  'StoreError',
  'RegionError',
  'MigrateError',
]);

function isTypedError(err: unknown): err is Error & { code: string } {
  return (
    err instanceof Error && TYPED_ERRORS.has(err.name) && typeof (err as { code?: unknown }).code === 'string'
  );
}
