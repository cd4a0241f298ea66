// `npm test`: install, build (type-check every package), lint, then run every test.
// Each step fails the whole command; nothing here hides a failure.
import { checkNodeVersion, ensureInstalled, runPnpm, step } from './lib/run.mjs';

checkNodeVersion();
ensureInstalled({ frozen: true });
step('building and type-checking (tsc -b)');
runPnpm(['run', 'build']);
step('linting (biome check)');
runPnpm(['run', 'lint']);
step('running tests (vitest run)');
runPnpm(['run', 'test:unit']);
step('all checks passed');
