import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { parseHostPort } from '@nokv/config';
import {
  CoordinatorService,
  epochFromWire,
  nokv,
  peerFromWire,
  peerToWire,
  type RegionMeta,
  type RegionPeer,
  regionFromWire,
  regionToWire,
  uint64FromWire,
  uint64ToWire,
} from '@nokv/proto';
import { type AllocatorOptions, Allocators } from './allocator.js';
import { ClusterEventLog } from './cluster-events.js';
import { CoordinatorError } from './errors.js';
import { serverDefinition, unaryHandler } from './grpc.js';
import { MigrationJobs } from './migration-jobs.js';
import {
  type Operation,
  type OperationJson,
  OperatorQueue,
  type OperatorQueueOptions,
  operationJson,
} from './operators.js';
import { Scheduler, type SchedulerOptions } from './scheduler.js';
import { DurableState, type DurableStateOptions } from './state/durable.js';
import {
  type CoordinatorEvent,
  type StoreAdminState,
  type StoreRecord,
  storeAdminFromWire,
} from './state/events.js';
import { GrpcStoreAdmin, type StoreAdmin } from './store-admin.js';
import {
  ClusterView,
  decideRegionHeartbeat,
  type RegionDecision,
  regionEvents,
  type StoreJson,
  type StoreLiveState,
  type StoreStats,
  showKeyJson,
} from './view.js';

// The Coordinator service: request validation, the wire ↔ bigint conversions, and the calls into
// the durable state, the cluster view, the scheduler and the allocators.

const pb = nokv.coordinator.v1;

/** The operator queue's file in the workdir. */
export const OPERATIONS_FILE = 'operations.json';

export interface CoordinatorOptions extends DurableStateOptions {
  workdir: string;
  heartbeatTimeoutMs?: number;
  /** A region's leader is trusted this long after its last region heartbeat (default 3 × heartbeat timeout). */
  regionHeartbeatTimeoutMs?: number;
  scheduler?: SchedulerOptions;
  /** The operator queue (concurrency, retries, timing); it persists to `operations.json`. */
  operators?: Omit<OperatorQueueOptions, 'persistPath' | 'now' | 'onChange'>;
  /** How operations reach the stores (default RaftAdmin over gRPC; tests pass a fake). */
  storeAdmin?: StoreAdmin;
  allocator?: AllocatorOptions;
  /** Checkpoint this often when events were appended since the last one (default 60 000 ms; 0 = off). */
  checkpointIntervalMs?: number;
  /** Events kept in the in-memory cluster event log (default 10 000). */
  eventLogCapacity?: number;
  /**
   * How often stores are checked for up/down transitions, which go into the event log
   * (default min(1000, heartbeat timeout / 4) ms; 0 = only on heartbeats and admin changes).
   */
  downDetectionIntervalMs?: number;
  now?: () => number;
}

function invalid(message: string): CoordinatorError {
  return new CoordinatorError('InvalidArgument', message);
}

function requireId(value: Parameters<typeof uint64FromWire>[0], field: string): bigint {
  const id = uint64FromWire(value);
  if (id === 0n) throw invalid(`${field} is required (non-zero)`);
  return id;
}

function checkAddr(addr: string, field: string): void {
  if (!parseHostPort(addr)) throw invalid(`${field} '${addr}' is not host:port`);
}

function statsFromWire(s: nokv.coordinator.v1.StoreStats.$Properties | null | undefined): StoreStats {
  return {
    regionCount: uint64FromWire(s?.regionCount),
    leaderCount: uint64FromWire(s?.leaderCount),
    capacity: uint64FromWire(s?.capacity),
    available: uint64FromWire(s?.available),
    used: uint64FromWire(s?.used),
    droppedOperations: uint64FromWire(s?.droppedOperations),
  };
}

const LIVE_STATE_WIRE = {
  up: pb.StoreState.STORE_STATE_UP,
  down: pb.StoreState.STORE_STATE_DOWN,
  offline: pb.StoreState.STORE_STATE_OFFLINE,
  tombstone: pb.StoreState.STORE_STATE_TOMBSTONE,
} as const;

/** Validates a region from the wire: id, range order, peers. */
function peerText(p: RegionPeer | undefined): { storeId: string; peerId: string } | null {
  return p ? { storeId: p.storeId.toString(), peerId: p.peerId.toString() } : null;
}

