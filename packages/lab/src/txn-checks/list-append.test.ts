import { describe, expect, it } from 'vitest';
import { HistoryError, InvalidArgumentError } from '../errors.js';
import { checkListAppend } from './list-append.js';
import type {
  AnomalyType,
  Consistency,
  CycleAnomaly,
  Key,
  ListAppendOp,
  ListAppendTxn,
  TxnStatus,
} from './types.js';

const r = (key: Key, value: number[] | null): ListAppendOp => ({ f: 'r', key, value });
const a = (key: Key, value: number): ListAppendOp => ({ f: 'append', key, value });
const txn = (
  id: number,
  ops: ListAppendOp[],
  status: TxnStatus = 'ok',
  times?: [number, number | undefined],
): ListAppendTxn => {
  const t: ListAppendTxn = { id, process: id, ops, status };
  if (times === undefined) return t;
  return times[1] === undefined ? { ...t, start: times[0] } : { ...t, start: times[0], end: times[1] };
};

interface Case {
  name: string;
  history: ListAppendTxn[];
  realTime?: boolean;
  /** Anomaly types reported (exactly). */
  types: AnomalyType[];
  /** Verdict per consistency model. */
  valid: Record<Consistency, boolean>;
}

const both = (valid: boolean) => ({ 'snapshot-isolation': valid, serializable: valid });

/** A serial chain: T_i reads x = [0 .. i-1] and appends i; every 10th also reads y, appends to y. */
function longChain(length: number): ListAppendTxn[] {
  const history: ListAppendTxn[] = [];
  const y: number[] = [];
  for (let i = 0; i < length; i++) {
    const ops: ListAppendOp[] = [
      r(
        'x',
        Array.from({ length: i }, (_, j) => j),
      ),
      a('x', i),
    ];
    if (i % 10 === 0) {
      ops.push(r('y', y.length === 0 ? null : [...y]), a('y', i));
      y.push(i);
    }
    history.push(txn(i, ops, 'ok', [2 * i, 2 * i + 1]));
  }
  return history;
}

