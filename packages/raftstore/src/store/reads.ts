import type { Database } from '@nokv/engine';
import { dataKey, dataRange, userKeyOf } from './keys.js';

/** The current value of a user key (reads the latest engine state, after a read barrier). */
export async function readValue(db: Database, key: Uint8Array): Promise<Buffer | undefined> {
  return db.get(dataKey(key));
}

/** Up to `limit` user keys in [start, end) (empty end = +inf), ascending. */
export async function scanValues(
  db: Database,
  start: Uint8Array,
  end: Uint8Array,
  limit: number,
): Promise<{ key: Buffer; value: Buffer }[]> {
  const { lo, hi } = dataRange(start, end);
  const rows: { key: Buffer; value: Buffer }[] = [];
  if (limit <= 0) return rows;
  for await (const [k, v] of db.iterate({ gte: lo, lt: hi, limit })) {
    rows.push({ key: Buffer.from(userKeyOf(k)), value: v });
  }
  return rows;
}
