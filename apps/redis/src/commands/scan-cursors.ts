/**
 * SCAN cursors. Redis clients treat the cursor as an opaque string, but many parse it as an
 * unsigned 64-bit integer and all stop at "0", while our natural cursor is the key to resume
 * after (arbitrary bytes). So each unfinished SCAN gets a fresh number mapped to its resume key
 * in a bounded table (least recently issued evicted first).
 *
 * An unknown cursor (evicted, issued by another gateway or before a restart) restarts the scan
 * from the beginning: keys may then be returned twice, which SCAN's contract allows, but a key
 * present for the whole iteration is never skipped.
 */

export class ScanCursors {
  private readonly table = new Map<bigint, Buffer>();
  private next: bigint;

  constructor(
    private readonly capacity = 65_536,
    /** Starting far from 0 makes a stale cursor from a previous gateway unlikely to collide. */
    start: bigint = BigInt(1 + Math.floor(Math.random() * 2 ** 40)),
  ) {
    this.next = start;
  }

  /** A cursor for resuming after `resumeAfter` (the last Redis key scanned). */
  issue(resumeAfter: Buffer): string {
    const id = this.next++;
    this.table.set(id, Buffer.from(resumeAfter));
    if (this.table.size > this.capacity) {
      const oldest = this.table.keys().next().value;
      if (oldest !== undefined) this.table.delete(oldest);
    }
    return id.toString();
  }

  /** The resume key of a cursor; undefined for 0 and for unknown cursors (start over). */
  resolve(cursor: bigint): Buffer | undefined {
    if (cursor === 0n) return undefined;
    return this.table.get(cursor);
  }

  get size(): number {
    return this.table.size;
  }
}

/**
 * Redis's cursor parsing (`strtoul` on the whole argument): digits only, within uint64.
 * Undefined means `ERR invalid cursor`.
 */
export function parseCursor(arg: Buffer): bigint | undefined {
  const s = arg.toString('latin1');
  if (!/^[0-9]{1,20}$/.test(s)) return undefined;
  const v = BigInt(s);
  return v > 18446744073709551615n ? undefined : v;
}