const cases: Case[] = [
  { name: 'empty history', history: [], types: [], valid: both(true) },
  {
    name: 'serial appends and reads',
    history: [txn(1, [a('x', 1)]), txn(2, [r('x', [1]), a('x', 2)]), txn(3, [r('x', [1, 2]), r('y', null)])],
    types: [],
    valid: both(true),
  },
  {
    name: 'a long valid history (500 chained transactions)',
    history: longChain(500),
    types: [],
    valid: both(true),
  },
  {
    name: 'a long valid history, with real-time edges',
    history: longChain(500),
    realTime: true,
    types: [],
    valid: both(true),
  },
  {
    name: 'G0: two transactions append to x and y in opposite orders',
    history: [
      txn(1, [a('x', 1), a('y', 2)]),
      txn(2, [a('x', 3), a('y', 4)]),
      txn(3, [r('x', [1, 3]), r('y', [4, 2])]),
    ],
    types: ['G0'],
    valid: both(false),
  },
  {
    name: 'G1a: aborted read',
    history: [txn(1, [a('x', 1)], 'fail'), txn(2, [r('x', [1])])],
    types: ['G1a'],
    valid: both(false),
  },
  {
    name: 'G1b: intermediate read',
    history: [txn(1, [a('x', 1), a('x', 2)]), txn(2, [r('x', [1])]), txn(3, [r('x', [1, 2])])],
    types: ['G1b'],
    valid: both(false),
  },
  {
    name: 'G1c: each reads the other’s append',
    history: [txn(1, [a('x', 1), r('y', [2])]), txn(2, [a('y', 2), r('x', [1])])],
    types: ['G1c'],
    valid: both(false),
  },
  {
    name: 'G-single: read skew (sees T2’s y but not its x)',
    history: [txn(1, [r('x', null), r('y', [1])]), txn(2, [a('x', 1), a('y', 1)]), txn(3, [r('x', [1])])],
    types: ['G-single'],
    valid: both(false),
  },
  {
    name: 'G2: write skew is allowed by snapshot isolation, not by serializability',
    history: [
      txn(1, [r('x', null), r('y', null), a('x', 1)]),
      txn(2, [r('x', null), r('y', null), a('y', 2)]),
      txn(3, [r('x', [1]), r('y', [2])]),
    ],
    types: ['G2'],
    valid: { 'snapshot-isolation': true, serializable: false },
  },
  {
    name: 'lost update: both read x = [] and append to it',
    history: [txn(1, [r('x', []), a('x', 1)]), txn(2, [r('x', []), a('x', 2)]), txn(3, [r('x', [1, 2])])],
    types: ['G-single', 'LostUpdate'],
    valid: both(false),
  },
  {
    name: 'lost update even when the second append is never observed',
    history: [txn(1, [r('x', []), a('x', 1)]), txn(2, [r('x', []), a('x', 2)]), txn(3, [r('x', [1])])],
    types: ['LostUpdate'],
    valid: both(false),
  },
  {
    name: 'incompatible orders',
    history: [txn(1, [a('x', 1)]), txn(2, [a('x', 2)]), txn(3, [r('x', [1, 2])]), txn(4, [r('x', [2, 1])])],
    types: ['IncompatibleOrder'],
    valid: both(false),
  },
  {
    name: 'garbage read',
    history: [txn(1, [a('x', 1)]), txn(2, [r('x', [1, 9])])],
    types: ['GarbageRead'],
    valid: both(false),
  },
  {
    name: 'duplicate elements',
    history: [txn(1, [a('x', 1)]), txn(2, [r('x', [1, 1])]), txn(3, [r('x', [1])])],
    types: ['DuplicateElements'],
    valid: both(false),
  },
  {
    name: 'internal: a read misses the transaction’s own append',
    history: [txn(1, [a('x', 1), r('x', [])])],
    types: ['Internal'],
    valid: both(false),
  },
  {
    name: 'internal: a first read already holds the transaction’s later append',
    history: [txn(1, [r('x', [1]), a('x', 1)])],
    types: ['Internal'],
    valid: both(false),
  },
  {
    name: 'internal reads consistent with own appends',
    history: [txn(1, [a('x', 1)]), txn(2, [a('x', 2), r('x', [1, 2]), a('x', 3), r('x', [1, 2, 3])])],
    types: [],
    valid: both(true),
  },
  {
    name: 'info transaction observed: treated as committed',
    history: [txn(1, [a('x', 1)], 'info'), txn(2, [r('x', [1])])],
    types: [],
    valid: both(true),
  },
  {
    name: 'info transaction never observed: may not have happened',
    history: [txn(1, [a('x', 1)], 'info'), txn(2, [r('x', [])]), txn(3, [a('x', 2)]), txn(4, [r('x', [2])])],
    types: [],
    valid: both(true),
  },
  {
    name: 'an observed info transaction takes part in cycles',
    history: [
      txn(1, [a('x', 1), a('y', 2)], 'info'),
      txn(2, [a('x', 3), a('y', 4)]),
      txn(3, [r('x', [1, 3]), r('y', [4, 2])]),
    ],
    types: ['G0'],
    valid: both(false),
  },
  {
    name: 'reads of failed and info transactions are not used',
    history: [
      txn(1, [r('x', [42, 42])], 'fail'),
      txn(2, [r('x', [7])], 'info'),
      txn(3, [r('x', null)], 'fail'),
    ],
    types: [],
    valid: both(true),
  },
  {
    name: 'stale read: fine without real time',
    history: [
      txn(1, [a('x', 1)], 'ok', [0, 1]),
      txn(2, [r('x', [])], 'ok', [2, 3]),
      txn(3, [r('x', [1])], 'ok', [4, 5]),
    ],
    types: [],
    valid: both(true),
  },
  {
    name: 'stale read: G-single-realtime with real time',
    history: [
      txn(1, [a('x', 1)], 'ok', [0, 1]),
      txn(2, [r('x', [])], 'ok', [2, 3]),
      txn(3, [r('x', [1])], 'ok', [4, 5]),
    ],
    realTime: true,
    types: ['G-single-realtime'],
    valid: both(false),
  },
  {
    name: 'future read: G1c-realtime',
    history: [txn(1, [r('x', [1])], 'ok', [0, 1]), txn(2, [a('x', 1)], 'ok', [2, 3])],
    realTime: true,
    types: ['G1c-realtime'],
    valid: both(false),
  },
  {
    name: 'real time: equal timestamps are concurrent',
    history: [
      txn(1, [a('x', 1)], 'ok', [0, 2]),
      txn(2, [r('x', [])], 'ok', [2, 3]),
      txn(3, [r('x', [1])], 'ok', [4, 5]),
    ],
    realTime: true,
    types: [],
    valid: both(true),
  },
  {
    name: 'real time: an info transaction has no end, so orders nothing after it',
    history: [
      txn(1, [a('x', 1)], 'info', [0, undefined]),
      txn(2, [r('x', [])], 'ok', [5, 6]),
      txn(3, [r('x', [1])], 'ok', [7, 8]),
    ],
    realTime: true,
    types: [],
    valid: both(true),
  },
  {
    name: 'write skew across real time is G2-realtime (allowed by snapshot isolation)',
    history: [
      txn(1, [a('a', 1)], 'ok', [0, 1]),
      txn(2, [r('b', null)], 'ok', [2, 3]),
      txn(3, [r('a', null), a('b', 2)], 'ok', [0, 10]),
      txn(4, [r('a', [1]), r('b', [2])], 'ok', [20, 21]),
    ],
    realTime: true,
    types: ['G2-realtime'],
    valid: { 'snapshot-isolation': true, serializable: false },
  },
];

