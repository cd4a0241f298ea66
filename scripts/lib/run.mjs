// Helpers for the root npm scripts. Only Node built-ins: these run before anything is installed.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

const REQUIRED_NODE_MAJOR = 20;
const REQUIRED_NODE_MINOR = 19;

/** Exits with a clear message when the running Node is older than the workspace supports. */
export function checkNodeVersion() {
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (major < REQUIRED_NODE_MAJOR || (major === REQUIRED_NODE_MAJOR && minor < REQUIRED_NODE_MINOR)) {
    fail(`NoKV needs Node.js >= ${REQUIRED_NODE_MAJOR}.${REQUIRED_NODE_MINOR}; this is ${process.version}.`);
  }
}

export function step(message) {
  process.stderr.write(`\n▶ ${message}\n`);
}

export function fail(message, code = 1) {
  process.stderr.write(`\n✖ ${message}\n`);
  process.exit(code);
}

/** Runs a command with inherited stdio; exits the whole script with its status if it fails. */
export function run(command, args, options = {}) {
  const result = spawnSync(command, args, { stdio: 'inherit', cwd: repoRoot, ...options });
  if (result.error) fail(`could not run ${command}: ${result.error.message}`);
  if (result.status !== 0) {
    fail(
      `'${[command, ...args].join(' ')}' failed with ${result.signal ?? `exit code ${result.status}`}`,
      result.status || 1,
    );
  }
}

let pnpmCommand;

/**
 * Finds pnpm 10: a pnpm on PATH if it is version 10, otherwise `npx -y pnpm@10` (corepack is not
 * used because it cannot download here).
 */
export function pnpm() {
  if (pnpmCommand) return pnpmCommand;
  const probe = spawnSync('pnpm', ['--version'], { encoding: 'utf8' });
  if (probe.status === 0 && probe.stdout.trim().startsWith('10.')) {
    pnpmCommand = ['pnpm'];
  } else {
    step('pnpm 10 is not on PATH; using npx -y pnpm@10');
    pnpmCommand = ['npx', '-y', 'pnpm@10'];
  }
  return pnpmCommand;
}

export function runPnpm(args) {
  const [command, ...prefix] = pnpm();
  run(command, [...prefix, ...args]);
}

/** Installs dependencies when node_modules is missing or older than the lockfile. */
export function ensureInstalled({ frozen }) {
  const marker = join(repoRoot, 'node_modules', '.modules.yaml');
  if (!frozen && existsSync(marker)) return;
  step('installing dependencies (pnpm install)');
  runPnpm(['install', ...(frozen ? ['--frozen-lockfile'] : []), '--reporter=append-only']);
}
