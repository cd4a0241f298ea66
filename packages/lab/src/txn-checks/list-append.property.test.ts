import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Prng } from '../workload/prng.js';
import { checkListAppend } from './list-append.js';
import { simulateListAppend } from './simulate.js';
import type { ListAppendOp, ListAppendTxn } from './types.js';

const workload = fc.record({
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  transactions: fc.integer({ min: 1, max: 60 }),
  keys: fc.integer({ min: 1, max: 5 }),
  processes: fc.integer({ min: 1, max: 5 }),
  maxOps: fc.integer({ min: 1, max: 6 }),
  readRatio: fc.constantFrom(0.2, 0.5, 0.8),
  failRate: fc.constantFrom(0, 0.1),
  infoRate: fc.constantFrom(0, 0.1),
});

type Read = { txn: number; op: number; value: readonly number[] };

/** Every read of an ok transaction, with its list (null read as []). */
function okReads(history: readonly ListAppendTxn[]): Map<string | number, Read[]> {
  const byKey = new Map<string | number, Read[]>();
  history.forEach((t, txn) => {
    if (t.status !== 'ok') return;
    t.ops.forEach((op, i) => {
      if (op.f !== 'r') return;
      const reads = byKey.get(op.key) ?? [];
      reads.push({ txn, op: i, value: op.value ?? [] });
      byKey.set(op.key, reads);
    });
  });
  return byKey;
}

function withRead(history: readonly ListAppendTxn[], txn: number, op: number, value: readonly number[]) {
  const copy = history.slice();
  const t = copy[txn]!;
  copy[txn] = {
    ...t,
    ops: t.ops.map((o, i): ListAppendOp => (i === op && o.f === 'r' ? { ...o, value } : o)),
  };
  return copy;
}

describe('checkListAppend on simulated executions', () => {
  it('accepts every serial execution, under both models and with real time', () => {
    fc.assert(
      fc.property(workload, (w) => {
        const history = simulateListAppend({ ...w, mode: 'serial' });
        for (const consistency of ['snapshot-isolation', 'serializable'] as const) {
          for (const realTime of [false, true]) {
            const result = checkListAppend(history, { consistency, realTime });
            expect(result.anomalies.map((a) => a.explanation)).toEqual([]);
          }
        }
      }),
      { numRuns: 300 },
    );
  });

  it('accepts every snapshot-isolation execution under snapshot isolation; only G2 may appear', () => {
    let skews = 0;
    fc.assert(
      fc.property(workload, (w) => {
        const history = simulateListAppend({ ...w, mode: 'snapshot-isolation' });
        const si = checkListAppend(history, { consistency: 'snapshot-isolation', realTime: true });
        expect(si.anomalies.filter((a) => a.forbidden).map((a) => a.explanation)).toEqual([]);
        expect(si.valid).toBe(true);
        const ser = checkListAppend(history, { consistency: 'serializable' });
        for (const type of ser.anomalyTypes) expect(type).toBe('G2');
        if (!ser.valid) skews++;
      }),
      { numRuns: 300 },
    );
    expect(skews).toBeGreaterThan(0); // the generator does produce write skew
  });

  it('detects a read swapped for another read of the same key (serial, real time, final read, no info)', () => {
    let tried = 0;
    fc.assert(
      fc.property(workload, fc.integer({ min: 0, max: 2 ** 31 - 1 }), (w, pick) => {
        const history = simulateListAppend({ ...w, infoRate: 0, mode: 'serial', finalRead: true });
        const rng = new Prng(pick);
        const candidates: [Read, Read][] = [];
        const last = history.length - 1;
        for (const reads of okReads(history).values()) {
          for (const x of reads) {
            if (x.txn === last) continue; // the final read fixes the version order
            for (const y of reads) {
              if (x.value.length !== y.value.length || x.value.some((v, i) => v !== y.value[i]))
                candidates.push([x, y]);
            }
          }
        }
        if (candidates.length === 0) return;
        tried++;
        const [victim, source] = rng.pick(candidates);
        const corrupted = withRead(history, victim.txn, victim.op, source.value);
        const result = checkListAppend(corrupted, { consistency: 'serializable', realTime: true });
        expect(result.valid).toBe(false);
      }),
      { numRuns: 400 },
    );
    expect(tried).toBeGreaterThan(100);
  });

  it('detects a read that observes an append of a failed transaction (G1a), without real time', () => {
    fc.assert(
      fc.property(workload, fc.integer({ min: 0, max: 2 ** 31 - 1 }), (w, pick) => {
        const history = simulateListAppend({ ...w, failRate: 0.2, mode: 'serial' });
        const rng = new Prng(pick);
        const failed: { key: string | number; value: number }[] = [];
        for (const t of history) {
          if (t.status !== 'fail') continue;
          for (const op of t.ops) if (op.f === 'append') failed.push({ key: op.key, value: op.value });
        }
        const reads = okReads(history);
        const usable = failed.filter((f) => reads.has(f.key));
        if (usable.length === 0) return;
        const { key, value } = rng.pick(usable);
        // The longest read of that key observes the failed append at its end.
        const victim = reads.get(key)!.reduce((a, b) => (b.value.length > a.value.length ? b : a));
        const corrupted = withRead(history, victim.txn, victim.op, [...victim.value, value]);
        const result = checkListAppend(corrupted, { consistency: 'snapshot-isolation' });
        expect(result.anomalyTypes).toContain('G1a');
        expect(result.valid).toBe(false);
      }),
      { numRuns: 200 },
    );
  });

  it('detects a read reordered against the version order', () => {
    fc.assert(
      fc.property(workload, fc.integer({ min: 0, max: 2 ** 31 - 1 }), (w, pick) => {
        const history = simulateListAppend({ ...w, mode: 'serial' });
        const rng = new Prng(pick);
        // A read with two elements, and a longer-or-equal read of the same key to contradict.
        const pairs: Read[] = [];
        for (const reads of okReads(history).values()) {
          for (const r of reads) {
            if (r.value.length >= 2 && reads.some((o) => o !== r && o.value.length >= r.value.length))
              pairs.push(r);
          }
        }
        if (pairs.length === 0) return;
        const victim = rng.pick(pairs);
        const i = rng.below(victim.value.length - 1);
        const swapped = victim.value.slice();
        [swapped[i], swapped[i + 1]] = [swapped[i + 1]!, swapped[i]!];
        const corrupted = withRead(history, victim.txn, victim.op, swapped);
        const result = checkListAppend(corrupted, { consistency: 'snapshot-isolation' });
        expect(result.valid).toBe(false);
      }),
      { numRuns: 200 },
    );
  });

  it('checks 3,000 transactions over few keys (long lists, many reads) quickly', () => {
    const history = simulateListAppend({
      seed: 7,
      transactions: 3000,
      keys: 3,
      processes: 8,
      mode: 'snapshot-isolation',
    });
    const result = checkListAppend(history, { consistency: 'snapshot-isolation', realTime: true });
    expect(result.valid).toBe(true);
    expect(result.stats.ms).toBeLessThan(5_000);
  });
});