function regionDetails(r: RegionMeta) {
  return {
    startKey: showKeyJson(r.startKey),
    endKey: showKeyJson(r.endKey),
    epoch: { version: r.epoch.version.toString(), confVersion: r.epoch.confVersion.toString() },
    peers: r.peers.map((p) => ({
      storeId: p.storeId.toString(),
      peerId: p.peerId.toString(),
      ...(p.learner ? { learner: true } : {}),
    })),
  };
}

/** Why an operator's transfer-leader request was not queued. */
export type TransferLeaderRefusal = 'region-not-found' | 'not-a-peer' | 'learner' | 'no-leader';

function operationDetails(op: Operation) {
  const j = operationJson(op);
  return {
    id: j.id,
    kind: j.kind,
    state: j.state,
    source: j.source,
    reason: j.reason,
    params: j.params,
    ...(j.error ? { error: j.error } : {}),
  };
}

function checkRegion(r: RegionMeta): void {
  if (r.id === 0n) throw invalid('region.id is required (non-zero)');
  if (r.endKey.length > 0 && Buffer.compare(r.startKey, r.endKey) >= 0) {
    throw invalid(`region ${r.id}: start_key must be below end_key`);
  }
  if (r.peers.length === 0) throw invalid(`region ${r.id} has no peers`);
  const stores = new Set<bigint>();
  const peers = new Set<bigint>();
  for (const p of r.peers) {
    if (p.peerId === 0n || p.storeId === 0n)
      throw invalid(`region ${r.id}: peer ids and store ids must be non-zero`);
    if (stores.has(p.storeId)) throw invalid(`region ${r.id} has two peers on store ${p.storeId}`);
    if (peers.has(p.peerId)) throw invalid(`region ${r.id} lists peer ${p.peerId} twice`);
    stores.add(p.storeId);
    peers.add(p.peerId);
  }
}

export class Coordinator {
  private checkpointTimer: NodeJS.Timeout | undefined;
  private detectTimer: NodeJS.Timeout | undefined;
  private schedulerTimer: NodeJS.Timeout | undefined;
  /** Region heartbeats received (single and batched), for metrics and the bench. */
  regionHeartbeats = 0;
  /** `nokv migrate` steps started through the tRPC API (the console drives a migration with them). */
  readonly migrations = new MigrationJobs();
  private closing: Promise<void> | undefined;
  /** The state each store was last reported in, for the up/down events. */
  private readonly lastStoreState = new Map<bigint, StoreLiveState>();

  private constructor(
    readonly state: DurableState,
    readonly view: ClusterView,
    readonly allocators: Allocators,
    /** What changed, for the console (in memory, bounded). */
    readonly events: ClusterEventLog,
    /** Region changes the coordinator carries out on the stores. */
    readonly operators: OperatorQueue,
    /** Adds operations from what it sees (down stores, imbalance). */
    readonly scheduler: Scheduler,
    private readonly admin: StoreAdmin,
  ) {
    for (const id of state.catalog.stores.keys()) {
      const st = view.storeState(id);
      if (st) this.lastStoreState.set(id, st);
    }
  }

