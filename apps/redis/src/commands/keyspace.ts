/**
 * The Redis keyspace inside NoKV, and one command's (or one EXEC's) view of it.
 *
 * Every Redis key is stored under the prefix `redis/`, so the gateway's keys never mix with other
 * data of a shared cluster: SCAN, KEYS, DBSIZE and FLUSHDB see Redis keys only, and the empty
 * Redis key (legal in Redis, not in the engine) still maps to a non-empty NoKV key.
 *
 * `KeyTxn` wraps a backend transaction with what every command needs:
 * - envelopes decoded, and expired values reported as absent (Redis's lazy expiry: an expired
 *   key behaves exactly like a missing one);
 * - expired keys deleted by the next write command that touches them (reads stay reads: a GET
 *   never turns into a write, which would cost a 2PC on the cluster);
 * - read-your-writes, so `MULTI; SET k 1; INCR k; EXEC` sees its own SET whatever the backend.
 */

import type { BackendTxn } from '../backend/backend.js';
import { decodeEnvelope, encodeEnvelope, isExpired, type StoredValue } from '../backend/envelope.js';

export const KEY_PREFIX = Buffer.from('redis/');
/** The first NoKV key after every Redis key. */
export const KEYSPACE_END = Buffer.from('redis0');
/**
 * Longest Redis key accepted: the engine takes 64 KiB keys, and the cluster adds its own encoding
 * (column family, version suffix), so stay well below.
 */
export const MAX_KEY_BYTES = 32 * 1024;

export function storageKey(key: Buffer): Buffer {
  const out = Buffer.allocUnsafe(KEY_PREFIX.length + key.length);
  KEY_PREFIX.copy(out, 0);
  key.copy(out, KEY_PREFIX.length);
  return out;
}

export function redisKey(stored: Buffer): Buffer {
  return stored.subarray(KEY_PREFIX.length);
}

/** Smallest stored key strictly after `key` (for resuming scans). */
export function storageKeyAfter(key: Buffer): Buffer {
  return Buffer.concat([storageKey(key), Buffer.from([0])]);
}

/** The stored-key range [start, end) holding every Redis key starting with `prefix`. */
export function prefixRange(prefix: Buffer): { start: Buffer; end: Buffer } {
  const start = storageKey(prefix);
  const end = Buffer.from(start);
  let i = end.length - 1;
  while (i >= 0 && end[i] === 0xff) i--;
  // The prefix `redis/` never consists of 0xff bytes, so i stays >= 0.
  const cut = end.subarray(0, i + 1);
  cut[i] = cut[i]! + 1;
  return { start, end: Buffer.from(cut) };
}

const mapKey = (key: Buffer): string => key.toString('latin1');

export interface ScannedEntry {
  key: Buffer;
  /** Undefined when the key has expired (SCAN still counts it as scanned work). */
  value: StoredValue | undefined;
}

export class KeyTxn {
  /** Values this transaction wrote (undefined: deleted), read back by its own reads. */
  private readonly writes = new Map<string, StoredValue | undefined>();
  /** Expired keys seen by reads, deleted if the transaction writes anything. */
  private readonly expiredSeen = new Map<string, Buffer>();
  private cleanupExpired = false;

  /**
   * `now` is fixed per command, as Redis does: one command sees one consistent clock, and TTL
   * arithmetic (TTL, GETEX, SET KEEPTTL) cannot disagree with the expiry check.
   */
  constructor(
    readonly tx: BackendTxn,
    public now: number,
    /** Told the (latin1) Redis keys this transaction wrote, when its function finishes (WATCH). */
    private readonly onWritten?: (keys: Iterable<string>) => void,
  ) {}

  private decodeLive(key: Buffer, raw: Buffer | undefined): StoredValue | undefined {
    if (raw === undefined) return undefined;
    const v = decodeEnvelope(raw);
    if (isExpired(v.expiresAt, this.now)) {
      this.expiredSeen.set(mapKey(key), key);
      return undefined;
    }
    return v;
  }

