import { describe, expect, it } from 'vitest';
import { kvModel } from './kv-model.js';
import { get, pending, put } from './test-helpers.js';

const step = kvModel.step;

describe('kvModel.step', () => {
  it('get must return the current value, absence as no value', () => {
    expect(step('a', { op: 'get', key: 'k' }, { value: 'a' })).toEqual({ ok: true, state: 'a' });
    expect(step('a', { op: 'get', key: 'k' }, {}).ok).toBe(false);
    expect(step(undefined, { op: 'get', key: 'k' }, {})).toEqual({ ok: true, state: undefined });
    expect(step(undefined, { op: 'get', key: 'k' }, { value: '' }).ok).toBe(false);
  });

  it('put replaces and append concatenates (absent counts as empty)', () => {
    expect(step('a', { op: 'put', key: 'k', value: 'b' }, {})).toEqual({ ok: true, state: 'b' });
    expect(step('a', { op: 'append', key: 'k', value: 'b' }, {})).toEqual({ ok: true, state: 'ab' });
    expect(step(undefined, { op: 'append', key: 'k', value: 'b' }, {})).toEqual({ ok: true, state: 'b' });
  });

  it('cas swaps exactly when the value matches; expected undefined means absent', () => {
    const casAB = { op: 'cas', key: 'k', expected: 'a', value: 'b' } as const;
    expect(step('a', casAB, { ok: true })).toEqual({ ok: true, state: 'b' });
    expect(step('a', casAB, { ok: false }).ok).toBe(false);
    expect(step('z', casAB, { ok: false })).toEqual({ ok: true, state: 'z' });
    expect(step('z', casAB, { ok: true }).ok).toBe(false);
    expect(step(undefined, casAB, { ok: false })).toEqual({ ok: true, state: undefined });
    const create = { op: 'cas', key: 'k', value: 'n' } as const;
    expect(step(undefined, create, { ok: true })).toEqual({ ok: true, state: 'n' });
    expect(step('', create, { ok: true }).ok).toBe(false);
  });

  it('accepts any unknown output and applies the deterministic effect', () => {
    expect(step('a', { op: 'get', key: 'k' }, undefined)).toEqual({ ok: true, state: 'a' });
    expect(step('a', { op: 'put', key: 'k', value: 'b' }, undefined)).toEqual({ ok: true, state: 'b' });
    expect(step('a', { op: 'append', key: 'k', value: 'b' }, undefined)).toEqual({ ok: true, state: 'ab' });
    expect(step('a', { op: 'cas', key: 'k', expected: 'a', value: 'c' }, undefined)).toEqual({
      ok: true,
      state: 'c',
    });
    expect(step('z', { op: 'cas', key: 'k', expected: 'a', value: 'c' }, undefined)).toEqual({
      ok: true,
      state: 'z',
    });
  });
});

describe('kvModel helpers', () => {
  it('gives absent and every string distinct state keys', () => {
    const keys = [undefined, '', '0', 'a'].map(kvModel.stateKey);
    expect(new Set(keys).size).toBe(4);
  });

  it('partitions per key in order of first appearance', () => {
    const history = [put(0, 'b', '1', [0, 1]), get(0, 'a', [0, 1]), get(1, 'b', [2, 3], '1')];
    expect(kvModel.partition?.(history)).toEqual([
      { label: "key 'b'", operations: [0, 2] },
      { label: "key 'a'", operations: [1] },
    ]);
  });

  it('describes operations and states readably', () => {
    const d = kvModel.describeOperation;
    expect(d({ op: 'get', key: 'x' }, { value: '3' })).toBe("get('x') → '3'");
    expect(d({ op: 'get', key: 'x' }, {})).toBe("get('x') → absent");
    expect(d({ op: 'get', key: 'x' }, undefined)).toBe("get('x') → ?");
    expect(d({ op: 'put', key: 'x', value: '4' }, {})).toBe("put('x', '4')");
    expect(d(pending(0, { op: 'append', key: 'x', value: '' }, 0).input, undefined)).toBe(
      "append('x', '') → ?",
    );
    expect(d({ op: 'cas', key: 'x', expected: 'a', value: 'b' }, { ok: true })).toBe(
      "cas('x', 'a' → 'b') → ok",
    );
    expect(d({ op: 'cas', key: "it's", value: 'b' }, { ok: false })).toBe(
      "cas('it\\'s', absent → 'b') → failed",
    );
    expect(kvModel.describeState?.(undefined)).toBe('absent');
    expect(kvModel.describeState?.('a\nb')).toBe("'a\\nb'");
  });
});