  static async open(opts: CoordinatorOptions): Promise<Coordinator> {
    const state = await DurableState.open(opts.workdir, opts);
    const view = new ClusterView(state.catalog, {
      ...(opts.heartbeatTimeoutMs !== undefined ? { heartbeatTimeoutMs: opts.heartbeatTimeoutMs } : {}),
      ...(opts.regionHeartbeatTimeoutMs !== undefined
        ? { regionHeartbeatTimeoutMs: opts.regionHeartbeatTimeoutMs }
        : {}),
      ...(opts.now ? { now: opts.now } : {}),
    });
    const allocators = new Allocators(state, { ...(opts.now ? { now: opts.now } : {}), ...opts.allocator });
    const events = new ClusterEventLog({
      ...(opts.eventLogCapacity !== undefined ? { capacity: opts.eventLogCapacity } : {}),
      ...(opts.now ? { now: opts.now } : {}),
    });
    const admin = opts.storeAdmin ?? new GrpcStoreAdmin();
    // The queue calls back into the coordinator, which needs the queue to exist first.
    let self: Coordinator | undefined;
    let operators: OperatorQueue;
    try {
      operators = await OperatorQueue.open(
        {
          view,
          admin,
          allocIds: async (count) => (await allocators.allocId(count)).first,
          observeRegion: async (region) => {
            await self?.acceptRegion(region);
          },
        },
        {
          ...opts.operators,
          persistPath: join(opts.workdir, OPERATIONS_FILE),
          ...(opts.now ? { now: opts.now } : {}),
          onChange: (op, what) => self?.operationChanged(op, what),
        },
      );
    } catch (err) {
      admin.close();
      await state.close({ checkpoint: false });
      throw err;
    }
    const scheduler = new Scheduler(view, operators, opts.scheduler);
    const c = new Coordinator(state, view, allocators, events, operators, scheduler, admin);
    self = c;
    if (!scheduler.disabled && scheduler.intervalMs > 0) {
      c.schedulerTimer = setInterval(() => c.scheduler.tick(), scheduler.intervalMs);
      c.schedulerTimer.unref();
    }
    const detectMs =
      opts.downDetectionIntervalMs ?? Math.max(10, Math.min(1000, Math.floor(view.heartbeatTimeoutMs / 4)));
    if (detectMs > 0) {
      c.detectTimer = setInterval(() => c.detectStoreStates(), detectMs);
      c.detectTimer.unref();
    }
    const interval = opts.checkpointIntervalMs ?? 60_000;
    if (interval > 0) {
      c.checkpointTimer = setInterval(() => {
        if (state.eventsSinceCheckpoint > 0) state.checkpoint().catch(() => {});
      }, interval);
      c.checkpointTimer.unref();
    }
    return c;
  }

  // ---- routing ----

  private regionReply(r: RegionMeta | undefined): nokv.coordinator.v1.GetRegionResponse.$Properties {
    if (!r) return { notFound: true };
    const leader = this.view.leaderOf(r.id);
    return { region: regionToWire(r), ...(leader ? { leader: peerToWire(leader) } : {}) };
  }

  async getRegionByKey(req: nokv.coordinator.v1.GetRegionByKeyRequest) {
    return this.regionReply(this.view.regionByKey(req.key ?? new Uint8Array(0)));
  }

  async getRegionById(req: nokv.coordinator.v1.GetRegionByIdRequest) {
    const id = requireId(req.regionId, 'region_id');
    return this.regionReply(this.state.catalog.regions.get(id));
  }

  async scanRegions(
    req: nokv.coordinator.v1.ScanRegionsRequest,
  ): Promise<nokv.coordinator.v1.ScanRegionsResponse.$Properties> {
    const start = req.startKey ?? new Uint8Array(0);
    const end = req.endKey ?? new Uint8Array(0);
    if (end.length > 0 && Buffer.compare(start, end) >= 0) throw invalid('start_key must be below end_key');
    return {
      regions: this.view.scanRegions(start, end, req.limit ?? 0).map((r) => {
        const leader = this.view.leaderOf(r.id);
        return { region: regionToWire(r), ...(leader ? { leader: peerToWire(leader) } : {}) };
      }),
    };
  }

  // ---- stores ----

  private storeReply(s: StoreRecord): nokv.coordinator.v1.Store.$Properties {
    const last = this.view.lastHeartbeatMs(s.id);
    return {
      id: uint64ToWire(s.id, 'store.id'),
      addr: s.addr,
      httpAddr: s.httpAddr,
      state: LIVE_STATE_WIRE[this.view.storeState(s.id) ?? 'down'],
      lastHeartbeatUnixMs: uint64ToWire(BigInt(last ?? 0), 'last_heartbeat'),
    };
  }

  /** Another live store already using `addr`. */
  private static addrConflict(
    catalog: DurableState['catalog'],
    id: bigint,
    addr: string,
  ): StoreRecord | undefined {
    for (const s of catalog.stores.values()) {
      if (s.id !== id && s.addr === addr && s.adminState !== 'tombstone') return s;
    }
    return undefined;
  }