describe('checkListAppend on hand-written histories', () => {
  for (const c of cases) {
    for (const consistency of ['snapshot-isolation', 'serializable'] as const) {
      it(`${c.name} (${consistency})`, () => {
        const result = checkListAppend(c.history, { consistency, realTime: c.realTime ?? false });
        expect(result.anomalyTypes).toEqual(c.types);
        expect(result.valid).toBe(c.valid[consistency]);
        for (const anomaly of result.anomalies) {
          expect(anomaly.explanation.length).toBeGreaterThan(0);
          if ('cycle' in anomaly) expectClosedCycle(anomaly);
        }
      });
    }
  }
});

function expectClosedCycle(anomaly: CycleAnomaly): void {
  const { cycle } = anomaly;
  expect(cycle.length).toBeGreaterThanOrEqual(2);
  for (let i = 0; i < cycle.length; i++) expect(cycle[i]!.to).toBe(cycle[(i + 1) % cycle.length]!.from);
  const rw = cycle.filter((s) => s.type === 'rw').length;
  const rt = cycle.some((s) => s.type === 'rt');
  const base = anomaly.type.replace('-realtime', '');
  expect(anomaly.type.endsWith('-realtime')).toBe(rt);
  if (base === 'G0') expect(cycle.every((s) => s.type === 'ww' || s.type === 'rt')).toBe(true);
  if (base === 'G1c') {
    expect(rw).toBe(0);
    if (!rt) expect(cycle.some((s) => s.type === 'wr')).toBe(true);
  }
  if (base === 'G-single') expect(rw).toBe(1);
  if (base === 'G2') expect(rw).toBeGreaterThanOrEqual(2);
}

