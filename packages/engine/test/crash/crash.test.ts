import { describe, expect, it } from 'vitest';
import { tempDir } from '../support.js';
import { runCrashCycles } from './crash-harness.js';

describe('SIGKILL crash cycles (real child process, syncWrites: true)', () => {
  it('never loses an acknowledged write, never applies half a batch, never invents data', async () => {
    const seed = Number(process.env.NOKV_CRASH_SEED ?? Date.now() % 100_000);
    const summary = await runCrashCycles({ dir: `${tempDir()}/db`, cycles: 12, seed });
    expect(summary.cycles).toBe(12);
    expect(summary.acknowledged).toBeGreaterThan(100);
    // The kills must land while background work happens, or the test proves little.
    expect(summary.flushes).toBeGreaterThan(0);
  }, 240_000);
});