  async putStore(req: nokv.coordinator.v1.PutStoreRequest) {
    const w = req.store;
    if (!w) throw invalid('store is required');
    const id = requireId(w.id, 'store.id');
    if (!w.addr) throw invalid('store.addr is required');
    checkAddr(w.addr, 'store.addr');
    if (w.httpAddr) checkAddr(w.httpAddr, 'store.http_addr');
    if (w.state === pb.StoreState.STORE_STATE_DOWN)
      throw invalid('store.state DOWN cannot be set (it follows heartbeats)');
    if (w.state !== undefined && w.state !== null && !(w.state in LIVE_STATE_WIRE_BY_NUMBER)) {
      throw invalid(`store.state ${w.state} is not a StoreState`);
    }
    const record: StoreRecord = {
      id,
      addr: w.addr,
      httpAddr: w.httpAddr ?? '',
      adminState: storeAdminFromWire(w.state),
    };
    const stored = await this.state.mutate((catalog) => {
      const other = Coordinator.addrConflict(catalog, id, record.addr);
      if (other) {
        throw new CoordinatorError(
          'FailedPrecondition',
          `address ${record.addr} belongs to store ${other.id}`,
        );
      }
      const cur = catalog.stores.get(id);
      const same =
        cur &&
        cur.addr === record.addr &&
        cur.httpAddr === record.httpAddr &&
        cur.adminState === record.adminState;
      return { events: same ? [] : [{ type: 'storePut', store: record }], result: { record, isNew: !cur } };
    });
    if (stored.isNew) this.storeJoined(stored.record);
    this.detectStoreStates();
    return { store: this.storeReply(stored.record) };
  }

  async getStore(req: nokv.coordinator.v1.GetStoreRequest) {
    const id = requireId(req.storeId, 'store_id');
    const s = this.state.catalog.stores.get(id);
    return s ? { store: this.storeReply(s) } : { notFound: true };
  }

  async listStores(req: nokv.coordinator.v1.ListStoresRequest) {
    const stores = [...this.state.catalog.stores.values()]
      .filter((s) => req.includeTombstones || s.adminState !== 'tombstone')
      .sort((a, b) => (a.id < b.id ? -1 : 1));
    return { stores: stores.map((s) => this.storeReply(s)) };
  }

  // ---- heartbeats ----

  async storeHeartbeat(
    req: nokv.coordinator.v1.StoreHeartbeatRequest,
  ): Promise<nokv.coordinator.v1.StoreHeartbeatResponse.$Properties> {
    const w = req.store;
    if (!w) throw invalid('store is required');
    const id = requireId(w.id, 'store.id');
    if (w.addr) checkAddr(w.addr, 'store.addr');
    if (w.httpAddr) checkAddr(w.httpAddr, 'store.http_addr');
    const joined = await this.state.mutate((catalog) => {
      const cur = catalog.stores.get(id);
      if (!cur && !w.addr) {
        throw invalid(`store ${id} is not registered: its first heartbeat must carry store.addr`);
      }
      if (cur?.adminState === 'tombstone') {
        throw new CoordinatorError('FailedPrecondition', `store ${id} is tombstone`);
      }
      const next: StoreRecord = {
        id,
        addr: w.addr || cur?.addr || '',
        httpAddr: w.httpAddr || cur?.httpAddr || '',
        adminState: cur?.adminState ?? 'normal',
      };
      const other = Coordinator.addrConflict(catalog, id, next.addr);
      if (other)
        throw new CoordinatorError('FailedPrecondition', `address ${next.addr} belongs to store ${other.id}`);
      const changed = !cur || cur.addr !== next.addr || cur.httpAddr !== next.httpAddr;
      const events: CoordinatorEvent[] = changed ? [{ type: 'storePut', store: next }] : [];
      return { events, result: cur ? undefined : next };
    });
    this.view.recordStoreHeartbeat(id, statsFromWire(req.stats));
    if (joined) this.storeJoined(joined);
    this.detectStoreStates();
    // Leadership moves are operations the coordinator carries out itself (the operator queue), so
    // the reply carries no hints.
    return { operations: [] };
  }

  /** Validates a region heartbeat from the wire (throws InvalidArgument). */
  private static parseRegionHeartbeat(req: nokv.coordinator.v1.RegionHeartbeatRequest): {
    region: RegionMeta;
    leader: RegionPeer | undefined;
  } {
    if (!req.region) throw invalid('region is required');
    const region = regionFromWire(req.region);
    checkRegion(region);
    const leader: RegionPeer | undefined =
      req.leader && uint64FromWire(req.leader.peerId) !== 0n ? peerFromWire(req.leader) : undefined;
    if (leader && !region.peers.some((p) => p.peerId === leader.peerId && p.storeId === leader.storeId)) {
      throw invalid(
        `leader peer ${leader.peerId} (store ${leader.storeId}) is not a peer of region ${region.id}`,
      );
    }
    return { region, leader };
  }

