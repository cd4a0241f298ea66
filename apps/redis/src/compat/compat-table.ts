/**
 * `pnpm redis:compat-table`: runs every compatibility script against redis-server and the gateway
 * (embedded and cluster backends) and writes the compatibility table into apps/redis/README.md
 * under `## Compatibility table` (created at the end of the file if missing; nothing else in the
 * README is touched).
 *
 *     pnpm redis:compat-table [--no-cluster] [--print]
 *
 * `--no-cluster` skips the cluster backend (its column then says "not run"); `--print` writes
 * the section to stdout instead of the README.
 */

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  type RunningTarget,
  startClusterTarget,
  startEmbeddedTarget,
  startReferenceTarget,
} from './harness.js';
import { compareAll, formatDiffs, runScripts, type ScriptComparison, type ScriptRun } from './runner.js';
import { type CompatScript, commandOf, describeNorm } from './script.js';
import { SCRIPTS } from './scripts.js';

/** Table rows in the issue's order; other labels sort after them. */
export const ROWS = [
  'PING',
  'ECHO',
  'QUIT',
  'SELECT',
  'DBSIZE',
  'CLIENT SETNAME',
  'CLIENT GETNAME',
  'CLIENT ID',
  'CLIENT INFO',
  'CLIENT (other)',
  'COMMAND',
  'INFO',
  'HELLO',
  'GET',
  'SET',
  'SETNX',
  'SETEX',
  'PSETEX',
  'GETSET',
  'GETDEL',
  'GETEX',
  'MGET',
  'MSET',
  'MSETNX',
  'DEL',
  'UNLINK',
  'EXISTS',
  'INCR',
  'DECR',
  'INCRBY',
  'DECRBY',
  'INCRBYFLOAT',
  'APPEND',
  'STRLEN',
  'GETRANGE',
  'SETRANGE',
  'EXPIRE',
  'PEXPIRE',
  'EXPIREAT',
  'PEXPIREAT',
  'TTL',
  'PTTL',
  'PERSIST',
  'TYPE',
  'SCAN',
  'KEYS',
  'FLUSHDB',
  'MULTI',
  'EXEC',
  'DISCARD',
  'WATCH',
  'UNWATCH',
  'inline',
  'protocol',
  'pipeline',
  'unknown command',
] as const;

/** The row a step counts for. */
export function rowOf(command: string): string {
  if (command.startsWith('COMMAND')) return 'COMMAND';
  if (command.startsWith('CLIENT ') || command === 'CLIENT')
    return (ROWS as readonly string[]).includes(command) ? command : 'CLIENT (other)';
  return (ROWS as readonly string[]).includes(command) ? command : 'unknown command';
}

interface Row {
  command: string;
  cases: number;
  /** Differing steps per backend; undefined when that backend was not run. */
  differ: Map<string, number | undefined>;
  notes: Set<string>;
  /** A differing step → the backends it differs on. */
  diffs: Map<string, string[]>;
}

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

export function buildTable(
  scripts: readonly CompatScript[],
  comparisons: ReadonlyMap<string, readonly ScriptComparison[] | undefined>,
): string {
  const rows = new Map<string, Row>();
  const rowFor = (command: string) => {
    const name = rowOf(command);
    let r = rows.get(name);
    if (!r) {
      r = { command: name, cases: 0, differ: new Map(), notes: new Set(), diffs: new Map() };
      rows.set(name, r);
    }
    return r;
  };
  for (const s of scripts) {
    for (const step of s.steps) {
      const command = commandOf(step);
      if (command === undefined) continue;
      const r = rowFor(command);
      r.cases += step.kind === 'raw' ? step.replies : 1;
      if (step.kind === 'cmd' && step.norm) r.notes.add(describeNorm(step.norm));
      if (step.kind === 'scanAll') r.notes.add('full iterations compared as key sets (cursors differ)');
    }
  }
  for (const [backend, results] of comparisons) {
    for (const r of rows.values()) r.differ.set(backend, results === undefined ? undefined : 0);
    for (const c of results ?? []) {
      for (const d of c.diffs) {
        if (d.command === undefined) continue;
        const r = rowFor(d.command);
        r.differ.set(backend, (r.differ.get(backend) ?? 0) + 1);
        const what = `${c.script}: \`${clip(d.sent, 50)}\` → \`${clip(d.actual.join(' '), 60)}\`, Redis \`${clip(d.expected.join(' '), 60)}\``;
        r.diffs.set(what, [...(r.diffs.get(what) ?? []), backend]);
      }
    }
  }
  const order = (name: string) => {
    const i = (ROWS as readonly string[]).indexOf(name);
    return i < 0 ? ROWS.length : i;
  };
  const backends = [...comparisons.keys()];
  const cell = (r: Row, backend: string) => {
    const n = r.differ.get(backend);
    if (n === undefined) return 'not run';
    return n === 0 ? 'yes' : `**no** (${n} of ${r.cases})`;
  };
  const cellText = (s: string) => s.replaceAll('|', '\\|');
  const lines = [
    `| Command | Cases | ${backends.map((b) => `Identical (${b})`).join(' | ')} | Notes |`,
    `| --- | ---: | ${backends.map(() => ':---:').join(' | ')} | --- |`,
  ];
  const MAX_DIFF_NOTES = 3;
  for (const r of [...rows.values()].sort((a, b) => order(a.command) - order(b.command))) {
    const diffNotes = [...r.diffs].map(([what, on]) => `differs on ${on.join(' and ')} in ${what}`);
    if (diffNotes.length > MAX_DIFF_NOTES)
      diffNotes.splice(
        MAX_DIFF_NOTES,
        diffNotes.length,
        `${diffNotes.length - MAX_DIFF_NOTES} more differing steps`,
      );
    const notes = [...r.notes, ...diffNotes].join('; ');
    lines.push(
      `| ${cellText(r.command)} | ${r.cases} | ${backends.map((b) => cell(r, b)).join(' | ')} | ${cellText(notes)} |`,
    );
  }
  return lines.join('\n');
}

