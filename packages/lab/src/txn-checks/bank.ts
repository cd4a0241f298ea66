/**
 * The bank invariant: transfers move money between a fixed set of accounts, so every snapshot read
 * of all balances must add up to the same total (and, usually, show no negative balance). A read
 * that does not is a torn or inconsistent snapshot: read skew, a lost or duplicated transfer, or a
 * transfer applied halfway.
 */

import { HistoryError, InvalidArgumentError } from '../errors.js';
import type { TxnId, TxnStatus } from './types.js';
import { raw, show, validateTxnShape } from './validate.js';

/** A bank micro-operation: a snapshot read of every balance, or a transfer between two accounts. */
export type BankOp =
  | { readonly f: 'read'; readonly balances: Readonly<Record<string, number>> | null }
  | { readonly f: 'transfer'; readonly from: string; readonly to: string; readonly amount: number };

export interface BankTxn {
  readonly id: TxnId;
  readonly process: number;
  readonly ops: readonly BankOp[];
  readonly status: TxnStatus;
  readonly start?: number;
  readonly end?: number;
}

export interface BankOptions {
  /** Every account; a read must show exactly these. */
  readonly accounts: readonly string[];
  /** What the balances always add up to. */
  readonly total: number;
  /** Accept negative balances (default false: a negative balance is an anomaly). */
  readonly allowNegative?: boolean;
}

export type BankProblem = 'WrongTotal' | 'NegativeBalance' | 'MissingAccount' | 'UnknownAccount';

/** One bad read. */
export interface BankAnomaly {
  readonly txn: TxnId;
  /** Index of the read in its transaction's ops. */
  readonly op: number;
  readonly balances: Readonly<Record<string, number>>;
  /** Sum of the balances shown. */
  readonly sum: number;
  readonly problems: readonly BankProblem[];
  readonly explanation: string;
}

export interface BankResult {
  readonly valid: boolean;
  readonly anomalies: readonly BankAnomaly[];
  readonly stats: {
    /** Reads checked (of ok transactions). */
    readonly reads: number;
    readonly badReads: number;
    /** Transfers in ok transactions. */
    readonly transfers: number;
  };
}

/**
 * Checks every read of every `'ok'` transaction: the balances of exactly `options.accounts`,
 * adding up to `options.total`, none negative unless `allowNegative`. Reads of failed or
 * unknown-outcome transactions are not checked. Throws `InvalidArgumentError` for bad options or
 * a non-array history, `HistoryError` for a malformed transaction or operation (a transfer needs
 * known, distinct accounts and a finite amount; a read's balances must be finite numbers).
 */
export function checkBank(history: readonly BankTxn[], options: BankOptions): BankResult {
  if (!Array.isArray(history)) {
    throw new InvalidArgumentError(`history must be an array of transactions, got ${typeof history}`);
  }
  if (typeof options !== 'object' || options === null || !Array.isArray(options.accounts)) {
    throw new InvalidArgumentError('options must be an object with accounts and total');
  }
  const accounts = new Set(options.accounts);
  if (accounts.size !== options.accounts.length || options.accounts.some((a) => typeof a !== 'string')) {
    throw new InvalidArgumentError('accounts must be distinct strings');
  }
  if (typeof options.total !== 'number' || !Number.isFinite(options.total)) {
    throw new InvalidArgumentError(`total must be a finite number, got ${raw(options.total)}`);
  }
  const allowNegative = options.allowNegative ?? false;
  const ids = new Set<string | number>();
  const anomalies: BankAnomaly[] = [];
  let reads = 0;
  let transfers = 0;
  for (let i = 0; i < history.length; i++) {
    validateTxnShape(history[i], i, ids);
    const txn = history[i]!;
    const name = `T${show(txn.id)}`;
    for (let j = 0; j < txn.ops.length; j++) {
      const op = txn.ops[j] as BankOp | null;
      const at = `transaction #${i} (id ${show(txn.id)}), op ${j} ${raw(op)}`;
      if (typeof op !== 'object' || op === null) throw new HistoryError(i, `${at}: not an object`);
      if (op.f === 'transfer') {
        if (!accounts.has(op.from) || !accounts.has(op.to) || op.from === op.to) {
          throw new HistoryError(i, `${at}: a transfer needs two distinct known accounts`);
        }
        if (typeof op.amount !== 'number' || !Number.isFinite(op.amount)) {
          throw new HistoryError(i, `${at}: amount must be a finite number`);
        }
        if (txn.status === 'ok') transfers++;
        continue;
      }
      if (op.f !== 'read') throw new HistoryError(i, `${at}: f must be 'read' or 'transfer'`);
      if (txn.status !== 'ok') continue;
      const balances = op.balances;
      if (typeof balances !== 'object' || balances === null) {
        throw new HistoryError(i, `${at}: a read of a committed transaction needs its balances`);
      }
      reads++;
      const problems: BankProblem[] = [];
      const notes: string[] = [];
      let sum = 0;
      const negative: string[] = [];
      const unknown: string[] = [];
      for (const [account, balance] of Object.entries(balances)) {
        if (typeof balance !== 'number' || !Number.isFinite(balance)) {
          throw new HistoryError(i, `${at}: balance of ${account} must be a finite number`);
        }
        if (!accounts.has(account)) unknown.push(account);
        sum += balance;
        if (balance < 0) negative.push(`${account} = ${balance}`);
      }
      const missing = options.accounts.filter((a) => !Object.hasOwn(balances, a));
      if (sum !== options.total) {
        problems.push('WrongTotal');
        notes.push(`the balances add up to ${sum}, not ${options.total}`);
      }
      if (negative.length > 0 && !allowNegative) {
        problems.push('NegativeBalance');
        notes.push(`negative: ${negative.join(', ')}`);
      }
      if (missing.length > 0) {
        problems.push('MissingAccount');
        notes.push(`missing: ${missing.join(', ')}`);
      }
      if (unknown.length > 0) {
        problems.push('UnknownAccount');
        notes.push(`unknown accounts: ${unknown.join(', ')}`);
      }
      if (problems.length > 0) {
        anomalies.push({
          txn: txn.id,
          op: j,
          balances,
          sum,
          problems,
          explanation: `${name} read ${raw(balances)} (op ${j}): ${notes.join('; ')}.`,
        });
      }
    }
  }
  return {
    valid: anomalies.length === 0,
    anomalies,
    stats: { reads, badReads: anomalies.length, transfers },
  };
}
