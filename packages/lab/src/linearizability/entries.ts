/**
 * The event list the Wing–Gong search walks: every operation contributes a call event and a return
 * event, sorted by time, threaded on a doubly linked list so an operation can be lifted out (both
 * its events) when it is linearized and put back exactly where it was when the search backtracks.
 *
 * Node 0 is a sentinel head; `-1` means "no node". Arrays rather than objects keep the hot loop
 * free of allocation and pointer chasing.
 */

/** The sentinel head node; its `next` is the first event still in the list. */
export const HEAD = 0;
const NONE = -1;

/** The event list of one partition, with O(1) lift and unlift of an operation's two events. */
export class EntryList {
  /** Operation (local id) of each node; -1 for the head. */
  readonly op: Int32Array;
  /** 1 for a call event, 0 for a return event (and the head). */
  readonly isCall: Uint8Array;
  readonly next: Int32Array;
  readonly prev: Int32Array;
  /** Node of each operation's call event and return event. */
  readonly callNode: Int32Array;
  readonly returnNode: Int32Array;

  /**
   * Builds the list for operations with the given call and return times (local ids are positions
   * in these arrays). At equal times calls sort before returns: an operation that returns at t and
   * one called at t are concurrent, so neither is forced before the other. Pending operations
   * (return `Infinity`) thus have their return events last, after every completed one.
   */
  constructor(calls: readonly number[], returns: readonly number[]) {
    const n = calls.length;
    const events = new Array<number>(2 * n);
    for (let i = 0; i < 2 * n; i++) events[i] = i;
    // Event e < n is the call of operation e; e >= n is the return of operation e - n.
    const time = (e: number) => (e < n ? calls[e]! : returns[e - n]!);
    events.sort((a, b) => {
      const ta = time(a);
      const tb = time(b);
      if (ta !== tb) return ta < tb ? -1 : 1;
      const ka = a < n ? 0 : 1;
      const kb = b < n ? 0 : 1;
      if (ka !== kb) return ka - kb;
      return a - b;
    });

    const size = 2 * n + 1;
    this.op = new Int32Array(size);
    this.isCall = new Uint8Array(size);
    this.next = new Int32Array(size);
    this.prev = new Int32Array(size);
    this.callNode = new Int32Array(n);
    this.returnNode = new Int32Array(n);
    this.op[HEAD] = NONE;
    for (let i = 0; i < events.length; i++) {
      const node = i + 1;
      const e = events[i]!;
      if (e < n) {
        this.op[node] = e;
        this.isCall[node] = 1;
        this.callNode[e] = node;
      } else {
        this.op[node] = e - n;
        this.returnNode[e - n] = node;
      }
    }
    for (let node = 0; node < size; node++) {
      this.prev[node] = node - 1;
      this.next[node] = node + 1 < size ? node + 1 : NONE;
    }
  }

  /** Removes operation `op`'s two events from the list. */
  lift(op: number): void {
    this.unlink(this.callNode[op]!);
    this.unlink(this.returnNode[op]!);
  }

  /**
   * Undoes `lift(op)`. Only valid in strict LIFO order with respect to other lifts, which the
   * search's stack guarantees: the removed nodes still point at their old neighbours.
   */
  unlift(op: number): void {
    this.relink(this.returnNode[op]!);
    this.relink(this.callNode[op]!);
  }

  private unlink(node: number): void {
    const p = this.prev[node]!;
    const nx = this.next[node]!;
    this.next[p] = nx;
    if (nx !== NONE) this.prev[nx] = p;
  }

  private relink(node: number): void {
    const p = this.prev[node]!;
    const nx = this.next[node]!;
    this.next[p] = node;
    if (nx !== NONE) this.prev[nx] = node;
  }
}
