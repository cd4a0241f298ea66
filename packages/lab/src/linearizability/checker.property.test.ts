import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { corruptOneRead, simulateKvExecution, simulateKvHistory } from '../workload/kv-history.js';
import { bruteForceKv } from './brute-force.js';
import { checkHistory } from './checker.js';
import { type KvInput, kvModel } from './kv-model.js';
import { type KvOp, witnessProblem } from './test-helpers.js';

/** Small time ranges on purpose: many overlaps and many equal timestamps. */
const randomOp = (keys: readonly string[]) =>
  fc
    .record({
      client: fc.integer({ min: 0, max: 3 }),
      key: fc.constantFrom(...keys),
      kind: fc.constantFrom('get', 'put', 'append', 'cas'),
      value: fc.constantFrom('a', 'b', 'c'),
      expected: fc.constantFrom(undefined, 'a', 'b'),
      read: fc.constantFrom(undefined, 'a', 'b', 'c', 'ab', 'ba'),
      casOk: fc.boolean(),
      call: fc.integer({ min: 0, max: 12 }),
      duration: fc.integer({ min: 0, max: 8 }),
      pending: fc.integer({ min: 0, max: 99 }).map((roll) => roll < 15),
    })
    .map((r): KvOp => {
      let input: KvInput;
      let output: KvOp['output'];
      if (r.kind === 'get') {
        input = { op: 'get', key: r.key };
        output = r.read === undefined ? {} : { value: r.read };
      } else if (r.kind === 'cas') {
        input =
          r.expected === undefined
            ? { op: 'cas', key: r.key, value: r.value }
            : { op: 'cas', key: r.key, value: r.value, expected: r.expected };
        output = { ok: r.casOk };
      } else {
        input = { op: r.kind, key: r.key, value: r.value };
        output = {};
      }
      return r.pending
        ? { clientId: r.client, input, call: r.call, return: Number.POSITIVE_INFINITY }
        : { clientId: r.client, input, output, call: r.call, return: r.call + r.duration };
    });

const randomHistory = fc
  .constantFrom(['a'], ['a', 'b'])
  .chain((keys) => fc.array(randomOp(keys), { minLength: 0, maxLength: 7 }));

describe('checkHistory agrees with the brute-force oracle', () => {
  it('on random histories with random outputs', () => {
    const verdicts = { ok: 0, illegal: 0 };
    fc.assert(
      fc.property(randomHistory, (history) => {
        const expected = bruteForceKv(history);
        const verdict = checkHistory(kvModel, history);
        expect(verdict.result).toBe(expected ? 'ok' : 'illegal');
        if (verdict.result === 'ok') expect(witnessProblem(history, verdict)).toBeUndefined();
        verdicts[expected ? 'ok' : 'illegal']++;
      }),
      { numRuns: 800 },
    );
    // Both verdicts must be well represented, or the comparison proves little.
    expect(verdicts.ok).toBeGreaterThan(80);
    expect(verdicts.illegal).toBeGreaterThan(80);
  });

  it('on simulated linearizable executions (ok), and on the same with one read corrupted', () => {
    const verdicts = { ok: 0, illegal: 0 };
    fc.assert(
      fc.property(
        fc.integer(),
        fc.integer({ min: 1, max: 7 }),
        fc.integer({ min: 1, max: 2 }),
        fc.integer({ min: 1, max: 3 }),
        (seed, operations, keys, clients) => {
          const history = simulateKvHistory({
            seed,
            operations,
            keys,
            clients,
            pendingRate: 0.2,
            maxDuration: 6,
            maxThink: 3,
          });
          expect(bruteForceKv(history)).toBe(true);
          const verdict = checkHistory(kvModel, history);
          expect(verdict.result).toBe('ok');
          expect(witnessProblem(history, verdict)).toBeUndefined();

          const corrupted = corruptOneRead(history, seed ^ 0x5bd1e995);
          if (corrupted === undefined) return;
          const expected = bruteForceKv(corrupted.history);
          const after = checkHistory(kvModel, corrupted.history);
          expect(after.result).toBe(expected ? 'ok' : 'illegal');
          if (after.result === 'ok') expect(witnessProblem(corrupted.history, after)).toBeUndefined();
          verdicts[expected ? 'ok' : 'illegal']++;
        },
      ),
      { numRuns: 600 },
    );
    expect(verdicts.illegal).toBeGreaterThan(50);
  });
});

