import { describe, expect, test } from 'vitest';
import { checkSeed, replayCommand } from './check-seed.js';
import { optionsForSeed, Simulator } from './simulator.js';

// CI runs a bounded number of seeds; `pnpm soak:raft` runs thousands. Every seed derives its own
// cluster size, fault rates, flow-control limits and workload from the seed.
const CI_SEEDS = 150;

describe('raft cluster simulator', () => {
  test(`${CI_SEEDS} seeds: no safety violation, convergence after healing, linearizable histories`, () => {
    const totals = {
      crashes: 0,
      midReady: 0,
      torn: 0,
      snapshots: 0,
      confChanges: 0,
      leaders: 0,
      unknown: 0,
      ops: 0,
    };
    for (let seed = 1; seed <= CI_SEEDS; seed++) {
      const v = checkSeed(seed);
      if (!v.ok) throw new Error(`seed ${seed} failed:\n${v.failure}\nreplay: ${v.replay}`);
      expect(v.linearizability.result, `seed ${seed}: linearizability check undecided`).toBe('ok');
      const s = v.result.stats;
      totals.crashes += s.crashes;
      totals.midReady += s.midReadyCrashes;
      totals.torn += s.tornWritesKept;
      totals.snapshots += s.snapshotsSent;
      totals.confChanges += s.confChangesApplied;
      totals.leaders += s.leaderChanges;
      totals.unknown += s.opsUnknown;
      totals.ops += v.result.history.length;
    }
    // The run must actually exercise the hard paths, or passing means little.
    expect(totals.crashes).toBeGreaterThan(100);
    expect(totals.midReady).toBeGreaterThan(10);
    expect(totals.torn).toBeGreaterThan(0);
    expect(totals.snapshots).toBeGreaterThan(50);
    expect(totals.confChanges).toBeGreaterThan(100);
    expect(totals.leaders).toBeGreaterThan(CI_SEEDS);
    expect(totals.unknown).toBeGreaterThan(50);
    expect(totals.ops).toBeGreaterThan(10_000);
  });

  test('a seed replays exactly', () => {
    const a = new Simulator(optionsForSeed(42)).run();
    const b = new Simulator(optionsForSeed(42)).run();
    expect(b.history).toEqual(a.history);
    expect(b.stats).toEqual(a.stats);
    expect(new Simulator(optionsForSeed(43)).run().history).not.toEqual(a.history);
  });

  test('a harness that skips fsync is caught (lost acknowledged entries and votes)', () => {
    const failed = firstFailure({ bug: 'skip-sync' }, 60);
    expect(failed, 'no seed caught skip-sync').toBeDefined();
    expect(failed!.replay).toBe(`pnpm soak:raft --seed=${failed!.seed} --bug=skip-sync --trace`);
  });

  test('reads served without waiting for the read index are caught as non-linearizable', () => {
    const failed = firstFailure({ bug: 'stale-read' }, 300);
    expect(failed, 'no seed caught stale-read').toBeDefined();
    expect(failed!.failure).toMatch(/not linearizable/);
  });

  test('the replay command names the non-default options', () => {
    expect(replayCommand(7)).toBe('pnpm soak:raft --seed=7 --trace');
    expect(replayCommand(7, { steps: 500 })).toBe('pnpm soak:raft --seed=7 --steps=500 --trace');
  });
});

function firstFailure(overrides: Parameters<typeof checkSeed>[1], seeds: number) {
  for (let seed = 1; seed <= seeds; seed++) {
    const v = checkSeed(seed, overrides);
    if (!v.ok) return v;
  }
  return undefined;
}