  async get(key: Buffer): Promise<StoredValue | undefined> {
    const k = mapKey(key);
    if (this.writes.has(k)) return this.liveWrite(this.writes.get(k));
    return this.decodeLive(key, await this.tx.get(storageKey(key)));
  }

  /** The stored state of a key as WATCH compares it: its envelope bytes, or undefined if absent. */
  async snapshotOf(key: Buffer): Promise<string | undefined> {
    const v = await this.get(key);
    return v === undefined ? undefined : encodeEnvelope(v).toString('latin1');
  }

  async getMany(keys: readonly Buffer[]): Promise<(StoredValue | undefined)[]> {
    const out: (StoredValue | undefined)[] = new Array(keys.length);
    const missing: number[] = [];
    for (let i = 0; i < keys.length; i++) {
      const k = mapKey(keys[i]!);
      if (this.writes.has(k)) out[i] = this.liveWrite(this.writes.get(k));
      else missing.push(i);
    }
    if (missing.length > 0) {
      const raws = await this.tx.getMany(missing.map((i) => storageKey(keys[i]!)));
      missing.forEach((i, j) => {
        out[i] = this.decodeLive(keys[i]!, raws[j]);
      });
    }
    return out;
  }

  private liveWrite(v: StoredValue | undefined): StoredValue | undefined {
    return v === undefined || isExpired(v.expiresAt, this.now) ? undefined : v;
  }

  set(key: Buffer, value: StoredValue): void {
    this.writes.set(mapKey(key), value);
    this.tx.put(storageKey(key), encodeEnvelope(value));
  }

  delete(key: Buffer): void {
    this.writes.set(mapKey(key), undefined);
    this.tx.delete(storageKey(key));
  }

  guard(key: Buffer): void {
    this.tx.guard(storageKey(key));
  }

  /** Marks the running command as a write: expired keys it read get deleted at commit. */
  markWrite(): void {
    this.cleanupExpired = true;
  }

  get hasWrites(): boolean {
    return this.writes.size > 0;
  }

  /** Called once before the transaction commits. */
  finish(): void {
    if (!this.cleanupExpired && this.writes.size === 0) return;
    for (const [k, key] of this.expiredSeen) {
      if (!this.writes.has(k)) this.tx.delete(storageKey(key));
    }
    this.onWritten?.(this.writes.keys());
    this.onWritten?.(this.expiredSeen.keys());
    this.expiredSeen.clear();
  }

  /**
   * Up to `limit` stored entries with stored keys in [start, end), in key order, own writes
   * merged in. Returns the Redis keys; expired entries come back with `value: undefined`.
   */
  async scan(start: Buffer, end: Buffer, limit: number): Promise<{ entries: ScannedEntry[]; more: boolean }> {
    const own = [...this.writes.entries()]
      .map(([k, v]) => ({ stored: storageKey(Buffer.from(k, 'latin1')), v }))
      .filter(({ stored }) => Buffer.compare(stored, start) >= 0 && Buffer.compare(stored, end) < 0)
      .sort((a, b) => Buffer.compare(a.stored, b.stored));
    const fetch = limit + own.length;
    const rows = await this.tx.scan(start, end, fetch);
    const truncated = rows.length >= fetch;
    const horizon = truncated ? rows[rows.length - 1]!.key : undefined;
    const entries: ScannedEntry[] = [];
    let i = 0;
    let j = 0;
    let more = truncated;
    while (i < rows.length || j < own.length) {
      if (entries.length >= limit) {
        more = true;
        break;
      }
      const row = rows[i];
      const o = own[j];
      if (o === undefined || (row !== undefined && Buffer.compare(row.key, o.stored) < 0)) {
        const key = redisKey(row!.key);
        entries.push({ key, value: this.decodeLive(key, row!.value) });
        i++;
        continue;
      }
      if (horizon !== undefined && Buffer.compare(o.stored, horizon) > 0) break;
      if (row !== undefined && Buffer.compare(row.key, o.stored) === 0) i++;
      j++;
      if (o.v !== undefined) entries.push({ key: redisKey(o.stored), value: this.liveWrite(o.v) });
    }
    return { entries, more };
  }
}
