/**
 * Background deletion of expired keys. Expired keys already read as absent; this reclaims their
 * space when nobody touches them again. It walks the keyspace in key order, one small
 * transaction per batch (a scan plus deletes of what has expired), so it never holds the
 * embedded backend's mutex long nor builds a large cluster transaction. After a full pass it
 * rests for `idleMs`; within a pass batches follow each other every `intervalMs`.
 *
 * Cost model: there is no index of keys with a TTL (it would double every write with a TTL), so
 * a pass reads every key; at the defaults that is ~2500 keys/s of background reads.
 */

import type { Logger } from 'pino';
import type { KvBackend } from './backend/backend.js';
import { decodeEnvelope, isExpired } from './backend/envelope.js';
import { KEY_PREFIX, KEYSPACE_END } from './commands/keyspace.js';

export interface SweeperOptions {
  /** Pause between batches within a pass (default 100 ms). */
  intervalMs?: number;
  /** Keys examined per batch (default 256). */
  batchKeys?: number;
  /** Pause after a full pass (default 1000 ms). */
  idleMs?: number;
}

export class ExpirySweeper {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private running: Promise<void> | undefined;
  private cursor: Buffer = KEY_PREFIX;
  private readonly intervalMs: number;
  private readonly batchKeys: number;
  private readonly idleMs: number;

  constructor(
    private readonly backend: KvBackend,
    opts: SweeperOptions,
    private readonly onSwept: (n: number) => void,
    private readonly logger: Logger | undefined,
  ) {
    this.intervalMs = opts.intervalMs ?? 100;
    this.batchKeys = opts.batchKeys ?? 256;
    this.idleMs = opts.idleMs ?? 1000;
  }

  start(): void {
    this.schedule(this.idleMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.batch()
        .then((endOfPass) => this.schedule(endOfPass ? this.idleMs : this.intervalMs))
        .catch((err: unknown) => {
          this.logger?.warn({ err }, 'redis expiry sweep failed; retrying later');
          this.schedule(this.idleMs);
        });
    }, ms);
    this.timer.unref();
  }

  /** One batch; true when it reached the end of the keyspace. */
  async batch(): Promise<boolean> {
    const start = this.cursor;
    const { last, swept } = await this.backend.transact(async (tx) => {
      const rows = await tx.scan(start, KEYSPACE_END, this.batchKeys);
      const now = Date.now();
      let n = 0;
      for (const row of rows) {
        let expired = false;
        try {
          expired = isExpired(decodeEnvelope(row.value).expiresAt, now);
        } catch {
          // An undecodable value is not ours to delete.
        }
        if (expired) {
          tx.delete(row.key);
          n++;
        }
      }
      const end = rows.length < this.batchKeys ? undefined : rows[rows.length - 1]!.key;
      return { last: end, swept: n };
    });
    this.onSwept(swept);
    if (last === undefined) {
      this.cursor = KEY_PREFIX;
      return true;
    }
    this.cursor = Buffer.concat([last, Buffer.from([0])]);
    return false;
  }
}
