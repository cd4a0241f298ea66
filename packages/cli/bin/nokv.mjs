#!/usr/bin/env node
// Entry point of the `nokv` command. Builds the workspace first when the compiled CLI is missing,
// so `pnpm nokv ...` works straight after install.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const entry = join(here, '..', 'dist', 'src', 'main.js');
if (!existsSync(entry)) {
  process.stderr.write('nokv: compiled CLI not found; building the workspace (tsc -b)...\n');
  const root = join(here, '..', '..', '..');
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const result = spawnSync(process.execPath, [tsc, '-b'], { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) {
    process.stderr.write('nokv: build failed; run `npm test` or `pnpm build` to see why\n');
    process.exit(1);
  }
}
// Output piped into something that stops reading (`| head`) is not an error worth a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
}
const { main } = await import(pathToFileURL(entry).href);
process.exitCode = await main(process.argv.slice(2));
