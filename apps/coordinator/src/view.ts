import { formatKey } from '@nokv/config';
import type { RegionMeta, RegionPeer } from '@nokv/proto';
import { type Catalog, isStaleEpoch, rangesOverlap, sameRegion } from './state/catalog.js';
import type { CoordinatorEvent, StoreAdminState } from './state/events.js';

// The cluster as the coordinator sees it: the durable catalog (stores, regions) plus what only
// heartbeats tell (liveness, leaders, stats). Liveness and leaders are not persisted: after a
// restart they come back with the next heartbeats.

export interface StoreStats {
  regionCount: bigint;
  leaderCount: bigint;
  capacity: bigint;
  available: bigint;
  used: bigint;
  droppedOperations: bigint;
}

export type StoreLiveState = 'up' | 'down' | 'offline' | 'tombstone';

interface StoreLive {
  /** Last heartbeat (ms); stores known at startup count as heard at startup (a grace period). */
  lastHeartbeatMs: number;
  heardFrom: boolean;
  stats: StoreStats | undefined;
}

export interface RegionLive {
  leader: RegionPeer | undefined;
  term: bigint;
  appliedIndex: bigint;
  lastHeartbeatMs: number;
  pendingPeers: RegionPeer[];
  downPeers: RegionPeer[];
}

export type RegionDecision =
  | { kind: 'stale'; reason: string }
  | { kind: 'unchanged' }
  /** Persist the region; `removes` are overlapping regions with an older version. */
  | { kind: 'update'; removes: bigint[] };

/**
 * What a region heartbeat does to the catalog. Stale iff the known epoch is newer (version higher,
 * or same version and conf_version higher). A region overlapping others replaces them only if its
 * version is higher than each of theirs (a split or merge the coordinator has not seen yet);
 * otherwise it is stale.
 */
export function decideRegionHeartbeat(catalog: Catalog, incoming: RegionMeta): RegionDecision {
  const cur = catalog.regions.get(incoming.id);
  if (cur && isStaleEpoch(incoming.epoch, cur.epoch)) {
    return {
      kind: 'stale',
      reason: `region ${incoming.id} epoch ${epochText(incoming)} is older than the known ${epochText(cur)}`,
    };
  }
  if (cur && sameRegion(cur, incoming)) return { kind: 'unchanged' };
  const removes: bigint[] = [];
  for (const other of catalog.regions.values()) {
    if (other.id === incoming.id || !rangesOverlap(other, incoming)) continue;
    if (incoming.epoch.version > other.epoch.version) {
      removes.push(other.id);
    } else {
      return {
        kind: 'stale',
        reason: `region ${incoming.id} (version ${incoming.epoch.version}) overlaps region ${other.id} (version ${other.epoch.version})`,
      };
    }
  }
  return { kind: 'update', removes };
}

export function regionEvents(incoming: RegionMeta, decision: RegionDecision): CoordinatorEvent[] {
  if (decision.kind !== 'update') return [];
  return [
    ...decision.removes.map((regionId): CoordinatorEvent => ({ type: 'regionRemoved', regionId })),
    { type: 'regionUpsert', region: incoming },
  ];
}

function epochText(r: RegionMeta): string {
  return `{version ${r.epoch.version}, conf_version ${r.epoch.confVersion}}`;
}

export function showKeyJson(key: Uint8Array): string {
  return key.length === 0 ? '' : formatKey(key);
}

export interface PeerJson {
  storeId: string;
  peerId: string;
  learner?: true;
}

export interface StoreJson {
  id: string;
  addr: string;
  httpAddr: string;
  state: StoreLiveState;
  adminState: StoreAdminState;
  /** null: not heard from since the coordinator started. */
  lastHeartbeatAgeMs: number | null;
  /** Regions with a peer on the store, and regions it leads. */
  regions: number;
  leaders: number;
  stats: {
    regionCount: string;
    leaderCount: string;
    capacity: string;
    available: string;
    used: string;
    droppedOperations: string;
  } | null;
}

