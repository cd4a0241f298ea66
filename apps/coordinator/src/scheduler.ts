import type { ClusterView } from './view.js';

// Leader balancing. On a heartbeat from store S: if S leads noticeably more regions than the
// average of the schedulable (up) stores, answer with transfer-leader hints for regions S leads,
// each to the peer on the store with the fewest leaders. One hint per region per cooldown; hints
// still in flight count as done when the counts are computed, so repeated heartbeats do not pile
// up transfers before the region heartbeats report the new leaders.

export interface TransferLeaderOp {
  type: 'transferLeader';
  regionId: bigint;
  fromPeerId: bigint;
  toPeerId: bigint;
  fromStoreId: bigint;
  toStoreId: bigint;
  issuedAtMs: number;
  /** Requested by an operator (tRPC `admin.transferLeader`), not by the balancer. */
  manual?: true;
}

/** An operator's transfer-leader request waiting for the next heartbeat of the leader's store. */
export interface ManualTransfer {
  regionId: bigint;
  toPeerId: bigint;
  toStoreId: bigint;
  requestedAtMs: number;
}

export interface SchedulerOptions {
  /** A region gets no new hint for this long after one (default 30 000 ms). */
  cooldownMs?: number;
  /** Hints only when the source leads at least this many more than the target (default 2). */
  minLeaderDiff?: number;
  /** Hints per store heartbeat (default 1). */
  maxOpsPerHeartbeat?: number;
  /** Turn balancing off. */
  disabled?: boolean;
}

export class LeaderBalancer {
  readonly cooldownMs: number;
  readonly minLeaderDiff: number;
  readonly maxOpsPerHeartbeat: number;
  readonly disabled: boolean;
  private readonly recent = new Map<bigint, TransferLeaderOp>();
  private readonly manual = new Map<bigint, ManualTransfer>();
  issued = 0;

  constructor(opts: SchedulerOptions = {}) {
    this.cooldownMs = opts.cooldownMs ?? 30_000;
    this.minLeaderDiff = opts.minLeaderDiff ?? 2;
    this.maxOpsPerHeartbeat = opts.maxOpsPerHeartbeat ?? 1;
    this.disabled = opts.disabled ?? false;
  }

  /** Leader counts per schedulable store, counting in-flight hints as done. */
  leaderCounts(view: ClusterView): Map<bigint, number> {
    const counts = new Map<bigint, number>();
    for (const id of view.catalog.stores.keys()) if (view.isSchedulable(id)) counts.set(id, 0);
    const now = view.now();
    for (const r of view.catalog.regions.values()) {
      let leader = view.leaderOf(r.id);
      const op = this.recent.get(r.id);
      if (op && now - op.issuedAtMs < this.cooldownMs && leader?.peerId === op.fromPeerId) {
        leader = r.peers.find((p) => p.peerId === op.toPeerId) ?? leader;
      }
      if (leader && counts.has(leader.storeId)) counts.set(leader.storeId, counts.get(leader.storeId)! + 1);
    }
    return counts;
  }

  /**
   * Queues an operator's transfer-leader request: the next heartbeat of the store that then leads
   * the region carries it (also when balancing is disabled). Replaces an earlier request for the
   * region; dropped once the target leads, or after twice the cooldown undelivered.
   */
  requestTransfer(t: ManualTransfer): void {
    this.manual.set(t.regionId, t);
  }

  /** Requests not delivered yet. */
  pendingTransfers(): ManualTransfer[] {
    return [...this.manual.values()];
  }

  private manualOps(view: ClusterView, storeId: bigint, now: number): TransferLeaderOp[] {
    const ops: TransferLeaderOp[] = [];
    for (const [regionId, t] of this.manual) {
      const region = view.catalog.regions.get(regionId);
      const leader = view.leaderOf(regionId);
      const target = region?.peers.find((p) => p.peerId === t.toPeerId);
      if (
        !region ||
        !target ||
        leader?.peerId === t.toPeerId ||
        now - t.requestedAtMs >= 2 * this.cooldownMs
      ) {
        this.manual.delete(regionId);
        continue;
      }
      if (!leader || leader.storeId !== storeId) continue;
      const op: TransferLeaderOp = {
        type: 'transferLeader',
        regionId,
        fromPeerId: leader.peerId,
        toPeerId: target.peerId,
        fromStoreId: storeId,
        toStoreId: target.storeId,
        issuedAtMs: now,
        manual: true,
      };
      this.manual.delete(regionId);
      this.recent.set(regionId, op);
      this.issued++;
      ops.push(op);
    }
    return ops;
  }

  onStoreHeartbeat(view: ClusterView, storeId: bigint): TransferLeaderOp[] {
    const now = view.now();
    for (const [id, op] of this.recent) if (now - op.issuedAtMs >= this.cooldownMs) this.recent.delete(id);
    const manual = this.manualOps(view, storeId, now);
    if (this.disabled) return manual;
    return [...manual, ...this.balance(view, storeId, now)];
  }

  private balance(view: ClusterView, storeId: bigint, now: number): TransferLeaderOp[] {
    const counts = this.leaderCounts(view);
    if (counts.size < 2 || !counts.has(storeId)) return [];
    const ops: TransferLeaderOp[] = [];
    const regions = [...view.catalog.regions.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
    for (const r of regions) {
      if (ops.length >= this.maxOpsPerHeartbeat) break;
      const src = counts.get(storeId)!;
      let total = 0;
      for (const c of counts.values()) total += c;
      if (src <= total / counts.size) break;
      if (this.recent.has(r.id) || this.manual.has(r.id)) continue;
      const leader = view.leaderOf(r.id);
      if (!leader || leader.storeId !== storeId) continue;
      const live = view.regionLiveOf(r.id);
      const unhealthy = new Set(
        [...(live?.pendingPeers ?? []), ...(live?.downPeers ?? [])].map((p) => p.peerId),
      );
      let best: { peerId: bigint; storeId: bigint; count: number } | undefined;
      for (const p of r.peers) {
        if (p.learner || p.storeId === storeId || unhealthy.has(p.peerId)) continue;
        const c = counts.get(p.storeId);
        if (c === undefined || src - c < this.minLeaderDiff) continue;
        if (!best || c < best.count || (c === best.count && p.storeId < best.storeId)) {
          best = { peerId: p.peerId, storeId: p.storeId, count: c };
        }
      }
      if (!best) continue;
      const op: TransferLeaderOp = {
        type: 'transferLeader',
        regionId: r.id,
        fromPeerId: leader.peerId,
        toPeerId: best.peerId,
        fromStoreId: storeId,
        toStoreId: best.storeId,
        issuedAtMs: now,
      };
      this.recent.set(r.id, op);
      counts.set(storeId, src - 1);
      counts.set(best.storeId, best.count + 1);
      ops.push(op);
      this.issued++;
    }
    return ops;
  }

  /** Hints still cooling down, for the JSON view. */
  recentOperations(now: number): {
    type: 'transferLeader';
    regionId: string;
    fromPeerId: string;
    toPeerId: string;
    fromStoreId: string;
    toStoreId: string;
    ageMs: number;
    manual: boolean;
  }[] {
    return [...this.recent.values()]
      .filter((op) => now - op.issuedAtMs < this.cooldownMs)
      .map((op) => ({
        type: op.type,
        regionId: op.regionId.toString(),
        fromPeerId: op.fromPeerId.toString(),
        toPeerId: op.toPeerId.toString(),
        fromStoreId: op.fromStoreId.toString(),
        toStoreId: op.toStoreId.toString(),
        ageMs: now - op.issuedAtMs,
        manual: op.manual === true,
      }));
  }
}