describe('the simulator', () => {
  it("produces histories its own effect order linearizes (the generator's witness holds)", () => {
    for (let seed = 1; seed <= 30; seed++) {
      const { history, effects } = simulateKvExecution({
        seed,
        operations: 400,
        keys: 3,
        clients: 8,
        pendingRate: 0.1,
      });
      const witness = { result: 'ok', linearization: [effects], partitions: ['all'] } as const;
      expect(witnessProblem(history, witness)).toBeUndefined();
      expect(history.some((op) => op.return === Number.POSITIVE_INFINITY)).toBe(true);
    }
  });
});

describe('checkHistory on larger simulated executions', () => {
  it('accepts them, and rejects them once a read reports a value never written', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const history = simulateKvHistory({
        seed,
        operations: 300,
        keys: 1 + (seed % 5),
        clients: 6,
        pendingRate: 0.05,
      });
      const verdict = checkHistory(kvModel, history);
      expect(verdict.result).toBe('ok');
      expect(witnessProblem(history, verdict)).toBeUndefined();

      const readIndex = history.findIndex((op) => op.input.op === 'get' && op.output !== undefined);
      const bad = history.slice();
      bad[readIndex] = { ...history[readIndex]!, output: { value: 'never-written' } };
      const rejected = checkHistory(kvModel, bad);
      expect(rejected.result).toBe('illegal');
      if (rejected.result === 'illegal') {
        expect(rejected.partial.partition).toBe(`key '${history[readIndex]!.input.key}'`);
        expect(rejected.explanation).toContain("→ 'never-written'");
      }
    }
  });
});

describe('checkHistory cost and timeout', () => {
  it("returns 'unknown' on a pathological history rather than running forever", () => {
    // 40 concurrent appends of distinct values make every order a distinct state, so memoisation
    // cannot help, and the impossible final read forces the search to try them all.
    const history: KvOp[] = [];
    for (let i = 0; i < 40; i++) {
      history.push({
        clientId: i,
        input: { op: 'append', key: 'x', value: `${i},` },
        output: {},
        call: 0,
        return: 10,
      });
    }
    history.push({
      clientId: 99,
      input: { op: 'get', key: 'x' },
      output: { value: 'impossible' },
      call: 11,
      return: 12,
    });
    const started = performance.now();
    const verdict = checkHistory(kvModel, history, { timeoutMs: 50 });
    const elapsed = performance.now() - started;
    expect(verdict.result).toBe('unknown');
    if (verdict.result === 'unknown')
      expect(verdict.reason).toContain("timed out after 50 ms while checking key 'x'");
    expect(elapsed).toBeLessThan(1000);
  });

  it("returns 'unknown' when the search would exceed its memory budget", () => {
    const history: KvOp[] = [];
    for (let i = 0; i < 40; i++) {
      history.push({
        clientId: i,
        input: { op: 'append', key: 'x', value: `${i},` },
        output: {},
        call: 0,
        return: 10,
      });
    }
    history.push({
      clientId: 99,
      input: { op: 'get', key: 'x' },
      output: { value: 'no' },
      call: 11,
      return: 12,
    });
    const verdict = checkHistory(kvModel, history, { maxConfigurations: 10_000 });
    expect(verdict.result).toBe('unknown');
    if (verdict.result === 'unknown')
      expect(verdict.reason).toContain('after exploring 10000 configurations');
    expect(() => checkHistory(kvModel, history, { maxConfigurations: 0 })).toThrow(/maxConfigurations/);
  });

  it('refutes a history with hundreds of concurrent reads without branching on them', () => {
    // Each read overlaps everything, so without the read-only rule every subset of reads would be
    // a distinct configuration to refute; the impossible final read forces a full refutation.
    const history: KvOp[] = [];
    for (let i = 0; i < 30; i++) {
      history.push({
        clientId: 0,
        input: { op: 'put', key: 'x', value: `v${i}` },
        output: {},
        call: 10 * i,
        return: 10 * i + 1,
      });
    }
    for (let i = 0; i < 300; i++) {
      history.push({
        clientId: 1 + i,
        input: { op: 'get', key: 'x' },
        output: { value: `v${i % 30}` },
        call: 0,
        return: 400,
      });
    }
    expect(checkHistory(kvModel, history, { timeoutMs: 5000 }).result).toBe('ok');
    history.push({
      clientId: 999,
      input: { op: 'get', key: 'x' },
      output: { value: 'v0' },
      call: 500,
      return: 501,
    });
    const verdict = checkHistory(kvModel, history, { timeoutMs: 5000 });
    expect(verdict.result).toBe('illegal');
    if (verdict.result === 'illegal') expect(verdict.partial.blocked).toBe(330);
  });

  it('still decides easy histories within the same small budget', () => {
    const history = simulateKvHistory({ seed: 7, operations: 500, keys: 50, clients: 8 });
    expect(checkHistory(kvModel, history, { timeoutMs: 1000 }).result).toBe('ok');
  });
});
