import { describe, expect, it } from 'vitest';
import { HistoryError, InvalidArgumentError, LabError, ModelError } from '../errors.js';
import { checkHistory } from './checker.js';
import { type KvInput, type KvOutput, kvModel } from './kv-model.js';
import type { Model, Operation } from './model.js';
import { get, put } from './test-helpers.js';

type Op = Operation<KvInput, KvOutput>;

function historyError(history: readonly Op[]): HistoryError {
  try {
    checkHistory(kvModel, history);
  } catch (err) {
    if (err instanceof HistoryError) return err;
    throw err;
  }
  throw new Error('expected a HistoryError');
}

describe('checkHistory input validation', () => {
  const ok = put(0, 'x', '1', [0, 1]);

  it('refuses a NaN call time, naming the operation', () => {
    const err = historyError([ok, { ...get(3, 'x', [0, 1]), call: Number.NaN }]);
    expect(err).toBeInstanceOf(LabError);
    expect(err.code).toBe('InvalidHistory');
    expect(err.index).toBe(1);
    expect(err.message).toBe(
      'operation #1 {"op":"get","key":"x"} by client 3: call time must be a finite number, got NaN',
    );
  });

  it('refuses an infinite call time and a NaN return time', () => {
    expect(historyError([{ ...ok, call: Number.POSITIVE_INFINITY }]).message).toContain(
      'call time must be a finite',
    );
    expect(historyError([{ ...ok, return: Number.NaN }]).message).toContain('return time must be a number');
  });

  it('refuses a return before the call, with both values', () => {
    const err = historyError([put(2, 'x', '1', [10, 5])]);
    expect(err.message).toBe(
      'operation #0 {"op":"put","key":"x","value":"1"} by client 2: return 5 is before call 10',
    );
  });

  it('refuses a completed operation without output', () => {
    const { output: _, ...noOutput } = get(0, 'x', [0, 1]);
    expect(historyError([noOutput]).message).toContain('returned at 1 but has no output');
  });

  it('refuses an output on an operation that never returned', () => {
    const err = historyError([{ ...get(0, 'x', [0, 1], 'v'), return: Number.POSITIVE_INFINITY }]);
    expect(err.message).toContain('never returned (return Infinity) but has output {"value":"v"}');
  });

  it('refuses non-object operations and a non-numeric clientId', () => {
    expect(historyError([null as unknown as Op]).message).toBe('operation #0 is not an object: null');
    expect(historyError([{ ...ok, clientId: 'a' as unknown as number }]).message).toContain('clientId');
  });

  it('refuses a history that is not an array', () => {
    expect(() => checkHistory(kvModel, 'nope' as unknown as Op[])).toThrow(InvalidArgumentError);
  });

  it('refuses malformed KV inputs and outputs through the model', () => {
    const bad: [Op, string][] = [
      [{ ...ok, input: { op: 'put', key: 'x' } }, 'put needs a string value'],
      [{ ...ok, input: { op: 'append', key: 'x' } }, 'append needs a string value'],
      [{ ...ok, input: { op: 'get', key: 'x', value: 'v' } }, 'get takes no value'],
      [{ ...ok, input: { op: 'put', key: 'x', value: 'v', expected: 'e' } }, 'put takes no expected value'],
      [{ ...ok, input: { op: 'cas', key: 'x', value: 'v' }, output: {} }, 'cas output needs a boolean ok'],
      [{ ...ok, input: { op: 'del', key: 'x' } as unknown as KvInput }, 'unknown op "del"'],
      [{ ...ok, input: { op: 'get', key: 1 } as unknown as KvInput }, 'input.key must be a string'],
      [{ ...ok, output: 'done' as unknown as KvOutput }, 'output must be an object'],
    ];
    for (const [op, message] of bad) {
      expect(historyError([ok, op]).message).toContain(message);
    }
  });

  it('refuses a bad timeout', () => {
    for (const timeoutMs of [-1, Number.NaN]) {
      const run = () => checkHistory(kvModel, [ok], { timeoutMs });
      expect(run).toThrow(InvalidArgumentError);
      expect(run).toThrow(/timeoutMs must be a non-negative number/);
    }
  });

  it('refuses a model whose partitions lose, duplicate or invent operations', () => {
    const withPartition = (operations: number[][]): Model<string | undefined, KvInput, KvOutput> => ({
      ...kvModel,
      partition: () => operations.map((ops, i) => ({ label: `p${i}`, operations: ops })),
    });
    const history = [ok, get(0, 'x', [2, 3], '1')];
    const run = (parts: number[][]) => () => checkHistory(withPartition(parts), history);
    expect(run([[0]])).toThrow(ModelError);
    expect(run([[0]])).toThrow('operation #1 is in no partition');
    expect(run([[0, 1], [1]])).toThrow('operation #1 is in partition 0 (p0) and again in partition 1 (p1)');
    expect(run([[0, 1, 2]])).toThrow('partition 0 (p0) names operation 2, but the history has 2 operations');
    expect(run([[0, 1]])).not.toThrow();
    try {
      run([[0]])();
    } catch (err) {
      expect((err as ModelError).code).toBe('InvalidModel');
    }
  });
});