export interface RegionJson {
  id: string;
  /** formatKey; '' = -inf / +inf. */
  startKey: string;
  endKey: string;
  epoch: { version: string; confVersion: string };
  state: RegionMeta['state'];
  peers: PeerJson[];
  leader: PeerJson | null;
  term: string | null;
  appliedIndex: string | null;
  lastHeartbeatAgeMs: number | null;
  pendingPeers: PeerJson[];
  downPeers: PeerJson[];
}

export interface ProblemsJson {
  /** A peer on a store that is not up, or reported down by the leader. */
  downReplicas: { regionId: string; storeIds: string[] }[];
  /** Fewer voters than the most any region has. */
  missingReplicas: { regionId: string; voters: number; expected: number }[];
  /** Region ids with no known, fresh leader on an up store. */
  noLeader: string[];
}

export interface ClusterViewJson {
  now: number;
  heartbeatTimeoutMs: number;
  regionHeartbeatTimeoutMs: number;
  stores: StoreJson[];
  regions: RegionJson[];
  problems: ProblemsJson;
}

function peerJson(p: RegionPeer): PeerJson {
  return {
    storeId: p.storeId.toString(),
    peerId: p.peerId.toString(),
    ...(p.learner ? { learner: true } : {}),
  };
}

export interface ClusterViewOptions {
  /** A store without a heartbeat for this long is down (default 10 000 ms). */
  heartbeatTimeoutMs?: number;
  /**
   * A region's leader is no longer trusted this long after its last region heartbeat (default 3 ×
   * the store timeout). Stores send a region's heartbeat when it changed and in a periodic full
   * refresh only, so this must exceed the refresh period (10 rounds of 1 s by default).
   */
  regionHeartbeatTimeoutMs?: number;
  now?: () => number;
}

export class ClusterView {
  readonly heartbeatTimeoutMs: number;
  readonly regionHeartbeatTimeoutMs: number;
  readonly now: () => number;
  private readonly startedAt: number;
  private readonly storeLive = new Map<bigint, StoreLive>();
  private readonly regionLive = new Map<bigint, RegionLive>();
  private index: RegionMeta[] = [];
  private indexVersion = -1;

  constructor(
    readonly catalog: Catalog,
    opts: ClusterViewOptions = {},
  ) {
    this.heartbeatTimeoutMs = opts.heartbeatTimeoutMs ?? 10_000;
    this.regionHeartbeatTimeoutMs = opts.regionHeartbeatTimeoutMs ?? 3 * this.heartbeatTimeoutMs;
    this.now = opts.now ?? Date.now;
    this.startedAt = this.now();
  }

  // ---- stores ----

  private live(id: bigint): StoreLive {
    let s = this.storeLive.get(id);
    if (!s) {
      s = { lastHeartbeatMs: this.startedAt, heardFrom: false, stats: undefined };
      this.storeLive.set(id, s);
    }
    return s;
  }

  recordStoreHeartbeat(id: bigint, stats: StoreStats): void {
    const s = this.live(id);
    s.lastHeartbeatMs = this.now();
    s.heardFrom = true;
    s.stats = stats;
  }

  lastHeartbeatMs(id: bigint): number | undefined {
    const s = this.storeLive.get(id);
    return s?.heardFrom ? s.lastHeartbeatMs : undefined;
  }

  storeStats(id: bigint): StoreStats | undefined {
    return this.storeLive.get(id)?.stats;
  }

  /** up/down by heartbeat age; the operator states win. Unknown store → undefined. */
  storeState(id: bigint): StoreLiveState | undefined {
    const rec = this.catalog.stores.get(id);
    if (!rec) return undefined;
    return this.liveState(id, rec.adminState);
  }

  private liveState(id: bigint, admin: StoreAdminState): StoreLiveState {
    if (admin !== 'normal') return admin;
    const last = this.live(id).lastHeartbeatMs;
    return this.now() - last > this.heartbeatTimeoutMs ? 'down' : 'up';
  }

