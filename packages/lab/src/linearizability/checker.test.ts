import { describe, expect, it } from 'vitest';
import { bruteForceKv } from './brute-force.js';
import { checkHistory } from './checker.js';
import { kvModel } from './kv-model.js';
import type { Model } from './model.js';
import { append, cas, get, type KvOp, pending, put, witnessProblem } from './test-helpers.js';

const check = (history: KvOp[]) => checkHistory(kvModel, history);

/** Each case: a history, its known verdict; the brute force must agree, and an 'ok' witness must hold. */
const cases: { name: string; history: KvOp[]; linearizable: boolean }[] = [
  { name: 'empty history', history: [], linearizable: true },
  {
    name: 'sequential put then get',
    history: [put(0, 'x', '1', [0, 1]), get(0, 'x', [2, 3], '1')],
    linearizable: true,
  },
  { name: 'get of a never-written key is absent', history: [get(0, 'x', [0, 1])], linearizable: true },
  {
    name: 'concurrent put and get, get sees the new value',
    history: [put(0, 'x', '1', [0, 10]), get(1, 'x', [2, 5], '1')],
    linearizable: true,
  },
  {
    name: 'concurrent put and get, get sees the old value',
    history: [put(0, 'x', '1', [0, 10]), get(1, 'x', [2, 5])],
    linearizable: true,
  },
  {
    name: 'stale read after a completed write',
    history: [put(0, 'x', '1', [0, 1]), put(0, 'x', '2', [2, 3]), get(1, 'x', [4, 5], '1')],
    linearizable: false,
  },
  {
    name: 'read of absence after a completed write',
    history: [put(0, 'x', '1', [0, 1]), get(1, 'x', [2, 3])],
    linearizable: false,
  },
  {
    name: 'read of a value never written',
    history: [put(0, 'x', '1', [0, 10]), get(1, 'x', [2, 5], '7')],
    linearizable: false,
  },
  {
    name: 'pending write whose effect is observed',
    history: [pending(0, { op: 'put', key: 'x', value: '1' }, 0), get(1, 'x', [5, 6], '1')],
    linearizable: true,
  },
  {
    name: 'pending write observed before its call',
    history: [get(1, 'x', [0, 1], '1'), pending(0, { op: 'put', key: 'x', value: '1' }, 5)],
    linearizable: false,
  },
  {
    name: 'pending write never observed (may not have happened)',
    history: [
      put(0, 'x', '1', [0, 1]),
      pending(1, { op: 'put', key: 'x', value: '2' }, 2),
      get(0, 'x', [3, 4], '1'),
      get(0, 'x', [50, 51], '1'),
    ],
    linearizable: true,
  },
  {
    name: 'pending write observed, then un-observed (it cannot take effect twice)',
    history: [
      put(0, 'x', '1', [0, 1]),
      pending(1, { op: 'put', key: 'x', value: '2' }, 2),
      get(0, 'x', [3, 4], '2'),
      get(0, 'x', [5, 6], '1'),
    ],
    linearizable: false,
  },
  {
    name: 'cas succeeds on the expected value',
    history: [put(0, 'x', 'a', [0, 1]), cas(0, 'x', 'a', 'b', [2, 3], true), get(0, 'x', [4, 5], 'b')],
    linearizable: true,
  },
  {
    name: 'cas claims success on a mismatching value',
    history: [put(0, 'x', 'a', [0, 1]), cas(0, 'x', 'z', 'b', [2, 3], true)],
    linearizable: false,
  },
  {
    name: 'cas fails on a mismatching value and changes nothing',
    history: [put(0, 'x', 'a', [0, 1]), cas(0, 'x', 'z', 'b', [2, 3], false), get(0, 'x', [4, 5], 'a')],
    linearizable: true,
  },
  {
    name: 'cas claims failure although the value matched',
    history: [put(0, 'x', 'a', [0, 1]), cas(0, 'x', 'a', 'b', [2, 3], false)],
    linearizable: false,
  },
  {
    name: 'cas with expected undefined creates an absent key',
    history: [cas(0, 'x', undefined, 'n', [0, 1], true), get(0, 'x', [2, 3], 'n')],
    linearizable: true,
  },
  {
    name: 'cas with expected undefined fails on a present key',
    history: [put(0, 'x', 'a', [0, 1]), cas(0, 'x', undefined, 'n', [2, 3], true)],
    linearizable: false,
  },
  {
    name: 'two concurrent cas from absent: only one may win',
    history: [cas(0, 'x', undefined, 'a', [0, 10], true), cas(1, 'x', undefined, 'b', [0, 10], true)],
    linearizable: false,
  },
  {
    name: 'sequential appends read in order',
    history: [append(0, 'x', 'a', [0, 1]), append(0, 'x', 'b', [2, 3]), get(1, 'x', [4, 5], 'ab')],
    linearizable: true,
  },
  {
    name: 'sequential appends read out of order',
    history: [append(0, 'x', 'a', [0, 1]), append(0, 'x', 'b', [2, 3]), get(1, 'x', [4, 5], 'ba')],
    linearizable: false,
  },
  {
    name: 'concurrent appends read in either order',
    history: [append(0, 'x', 'a', [0, 3]), append(1, 'x', 'b', [1, 4]), get(2, 'x', [5, 6], 'ba')],
    linearizable: true,
  },
  {
    name: 'two readers see two concurrent writes in opposite orders',
    history: [
      put(0, 'x', '1', [0, 100]),
      put(1, 'x', '2', [0, 100]),
      get(2, 'x', [10, 20], '1'),
      get(2, 'x', [30, 40], '2'),
      get(3, 'x', [10, 20], '2'),
      get(3, 'x', [30, 40], '1'),
    ],
    linearizable: false,
  },
  {
    name: 'two readers see two concurrent writes in the same order',
    history: [
      put(0, 'x', '1', [0, 100]),
      put(1, 'x', '2', [0, 100]),
      get(2, 'x', [10, 20], '1'),
      get(2, 'x', [30, 40], '2'),
      get(3, 'x', [10, 20], '1'),
      get(3, 'x', [30, 40], '2'),
    ],
    linearizable: true,
  },
  {
    name: 'equal timestamps are concurrent: a read called when a write returns may miss it',
    history: [put(0, 'x', '1', [0, 5]), get(1, 'x', [5, 6])],
    linearizable: true,
  },
  {
    name: 'a read called strictly after a write returns must see it',
    history: [put(0, 'x', '1', [0, 5]), get(1, 'x', [6, 7])],
    linearizable: false,
  },
  {
    name: 'instantaneous operations at the same time are concurrent',
    history: [put(0, 'x', '1', [3, 3]), get(1, 'x', [3, 3]), get(2, 'x', [3, 3], '1')],
    linearizable: true,
  },
];

