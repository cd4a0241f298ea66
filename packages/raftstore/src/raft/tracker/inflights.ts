import { invariant } from '../errors.js';

/**
 * The appends a leader has sent to one follower in replicate state and not yet seen acknowledged,
 * bounded by a message count and (optionally) a byte total so a slow follower cannot make the
 * leader buffer without limit. Entries are the last log index of each message, ascending.
 */
export class Inflights {
  private readonly indexes: bigint[];
  private readonly sizes: number[];
  private start = 0;
  private count = 0;
  private bytes = 0;

  constructor(
    readonly capacity: number,
    readonly maxBytes = 0,
  ) {
    invariant(capacity > 0, () => `inflight capacity must be positive, got ${capacity}`);
    this.indexes = new Array<bigint>(capacity);
    this.sizes = new Array<number>(capacity);
  }

  /** Records a sent message whose last entry is `index`. */
  add(index: bigint, bytes: number): void {
    invariant(!this.full(), () => `cannot add index ${index} to a full inflight window (${this.count})`);
    if (this.count > 0) {
      const last = this.indexes[(this.start + this.count - 1) % this.capacity]!;
      invariant(index > last, () => `inflight index ${index} is not above the last one ${last}`);
    }
    const slot = (this.start + this.count) % this.capacity;
    this.indexes[slot] = index;
    this.sizes[slot] = bytes;
    this.count++;
    this.bytes += bytes;
  }

  /** Forgets every message whose last entry is at or below `index` (they were acknowledged). */
  freeLE(index: bigint): void {
    while (this.count > 0 && this.indexes[this.start]! <= index) {
      this.bytes -= this.sizes[this.start]!;
      this.start = (this.start + 1) % this.capacity;
      this.count--;
    }
    if (this.count === 0) this.start = 0;
  }

  /** Forgets the oldest message; lets one more through when a heartbeat shows the follower is alive. */
  freeFirstOne(): void {
    if (this.count === 0) return;
    this.freeLE(this.indexes[this.start]!);
  }

  full(): boolean {
    return this.count === this.capacity || (this.maxBytes > 0 && this.bytes >= this.maxBytes);
  }

  get size(): number {
    return this.count;
  }

  get sizeBytes(): number {
    return this.bytes;
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
    this.bytes = 0;
  }
}
