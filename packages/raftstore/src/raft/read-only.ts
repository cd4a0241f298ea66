import type { Message } from '@nokv/proto';

/**
 * How a leader serves ReadIndex. Safe confirms leadership with a heartbeat round per request
 * batch. LeaseBased answers at once, trusting that no other leader can exist while its lease
 * (one election timeout since it last heard from a quorum) runs: this assumes the nodes' clocks
 * tick at about the same rate — bounded drift, no long pauses — and needs CheckQuorum.
 */
export const ReadOnlyOption = { Safe: 'Safe', LeaseBased: 'LeaseBased' } as const;
export type ReadOnlyOption = (typeof ReadOnlyOption)[keyof typeof ReadOnlyOption];

/** A read request the leader is confirming: the commit index it must wait for, and who agreed. */
export interface ReadIndexStatus {
  request: Message;
  index: bigint;
  acks: Map<bigint, boolean>;
}

/** Key of a request context: byte strings compared by content. */
function contextKey(ctx: Uint8Array): string {
  return Buffer.from(ctx.buffer, ctx.byteOffset, ctx.byteLength).toString('latin1');
}

/** Pending ReadIndex requests on a leader, in arrival order. */
export class ReadOnly {
  private readonly pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];

  constructor(readonly option: ReadOnlyOption) {}

  /** Registers a request to be answered with commit index `index` once leadership is confirmed. */
  addRequest(index: bigint, request: Message): void {
    const key = contextKey(request.entries[0]!.data);
    if (this.pending.has(key)) return;
    this.pending.set(key, { request, index, acks: new Map() });
    this.queue.push(key);
  }

  /** Records that `id` acknowledged the heartbeat carrying `ctx`; returns the acks so far. */
  recvAck(id: bigint, ctx: Uint8Array): Map<bigint, boolean> | undefined {
    const rs = this.pending.get(contextKey(ctx));
    if (!rs) return undefined;
    rs.acks.set(id, true);
    return rs.acks;
  }

  /**
   * Releases the request with context `ctx` and every request queued before it: a quorum that
   * acknowledged a later heartbeat also confirms leadership for the earlier ones.
   */
  advance(ctx: Uint8Array): ReadIndexStatus[] {
    const key = contextKey(ctx);
    const at = this.queue.indexOf(key);
    if (at < 0) return [];
    const released = this.queue.slice(0, at + 1);
    this.queue = this.queue.slice(at + 1);
    const out: ReadIndexStatus[] = [];
    for (const k of released) {
      out.push(this.pending.get(k)!);
      this.pending.delete(k);
    }
    return out;
  }

  /** Context of the newest pending request, carried by heartbeats so acks confirm it. */
  lastPendingRequestCtx(): Uint8Array | undefined {
    const key = this.queue[this.queue.length - 1];
    return key === undefined ? undefined : this.pending.get(key)!.request.entries[0]!.data;
  }

  get size(): number {
    return this.queue.length;
  }
}