describe('checkHistory with kvModel: hand-written histories', () => {
  for (const { name, history, linearizable } of cases) {
    it(`${name}: ${linearizable ? 'ok' : 'illegal'}`, () => {
      expect(bruteForceKv(history)).toBe(linearizable);
      const verdict = check(history);
      expect(verdict.result).toBe(linearizable ? 'ok' : 'illegal');
      if (verdict.result === 'ok') expect(witnessProblem(history, verdict)).toBeUndefined();
    });
  }

  it('returns the linearization as history indices per key, and includes an observed pending write', () => {
    const history = [
      get(1, 'y', [0, 1]),
      get(1, 'x', [5, 6], '1'),
      pending(0, { op: 'put', key: 'x', value: '1' }, 0),
      put(2, 'y', 'a', [2, 3]),
    ];
    const verdict = check(history);
    expect(verdict).toEqual({
      result: 'ok',
      linearization: [
        [0, 3],
        [2, 1],
      ],
      partitions: ["key 'y'", "key 'x'"],
    });
  });

  it('leaves out a pending write the witness does not need', () => {
    const history = [
      put(0, 'x', '1', [0, 1]),
      get(0, 'x', [3, 4], '1'),
      pending(1, { op: 'put', key: 'x', value: '2' }, 2),
    ];
    const verdict = check(history);
    expect(verdict.result === 'ok' && verdict.linearization).toEqual([[0, 1]]);
  });

  it('is ok when every operation is pending', () => {
    const history = [
      pending(0, { op: 'put', key: 'x', value: '1' }, 0),
      pending(1, { op: 'get', key: 'x' }, 1),
    ];
    expect(check(history)).toEqual({ result: 'ok', linearization: [[]], partitions: ["key 'x'"] });
  });

  it('names the one illegal key among several and explains the failure', () => {
    const history = [
      put(0, 'a', '1', [0, 1]),
      get(1, 'a', [2, 3], '1'),
      put(0, 'b', '1', [0, 1]),
      put(0, 'b', '2', [2, 3]),
      get(2, 'b', [10, 12], '1'),
      append(0, 'c', 'q', [0, 1]),
      get(1, 'c', [2, 3], 'q'),
    ];
    const verdict = check(history);
    expect(verdict.result).toBe('illegal');
    if (verdict.result !== 'illegal') return;
    expect(verdict.partial).toEqual({
      partitionIndex: 1,
      partition: "key 'b'",
      linearized: [2, 3],
      blocked: 4,
      candidates: [4],
      state: "'2'",
    });
    expect(verdict.explanation).toContain("key 'b' is not linearizable");
    expect(verdict.explanation).toContain("#3 put('b', '2') by client 0 [call 2, return 3]");
    expect(verdict.explanation).toContain(
      "After it (state: '2'), #4 get('b') → '1' by client 2 [call 10, return 12] must take effect before it returns at 12",
    );
    expect(verdict.explanation).not.toContain("key 'a'");
  });

  it('reports the longest prefix of the classic opposite-order reads', () => {
    const history = [
      put(0, 'x', '1', [0, 100]),
      put(1, 'x', '2', [0, 100]),
      get(2, 'x', [10, 20], '1'),
      get(2, 'x', [30, 40], '2'),
      get(3, 'x', [10, 20], '2'),
      get(3, 'x', [30, 40], '1'),
    ];
    const verdict = check(history);
    if (verdict.result !== 'illegal') throw new Error(`expected illegal, got ${verdict.result}`);
    expect(verdict.partial).toMatchObject({ linearized: [0, 2, 1, 4, 3], blocked: 5, candidates: [5] });
    expect(verdict.explanation).toContain(
      "After it (state: '2'), #5 get('x') → '1' by client 3 [call 30, return 40] must take effect before it returns at 40",
    );
  });

  it('lists the other candidates when the blocked operation had company', () => {
    const history = [put(0, 'x', '1', [0, 1]), get(1, 'x', [2, 10], '8'), get(2, 'x', [3, 10], '9')];
    const verdict = check(history);
    if (verdict.result !== 'illegal') throw new Error(`expected illegal, got ${verdict.result}`);
    expect(verdict.partial).toMatchObject({ linearized: [0], blocked: 1, candidates: [1, 2] });
    expect(verdict.explanation).toContain(
      "nor can any other operation that could come next (#2 get('x') → '9' by client 2 [call 3, return 10]) lead to a valid linearization.",
    );
  });

  it('explains a failure of the very first operation', () => {
    const verdict = check([get(0, 'x', [0, 1], 'ghost')]);
    if (verdict.result !== 'illegal') throw new Error(`expected illegal, got ${verdict.result}`);
    expect(verdict.partial.linearized).toEqual([]);
    expect(verdict.explanation).toBe(
      "key 'x' is not linearizable: no operation can be linearized first.\n" +
        "From the initial state (state: absent), #0 get('x') → 'ghost' by client 0 [call 0, return 1] must take effect before it returns at 1, but it cannot be linearized there.",
    );
  });
});

