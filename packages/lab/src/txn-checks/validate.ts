import { HistoryError, InvalidArgumentError } from '../errors.js';
import type { ListAppendOptions, TxnStatus } from './types.js';

const STATUSES: readonly TxnStatus[] = ['ok', 'fail', 'info'];

/** A best-effort rendering of a value that may be malformed, for error messages. */
export function raw(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** A key or id as written in reports: strings quoted, numbers bare. */
export function show(value: string | number): string {
  return typeof value === 'string' ? `'${value}'` : String(value);
}

const isKey = (k: unknown): k is string | number =>
  typeof k === 'string' || (typeof k === 'number' && Number.isFinite(k));

/**
 * Checks the parts of a transaction every history shares: an object with a unique string or finite
 * number `id`, a finite `process`, a known `status`, an `ops` array, and optional `start`/`end`
 * times (numbers, not NaN, `start` finite, `end >= start`). Throws `HistoryError` naming the
 * transaction's index.
 */
export function validateTxnShape(txn: unknown, i: number, ids: Set<string | number>): void {
  if (typeof txn !== 'object' || txn === null) {
    throw new HistoryError(i, `transaction #${i} is not an object: ${raw(txn)}`);
  }
  const t = txn as Record<string, unknown>;
  if (!isKey(t.id)) throw new HistoryError(i, `transaction #${i}: id must be a string or a finite number`);
  const where = `transaction #${i} (id ${show(t.id)})`;
  if (ids.has(t.id)) throw new HistoryError(i, `${where}: duplicate id`);
  ids.add(t.id);
  if (typeof t.process !== 'number' || !Number.isFinite(t.process)) {
    throw new HistoryError(i, `${where}: process must be a finite number`);
  }
  if (!STATUSES.includes(t.status as TxnStatus)) {
    throw new HistoryError(i, `${where}: status must be 'ok', 'fail' or 'info', got ${raw(t.status)}`);
  }
  if (!Array.isArray(t.ops)) throw new HistoryError(i, `${where}: ops must be an array`);
  if (t.start !== undefined && (typeof t.start !== 'number' || !Number.isFinite(t.start))) {
    throw new HistoryError(i, `${where}: start must be a finite number, got ${raw(t.start)}`);
  }
  if (t.end !== undefined && (typeof t.end !== 'number' || Number.isNaN(t.end))) {
    throw new HistoryError(i, `${where}: end must be a number, got ${raw(t.end)}`);
  }
  if (typeof t.start === 'number' && typeof t.end === 'number' && t.end < t.start) {
    throw new HistoryError(i, `${where}: end ${t.end} is before start ${t.start}`);
  }
}

/**
 * Checks that `history` is a well-formed list-append history: shapes as above, every op an
 * `append` of a finite number to a string or finite-number key or an `r` whose value is `null` or
 * an array of finite numbers (`ok` transactions must report their reads), and no value appended
 * twice to the same key. Throws `InvalidArgumentError` for a non-array history or bad options.
 */
export function validateListAppend(history: unknown, options: ListAppendOptions | undefined): void {
  if (!Array.isArray(history)) {
    throw new InvalidArgumentError(`history must be an array of transactions, got ${typeof history}`);
  }
  if (typeof options !== 'object' || options === null) {
    throw new InvalidArgumentError('options must be an object with a consistency');
  }
  if (options.consistency !== 'snapshot-isolation' && options.consistency !== 'serializable') {
    throw new InvalidArgumentError(
      `consistency must be 'snapshot-isolation' or 'serializable', got ${raw(options.consistency)}`,
    );
  }
  const max = options.maxCyclesPerType;
  if (max !== undefined && (!Number.isInteger(max) || max < 1)) {
    throw new InvalidArgumentError(`maxCyclesPerType must be a positive integer, got ${raw(max)}`);
  }
  const ids = new Set<string | number>();
  const appended = new Map<string | number, Set<number>>();
  for (let i = 0; i < history.length; i++) {
    validateTxnShape(history[i], i, ids);
    const txn = history[i] as { id: string | number; ops: unknown[]; status: TxnStatus };
    const where = `transaction #${i} (id ${show(txn.id)})`;
    for (let j = 0; j < txn.ops.length; j++) {
      const op = txn.ops[j] as Record<string, unknown> | null;
      const at = `${where}, op ${j} ${raw(op)}`;
      if (typeof op !== 'object' || op === null) throw new HistoryError(i, `${at}: not an object`);
      if (!isKey(op.key)) throw new HistoryError(i, `${at}: key must be a string or a finite number`);
      if (op.f === 'append') {
        if (typeof op.value !== 'number' || !Number.isFinite(op.value)) {
          throw new HistoryError(i, `${at}: appended value must be a finite number`);
        }
        let values = appended.get(op.key);
        if (values === undefined) {
          values = new Set();
          appended.set(op.key, values);
        }
        if (values.has(op.value)) {
          throw new HistoryError(
            i,
            `${at}: value ${op.value} is appended to key ${show(op.key)} more than once`,
          );
        }
        values.add(op.value);
      } else if (op.f === 'r') {
        if (op.value === null || op.value === undefined) {
          if (txn.status === 'ok' && op.value === undefined) {
            throw new HistoryError(
              i,
              `${at}: a read of a committed transaction needs a value (null or a list)`,
            );
          }
        } else if (
          !Array.isArray(op.value) ||
          !op.value.every((v) => typeof v === 'number' && Number.isFinite(v))
        ) {
          throw new HistoryError(i, `${at}: a read's value must be null or an array of finite numbers`);
        }
      } else {
        throw new HistoryError(i, `${at}: f must be 'append' or 'r'`);
      }
    }
  }
}
