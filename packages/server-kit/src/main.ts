import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Whether the module at `moduleUrl` (its `import.meta.url`) is the script node was started with. */
export function isEntryModule(moduleUrl: string, script: string | undefined = process.argv[1]): boolean {
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(moduleUrl));
  } catch {
    return false;
  }
}

/**
 * A server's `main.ts` tail: when the module at `moduleUrl` is the started script, parses the
 * command line (a parse error prints `error: <message>` and sets exit code 2) and runs the server,
 * whose result becomes `process.exitCode`. Does nothing when the module was imported.
 */
export async function runIfEntry<O>(
  moduleUrl: string,
  parse: (argv: readonly string[]) => O | Promise<O>,
  run: (options: O) => Promise<number>,
): Promise<void> {
  if (!isEntryModule(moduleUrl)) return;
  let options: O;
  try {
    options = await parse(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 2;
    return;
  }
  process.exitCode = await run(options);
}