  isSchedulable(id: bigint): boolean {
    return this.storeState(id) === 'up';
  }

  /**
   * Heartbeating within the timeout, whatever the operator state (an offline store still serves
   * and still leads its regions until they move away); a tombstone is never alive.
   */
  isAlive(id: bigint): boolean {
    const rec = this.catalog.stores.get(id);
    if (!rec || rec.adminState === 'tombstone') return false;
    return this.liveState(id, 'normal') === 'up';
  }

  /** Milliseconds since the store's last heartbeat (since startup for one not heard from yet). */
  silenceMs(id: bigint): number {
    return this.now() - this.live(id).lastHeartbeatMs;
  }

  // ---- regions ----

  /** Records the volatile part of an accepted (non-stale) region heartbeat. */
  recordRegionHeartbeat(
    regionId: bigint,
    hb: {
      leader: RegionPeer | undefined;
      term: bigint;
      appliedIndex: bigint;
      pendingPeers: RegionPeer[];
      downPeers: RegionPeer[];
    },
  ): void {
    const prev = this.regionLive.get(regionId);
    // An old leader still heartbeating after an election must not take the leadership back.
    if (prev && hb.term < prev.term) return;
    this.regionLive.set(regionId, { ...hb, lastHeartbeatMs: this.now() });
  }

  forgetRegion(regionId: bigint): void {
    this.regionLive.delete(regionId);
  }

  regionLiveOf(regionId: bigint): RegionLive | undefined {
    return this.regionLive.get(regionId);
  }

  /** The known leader, if it is still one of the region's peers. */
  leaderOf(regionId: bigint): RegionPeer | undefined {
    const live = this.regionLive.get(regionId);
    const region = this.catalog.regions.get(regionId);
    if (!live?.leader || !region) return undefined;
    const leader = live.leader;
    return region.peers.some((p) => p.peerId === leader.peerId) ? leader : undefined;
  }

  /** Regions sorted by start key. */
  sortedRegions(): RegionMeta[] {
    if (this.indexVersion !== this.catalog.regionVersion) {
      this.index = [...this.catalog.regions.values()].sort((a, b) => Buffer.compare(a.startKey, b.startKey));
      this.indexVersion = this.catalog.regionVersion;
    }
    return this.index;
  }

  /** Floor search on start keys, then the end check. */
  regionByKey(key: Uint8Array): RegionMeta | undefined {
    const idx = this.sortedRegions();
    let lo = 0;
    let hi = idx.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (Buffer.compare(idx[mid]!.startKey, key) <= 0) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    if (found < 0) return undefined;
    const r = idx[found]!;
    if (r.endKey.length > 0 && Buffer.compare(key, r.endKey) >= 0) return undefined;
    return r;
  }

  /** Regions overlapping [start, end) in key order (empty end = +inf); limit 0 = all. */
  scanRegions(start: Uint8Array, end: Uint8Array, limit: number): RegionMeta[] {
    const out: RegionMeta[] = [];
    for (const r of this.sortedRegions()) {
      if (!rangesOverlap(r, { startKey: start, endKey: end })) {
        if (end.length > 0 && Buffer.compare(r.startKey, end) >= 0) break;
        continue;
      }
      out.push(r);
      if (limit > 0 && out.length >= limit) break;
    }
    return out;
  }

  // ---- problems ----

