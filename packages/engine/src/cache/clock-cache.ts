/**
 * A byte-budgeted cache with CLOCK (second-chance) eviction, the shared mechanism of the block
 * and row caches. A hit only sets the entry's reference bit; eviction sweeps a ring of entries
 * with a hand, clearing set bits and evicting the first entry found without one. Every operation
 * is O(1) amortised, and a hit costs one Map lookup.
 */

export interface ClockEntry {
  /** Bytes charged against the budget. */
  readonly chargeBytes: number;
  referenced: boolean;
}

interface Slot<K, V> {
  key: K;
  value: V;
  /** False once removed; the ring skips and reuses dead slots. */
  live: boolean;
}

export class ClockCache<K, V extends ClockEntry> {
  private readonly capacityBytes: number;
  private readonly slots = new Map<K, Slot<K, V>>();
  private readonly ring: Slot<K, V>[] = [];
  private hand = 0;
  private usedBytes = 0;
  private dead = 0;

  constructor(capacityBytes: number) {
    this.capacityBytes = capacityBytes;
  }

  get size(): number {
    return this.usedBytes;
  }

  get capacity(): number {
    return this.capacityBytes;
  }

  get count(): number {
    return this.slots.size;
  }

  /** The entry, marking it recently used. */
  get(key: K): V | undefined {
    const slot = this.slots.get(key);
    if (slot === undefined) return undefined;
    slot.value.referenced = true;
    return slot.value;
  }

  /** Looks without marking (for checks that are not uses). */
  peek(key: K): V | undefined {
    return this.slots.get(key)?.value;
  }

  /** Inserts or replaces; evicts until the budget holds. Entries larger than the budget are not kept. */
  set(key: K, value: V): void {
    if (value.chargeBytes > this.capacityBytes) return;
    this.delete(key);
    const slot: Slot<K, V> = { key, value, live: true };
    this.slots.set(key, slot);
    this.ring.push(slot);
    this.usedBytes += value.chargeBytes;
    this.evict(slot);
  }

  delete(key: K): void {
    const slot = this.slots.get(key);
    if (slot === undefined) return;
    this.slots.delete(key);
    slot.live = false;
    this.usedBytes -= slot.value.chargeBytes;
    this.dead++;
    this.compactRing();
  }

  /** Removes every entry `predicate` selects. */
  deleteWhere(predicate: (key: K) => boolean): void {
    for (const key of [...this.slots.keys()]) if (predicate(key)) this.delete(key);
  }

  clear(): void {
    this.slots.clear();
    this.ring.length = 0;
    this.hand = 0;
    this.usedBytes = 0;
    this.dead = 0;
  }

  private evict(keep: Slot<K, V>): void {
    // Two passes at most: the first clears reference bits, the second finds a victim.
    let budget = this.ring.length * 2 + 1;
    while (this.usedBytes > this.capacityBytes && budget-- > 0) {
      if (this.hand >= this.ring.length) this.hand = 0;
      const slot = this.ring[this.hand]!;
      if (!slot.live || slot === keep) {
        this.hand++;
        continue;
      }
      if (slot.value.referenced) {
        slot.value.referenced = false;
        this.hand++;
        continue;
      }
      this.delete(slot.key);
    }
  }

  /** Drops dead slots from the ring once they are a large share of it. */
  private compactRing(): void {
    if (this.dead < 64 || this.dead * 2 < this.ring.length) return;
    let w = 0;
    let hand = 0;
    for (let r = 0; r < this.ring.length; r++) {
      const slot = this.ring[r]!;
      if (r === this.hand) hand = w;
      if (slot.live) this.ring[w++] = slot;
    }
    this.ring.length = w;
    this.hand = hand;
    this.dead = 0;
  }
}
