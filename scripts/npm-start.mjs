// `npm start`: install and build if needed, then start the local lab (`nokv lab up`): the
// coordinator and the stores of nokv.config.json, then the Redis gateway on 127.0.0.1:6380, as
// child processes; Ctrl+C stops them.
// `npm start -- demo` runs the embedded engine demo instead.
import { checkNodeVersion, ensureInstalled, run, runPnpm, step } from './lib/run.mjs';

checkNodeVersion();
ensureInstalled({ frozen: true });
step('building (tsc -b)');
runPnpm(['run', 'build']);
const args = process.argv.slice(2);
if (args[0] === 'demo') {
  step('running the embedded engine demo (nokv demo)');
  run(process.execPath, ['packages/cli/bin/nokv.mjs', 'demo', ...args.slice(1)]);
} else {
  step('starting the local lab (nokv lab up --config nokv.config.json)');
  run(process.execPath, ['packages/cli/bin/nokv.mjs', 'lab', 'up', '--config', 'nokv.config.json', ...args]);
}