describe('checkHistory with a custom model', () => {
  /** A counter: `inc` returns nothing interesting, `read` returns the count. No partitions. */
  type CounterInput = { readonly op: 'inc' } | { readonly op: 'read' };
  const counter: Model<number, CounterInput, number> = {
    init: () => 0,
    step: (state, input, output) => {
      if (input.op === 'inc') return { ok: true, state: state + 1 };
      return output === undefined || output === state ? { ok: true, state } : { ok: false };
    },
    stateKey: (state) => state,
    describeOperation: (input, output) => `${input.op}${output === undefined ? '' : ` → ${output}`}`,
  };
  const op = (input: CounterInput, output: number | undefined, call: number, ret: number) => ({
    clientId: 0,
    input,
    ...(output === undefined ? {} : { output }),
    call,
    return: ret,
  });

  it('checks the whole history as one partition', () => {
    const history = [op({ op: 'inc' }, 0, 0, 10), op({ op: 'inc' }, 0, 0, 10), op({ op: 'read' }, 1, 5, 6)];
    expect(checkHistory(counter, history)).toEqual({
      result: 'ok',
      linearization: [[0, 2, 1]],
      partitions: ['history'],
    });
    const illegal = checkHistory(counter, [...history, op({ op: 'read' }, 1, 11, 12)]);
    expect(illegal.result).toBe('illegal');
    if (illegal.result === 'illegal') {
      expect(illegal.partial.partition).toBe('history');
      expect(illegal.partial.state).toBeUndefined();
    }
  });

  it('linearizes a pending step the model allows only in some states', () => {
    // A pending "read" with unknown output is always legal; a pending inc may have happened.
    const history = [
      op({ op: 'inc' }, 0, 0, 1),
      { clientId: 1, input: { op: 'inc' } as const, call: 2, return: Number.POSITIVE_INFINITY },
      op({ op: 'read' }, 2, 3, 4),
    ];
    expect(checkHistory(counter, history).result).toBe('ok');
  });
});
