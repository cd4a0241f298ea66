import { CoordinatorError } from './errors.js';
import type { DurableState } from './state/durable.js';

// ID and TSO allocation. Both persist a fence (an upper bound of everything handed out) BEFORE
// handing out anything beyond the previous fence, so after any crash the allocator resumes above
// the fence and never repeats a value. Allocations are serialized per allocator.

export const TSO_LOGICAL_BITS = 18n;
const LOGICAL_MASK = (1n << TSO_LOGICAL_BITS) - 1n;
/** The largest count one request may ask for. */
export const MAX_ALLOC_COUNT = 1 << 16;

export function composeTs(physicalMs: bigint, logical: bigint): bigint {
  return (physicalMs << TSO_LOGICAL_BITS) | (logical & LOGICAL_MASK);
}

export function splitTs(ts: bigint): { physicalMs: bigint; logical: bigint } {
  return { physicalMs: ts >> TSO_LOGICAL_BITS, logical: ts & LOGICAL_MASK };
}

export interface AllocatorOptions {
  /** Ids persisted ahead per fence write (default 1000). */
  idWindow?: number;
  /** Milliseconds of timestamps persisted ahead per fence write (default 3000). */
  tsoWindowMs?: number;
  /** Wall clock in ms (tests). */
  now?: () => number;
}

class Lock {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.tail.then(fn);
    this.tail = p.catch(() => {});
    return p;
  }
}

function checkCount(count: number, what: string): number {
  if (count === 0) return 1;
  if (!Number.isSafeInteger(count) || count < 0 || count > MAX_ALLOC_COUNT) {
    throw new CoordinatorError(
      'InvalidArgument',
      `${what} count must be 0..${MAX_ALLOC_COUNT}, got ${count}`,
    );
  }
  return count;
}

export class Allocators {
  private readonly idLock = new Lock();
  private readonly tsoLock = new Lock();
  private readonly idWindow: bigint;
  private readonly tsoWindowMs: bigint;
  private readonly now: () => number;
  /** The next id to hand out. */
  private nextId: bigint;
  /** The last timestamp handed out (or the fence recovered at open). */
  private lastTs: bigint;
  /** Fence writes (for metrics). */
  idFenceWrites = 0;
  tsoFenceWrites = 0;

  constructor(
    private readonly state: DurableState,
    opts: AllocatorOptions = {},
  ) {
    this.idWindow = BigInt(opts.idWindow ?? 1000);
    this.tsoWindowMs = BigInt(opts.tsoWindowMs ?? 3000);
    if (this.idWindow < 1n || this.tsoWindowMs < 1n) throw new Error('allocator windows must be positive');
    this.now = opts.now ?? Date.now;
    const c = state.catalog;
    // Everything <= the fence may have been handed out before the restart.
    this.nextId = c.idFence + 1n;
    this.lastTs = c.tsoFence;
  }

  /** `count` consecutive ids (0 = 1); resolves with the first. */
  allocId(count: number): Promise<{ first: bigint; count: number }> {
    const n = checkCount(count, 'AllocId');
    return this.idLock.run(async () => {
      const c = this.state.catalog;
      // Ids the catalog already uses (e.g. from the topology file) are never handed out.
      const floor = c.maxKnownId() + 1n;
      const first = this.nextId > floor ? this.nextId : floor;
      const last = first + BigInt(n) - 1n;
      if (last > c.idFence) {
        await this.state.append([{ type: 'idFence', fence: last + this.idWindow }]);
        this.idFenceWrites++;
      }
      this.nextId = last + 1n;
      return { first, count: n };
    });
  }

  /** `count` consecutive timestamps (0 = 1); resolves with the first. */
  tso(count: number): Promise<{ first: bigint; count: number }> {
    const n = checkCount(count, 'Tso');
    return this.tsoLock.run(async () => {
      const physical = BigInt(Math.floor(this.now()));
      const fromClock = composeTs(physical, 0n);
      const first = fromClock > this.lastTs ? fromClock : this.lastTs + 1n;
      const last = first + BigInt(n) - 1n;
      if (last > this.state.catalog.tsoFence) {
        const lastPhysical = splitTs(last).physicalMs;
        const base = lastPhysical > physical ? lastPhysical : physical;
        await this.state.append([{ type: 'tsoFence', fence: composeTs(base + this.tsoWindowMs, 0n) }]);
        this.tsoFenceWrites++;
      }
      this.lastTs = last;
      return { first, count: n };
    });
  }

  snapshot(): { nextId: bigint; idFence: bigint; lastTs: bigint; tsoFence: bigint } {
    return {
      nextId: this.nextId,
      idFence: this.state.catalog.idFence,
      lastTs: this.lastTs,
      tsoFence: this.state.catalog.tsoFence,
    };
  }
}
