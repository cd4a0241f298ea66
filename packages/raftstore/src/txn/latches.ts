/**
 * Per-key latches of a store. Raft orders the commands of one region, but every region of a
 * store shares the store's engine and regions apply concurrently, and a transactional command
 * reads state and then writes what it read into being. The store therefore holds the latches of
 * a command's keys from before the command reads until its writes are applied; commands on
 * disjoint keys (almost always) run in parallel. (Splits and merges also move keys between
 * regions, so two regions may briefly apply commands on the same key.)
 *
 * Keys hash (FNV-1a) onto `slots` stripes (default 2048). A command takes its distinct slots one
 * at a time in ascending order and releases them all at once, so no cycle of waiters can form
 * (deadlock-free); each slot serves waiters in arrival order (FIFO, no starvation).
 */

interface Waiter {
  slots: number[];
  /** Number of slots held so far (a prefix of `slots`). */
  held: number;
  resolve: (release: () => void) => void;
}

export const DEFAULT_LATCH_SLOTS = 2048;

export function latchHash(key: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export class Latches {
  /** Per slot: the holder first, then waiters in arrival order. */
  private readonly queues: (Waiter[] | undefined)[];

  constructor(readonly slots: number = DEFAULT_LATCH_SLOTS) {
    if (!Number.isSafeInteger(slots) || slots < 1)
      throw new RangeError(`latch slots must be >= 1; got ${slots}`);
    this.queues = new Array(slots);
  }

  /** The distinct slots of `keys`, ascending. */
  slotsOf(keys: readonly Uint8Array[]): number[] {
    const set = new Set<number>();
    for (const k of keys) set.add(latchHash(k) % this.slots);
    return [...set].sort((a, b) => a - b);
  }

  /**
   * Resolves once every key's latch is held, with the function that releases them (idempotent).
   */
  acquire(keys: readonly Uint8Array[]): Promise<() => void> {
    return new Promise((resolve) => {
      this.advance({ slots: this.slotsOf(keys), held: 0, resolve });
    });
  }

  /** Slots with a holder (for tests and stats). */
  busySlots(): number {
    let n = 0;
    for (const q of this.queues) if (q !== undefined && q.length > 0) n++;
    return n;
  }

  /** Takes slots in order until one is busy (the waiter is queued there) or all are held. */
  private advance(w: Waiter): void {
    while (w.held < w.slots.length) {
      const s = w.slots[w.held]!;
      let q = this.queues[s];
      if (q === undefined) {
        q = [];
        this.queues[s] = q;
      }
      q.push(w);
      if (q[0] !== w) return; // waits; release() of the holder continues it
      w.held++;
    }
    let released = false;
    w.resolve(() => {
      if (released) return;
      released = true;
      this.release(w);
    });
  }

  private release(w: Waiter): void {
    const woken: Waiter[] = [];
    for (let i = w.slots.length - 1; i >= 0; i--) {
      const s = w.slots[i]!;
      const q = this.queues[s]!;
      q.shift(); // w is the holder
      if (q.length === 0) {
        this.queues[s] = undefined;
      } else {
        const next = q[0]!;
        next.held++;
        woken.push(next);
      }
    }
    for (const next of woken) this.advance(next);
  }
}