  /**
   * Takes a region's metadata into the catalog under the epoch rules (a heartbeat's, or a store's
   * answer to an operation) and logs what changed.
   */
  private async acceptRegion(region: RegionMeta): Promise<RegionDecision> {
    const { decision, previous } = await this.state.mutate((catalog) => {
      const d = decideRegionHeartbeat(catalog, region);
      return {
        events: regionEvents(region, d),
        result: { decision: d, previous: catalog.regions.get(region.id) },
      };
    });
    if (decision.kind === 'update') {
      for (const id of decision.removes) {
        this.view.forgetRegion(id);
        this.events.append('region-removed', { reason: `replaced by region ${region.id}` }, { regionId: id });
      }
      if (previous) {
        this.events.append(
          'region-changed',
          { before: regionDetails(previous), after: regionDetails(region) },
          { regionId: region.id },
        );
      } else {
        this.events.append('region-added', regionDetails(region), { regionId: region.id });
      }
    }
    return decision;
  }

  private async applyRegionHeartbeat(
    req: nokv.coordinator.v1.RegionHeartbeatRequest,
    parsed: { region: RegionMeta; leader: RegionPeer | undefined },
  ): Promise<nokv.coordinator.v1.RegionHeartbeatResponse.$Properties> {
    const { region, leader } = parsed;
    this.regionHeartbeats++;
    const decision = await this.acceptRegion(region);
    if (decision.kind === 'stale') return { stale: true, reason: decision.reason };
    const leaderBefore = this.view.leaderOf(region.id);
    this.view.recordRegionHeartbeat(region.id, {
      leader,
      term: uint64FromWire(req.term),
      appliedIndex: uint64FromWire(req.appliedIndex),
      pendingPeers: (req.pendingPeers ?? []).map(peerFromWire),
      downPeers: (req.downPeers ?? []).map(peerFromWire),
    });
    const leaderAfter = this.view.leaderOf(region.id);
    if (leaderAfter && leaderAfter.peerId !== leaderBefore?.peerId) {
      this.events.append(
        'leader-changed',
        {
          from: peerText(leaderBefore),
          to: peerText(leaderAfter),
          term: (this.view.regionLiveOf(region.id)?.term ?? 0n).toString(),
        },
        { regionId: region.id, storeId: leaderAfter.storeId },
      );
    }
    return {};
  }

  async regionHeartbeat(
    req: nokv.coordinator.v1.RegionHeartbeatRequest,
  ): Promise<nokv.coordinator.v1.RegionHeartbeatResponse.$Properties> {
    return this.applyRegionHeartbeat(req, Coordinator.parseRegionHeartbeat(req));
  }

  /**
   * Region heartbeats in one call, answered in order. Every heartbeat is validated before any is
   * applied: one malformed entry fails the whole call (InvalidArgument naming its index) and
   * changes nothing; a failed write fails the call too (the store sends it all again; heartbeats
   * are idempotent).
   */
  async regionHeartbeatBatch(
    req: nokv.coordinator.v1.RegionHeartbeatBatchRequest,
  ): Promise<nokv.coordinator.v1.RegionHeartbeatBatchResponse.$Properties> {
    const items = req.heartbeats ?? [];
    const parsed = items.map((hb, i) => {
      try {
        return Coordinator.parseRegionHeartbeat(hb as nokv.coordinator.v1.RegionHeartbeatRequest);
      } catch (err) {
        if (err instanceof CoordinatorError) throw invalid(`heartbeats[${i}]: ${err.message}`);
        throw err;
      }
    });
    const responses: nokv.coordinator.v1.RegionHeartbeatResponse.$Properties[] = [];
    for (const [i, hb] of items.entries()) {
      responses.push(
        await this.applyRegionHeartbeat(hb as nokv.coordinator.v1.RegionHeartbeatRequest, parsed[i]!),
      );
    }
    return { responses };
  }

  async removeRegion(req: nokv.coordinator.v1.RemoveRegionRequest) {
    const id = requireId(req.regionId, 'region_id');
    if (!req.expectedEpoch) throw invalid('expected_epoch is required');
    const expected = epochFromWire(req.expectedEpoch);
    const removed = await this.state.mutate((catalog) => {
      const cur = catalog.regions.get(id);
      if (!cur) return { events: [], result: false };
      if (cur.epoch.version !== expected.version || cur.epoch.confVersion !== expected.confVersion) {
        throw new CoordinatorError(
          'FailedPrecondition',
          `region ${id} epoch is {version ${cur.epoch.version}, conf_version ${cur.epoch.confVersion}}, not the expected {version ${expected.version}, conf_version ${expected.confVersion}}`,
        );
      }
      return { events: [{ type: 'regionRemoved', regionId: id }], result: true };
    });
    if (removed) {
      this.view.forgetRegion(id);
      this.events.append('region-removed', { reason: 'RemoveRegion' }, { regionId: id });
    }
    return { removed };
  }

