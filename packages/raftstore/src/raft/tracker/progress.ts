import { invariant } from '../errors.js';
import { Inflights } from './inflights.js';

/**
 * How the leader talks to a follower: Probe sends one append at a time until it learns where the
 * logs match; Replicate streams appends optimistically within the inflight window; Snapshot
 * waits for a snapshot to be installed.
 */
export const ProgressState = {
  Probe: 'StateProbe',
  Replicate: 'StateReplicate',
  Snapshot: 'StateSnapshot',
} as const;
export type ProgressState = (typeof ProgressState)[keyof typeof ProgressState];

/** The leader's view of one follower's log. */
export class Progress {
  /** Highest index known to match the leader's log. */
  match: bigint;
  /** Next index to send. */
  next: bigint;
  state: ProgressState = ProgressState.Probe;
  /** Index of the snapshot in flight (Snapshot state), else 0. */
  pendingSnapshot = 0n;
  /** Heard from since the last CheckQuorum round. */
  recentActive = false;
  /** Probe state: an append is outstanding, wait for its answer or a heartbeat response. */
  msgAppFlowPaused = false;
  readonly inflights: Inflights;
  isLearner: boolean;

  constructor(fields: {
    match?: bigint;
    next: bigint;
    isLearner?: boolean;
    recentActive?: boolean;
    maxInflight: number;
    maxInflightBytes?: number;
  }) {
    this.match = fields.match ?? 0n;
    this.next = fields.next;
    this.isLearner = fields.isLearner ?? false;
    this.recentActive = fields.recentActive ?? false;
    this.inflights = new Inflights(fields.maxInflight, fields.maxInflightBytes ?? 0);
  }

  /** A copy with an empty inflight window (used when a configuration is rebuilt). */
  clone(): Progress {
    const p = new Progress({
      match: this.match,
      next: this.next,
      isLearner: this.isLearner,
      recentActive: this.recentActive,
      maxInflight: this.inflights.capacity,
      maxInflightBytes: this.inflights.maxBytes,
    });
    p.state = this.state;
    p.pendingSnapshot = this.pendingSnapshot;
    p.msgAppFlowPaused = this.msgAppFlowPaused;
    return p;
  }

  private resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0n;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === ProgressState.Snapshot) {
      // The snapshot may have been applied: probing right after it avoids re-sending it.
      const pending = this.pendingSnapshot;
      this.resetState(ProgressState.Probe);
      this.next = max(this.match + 1n, pending + 1n);
    } else {
      this.resetState(ProgressState.Probe);
      this.next = this.match + 1n;
    }
  }

  becomeReplicate(): void {
    this.resetState(ProgressState.Replicate);
    this.next = this.match + 1n;
  }

  becomeSnapshot(snapshotIndex: bigint): void {
    this.resetState(ProgressState.Snapshot);
    this.pendingSnapshot = snapshotIndex;
    this.next = snapshotIndex + 1n;
  }

  /** Records an acknowledgement up to `index`; true if it moved `match` forward. */
  maybeUpdate(index: bigint): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.msgAppFlowPaused = false;
    }
    if (this.next < index + 1n) this.next = index + 1n;
    return updated;
  }

  /**
   * Handles a rejected append for prev index `rejected`; `matchHint` is the highest index that
   * may still match. Returns false if the rejection is stale (answers an older message).
   */
  maybeDecrTo(rejected: bigint, matchHint: bigint): boolean {
    if (this.state === ProgressState.Replicate) {
      if (rejected <= this.match) return false;
      this.next = this.match + 1n;
      return true;
    }
    // Probing sends one append at a time, so only an answer to the latest probe counts.
    if (this.next - 1n !== rejected) return false;
    this.next = max(min(rejected, matchHint + 1n), this.match + 1n);
    if (this.next < 1n) this.next = 1n;
    this.msgAppFlowPaused = false;
    return true;
  }

  /** Accounts for an append carrying `count` entries, the last at `lastIndex`, `bytes` in size. */
  sentEntries(count: number, lastIndex: bigint, bytes: number): void {
    switch (this.state) {
      case ProgressState.Replicate:
        if (count > 0) {
          this.next = lastIndex + 1n;
          this.inflights.add(lastIndex, bytes);
        }
        break;
      case ProgressState.Probe:
        this.msgAppFlowPaused = true;
        break;
      default:
        invariant(false, () => `sending append in unhandled progress state ${this.state}`);
    }
  }

  /** True if the leader should not send appends now. */
  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe:
        return this.msgAppFlowPaused;
      case ProgressState.Replicate:
        return this.inflights.full();
      default:
        return true;
    }
  }

  toString(): string {
    let s = `${this.state} match=${this.match} next=${this.next}`;
    if (this.isLearner) s += ' learner';
    if (this.isPaused()) s += ' paused';
    if (this.pendingSnapshot > 0n) s += ` pendingSnap=${this.pendingSnapshot}`;
    if (!this.recentActive) s += ' inactive';
    if (this.inflights.size > 0) s += ` inflight=${this.inflights.size}`;
    if (this.inflights.full()) s += '[full]';
    return s;
  }
}

function max(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}
