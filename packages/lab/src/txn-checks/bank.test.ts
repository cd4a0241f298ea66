import { describe, expect, it } from 'vitest';
import { HistoryError, InvalidArgumentError } from '../errors.js';
import { Prng } from '../workload/prng.js';
import { type BankOp, type BankTxn, checkBank } from './bank.js';

const accounts = ['a', 'b', 'c'];
const options = { accounts, total: 30 };
const read = (balances: Record<string, number> | null): BankOp => ({ f: 'read', balances });
const transfer = (from: string, to: string, amount: number): BankOp => ({ f: 'transfer', from, to, amount });
const txn = (id: number, ops: BankOp[], status: BankTxn['status'] = 'ok'): BankTxn => ({
  id,
  process: 0,
  ops,
  status,
});

/** Serial bank workload: random transfers (never overdrawing) and full reads. */
function simulateBank(seed: number, transactions: number): BankTxn[] {
  const rng = new Prng(seed);
  const balances: Record<string, number> = { a: 10, b: 10, c: 10 };
  const history: BankTxn[] = [];
  for (let id = 0; id < transactions; id++) {
    if (rng.chance(0.5)) {
      history.push(txn(id, [read({ ...balances })]));
      continue;
    }
    const from = rng.pick(accounts);
    const to = rng.pick(accounts.filter((x) => x !== from));
    const amount = rng.int(1, 5);
    const status = rng.chance(0.1) ? 'fail' : 'ok';
    if (status === 'ok' && balances[from]! >= amount) {
      balances[from]! -= amount;
      balances[to]! += amount;
    }
    history.push(txn(id, [read({ ...balances }), transfer(from, to, amount)], status));
  }
  return history;
}

describe('checkBank', () => {
  it('accepts consistent snapshots', () => {
    const result = checkBank(
      [
        txn(1, [read({ a: 10, b: 10, c: 10 })]),
        txn(2, [transfer('a', 'b', 5)]),
        txn(3, [read({ a: 5, b: 15, c: 10 })]),
      ],
      options,
    );
    expect(result).toMatchObject({
      valid: true,
      anomalies: [],
      stats: { reads: 2, badReads: 0, transfers: 1 },
    });
  });

  it('reports a read that does not add up, with its transaction id', () => {
    const result = checkBank(
      [txn(1, [read({ a: 10, b: 10, c: 10 })]), txn(7, [read({ a: 5, b: 10, c: 10 })])],
      options,
    );
    expect(result.valid).toBe(false);
    expect(result.anomalies).toHaveLength(1);
    expect(result.anomalies[0]).toMatchObject({ txn: 7, op: 0, sum: 25, problems: ['WrongTotal'] });
    expect(result.anomalies[0]!.explanation).toContain('add up to 25, not 30');
  });

  it('reports negative balances unless allowed', () => {
    const history = [txn(3, [read({ a: -5, b: 25, c: 10 })])];
    expect(checkBank(history, options).anomalies[0]).toMatchObject({ txn: 3, problems: ['NegativeBalance'] });
    expect(checkBank(history, { ...options, allowNegative: true }).valid).toBe(true);
  });

  it('reports missing and unknown accounts', () => {
    const result = checkBank([txn(4, [read({ a: 10, b: 10, d: 10 })])], options);
    expect(result.anomalies[0]!.problems).toEqual(['MissingAccount', 'UnknownAccount']);
  });

  it('ignores reads of failed and unknown-outcome transactions', () => {
    const result = checkBank(
      [txn(1, [read({ a: 0, b: 0, c: 0 })], 'fail'), txn(2, [read(null)], 'info')],
      options,
    );
    expect(result.valid).toBe(true);
    expect(result.stats.reads).toBe(0);
  });

  it('accepts serial executions and catches one corrupted read', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const history = simulateBank(seed, 300);
      expect(checkBank(history, options).valid).toBe(true);
      const rng = new Prng(seed);
      const victims = history.filter((t) => t.status === 'ok');
      const victim = rng.pick(victims);
      const balances = { ...(victim.ops[0] as { balances: Record<string, number> }).balances };
      balances.a! += 1; // a transfer half-applied
      const corrupted = history.map((t) =>
        t === victim ? { ...t, ops: [read(balances), ...t.ops.slice(1)] } : t,
      );
      const result = checkBank(corrupted, options);
      expect(result.anomalies.map((x) => x.txn)).toEqual([victim.id]);
    }
  });

  it('rejects malformed input', () => {
    expect(() => checkBank([txn(1, [transfer('a', 'z', 1)])], options)).toThrow(HistoryError);
    expect(() => checkBank([txn(1, [transfer('a', 'a', 1)])], options)).toThrow(HistoryError);
    expect(() => checkBank([txn(1, [read(null)])], options)).toThrow(HistoryError);
    expect(() => checkBank([txn(1, [read({ a: Number.NaN, b: 0, c: 0 })])], options)).toThrow(HistoryError);
    expect(() => checkBank([txn(1, []), txn(1, [])], options)).toThrow(HistoryError);
    expect(() => checkBank({} as BankTxn[], options)).toThrow(InvalidArgumentError);
    expect(() => checkBank([], { accounts: ['a', 'a'], total: 0 })).toThrow(InvalidArgumentError);
    expect(() => checkBank([], { accounts, total: Number.NaN })).toThrow(InvalidArgumentError);
  });
});
