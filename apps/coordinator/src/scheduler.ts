import type { RegionMeta } from '@nokv/proto';
import type { Operation, OperationSpec, OperatorQueue } from './operators.js';
import type { ClusterView } from './view.js';

// The coordinator's scheduler: on every tick it looks at the cluster view and adds operations to
// the operator queue (source `scheduler`). Three rules, in priority order:
//
// 1. replica-replace: a store silent for longer than `replicaReplaceAfterMs` (or set offline or
//    tombstone by an operator) loses its replicas — for each region with a replica there, a
//    replace-replica operation adds a peer on an up store without one, then removes the old peer.
//    Regions without a live leader wait (no quorum: nothing can change their membership).
// 2. region-balance: when the up stores' replica counts differ by more than
//    `regionBalanceThreshold`, one replica moves from the most loaded store to the least loaded
//    one (a replace-replica with both stores given). Only while no repair is due or running.
// 3. leader-balance: when the store leading most regions leads at least `minLeaderDiff` more than
//    the one leading fewest, a transfer-leader operation moves one leadership between them.
//
// Rate limits: each rule has a cap of its operations unfinished at once, one scheduler operation
// per region at a time, and a region gets no new balance operation for `cooldownMs` after one.
// Ties break by the lower id everywhere, so a tick is deterministic for a given view and clock.

export const SCHEDULER_RULES = ['replica-replace', 'region-balance', 'leader-balance'] as const;
export type SchedulerRule = (typeof SCHEDULER_RULES)[number];

export interface SchedulerOptions {
  /** No automatic operations (operator-added ones still run). */
  disabled?: boolean;
  /** Milliseconds between ticks (default 1000; 0 = only `tick()`). */
  intervalMs?: number;
  /** A store silent this long loses its replicas to other stores (default 30 min). */
  replicaReplaceAfterMs?: number;
  /** Replica counts may differ by this much before a replica moves (default 2). */
  regionBalanceThreshold?: number;
  /** Leader counts may differ by less than this before a leadership moves (default 2). */
  minLeaderDiff?: number;
  /** A region gets no new balance operation for this long after one (default 30 000 ms). */
  cooldownMs?: number;
  /** Unfinished replica-replace operations at most (default 4). */
  maxReplaceOps?: number;
  /** Unfinished region-balance moves at most (default 1). */
  maxBalanceOps?: number;
  /** Unfinished scheduler transfer-leader operations at most (default 4). */
  maxLeaderOps?: number;
}

export interface SchedulerDecision {
  atMs: number;
  rule: SchedulerRule;
  regionId: string;
  operationId: number;
  reason: string;
}

export interface SchedulerStatusJson {
  enabled: boolean;
  paused: SchedulerRule[];
  intervalMs: number;
  ticks: number;
  lastTickAtMs: number | null;
  created: Record<SchedulerRule, number>;
  rules: {
    'replica-replace': {
      afterMs: number;
      maxOps: number;
      /** Stores that are not up (or set offline/tombstone), and when their replicas are due to move. */
      stores: { storeId: string; state: string; silentForMs: number; replaceInMs: number }[];
      /** Regions with a replica to replace that could not get an operation yet, and why (first 50). */
      waiting: { regionId: string; reason: string }[];
    };
    'region-balance': {
      threshold: number;
      maxOps: number;
      /** Replicas per up store (unfinished moves counted as done). */
      counts: Record<string, number>;
      waiting: string | null;
    };
    'leader-balance': {
      minDiff: number;
      maxOps: number;
      cooldownMs: number;
      /** Leaders per up store (unfinished transfers counted as done). */
      counts: Record<string, number>;
    };
  };
  /** The newest decisions first (last 50). */
  decisions: SchedulerDecision[];
  /** The last time a rule could not add its operation (e.g. the queue was full). */
  lastError: { atMs: number; rule: SchedulerRule; message: string } | null;
}

