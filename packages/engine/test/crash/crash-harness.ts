/**
 * Crash cycles against a real child process: start `crash-writer.ts`, let it write for a random
 * while, SIGKILL it, then reopen the database here and check that
 *   - every acknowledged operation is present with its value,
 *   - each writer's one in-flight operation (begun, not acknowledged) is applied whole or not at
 *     all (batches and range deletes are atomic),
 *   - nothing else appears.
 * The verified contents become the baseline of the next cycle.
 */

import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { open } from '../../src/index.js';
import { prng } from '../support-prng.js';
import { applyOp, type CrashOp, crashDbOptions, isWriterKey } from './crash-ops.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '..', '..', '..', '..');

export interface CrashRunOptions {
  dir: string;
  cycles: number;
  seed: number;
  writers?: number;
  /** Random kill delay after the child is ready, in ms. */
  minRunMs?: number;
  maxRunMs?: number;
  log?: (line: string) => void;
}

export interface CrashRunSummary {
  cycles: number;
  /** Background work the children completed before being killed (summed over cycles). */
  flushes: number;
  compactions: number;
  vlogSegmentsCollected: number;
  acknowledged: number;
  inFlightApplied: number;
  inFlightLost: number;
  keys: number;
}

type JournalEntry =
  | { t: 'ready'; pid: number }
  | { t: 'stats'; flushes: number; compactions: number; gcDeleted: number }
  | { t: 'begin'; w: number; seq: number; op: CrashOp }
  | { t: 'ack'; w: number; seq: number };

async function runChild(
  dir: string,
  journal: string,
  seed: number,
  writers: number,
  runMs: number,
): Promise<void> {
  const child = spawn(
    process.execPath,
    [
      '--conditions=@nokv/source',
      '--import',
      'tsx',
      join(here, 'crash-writer.ts'),
      dir,
      journal,
      String(seed),
      String(writers),
    ],
    { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 30_000;
  while (!(existsSync(journal) && readFileSync(journal, 'utf8').includes('"ready"'))) {
    if (child.exitCode !== null) throw new Error(`crash writer exited early (${child.exitCode}): ${stderr}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`crash writer did not get ready: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, runMs));
  if (child.exitCode !== null)
    throw new Error(`crash writer died before the kill (${child.exitCode}): ${stderr}`);
  child.kill('SIGKILL');
  await exited;
}

export async function runCrashCycles(o: CrashRunOptions): Promise<CrashRunSummary> {
  const writers = o.writers ?? 6;
  const rand = prng(o.seed);
  const summary: CrashRunSummary = {
    cycles: 0,
    flushes: 0,
    compactions: 0,
    vlogSegmentsCollected: 0,
    acknowledged: 0,
    inFlightApplied: 0,
    inFlightLost: 0,
    keys: 0,
  };
  let baseline = new Map<string, string>();
  for (let cycle = 0; cycle < o.cycles; cycle++) {
    const journal = join(o.dir, `..`, `${o.dir.split('/').pop()}-journal-${cycle}.jsonl`);
    rmSync(journal, { force: true });
    const childSeed = o.seed * 1000 + cycle;
    const runMs = (o.minRunMs ?? 50) + Math.floor(rand() * ((o.maxRunMs ?? 600) - (o.minRunMs ?? 50)));
    await runChild(o.dir, journal, childSeed, writers, runMs);

    const entries = readFileSync(journal, 'utf8')
      .split('\n')
      .filter((l) => l.length > 0)
      .map((l) => JSON.parse(l) as JournalEntry);
    rmSync(journal, { force: true });
    const ops: CrashOp[][] = Array.from({ length: writers }, () => []);
    const acked = new Array<number>(writers).fill(-1);
    let last: Extract<JournalEntry, { t: 'stats' }> | undefined;
    for (const e of entries) {
      if (e.t === 'begin') ops[e.w]![e.seq] = e.op;
      else if (e.t === 'ack') acked[e.w] = e.seq;
      else if (e.t === 'stats') last = e;
    }
    if (last !== undefined) {
      summary.flushes += last.flushes;
      summary.compactions += last.compactions;
      summary.vlogSegmentsCollected += last.gcDeleted;
    }

    const db = await open({ dir: o.dir, ...crashDbOptions });
    const actual = new Map<string, string>();
    try {
      for await (const [k, v] of db.iterate()) actual.set(k.toString(), v.toString());
    } finally {
      await db.close();
    }
    for (const k of actual.keys()) {
      if (!isWriterKey(k, writers)) throw new Error(`cycle ${cycle}: key ${k} was never written`);
    }
    for (let w = 0; w < writers; w++) {
      const mine = (m: Map<string, string>) => new Map([...m].filter(([k]) => k.startsWith(`w${w}-`)));
      const without = mine(baseline);
      for (let s = 0; s <= acked[w]!; s++) applyOp(without, ops[w]![s]!);
      const inFlight = ops[w]![acked[w]! + 1];
      const withInFlight = new Map(without);
      if (inFlight !== undefined) applyOp(withInFlight, inFlight);
      const got = mine(actual);
      summary.acknowledged += acked[w]! + 1;
      if (sameMap(got, without)) {
        if (inFlight !== undefined && !sameMap(without, withInFlight)) summary.inFlightLost++;
      } else if (sameMap(got, withInFlight)) {
        summary.inFlightApplied++;
      } else {
        const diff = [...new Set([...got.keys(), ...without.keys(), ...withInFlight.keys()])]
          .filter((k) => got.get(k) !== without.get(k))
          .slice(0, 5)
          .map(
            (k) =>
              `${k}: got ${got.get(k)?.slice(0, 30)} want ${without.get(k)?.slice(0, 30)} or ${withInFlight.get(k)?.slice(0, 30)}`,
          );
        throw new Error(
          `cycle ${cycle} (seed ${o.seed}): writer ${w} state matches neither its acknowledged ops (${acked[w]! + 1}) nor those plus the in-flight ${inFlight?.kind}: ${diff.join('; ')}`,
        );
      }
    }
    baseline = actual;
    summary.cycles++;
    summary.keys = actual.size;
    o.log?.(
      `cycle ${cycle}: ran ${runMs} ms, ${acked.reduce((n, a) => n + a + 1, 0)} acknowledged ops, ${actual.size} keys verified`,
    );
  }
  return summary;
}

function sameMap(a: Map<string, string>, b: Map<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}
