// What changed in the cluster, as the coordinator learned it: an in-memory, bounded log of events
// (leader changes, stores going up/down or joining, regions added/changed/removed,
// operations added and ended) for the console.
// Not durable: a restart starts a new log (seq from 1 again; `startedAtMs` tells the logs apart).

export type ClusterEventKind =
  | 'leader-changed'
  | 'store-up'
  | 'store-down'
  | 'store-joined'
  | 'region-added'
  | 'region-changed'
  | 'region-removed'
  | 'operation-added'
  | 'operation-ended';

export const CLUSTER_EVENT_KINDS: readonly ClusterEventKind[] = [
  'leader-changed',
  'store-up',
  'store-down',
  'store-joined',
  'region-added',
  'region-changed',
  'region-removed',
  'operation-added',
  'operation-ended',
];

/** JSON-safe details (ids as strings). */
export type ClusterEventDetails = Record<string, string | number | boolean | null | string[] | object>;

export interface ClusterEvent {
  /** 1, 2, 3, ... in the order the coordinator saw the changes. */
  seq: number;
  /** Unix ms. */
  time: number;
  kind: ClusterEventKind;
  /** The store or region the event is about (as a string), when there is one. */
  storeId?: string;
  regionId?: string;
  details: ClusterEventDetails;
}

export interface ClusterEventLogOptions {
  /** Events kept (default 10 000); older ones are dropped. */
  capacity?: number;
  now?: () => number;
}

type Listener = (e: ClusterEvent) => void;

export class ClusterEventLog {
  readonly capacity: number;
  readonly startedAtMs: number;
  private readonly now: () => number;
  private readonly ring: ClusterEvent[] = [];
  /** Index in `ring` of the oldest event once the ring is full. */
  private head = 0;
  private nextSeq = 1;
  private readonly listeners = new Set<Listener>();

  constructor(opts: ClusterEventLogOptions = {}) {
    this.capacity = opts.capacity ?? 10_000;
    if (!Number.isSafeInteger(this.capacity) || this.capacity <= 0)
      throw new RangeError('capacity must be a positive integer');
    this.now = opts.now ?? Date.now;
    this.startedAtMs = this.now();
  }

  /** The seq of the newest event (0 when none yet). */
  get lastSeq(): number {
    return this.nextSeq - 1;
  }

  /** The seq of the oldest event still kept (lastSeq + 1 when empty). */
  get firstSeq(): number {
    return this.nextSeq - this.ring.length;
  }

  get size(): number {
    return this.ring.length;
  }

  append(
    kind: ClusterEventKind,
    details: ClusterEventDetails,
    about: { storeId?: bigint; regionId?: bigint } = {},
  ): ClusterEvent {
    const event: ClusterEvent = {
      seq: this.nextSeq++,
      time: this.now(),
      kind,
      ...(about.storeId !== undefined ? { storeId: about.storeId.toString() } : {}),
      ...(about.regionId !== undefined ? { regionId: about.regionId.toString() } : {}),
      details,
    };
    if (this.ring.length < this.capacity) {
      this.ring.push(event);
    } else {
      this.ring[this.head] = event;
      this.head = (this.head + 1) % this.capacity;
    }
    for (const l of this.listeners) {
      try {
        l(event);
      } catch {
        // a listener's problem is its own
      }
    }
    return event;
  }

  /** Events with seq > afterSeq, oldest first, at most `limit` (default all). */
  since(afterSeq = 0, limit = Number.POSITIVE_INFINITY): ClusterEvent[] {
    const first = this.firstSeq;
    const skip = Math.max(0, afterSeq + 1 - first);
    const out: ClusterEvent[] = [];
    for (let i = skip; i < this.ring.length && out.length < limit; i++) {
      out.push(this.ring[(this.head + i) % this.ring.length]!);
    }
    return out;
  }

  /** The newest `limit` events, oldest first. */
  latest(limit: number): ClusterEvent[] {
    return this.since(Math.max(0, this.lastSeq - limit));
  }

  /** Calls `listener` for every new event until the returned function is called. */
  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  get subscribers(): number {
    return this.listeners.size;
  }

  /**
   * The events after `afterSeq` that are still kept, then every new one as it happens, until
   * `signal` aborts. Events arriving while the consumer is slow are queued (no gaps, no repeats).
   */
  async *follow(afterSeq: number, signal?: AbortSignal): AsyncGenerator<ClusterEvent, void, undefined> {
    const queue: ClusterEvent[] = [];
    let wake: (() => void) | undefined;
    const unsubscribe = this.subscribe((e) => {
      queue.push(e);
      wake?.();
    });
    const onAbort = () => wake?.();
    signal?.addEventListener('abort', onAbort);
    try {
      let last = afterSeq;
      for (const e of this.since(afterSeq)) {
        if (signal?.aborted) return;
        last = e.seq;
        yield e;
      }
      while (!signal?.aborted) {
        const e = queue.shift();
        if (e === undefined) {
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          wake = undefined;
          continue;
        }
        if (e.seq <= last) continue;
        last = e.seq;
        yield e;
      }
    } finally {
      unsubscribe();
      signal?.removeEventListener('abort', onAbort);
    }
  }
}
