import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildTable, ROWS, replaceSection, rowOf } from './compat-table.js';
import {
  type RunningTarget,
  startClusterTarget,
  startEmbeddedTarget,
  startReferenceTarget,
} from './harness.js';
import { compareAll, formatDiffs, runScripts, type ScriptRun } from './runner.js';
import { commandOf } from './script.js';
import { SCRIPTS } from './scripts.js';

// The compatibility table test: every script in scripts.ts runs against a real redis-server
// (installed from Debian first when missing and we are root) and against the gateway over each
// backend; the replies must be identical byte for byte (save the few normalised steps). A failure
// lists the differing scripts with the first differing steps of each.

function expectSame(target: string, reference: Map<string, ScriptRun>, candidate: Map<string, ScriptRun>) {
  const results = compareAll(reference, candidate);
  const report = formatDiffs(target, results);
  expect(
    results.filter((r) => r.diffs.length > 0).map((r) => r.script),
    report,
  ).toEqual([]);
}

describe('the scripts and the table', () => {
  test('every command of the issue has cases, script names are unique', () => {
    const counted = new Set<string>();
    for (const s of SCRIPTS)
      for (const step of s.steps) {
        const c = commandOf(step);
        if (c !== undefined) counted.add(rowOf(c));
      }
    expect(ROWS.filter((r) => !counted.has(r))).toEqual([]);
    expect(new Set(SCRIPTS.map((s) => s.name)).size).toBe(SCRIPTS.length);
  });

  test('the table marks differing commands; the README section is replaced in place', () => {
    const table = buildTable(
      SCRIPTS,
      new Map([
        [
          'embedded',
          [
            {
              script: 'ping',
              diffs: [
                {
                  index: 0,
                  command: 'PING',
                  sent: 'PING',
                  expected: ['+PONG\\r\\n'],
                  actual: ['-ERR\\r\\n'],
                },
              ],
            },
          ],
        ],
        ['cluster', undefined],
      ]),
    );
    expect(table).toMatch(
      /^\| PING \| \d+ \| \*\*no\*\* \(1 of \d+\) \| not run \| differs on embedded in ping/m,
    );
    expect(table).toMatch(/^\| GET \| \d+ \| yes \| not run \|/m);
    const doc = '# T\n\nintro\n\n## Compatibility table\n\nold\n\n### sub\n\nold too\n\n## Next\n\nkept\n';
    expect(replaceSection(doc, '## Compatibility table', 'new')).toBe(
      '# T\n\nintro\n\n## Compatibility table\n\nnew\n\n## Next\n\nkept\n',
    );
    expect(replaceSection('# T\n', '## Compatibility table', 'new')).toBe(
      '# T\n\n## Compatibility table\n\nnew\n',
    );
  });
});

describe('compatibility scripts: redis-server vs the gateway', () => {
  let redis: RunningTarget | undefined;
  let reference: Map<string, ScriptRun>;

  beforeAll(async () => {
    redis = await startReferenceTarget();
    reference = await runScripts(SCRIPTS, redis);
  }, 120_000);

  afterAll(async () => {
    await redis?.stop();
  });

  test('the scripts are deterministic: a second run on redis-server replies the same', async () => {
    expectSame('redis-server (again)', reference, await runScripts(SCRIPTS, redis!));
  }, 120_000);

  test('the gateway over the embedded backend replies like redis-server', async () => {
    const gateway = await startEmbeddedTarget();
    try {
      expectSame(gateway.name, reference, await runScripts(SCRIPTS, gateway));
    } finally {
      await gateway.stop();
    }
  }, 120_000);

  test('the gateway over a real cluster replies like redis-server', async () => {
    const gateway = await startClusterTarget();
    try {
      expectSame(gateway.name, reference, await runScripts(SCRIPTS, gateway));
    } finally {
      await gateway.stop();
    }
  }, 240_000);
});
