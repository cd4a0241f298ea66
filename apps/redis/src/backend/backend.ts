/**
 * What the Redis command layer needs from storage. Two implementations with identical behaviour:
 * `EmbeddedBackend` (the engine in this process; one transaction at a time) and `ClusterBackend`
 * (NoKV transactions through the coordinator: snapshot reads that honour locks, 2PC writes).
 *
 * Keys and values are opaque bytes here; the command layer stores each Redis value in an envelope
 * (see `envelope.ts`: type, expiry in Unix ms, payload) so TTLs behave the same on both backends.
 */
export interface KvBackend {
  readonly kind: 'embedded' | 'cluster';
  /**
   * Runs `fn` as one transaction: its reads see one consistent snapshot, its writes commit all or
   * nothing when it returns. When the commit loses a write-write race (cluster) the backend runs
   * `fn` again from a fresh snapshot, up to `maxAttempts` (default 8) times, then throws
   * `BackendError('Conflict')`. If `fn` throws, nothing is written.
   * `abortOnConflict`: throw `BackendError('Conflict')` on the first lost race instead of retrying
   * (EXEC with WATCH answers nil then).
   */
  transact<T>(
    fn: (tx: BackendTxn) => Promise<T>,
    opts?: { maxAttempts?: number; abortOnConflict?: boolean },
  ): Promise<T>;
  close(): Promise<void>;
}

/** Reads see the transaction's own earlier writes (read-your-writes). */
export interface BackendTxn {
  get(key: Buffer): Promise<Buffer | undefined>;
  /** Several keys at once (one round trip per region on the cluster). */
  getMany(keys: readonly Buffer[]): Promise<(Buffer | undefined)[]>;
  /**
   * Pairs with start <= key < end (empty end = +inf) in key order, at most `limit`; fewer than
   * `limit` only when the range holds no more (callers use that to detect its end). Includes the
   * transaction's own writes.
   */
  scan(start: Buffer, end: Buffer, limit: number): Promise<{ key: Buffer; value: Buffer }[]>;
  put(key: Buffer, value: Buffer): void;
  delete(key: Buffer): void;
  /**
   * Makes a concurrent commit that writes `key` conflict with this transaction (WATCH): on the
   * cluster the key joins the write set unchanged (a Percolator lock record); embedded transactions
   * are serial, so there it does nothing.
   */
  guard(key: Buffer): void;
}

export type BackendErrorCode = 'Conflict' | 'Unavailable' | 'Timeout' | 'Internal';

export class BackendError extends Error {
  override readonly name = 'BackendError';
  constructor(
    readonly code: BackendErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
