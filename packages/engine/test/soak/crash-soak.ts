/**
 * Long crash soak: many SIGKILL cycles (default 200). Not part of `npm test`.
 *
 *     pnpm soak:engine [cycles] [seed]
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCrashCycles } from '../crash/crash-harness.js';

const cycles = Number(process.argv[2] ?? 200);
const seed = Number(process.argv[3] ?? Date.now() % 100_000);
const root = mkdtempSync(join(tmpdir(), 'nokv-soak-'));
const started = Date.now();
console.log(`crash soak: ${cycles} cycles, seed ${seed}, dir ${root}`);
try {
  const summary = await runCrashCycles({
    dir: join(root, 'db'),
    cycles,
    seed,
    log: (line) => console.log(line),
  });
  console.log(JSON.stringify({ ...summary, seed, seconds: Math.round((Date.now() - started) / 1000) }));
  rmSync(root, { recursive: true, force: true });
} catch (err) {
  console.error(`FAILED (seed ${seed}; workdir kept at ${root}):`, err);
  process.exitCode = 1;
}
