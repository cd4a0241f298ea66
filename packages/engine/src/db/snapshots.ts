/**
 * Snapshots: consistent read views by version. A snapshot pins its version so compaction keeps
 * every record a reader at that version can see; iterators register one for as long as they run.
 */

import { InvalidArgumentError } from '../errors.js';

export class Snapshot {
  /** Reads through this snapshot see exactly the writes with versions at or below this. */
  readonly version: bigint;
  private readonly registry: SnapshotRegistry;
  private released = false;

  /** @internal created by `Database.snapshot()` */
  constructor(version: bigint, registry: SnapshotRegistry) {
    this.version = version;
    this.registry = registry;
  }

  get isReleased(): boolean {
    return this.released;
  }

  /** Lets compaction reclaim what only this snapshot could see. Idempotent. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.registry.remove(this.version);
  }

  /** Throws `InvalidArgumentError` unless `value` is a live snapshot of the database owning `registry`. */
  static checkArgument(value: unknown, registry: SnapshotRegistry): Snapshot {
    if (!(value instanceof Snapshot)) {
      throw new InvalidArgumentError('InvalidArgument', 'snapshot must come from db.snapshot()');
    }
    value.check(registry);
    return value;
  }

  /** @internal throws when the snapshot was released or belongs to another database */
  check(registry: SnapshotRegistry): void {
    if (this.registry !== registry) {
      throw new InvalidArgumentError('InvalidArgument', 'snapshot belongs to a different database');
    }
    if (this.released)
      throw new InvalidArgumentError('InvalidArgument', `snapshot at version ${this.version} was released`);
  }
}

/** Multiset of pinned versions. */
export class SnapshotRegistry {
  private readonly counts = new Map<bigint, number>();

  add(version: bigint): void {
    this.counts.set(version, (this.counts.get(version) ?? 0) + 1);
  }

  remove(version: bigint): void {
    const n = this.counts.get(version) ?? 0;
    if (n <= 1) this.counts.delete(version);
    else this.counts.set(version, n - 1);
  }

  get size(): number {
    let n = 0;
    for (const c of this.counts.values()) n += c;
    return n;
  }

  /** Oldest pinned version, or undefined. */
  oldest(): bigint | undefined {
    let min: bigint | undefined;
    for (const v of this.counts.keys()) if (min === undefined || v < min) min = v;
    return min;
  }
}