describe('checkListAppend reports', () => {
  it('explains a write skew cycle step by step', () => {
    const result = checkListAppend(cases.find((c) => c.name.startsWith('G2:'))!.history, {
      consistency: 'serializable',
    });
    const g2 = result.anomalies[0] as CycleAnomaly;
    expect(g2.type).toBe('G2');
    expect(g2.forbidden).toBe(true);
    expect(new Set(g2.txns)).toEqual(new Set([1, 2]));
    expect(g2.cycle.map((s) => s.type)).toEqual(['rw', 'rw']);
    expect(g2.explanation).toContain("did not observe T2's append of 2");
    expect(g2.explanation).toContain("did not observe T1's append of 1");
    const si = checkListAppend(cases.find((c) => c.name.startsWith('G2:'))!.history, {
      consistency: 'snapshot-isolation',
    });
    expect(si.anomalies[0]!.forbidden).toBe(false);
  });

  it('names reader, writer and value for an aborted read', () => {
    const result = checkListAppend([txn(1, [a('x', 1)], 'fail'), txn(2, [r('x', [1])])], {
      consistency: 'snapshot-isolation',
    });
    expect(result.anomalies[0]).toMatchObject({ type: 'G1a', reader: 2, writer: 1, value: 1, key: 'x' });
  });

  it('names the transactions of a lost update', () => {
    const result = checkListAppend(
      [txn(1, [r('x', []), a('x', 1)]), txn(2, [r('x', []), a('x', 2)]), txn(3, [r('x', [1, 2])])],
      { consistency: 'snapshot-isolation' },
    );
    const lost = result.anomalies.find((x) => x.type === 'LostUpdate');
    expect(lost).toMatchObject({ txns: [1, 2], key: 'x', read: [] });
  });

  it('collapses a real-time chain into one rt step', () => {
    const result = checkListAppend(
      [
        txn(1, [a('x', 1)], 'ok', [0, 1]),
        txn(9, [r('q', null)], 'ok', [2, 2]),
        txn(2, [r('x', [])], 'ok', [3, 4]),
        txn(3, [r('x', [1])], 'ok', [5, 6]),
      ],
      { consistency: 'serializable', realTime: true },
    );
    const cycle = result.anomalies[0] as CycleAnomaly;
    expect(cycle.type).toBe('G-single-realtime');
    expect(cycle.cycle.map((s) => s.type).sort()).toEqual(['rt', 'rw']);
    expect(cycle.explanation).toMatch(/T1 → T2 \(rt\): T1 committed at 1 before T2 started at 3/);
  });

  it('caps cycles per type and counts components', () => {
    // 30 independent write skews.
    const history: ListAppendTxn[] = [];
    for (let i = 0; i < 30; i++) {
      const [x, y] = [`x${i}`, `y${i}`];
      history.push(
        txn(3 * i, [r(x, null), r(y, null), a(x, 1)]),
        txn(3 * i + 1, [r(x, null), r(y, null), a(y, 2)]),
        txn(3 * i + 2, [r(x, [1]), r(y, [2])]),
      );
    }
    const result = checkListAppend(history, { consistency: 'serializable', maxCyclesPerType: 4 });
    expect(result.anomalies.length).toBe(4);
    expect(result.stats.cyclicComponents).toBe(30);
    expect(result.stats.largestComponent).toBe(2);
    expect(result.valid).toBe(false);
  });

  it('reports stats', () => {
    const result = checkListAppend(
      [
        txn(1, [a('x', 1)], 'info'),
        txn(2, [r('x', [1]), a('x', 2)]),
        txn(3, [a('x', 3)], 'fail'),
        txn(4, [r('x', [1, 2])]),
      ],
      { consistency: 'serializable' },
    );
    expect(result.stats).toMatchObject({
      transactions: 4,
      ok: 2,
      fail: 1,
      info: 1,
      infoCommitted: 1,
      keys: 1,
      edges: { ww: 1, wr: 2, rw: 0, rt: 0 },
      cyclicComponents: 0,
    });
  });
});

describe('checkListAppend input validation', () => {
  const ok = { consistency: 'serializable' } as const;
  const historyError = (history: unknown, index: number) => {
    try {
      checkListAppend(history as ListAppendTxn[], ok);
    } catch (err) {
      expect(err).toBeInstanceOf(HistoryError);
      expect((err as HistoryError).code).toBe('InvalidHistory');
      expect((err as HistoryError).index).toBe(index);
      return;
    }
    expect.unreachable('no error thrown');
  };

  it('rejects malformed histories with HistoryError', () => {
    historyError([txn(1, [a('x', 1)]), txn(2, [a('x', 1)])], 1); // value appended twice
    historyError([txn(1, []), txn(1, [])], 1); // duplicate id
    historyError([{ id: 1, process: 0, ops: [{ f: 'r', key: 'x' }], status: 'ok' }], 0);
    historyError([{ id: 1, process: 0, ops: [{ f: 'w', key: 'x', value: 1 }], status: 'ok' }], 0);
    historyError([{ id: 1, process: 0, ops: [], status: 'maybe' }], 0);
    historyError([txn(0, []), { id: 1, process: 0, ops: [], status: 'ok', start: 5, end: 4 }], 1);
    historyError([txn(0, []), null], 1);
    historyError([{ id: 1, process: 0, ops: [r('x', [1, Number.NaN])], status: 'ok' }], 0);
  });

  it('accepts a read without a value in failed and info transactions', () => {
    const history = [
      { id: 1, process: 0, ops: [{ f: 'r', key: 'x' }], status: 'info' },
    ] as unknown as ListAppendTxn[];
    expect(checkListAppend(history, ok).valid).toBe(true);
  });

  it('rejects bad arguments with InvalidArgumentError', () => {
    const bad = (history: unknown, options: unknown) =>
      expect(() => checkListAppend(history as ListAppendTxn[], options as never)).toThrow(
        InvalidArgumentError,
      );
    bad({}, ok);
    bad([], { consistency: 'linearizable' });
    bad([], undefined);
    bad([], { consistency: 'serializable', maxCyclesPerType: 0 });
  });
});