function byId<T extends { id: bigint }>(a: T, b: T): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export class Scheduler {
  readonly disabled: boolean;
  readonly intervalMs: number;
  readonly replicaReplaceAfterMs: number;
  readonly regionBalanceThreshold: number;
  readonly minLeaderDiff: number;
  readonly cooldownMs: number;
  readonly maxReplaceOps: number;
  readonly maxBalanceOps: number;
  readonly maxLeaderOps: number;
  private readonly paused = new Set<SchedulerRule>();
  /** Region → when the scheduler last created a balance operation for it. */
  private readonly lastBalanced = new Map<bigint, number>();
  private readonly decisions: SchedulerDecision[] = [];
  readonly created: Record<SchedulerRule, number> = {
    'replica-replace': 0,
    'region-balance': 0,
    'leader-balance': 0,
  };
  private ticks = 0;
  private lastTickAtMs: number | undefined;
  private replaceWaiting: { regionId: string; reason: string }[] = [];
  private lastError: { atMs: number; rule: SchedulerRule; message: string } | undefined;
  private balanceWaiting: string | null = null;

  constructor(
    private readonly view: ClusterView,
    private readonly queue: OperatorQueue,
    opts: SchedulerOptions = {},
  ) {
    this.disabled = opts.disabled ?? false;
    this.intervalMs = opts.intervalMs ?? 1000;
    this.replicaReplaceAfterMs = opts.replicaReplaceAfterMs ?? 30 * 60_000;
    this.regionBalanceThreshold = opts.regionBalanceThreshold ?? 2;
    this.minLeaderDiff = opts.minLeaderDiff ?? 2;
    this.cooldownMs = opts.cooldownMs ?? 30_000;
    this.maxReplaceOps = opts.maxReplaceOps ?? 4;
    this.maxBalanceOps = opts.maxBalanceOps ?? 1;
    this.maxLeaderOps = opts.maxLeaderOps ?? 4;
  }

  pause(rule?: SchedulerRule): void {
    for (const r of rule ? [rule] : SCHEDULER_RULES) this.paused.add(r);
  }

  resume(rule?: SchedulerRule): void {
    for (const r of rule ? [rule] : SCHEDULER_RULES) this.paused.delete(r);
  }

  /** Unfinished operations a rule created (the reason names the rule, also after a restart). */
  private active(rule: SchedulerRule): Operation[] {
    return this.queue.active().filter((op) => op.source === 'scheduler' && op.reason.startsWith(`${rule}:`));
  }

  /** One scheduling pass; returns the operations it created. Never throws (see `lastError`). */
  tick(): Operation[] {
    const now = this.view.now();
    this.ticks++;
    this.lastTickAtMs = now;
    for (const [id, at] of this.lastBalanced) if (now - at >= this.cooldownMs) this.lastBalanced.delete(id);
    if (this.disabled) return [];
    const created: Operation[] = [];
    const guarded = (rule: SchedulerRule, fn: () => void) => {
      if (this.paused.has(rule)) return;
      try {
        fn();
      } catch (err) {
        // QueueFull, or the coordinator closing: try again next tick.
        this.lastError = { atMs: now, rule, message: (err as Error).message };
      }
    };
    let repairDue = false;
    guarded('replica-replace', () => {
      const r = this.replicaReplace(now, created);
      repairDue = r.due;
    });
    guarded('region-balance', () => {
      if (repairDue || this.active('replica-replace').length > 0) {
        this.balanceWaiting = 'replicas are being repaired';
      } else {
        this.regionBalance(now, created);
      }
    });
    guarded('leader-balance', () => this.leaderBalance(now, created));
    return created;
  }

  private add(rule: SchedulerRule, spec: OperationSpec, reason: string, now: number): Operation {
    const op = this.queue.add(spec, { source: 'scheduler', reason: `${rule}: ${reason}` });
    this.created[rule]++;
    this.decisions.unshift({
      atMs: now,
      rule,
      regionId: spec.regionId.toString(),
      operationId: op.id,
      reason,
    });
    if (this.decisions.length > 50) this.decisions.length = 50;
    return op;
  }

  /** Why a region cannot be changed now (undefined: it can). */
  private blocked(r: RegionMeta, opts: { allDown?: boolean } = {}): string | undefined {
    if (this.queue.activeFor(r.id)) return 'an operation on the region is unfinished';
    const leader = this.view.leaderOf(r.id);
    if (!leader || !this.view.isAlive(leader.storeId)) return 'no live leader';
    if (opts.allDown) return undefined;
    const live = this.view.regionLiveOf(r.id);
    if ((live?.pendingPeers.length ?? 0) > 0 || (live?.downPeers.length ?? 0) > 0) {
      return 'pending or down peers';
    }
    if (r.peers.some((p) => this.view.storeState(p.storeId) !== 'up'))
      return 'a replica is on a store that is not up';
    return undefined;
  }

  /** The stores whose replicas must move, in id order. */
  private dueStores(): { id: bigint; why: string }[] {
    const out: { id: bigint; why: string }[] = [];
    for (const s of [...this.view.catalog.stores.values()].sort(byId)) {
      const state = this.view.storeState(s.id);
      if (state === 'offline' || state === 'tombstone') {
        out.push({ id: s.id, why: `store ${s.id} is ${state}` });
      } else if (state === 'down') {
        const silent = this.view.silenceMs(s.id);
        if (silent >= this.replicaReplaceAfterMs) {
          out.push({ id: s.id, why: `store ${s.id} silent for ${Math.round(silent / 1000)} s` });
        }
      }
    }
    return out;
  }

  private replicaReplace(now: number, created: Operation[]): { due: boolean } {
    const waiting: { regionId: string; reason: string }[] = [];
    let room = this.maxReplaceOps - this.active('replica-replace').length;
    const due = this.dueStores();
    if (due.length === 0) {
      this.replaceWaiting = [];
      return { due: false };
    }
    const regions = [...this.view.catalog.regions.values()].sort(byId);
    const upStores = [...this.view.catalog.stores.keys()].filter((id) => this.view.storeState(id) === 'up');
    let anyDue = false;
    for (const store of due) {
      for (const r of regions) {
        if (!r.peers.some((p) => p.storeId === store.id)) continue;
        anyDue = true;
        const why = this.blocked(r, { allDown: true });
        if (why) {
          waiting.push({ regionId: r.id.toString(), reason: why });
          continue;
        }
        if (!upStores.some((id) => !r.peers.some((p) => p.storeId === id))) {
          waiting.push({ regionId: r.id.toString(), reason: 'no up store without a replica of the region' });
          continue;
        }
        if (room <= 0) {
          waiting.push({ regionId: r.id.toString(), reason: `${this.maxReplaceOps} replacements running` });
          continue;
        }
        created.push(
          this.add(
            'replica-replace',
            { kind: 'replace-replica', regionId: r.id, fromStoreId: store.id },
            store.why,
            now,
          ),
        );
        room--;
      }
    }
    this.replaceWaiting = waiting.slice(0, 50);
    return { due: anyDue };
  }

  /** Replicas per up store, with unfinished replica moves counted as done. */
  regionCounts(): Map<bigint, number> {
    const counts = new Map<bigint, number>();
    for (const s of [...this.view.catalog.stores.values()].sort(byId)) {
      if (this.view.isSchedulable(s.id)) counts.set(s.id, 0);
    }
    for (const r of this.view.catalog.regions.values()) {
      for (const p of r.peers) if (counts.has(p.storeId)) counts.set(p.storeId, counts.get(p.storeId)! + 1);
    }
    // Unfinished moves count as done: the old replica leaves the count at once (the catalog drops
    // it only at the last step), the new one joins it until add-peer put it into the catalog.
    for (const op of this.queue.active()) {
      const s = op.spec;
      if (s.kind !== 'replace-replica') continue;
      const to = s.toStoreId ?? op.vars.toStoreId;
      if (counts.has(s.fromStoreId)) counts.set(s.fromStoreId, counts.get(s.fromStoreId)! - 1);
      if (to !== undefined && counts.has(to) && op.stepsDone <= op.steps.indexOf('add-peer')) {
        counts.set(to, counts.get(to)! + 1);
      }
    }
    return counts;
  }

  private regionBalance(now: number, created: Operation[]): void {
    this.balanceWaiting = null;
    if (this.active('region-balance').length >= this.maxBalanceOps) {
      this.balanceWaiting = `${this.maxBalanceOps} moves running`;
      return;
    }
    const counts = this.regionCounts();
    if (counts.size < 2) return;
    const { src, dst } = extremes(counts);
    const diff = counts.get(src)! - counts.get(dst)!;
    if (diff <= this.regionBalanceThreshold) return;
    for (const r of [...this.view.catalog.regions.values()].sort(byId)) {
      if (!r.peers.some((p) => p.storeId === src) || r.peers.some((p) => p.storeId === dst)) continue;
      if (this.lastBalanced.has(r.id) || this.blocked(r)) continue;
      this.lastBalanced.set(r.id, now);
      created.push(
        this.add(
          'region-balance',
          { kind: 'replace-replica', regionId: r.id, fromStoreId: src, toStoreId: dst },
          `store ${src} holds ${counts.get(src)} replicas, store ${dst} ${counts.get(dst)}`,
          now,
        ),
      );
      return;
    }
    this.balanceWaiting = `no region on store ${src} can move to store ${dst} now`;
  }

  /** Leaders per up store, with unfinished transfer-leader operations counted as done. */
  leaderCounts(): Map<bigint, number> {
    const counts = new Map<bigint, number>();
    for (const s of [...this.view.catalog.stores.values()].sort(byId)) {
      if (this.view.isSchedulable(s.id)) counts.set(s.id, 0);
    }
    const moving = new Map<bigint, bigint>();
    for (const op of this.queue.active()) {
      if (op.spec.kind === 'transfer-leader') moving.set(op.spec.regionId, op.spec.toPeerId);
    }
    for (const r of this.view.catalog.regions.values()) {
      let leader = this.view.leaderOf(r.id);
      const to = moving.get(r.id);
      if (to !== undefined) leader = r.peers.find((p) => p.peerId === to) ?? leader;
      if (leader && counts.has(leader.storeId)) counts.set(leader.storeId, counts.get(leader.storeId)! + 1);
    }
    return counts;
  }

  private leaderBalance(now: number, created: Operation[]): void {
    let room = this.maxLeaderOps - this.active('leader-balance').length;
    if (room <= 0) return;
    const counts = this.leaderCounts();
    if (counts.size < 2) return;
    const regions = [...this.view.catalog.regions.values()].sort(byId);
    while (room > 0) {
      const { src } = extremes(counts);
      const srcCount = counts.get(src)!;
      // Targets by fewest leaders, then id.
      const targets = [...counts.entries()]
        .filter(([id, c]) => id !== src && srcCount - c >= this.minLeaderDiff)
        .sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1));
      if (targets.length === 0) break;
      let made: Operation | undefined;
      for (const [dst, dstCount] of targets) {
        for (const r of regions) {
          const leader = this.view.leaderOf(r.id);
          if (leader?.storeId !== src || this.lastBalanced.has(r.id) || this.blocked(r)) continue;
          const to = r.peers.find((p) => p.storeId === dst && !p.learner);
          if (!to) continue;
          this.lastBalanced.set(r.id, now);
          made = this.add(
            'leader-balance',
            { kind: 'transfer-leader', regionId: r.id, toPeerId: to.peerId },
            `store ${src} leads ${srcCount} regions, store ${dst} ${dstCount}`,
            now,
          );
          counts.set(src, srcCount - 1);
          counts.set(dst, dstCount + 1);
          break;
        }
        if (made) break;
      }
      if (!made) break;
      created.push(made);
      room--;
    }
  }

  status(): SchedulerStatusJson {
    const downStores: SchedulerStatusJson['rules']['replica-replace']['stores'] = [];
    for (const s of [...this.view.catalog.stores.values()].sort(byId)) {
      const state = this.view.storeState(s.id) ?? 'down';
      if (state === 'up') continue;
      const silent = this.view.silenceMs(s.id);
      downStores.push({
        storeId: s.id.toString(),
        state,
        silentForMs: silent,
        replaceInMs: state === 'down' ? Math.max(0, this.replicaReplaceAfterMs - silent) : 0,
      });
    }
    const obj = (m: Map<bigint, number>) => Object.fromEntries([...m].map(([k, v]) => [k.toString(), v]));
    return {
      enabled: !this.disabled,
      paused: SCHEDULER_RULES.filter((r) => this.paused.has(r)),
      intervalMs: this.intervalMs,
      ticks: this.ticks,
      lastTickAtMs: this.lastTickAtMs ?? null,
      created: { ...this.created },
      rules: {
        'replica-replace': {
          afterMs: this.replicaReplaceAfterMs,
          maxOps: this.maxReplaceOps,
          stores: downStores,
          waiting: this.replaceWaiting,
        },
        'region-balance': {
          threshold: this.regionBalanceThreshold,
          maxOps: this.maxBalanceOps,
          counts: obj(this.regionCounts()),
          waiting: this.balanceWaiting,
        },
        'leader-balance': {
          minDiff: this.minLeaderDiff,
          maxOps: this.maxLeaderOps,
          cooldownMs: this.cooldownMs,
          counts: obj(this.leaderCounts()),
        },
      },
      decisions: [...this.decisions],
      lastError: this.lastError ?? null,
    };
  }
}

/** The store with the most (ties → lower id) and the one with the fewest (ties → lower id). */
function extremes(counts: Map<bigint, number>): { src: bigint; dst: bigint } {
  let src: bigint | undefined;
  let dst: bigint | undefined;
  for (const [id, c] of counts) {
    if (src === undefined || c > counts.get(src)! || (c === counts.get(src)! && id < src)) src = id;
    if (dst === undefined || c < counts.get(dst)! || (c === counts.get(dst)! && id < dst)) dst = id;
  }
  return { src: src!, dst: dst! };
}