/** Replaces (or appends) the `## Compatibility table` section of a markdown document. */
export function replaceSection(doc: string, heading: string, body: string): string {
  const lines = doc.split('\n');
  const start = lines.findIndex((l) => l.trim() === heading);
  const section = [heading, '', body.trimEnd(), ''];
  if (start < 0) {
    const trimmed = doc.trimEnd();
    return `${trimmed}${trimmed.length > 0 ? '\n\n' : ''}${section.join('\n')}`;
  }
  let end = lines.findIndex((l, i) => i > start && /^#{1,2} /.test(l));
  if (end < 0) end = lines.length;
  return [...lines.slice(0, start), ...section, ...lines.slice(end)].join('\n');
}

async function main(): Promise<void> {
  const { values: flags } = parseArgs({
    options: {
      'no-cluster': { type: 'boolean', default: false },
      print: { type: 'boolean', default: false },
    },
  });
  const started: RunningTarget[] = [];
  const comparisons = new Map<string, ScriptComparison[] | undefined>();
  let version = '';
  try {
    const redis = await startReferenceTarget();
    started.push(redis);
    version = /v=(\S+)/.exec(redis.version)?.[1] ?? redis.version;
    process.stderr.write(`running ${SCRIPTS.length} scripts on ${version}\n`);
    const reference = await runScripts(SCRIPTS, redis);
    const run = async (label: string, start: () => Promise<RunningTarget>) => {
      process.stderr.write(`running on the gateway (${label})\n`);
      const t = await start();
      started.push(t);
      const got: Map<string, ScriptRun> = await runScripts(SCRIPTS, t);
      const results = compareAll(reference, got);
      comparisons.set(label, results);
      const report = formatDiffs(t.name, results);
      process.stderr.write(report === '' ? `${t.name}: every script identical\n` : `${report}\n`);
    };
    await run('embedded', startEmbeddedTarget);
    if (flags['no-cluster']) comparisons.set('cluster', undefined);
    else await run('cluster', startClusterTarget);
  } finally {
    for (const t of started.reverse()) await t.stop().catch(() => {});
  }

  const scriptLine = (label: string) => {
    const r = comparisons.get(label);
    if (r === undefined) return `${label}: not run`;
    const same = r.filter((c) => c.diffs.length === 0).length;
    return `${label}: ${same} of ${r.length} scripts identical`;
  };
  const body = [
    'Generated by `pnpm redis:compat-table` (apps/redis/src/compat): each script of',
    '`apps/redis/src/compat/scripts.ts` runs on fresh connections against an empty database on a real',
    `\`redis-server\` ${version} and on the gateway, and every reply is compared byte for byte,`,
    'except the normalised steps named in the notes. "Cases" counts the replies compared for the command.',
    `The same comparison runs in \`apps/redis/src/compat/compat.test.ts\`. Result: ${scriptLine('embedded')}; ${scriptLine('cluster')}.`,
    '',
    buildTable(SCRIPTS, comparisons),
    '',
    'Not compared: WRONGTYPE replies (the gateway stores strings only, so none of its commands can',
    'create a key of another type), SELECT of databases other than 0 (the gateway has one),',
    "request-size limits (the gateway caps arguments well below Redis's 512 MB; see its own tests),",
    'and what follows an inline command with unbalanced quotes (Redis closes the connection; the',
    'gateway answers the same error and keeps it open, as the stream is still in sync).',
  ].join('\n');

  if (flags.print) {
    process.stdout.write(`${body}\n`);
    return;
  }
  const here = dirname(fileURLToPath(import.meta.url));
  const readme = join(here, '..', '..', 'README.md');
  const doc = existsSync(readme) ? readFileSync(readme, 'utf8') : '# @nokv/redis\n';
  writeFileSync(readme, `${replaceSection(doc, '## Compatibility table', body).trimEnd()}\n`);
  process.stderr.write(`wrote the compatibility table to ${readme}\n`);
}

// Run only as a script, not when a test imports the helpers.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await main();
}