  // ---- events and operator actions (the tRPC API) ----

  private storeJoined(s: StoreRecord): void {
    this.events.append('store-joined', { addr: s.addr, httpAddr: s.httpAddr }, { storeId: s.id });
  }

  /**
   * Compares every store's state with the last one reported and logs the transitions: to `up` →
   * `store-up`; from `up` to down/offline/tombstone → `store-down` (details: state, previous).
   * Runs periodically, after heartbeats and after operator changes.
   */
  detectStoreStates(): void {
    for (const id of this.state.catalog.stores.keys()) {
      const now = this.view.storeState(id);
      if (!now) continue;
      const before = this.lastStoreState.get(id);
      this.lastStoreState.set(id, now);
      if (before === undefined || before === now) continue;
      if (now === 'up') {
        this.events.append('store-up', { state: now, previous: before }, { storeId: id });
      } else if (before === 'up') {
        this.events.append('store-down', { state: now, previous: before }, { storeId: id });
      }
    }
  }

  /** Logs an operation being added or ending (the console's event stream). */
  private operationChanged(op: Operation, what: 'added' | 'ended'): void {
    const ids = { regionId: op.spec.regionId };
    if (what === 'added') this.events.append('operation-added', operationDetails(op), ids);
    else this.events.append('operation-ended', operationDetails(op), ids);
  }

  /**
   * Queues an operator's transfer of `regionId`'s leadership to peer `toPeerId` as a
   * transfer-leader operation. A refusal (unknown region, not a voter peer, no known leader) is
   * returned, not thrown; nothing is queued when the target leads already.
   */
  requestTransferLeader(
    regionId: bigint,
    toPeerId: bigint,
  ):
    | {
        ok: true;
        alreadyLeader: boolean;
        fromStoreId: bigint | undefined;
        toStoreId: bigint;
        operation: OperationJson | undefined;
      }
    | { ok: false; reason: TransferLeaderRefusal; message: string } {
    const region = this.state.catalog.regions.get(regionId);
    if (!region) return { ok: false, reason: 'region-not-found', message: `region ${regionId} is not known` };
    const target = region.peers.find((p) => p.peerId === toPeerId);
    if (!target) {
      return {
        ok: false,
        reason: 'not-a-peer',
        message: `peer ${toPeerId} is not a peer of region ${regionId}`,
      };
    }
    if (target.learner) {
      return { ok: false, reason: 'learner', message: `peer ${toPeerId} of region ${regionId} is a learner` };
    }
    const leader = this.view.leaderOf(regionId);
    if (!leader) return { ok: false, reason: 'no-leader', message: `region ${regionId} has no known leader` };
    if (leader.peerId === toPeerId) {
      return {
        ok: true,
        alreadyLeader: true,
        fromStoreId: leader.storeId,
        toStoreId: target.storeId,
        operation: undefined,
      };
    }
    const op = this.operators.add({ kind: 'transfer-leader', regionId, toPeerId }, { source: 'operator' });
    return {
      ok: true,
      alreadyLeader: false,
      fromStoreId: leader.storeId,
      toStoreId: target.storeId,
      operation: operationJson(op),
    };
  }

  /**
   * Sets a store's operator state (`normal` = follows heartbeats). Persisted; undefined for an
   * unknown store.
   */
  async setStoreAdminState(id: bigint, adminState: StoreAdminState): Promise<StoreJson | undefined> {
    const found = await this.state.mutate((catalog) => {
      const cur = catalog.stores.get(id);
      if (!cur) return { events: [], result: false };
      if (cur.adminState === adminState) return { events: [], result: true };
      return { events: [{ type: 'storePut', store: { ...cur, adminState } }], result: true };
    });
    if (!found) return undefined;
    this.detectStoreStates();
    return this.view.storesJson().find((s) => s.id === id.toString());
  }

  // ---- allocators ----

  async allocId(req: nokv.coordinator.v1.AllocIdRequest) {
    const { first, count } = await this.allocators.allocId(req.count ?? 0);
    return { firstId: uint64ToWire(first, 'first_id'), count };
  }

