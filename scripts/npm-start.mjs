// `npm start`: install and build if needed, then run what NoKV can show today. Until the cluster
// lab exists this is the embedded engine demo (see README).
import { checkNodeVersion, ensureInstalled, run, runPnpm, step } from './lib/run.mjs';

checkNodeVersion();
ensureInstalled({ frozen: true });
step('building (tsc -b)');
runPnpm(['run', 'build']);
step('running the embedded engine demo (nokv demo)');
run(process.execPath, ['packages/cli/bin/nokv.mjs', 'demo', ...process.argv.slice(2)]);
