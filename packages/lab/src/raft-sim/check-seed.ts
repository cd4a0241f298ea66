import { type CheckResult, checkHistory, kvModel } from '../index.js';
import { optionsForSeed, type SimOptions, type SimResult, Simulator } from './simulator.js';

/** The outcome of one simulated run: safety invariants and the linearizability of its history. */
export interface SeedVerdict {
  seed: number;
  ok: boolean;
  result: SimResult;
  linearizability: CheckResult;
  /** Why it failed, in one paragraph; undefined when ok. */
  failure?: string;
  /** A command that replays exactly this run. */
  replay: string;
}

export const DEFAULT_STEPS = 3000;

/** The one-line command that replays a seed (with the overrides that change the run). */
export function replayCommand(seed: number, overrides: Partial<SimOptions> = {}): string {
  let cmd = `pnpm soak:raft --seed=${seed}`;
  if (overrides.steps !== undefined && overrides.steps !== DEFAULT_STEPS)
    cmd += ` --steps=${overrides.steps}`;
  if (overrides.bug) cmd += ` --bug=${overrides.bug}`;
  return `${cmd} --trace`;
}

/**
 * Runs the simulator for `seed` and checks its history for linearizability. A history the checker
 * cannot decide within `linTimeoutMs` counts as ok but is reported in `linearizability.result`.
 */
export function checkSeed(
  seed: number,
  overrides: Partial<SimOptions> = {},
  opts: { trace?: boolean; linTimeoutMs?: number } = {},
): SeedVerdict {
  const result = new Simulator(optionsForSeed(seed, overrides), opts.trace ?? false).run();
  const linearizability = checkHistory(kvModel, result.history, { timeoutMs: opts.linTimeoutMs ?? 20_000 });
  const problems: string[] = result.violations.map((v) => `${v.property} at t=${v.time}: ${v.detail}`);
  if (linearizability.result === 'illegal')
    problems.push(`history is not linearizable: ${linearizability.explanation}`);
  const verdict: SeedVerdict = {
    seed,
    ok: problems.length === 0,
    result,
    linearizability,
    replay: replayCommand(seed, overrides),
  };
  if (problems.length > 0) verdict.failure = problems.join('\n');
  return verdict;
}