  async tso(req: nokv.coordinator.v1.TsoRequest) {
    const { first, count } = await this.allocators.tso(req.count ?? 0);
    return { timestamp: uint64ToWire(first, 'timestamp'), count };
  }

  // ---- wiring ----

  /** Registers the Coordinator service on a grpc-js server. */
  addServiceTo(
    server: grpc.Server,
    opts: { maxRequestBytes?: number; onDone?: (method: string, code: string, ms: number) => void } = {},
  ): void {
    const h = {
      maxRequestBytes: opts.maxRequestBytes ?? 4 * 1024 * 1024,
      ...(opts.onDone ? { onDone: opts.onDone } : {}),
    };
    const S = CoordinatorService;
    server.addService(serverDefinition(S), {
      GetRegionByKey: unaryHandler(S.GetRegionByKey, (r) => this.getRegionByKey(r), h),
      GetRegionById: unaryHandler(S.GetRegionById, (r) => this.getRegionById(r), h),
      ScanRegions: unaryHandler(S.ScanRegions, (r) => this.scanRegions(r), h),
      StoreHeartbeat: unaryHandler(S.StoreHeartbeat, (r) => this.storeHeartbeat(r), h),
      RegionHeartbeat: unaryHandler(S.RegionHeartbeat, (r) => this.regionHeartbeat(r), h),
      RegionHeartbeatBatch: unaryHandler(S.RegionHeartbeatBatch, (r) => this.regionHeartbeatBatch(r), h),
      PutStore: unaryHandler(S.PutStore, (r) => this.putStore(r), h),
      GetStore: unaryHandler(S.GetStore, (r) => this.getStore(r), h),
      ListStores: unaryHandler(S.ListStores, (r) => this.listStores(r), h),
      RemoveRegion: unaryHandler(S.RemoveRegion, (r) => this.removeRegion(r), h),
      AllocId: unaryHandler(S.AllocId, (r) => this.allocId(r), h),
      Tso: unaryHandler(S.Tso, (r) => this.tso(r), h),
    });
  }

  /** The JSON cluster view (bigints as strings). */
  viewJson() {
    const a = this.allocators.snapshot();
    const log = this.state.log;
    return {
      ...this.view.toJson(),
      scheduler: this.scheduler.status(),
      operators: this.operatorsJson(),
      allocator: {
        nextId: a.nextId.toString(),
        idFence: a.idFence.toString(),
        lastTs: a.lastTs.toString(),
        tsoFence: a.tsoFence.toString(),
      },
      durable: {
        dir: this.state.dir,
        logFile: log.file,
        logSeq: log.seq.toString(),
        logBytes: log.bytes,
        eventsSinceCheckpoint: this.state.eventsSinceCheckpoint,
        lastCheckpointUnixMs: this.state.lastCheckpointUnixMs ?? null,
        recovery: {
          checkpointLogSeq: this.state.recovery.checkpoint?.logSeq.toString() ?? null,
          eventsReplayed: this.state.recovery.eventsReplayed,
          tornTail: this.state.recovery.tornTail ?? null,
        },
      },
    };
  }

  /** The operator queue's summary: counts by state and the unfinished operations (first 100). */
  operatorsJson() {
    const q = this.operators;
    return {
      counts: q.counts(),
      maxRunning: q.maxRunning,
      persistError: q.persistError ?? null,
      active: q.active().slice(0, 100).map(operationJson),
    };
  }

  /**
   * Stops the timers and the operator queue (steps in flight finish), writes a final checkpoint
   * and closes the files. Idempotent.
   */
  close(opts: { checkpoint?: boolean } = {}): Promise<void> {
    this.closing ??= (async () => {
      if (this.checkpointTimer) clearInterval(this.checkpointTimer);
      if (this.detectTimer) clearInterval(this.detectTimer);
      if (this.schedulerTimer) clearInterval(this.schedulerTimer);
      // Calls in flight to stores (an AddPeer may stream a snapshot for minutes) are cancelled;
      // their steps run again after a restart.
      this.operators.stop();
      this.admin.close();
      await this.operators.close();
      await this.state.close(opts);
    })();
    return this.closing;
  }
}

const LIVE_STATE_WIRE_BY_NUMBER: Record<number, true> = { 0: true, 1: true, 2: true, 3: true, 4: true };
