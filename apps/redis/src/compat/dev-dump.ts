import { startClusterTarget, startEmbeddedTarget, startReferenceTarget } from './harness.js';
import { compareAll, formatDiffs, runScripts } from './runner.js';
import { SCRIPTS } from './scripts.js';

const which = process.argv[2] ?? 'embedded';
const only = process.argv[3];
const scripts = only ? SCRIPTS.filter((s) => s.name === only) : SCRIPTS;
const ref = await startReferenceTarget();
const other =
  which === 'redis'
    ? await startReferenceTarget()
    : which === 'cluster'
      ? await startClusterTarget()
      : await startEmbeddedTarget();
try {
  const t0 = Date.now();
  const a = await runScripts(scripts, ref);
  const t1 = Date.now();
  const b = await runScripts(scripts, other);
  console.error(`ref ${t1 - t0} ms, ${which} run ${Date.now() - t1} ms`);
  if (only)
    for (const run of a.values())
      for (const s of run.steps)
        console.log(`${s.sent.slice(0, 100)}  →  ${s.replies.join(' | ').slice(0, 300)}`);
  console.log(formatDiffs(other.name, compareAll(a, b), 100) || 'identical');
} finally {
  await ref.stop();
  await other.stop();
}
