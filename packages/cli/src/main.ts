/**
 * The `nokv` command. Thin: each subcommand parses its flags and calls into the packages.
 * Returns the process exit code: 0 ok, 1 the operation failed, 2 bad usage.
 */

import { isNoKVError } from '@nokv/engine';
import { Command, CommanderError } from 'commander';
import { demoCommand } from './commands/demo.js';
import { manifestCommand } from './commands/manifest.js';
import { sstCommand } from './commands/sst.js';
import { statsCommand } from './commands/stats.js';
import { vlogCommand } from './commands/vlog.js';
import { type Output, processOutput } from './output.js';

export function buildProgram(out: Output): Command {
  const program = new Command('nokv')
    .description('NoKV: an embedded LSM engine that grows into a replicated multi-Raft cluster')
    .exitOverride()
    .configureOutput({ writeOut: (s) => out.write(s.trimEnd()), writeErr: (s) => out.error(s.trimEnd()) })
    .showHelpAfterError();

  program
    .command('stats')
    .description('print engine stats of a workdir (opens it read-only: changes nothing)')
    .requiredOption('--workdir <dir>', 'database directory')
    .option('--json', 'JSON for scripts')
    .action((o: { workdir: string; json?: boolean }) => statsCommand(o, out));

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
    if (isNoKVError(err)) {
      out.error(`nokv: ${err.message} [${err.code}]`);
      return 1;
    }
    out.error(`nokv: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    return 1;
  }
}