  problems(): ProblemsJson {
    const regions = [...this.catalog.regions.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
    let expected = 0;
    for (const r of regions) expected = Math.max(expected, r.peers.filter((p) => !p.learner).length);
    const downReplicas: { regionId: string; storeIds: string[] }[] = [];
    const missingReplicas: { regionId: string; voters: number; expected: number }[] = [];
    const noLeader: string[] = [];
    const now = this.now();
    for (const r of regions) {
      const live = this.regionLive.get(r.id);
      const reportedDown = new Set((live?.downPeers ?? []).map((p) => p.peerId));
      const down = r.peers
        .filter((p) => this.storeState(p.storeId) !== 'up' || reportedDown.has(p.peerId))
        .map((p) => p.storeId.toString());
      if (down.length > 0) downReplicas.push({ regionId: r.id.toString(), storeIds: down });
      const voters = r.peers.filter((p) => !p.learner).length;
      if (voters < expected) missingReplicas.push({ regionId: r.id.toString(), voters, expected });
      const leader = this.leaderOf(r.id);
      const fresh = live !== undefined && now - live.lastHeartbeatMs <= this.regionHeartbeatTimeoutMs;
      if (!leader || !fresh || this.storeState(leader.storeId) !== 'up') noLeader.push(r.id.toString());
    }
    return { downReplicas, missingReplicas, noLeader };
  }

  /** The JSON view: stores, regions, problems (bigints as strings). */
  toJson(): ClusterViewJson {
    return {
      now: this.now(),
      heartbeatTimeoutMs: this.heartbeatTimeoutMs,
      regionHeartbeatTimeoutMs: this.regionHeartbeatTimeoutMs,
      stores: this.storesJson(),
      regions: this.regionsJson(),
      problems: this.problems(),
    };
  }

  /** Every store by id (bigints as strings). */
  storesJson(): StoreJson[] {
    const now = this.now();
    const leadersByStore = new Map<bigint, number>();
    const regionsByStore = new Map<bigint, number>();
    for (const r of this.catalog.regions.values()) {
      for (const p of r.peers) regionsByStore.set(p.storeId, (regionsByStore.get(p.storeId) ?? 0) + 1);
      const leader = this.leaderOf(r.id);
      if (leader) leadersByStore.set(leader.storeId, (leadersByStore.get(leader.storeId) ?? 0) + 1);
    }
    return [...this.catalog.stores.values()]
      .sort((a, b) => (a.id < b.id ? -1 : 1))
      .map((s) => {
        const last = this.lastHeartbeatMs(s.id);
        const stats = this.storeStats(s.id);
        return {
          id: s.id.toString(),
          addr: s.addr,
          httpAddr: s.httpAddr,
          state: this.liveState(s.id, s.adminState),
          adminState: s.adminState,
          lastHeartbeatAgeMs: last === undefined ? null : now - last,
          regions: regionsByStore.get(s.id) ?? 0,
          leaders: leadersByStore.get(s.id) ?? 0,
          stats: stats
            ? {
                regionCount: stats.regionCount.toString(),
                leaderCount: stats.leaderCount.toString(),
                capacity: stats.capacity.toString(),
                available: stats.available.toString(),
                used: stats.used.toString(),
                droppedOperations: stats.droppedOperations.toString(),
              }
            : null,
        };
      });
  }

  /** The given regions (default: all, by id) as JSON. */
  regionsJson(regions?: readonly RegionMeta[]): RegionJson[] {
    const now = this.now();
    const list = regions ?? [...this.catalog.regions.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
    return list.map((r) => {
      const live = this.regionLive.get(r.id);
      const leader = this.leaderOf(r.id);
      return {
        id: r.id.toString(),
        startKey: showKeyJson(r.startKey),
        endKey: showKeyJson(r.endKey),
        epoch: { version: r.epoch.version.toString(), confVersion: r.epoch.confVersion.toString() },
        state: r.state,
        peers: r.peers.map(peerJson),
        leader: leader ? peerJson(leader) : null,
        term: live ? live.term.toString() : null,
        appliedIndex: live ? live.appliedIndex.toString() : null,
        lastHeartbeatAgeMs: live ? now - live.lastHeartbeatMs : null,
        pendingPeers: (live?.pendingPeers ?? []).map(peerJson),
        downPeers: (live?.downPeers ?? []).map(peerJson),
      };
    });
  }
}
