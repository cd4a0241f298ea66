import type * as grpc from '@grpc/grpc-js';
import type { Database } from '@nokv/engine';
import {
  epochEquals,
  keyInRegion,
  MessageType,
  type RaftMessage,
  type RegionEpoch,
  type RegionMeta,
  type RegionPeer,
  RegionState,
} from '@nokv/proto';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { PeerStorage, readRegionStates } from '../peer-storage/index.js';
import { type LinkFault, RaftTransport } from '../transport/index.js';
import {
  Latches,
  MAX_TS,
  type MvccPair,
  type MvccValue,
  get as mvccGet,
  scan as mvccScan,
  type ScanResult,
} from '../txn/index.js';
import type { TxnCommand, WriteRequest } from './command.js';
import { txnCommandKeys } from './command.js';
import { RegionError, StoreError } from './errors.js';
import { storeIdentKey, tombstoneKey, tombstoneRange } from './keys.js';
import { type StoreLogger, silentStoreLogger } from './logger.js';
import { Peer, type PeerEvent, type PeerHost, type PeerOptions } from './peer.js';
import { readValue, scanValues } from './reads.js';
import {
  type AddPeerRequest,
  type AddPeerResult,
  addPeer,
  type ExportedRegionSnapshot,
  exportRegionSnapshot,
  type RegionRuntimeStatus,
  regionRuntimeStatus,
  removePeer,
} from './region-admin.js';
import {
  discardInterruptedInstalls,
  installRegionSnapshot,
  type RegionSnapshotHeader,
  type StoreInternals,
} from './region-install.js';
import { storeServices } from './services.js';
import { SnapshotTracker, type SnapshotTransfer, type SnapshotTransferView } from './snapshot-tracker.js';
import {
  DEFAULT_SPLIT_CHECK_INTERVAL_MS,
  DEFAULT_SPLIT_SIZE_BYTES,
  type PrepareMergeResult,
  RegionOps,
  type SplitResult,
} from './split-merge.js';

export interface StoreRaftOptions {
  /** Milliseconds per Raft tick (default 100). */
  tickMs?: number;
  electionTick?: number;
  heartbeatTick?: number;
  maxSizePerMsg?: number;
  maxInflightMsgs?: number;
  logRetainEntries?: number;
  logCompactBatch?: number;
  hibernateAfterTicks?: number;
  maxPendingProposals?: number;
}

export interface StoreStartOptions {
  storeId: bigint;
  db: Database;
  /** gRPC address of a store (for peers on other stores), or undefined if unknown. */
  resolveStoreAddress(storeId: bigint): string | undefined;
  /** Regions to create when the engine holds none yet (first start); ignored afterwards. */
  bootstrapRegions?: RegionMeta[];
  raft?: StoreRaftOptions;
  /** Upper bound on a KV command (proposal + apply, or read barrier); default 3000 ms. */
  commandTimeoutMs?: number;
  logger?: StoreLogger;
  registry?: Registry;
  /** Accept `SetLinkFault` (chaos for tests and the lab); off by default. */
  faultInjection?: boolean;
  /** Approximate size at which a region this store leads is split (default 96 MiB; 0 = never). */
  splitSizeBytes?: number;
  /** How often leaders' regions are checked against `splitSizeBytes` (default 10 s). */
  splitCheckIntervalMs?: number;
  /** New region and peer ids for automatic splits (the coordinator's AllocId); none → no auto split. */
  allocIds?: (count: number) => Promise<bigint[]>;
}

/** Which region a request is for, as the client saw it. */
export interface RequestContext {
  regionId: bigint;
  epoch?: RegionEpoch;
  /** The store the client meant to reach (0 = unchecked). */
  storeId?: bigint;
}

export interface RegionStatusView {
  regionId: string;
  peerId: string;
  role: string;
  leaderPeerId: string;
  term: string;
  commitIndex: string;
  appliedIndex: string;
  lastIndex: string;
  startKey: string;
  endKey: string;
  epoch: { version: string; confVersion: string };
  peers: { storeId: string; peerId: string; learner: boolean }[];
  hibernating: boolean;
}

const DEFAULT_PEER_OPTIONS: PeerOptions = {
  electionTick: 10,
  heartbeatTick: 2,
  maxSizePerMsg: 1 << 20,
  maxInflightMsgs: 256,
  logRetainEntries: 4096,
  logCompactBatch: 1024,
  hibernateAfterTicks: 30,
  maxPendingProposals: 8192,
};

/**
 * A store: the regions this process hosts, one Peer each, sharing one engine and one transport.
 * Ticks every awake peer on a single timer, routes Raft messages by region and peer id, and serves
 * the KV and admin operations (the gRPC layer in `services.ts` is a thin adapter over them).
 */
export class Store {
  readonly storeId: bigint;
  readonly db: Database;
  readonly logger: StoreLogger;
  readonly transport: RaftTransport;
  private readonly peers = new Map<bigint, Peer>();
  /** Regions whose peer on this store was removed, with that peer's id: later messages to it are stale. */
  private readonly tombstones = new Map<bigint, bigint>();
  /** Regions whose peer is being created from a leader's message, with messages that arrived meanwhile. */
  private readonly creating = new Map<bigint, RaftMessage[]>();
  private readonly peerOptions: PeerOptions;
  private readonly commandTimeoutMs: number;
  private ticker: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly startedAt = Date.now();
  private readonly metrics: StoreMetrics;
  private readonly events = new Map<PeerEvent, number>();
  private readonly host: PeerHost;
  private readonly resolveStoreAddress: (storeId: bigint) => string | undefined;
  private readonly faultInjection: boolean;
  /** Addresses operators gave (AddPeer's target_addr) for stores the resolver does not know. */
  private readonly learnedAddresses = new Map<bigint, string>();
  /** Snapshots moving in and out of this store (Raft catch-up and admin installs). */
  readonly snapshots = new SnapshotTracker();
  /** Key latches shared by every region's transactional commands (they share the engine). */
  readonly latches = new Latches();
  /** Split and merge (split-merge.ts). */
  private readonly regionOps: RegionOps;

  private constructor(options: StoreStartOptions) {
    this.storeId = options.storeId;
    this.db = options.db;
    this.logger = options.logger ?? silentStoreLogger;
    this.peerOptions = { ...DEFAULT_PEER_OPTIONS, ...definedOnly(options.raft ?? {}) };
    this.commandTimeoutMs = options.commandTimeoutMs ?? 3000;
    this.resolveStoreAddress = (id) => options.resolveStoreAddress(id) ?? this.learnedAddresses.get(id);
    this.faultInjection = options.faultInjection === true;
    this.metrics = new StoreMetrics(options.registry, this);
    this.transport = new RaftTransport({
      storeId: options.storeId,
      resolveStoreAddress: this.resolveStoreAddress,
      ...(options.registry ? { registry: options.registry } : {}),
      logger: this.logger,
      snapshotTracker: this.snapshots,
    });
    this.transport.onUnreachable = (msg) =>
      this.peers.get(msg.regionId)?.reportUnreachable(msg.toPeer.peerId);
    this.transport.onSnapshotStatus = (msg, status) =>
      this.peers.get(msg.regionId)?.reportSnapshot(msg.toPeer.peerId, status === 'failed');
    this.transport.onStoreStatus = (storeId, status) => {
      if (status !== 'down') return;
      // A quiet region whose leader lived there must notice and elect a new one.
      for (const peer of this.peers.values()) {
        if (peer.hibernating && peer.leader()?.storeId === storeId) peer.wake();
      }
    };
    this.regionOps = new RegionOps(
      {
        storeId: options.storeId,
        db: options.db,
        logger: this.logger,
        peer: (id) => this.peers.get(id),
        peers: () => this.peers.values(),
        openPeer: (id) => this.openPeer(id),
        tombstone: (id) => this.tombstones.get(id),
        forgetPeer: (id, peer, peerId) => {
          if (peer !== undefined && this.peers.get(id) === peer) this.peers.delete(id);
          if ((this.tombstones.get(id) ?? -1n) < peerId) this.tombstones.set(id, peerId);
        },
        withTimeout: (p, ms, what) => this.withTimeout(p, ms, what),
      },
      {
        splitSizeBytes: options.splitSizeBytes ?? DEFAULT_SPLIT_SIZE_BYTES,
        splitCheckIntervalMs: options.splitCheckIntervalMs ?? DEFAULT_SPLIT_CHECK_INTERVAL_MS,
        ...(options.allocIds ? { allocIds: options.allocIds } : {}),
      },
    );
    this.host = {
      storeId: options.storeId,
      db: options.db,
      latches: this.latches,
      admin: this.regionOps,
      logger: this.logger,
      send: (msg) => this.transport.send(msg),
      regionChanged: (peer) => this.onRegionChanged(peer),
      peerRemoved: (peer, reason) => this.onPeerRemoved(peer, reason),
      count: (event, n = 1) => {
        this.events.set(event, (this.events.get(event) ?? 0) + n);
        this.metrics.peerEvents.inc({ event }, n);
      },
    };
  }

  /** Opens every region the engine holds (bootstrapping the given ones on a first start) and starts ticking. */
  static async start(options: StoreStartOptions): Promise<Store> {
    const store = new Store(options);
    try {
      await store.load(options);
    } catch (err) {
      await store.stop();
      throw err;
    }
    return store;
  }

  private async load(options: StoreStartOptions): Promise<void> {
    // The store ident marks a workdir that has been bootstrapped: from then on the topology's
    // regions are never replayed (a store whose last region was removed must stay empty).
    const ident = await options.db.get(storeIdentKey);
    if (ident !== undefined && ident.length === 8 && ident.readBigUInt64BE(0) !== options.storeId) {
      throw new StoreError(
        'FailedPrecondition',
        `this workdir belongs to store ${ident.readBigUInt64BE(0)}, not store ${options.storeId}`,
      );
    }
    for await (const [k, v] of options.db.iterate({ gte: tombstoneRange.lo, lt: tombstoneRange.hi })) {
      this.tombstones.set(Buffer.from(k).readBigUInt64BE(2), v.readBigUInt64BE(0));
    }
    let states = await readRegionStates(options.db);
    if (ident === undefined) {
      const id = Buffer.alloc(8);
      id.writeBigUInt64BE(options.storeId);
      for (const region of options.bootstrapRegions ?? []) {
        if (!region.peers.some((p) => p.storeId === options.storeId)) continue;
        if (states.some((s) => s.region.id === region.id)) continue;
        await PeerStorage.bootstrap(options.db, region);
      }
      await options.db.internal.write([{ cf: 'default', op: 'put', key: storeIdentKey, value: id }], {
        sync: true,
      });
      states = await readRegionStates(options.db);
      this.logger.info({ regions: states.length }, 'bootstrapped regions from the topology');
    } else {
      this.logger.info({ regions: states.length }, 'recovered regions from the workdir');
    }
    // Admin snapshot installs whose AddPeer never reached them leave no hosted peer.
    states = await discardInterruptedInstalls(options.db, states, options.storeId, this.logger);
    for (const state of states) {
      if (state.region.state === RegionState.Tombstone) continue;
      if (!state.region.peers.some((p) => p.storeId === options.storeId)) {
        await this.finishRemoval(state.region, states);
        continue;
      }
      await this.openPeer(state.region.id);
    }
    await this.regionOps.start();
    this.transport.watchStores(this.knownStores());
    const tickMs = options.raft?.tickMs ?? 100;
    this.ticker = setInterval(() => this.tick(), tickMs);
    this.ticker.unref();
  }

  /**
   * A region whose applied configuration no longer lists this store: its removal was applied but
   * the store stopped before destroying the replica. Destroy it now (its data too, unless a live
   * local region covers part of that range since).
   */
  private async finishRemoval(region: RegionMeta, states: readonly { region: RegionMeta }[]): Promise<void> {
    const overlaps = states.some(
      (s) =>
        s.region.id !== region.id &&
        s.region.peers.some((p) => p.storeId === this.storeId) &&
        rangesOverlap(s.region, region),
    );
    const storage = await PeerStorage.open(this.db, region.id, { logger: this.logger });
    await storage.destroy({ keepData: overlaps });
    this.logger.info(
      { region: String(region.id), keptData: overlaps },
      'finished destroying a removed replica',
    );
  }

  // --- KV operations (already validated requests come in through services.ts) ------------------

  /** Validates a request against this store's view of the region and returns its leader peer. */
  leaderFor(ctx: RequestContext, keys: readonly Uint8Array[]): Peer {
    if (this.stopped) throw new StoreError('Unavailable', `store ${this.storeId} is stopping`);
    if (ctx.storeId !== undefined && ctx.storeId !== 0n && ctx.storeId !== this.storeId) {
      throw RegionError.storeNotMatch(ctx.storeId, this.storeId);
    }
    const peer = this.peers.get(ctx.regionId);
    if (!peer || peer.isStopped) {
      throw this.regionOps.goneRegionError(ctx.regionId, keys) ?? RegionError.regionNotFound(ctx.regionId);
    }
    const region = peer.region;
    if (ctx.epoch === undefined || !epochEquals(ctx.epoch, region.epoch)) {
      throw RegionError.epochNotMatch(
        ctx.epoch ?? { version: 0n, confVersion: 0n },
        this.regionOps.currentRegions(region, keys),
      );
    }
    for (const key of keys) {
      if (key.length > 0 && !keyInRegion(key, region)) throw RegionError.keyNotInRegion(key, region);
    }
    if (!peer.isLeader) throw RegionError.notLeader(region.id, peer.leader());
    return peer;
  }

  async write(ctx: RequestContext, requests: WriteRequest[], deadlineMs?: number): Promise<void> {
    const peer = this.leaderFor(
      ctx,
      requests.map((r) => r.key),
    );
    const started = performance.now();
    await this.withTimeout(peer.proposeWrites(requests), deadlineMs, 'write');
    this.regionOps.noteWrite(peer.regionId, requests);
    this.metrics.commandSeconds.observe({ kind: 'write' }, (performance.now() - started) / 1000);
  }

  async get(ctx: RequestContext, key: Uint8Array, deadlineMs?: number): Promise<Buffer | undefined> {
    return (await this.batchGet(ctx, [key], deadlineMs))[0];
  }

  /** Several keys of one region behind one read barrier. */
  async batchGet(
    ctx: RequestContext,
    keys: readonly Uint8Array[],
    deadlineMs?: number,
  ): Promise<(Buffer | undefined)[]> {
    const peer = this.leaderFor(ctx, keys);
    const started = performance.now();
    await this.withTimeout(peer.readBarrier(), deadlineMs, 'read');
    const values = await Promise.all(keys.map((k) => readValue(this.db, k)));
    this.metrics.commandSeconds.observe({ kind: 'read' }, (performance.now() - started) / 1000);
    return values;
  }

  async scan(
    ctx: RequestContext,
    start: Uint8Array,
    end: Uint8Array,
    limit: number,
    deadlineMs?: number,
  ): Promise<{ key: Buffer; value: Buffer }[]> {
    const peer = this.leaderFor(ctx, [start]);
    const started = performance.now();
    await this.withTimeout(peer.readBarrier(), deadlineMs, 'scan');
    const { lo, hi } = clampToRegion(start, end, peer.region);
    const rows = await scanValues(this.db, lo, hi, limit);
    this.metrics.commandSeconds.observe({ kind: 'scan' }, (performance.now() - started) / 1000);
    return rows;
  }

  // --- transactions ------------------------------------------------------------------------------

  /**
   * Proposes a Percolator command through the region's Raft log; resolves with the command's
   * response, computed when the entry is applied (region/epoch/key checks as for raw writes).
   */
  async txnWrite(ctx: RequestContext, cmd: TxnCommand, deadlineMs?: number): Promise<unknown> {
    const peer = this.leaderFor(ctx, txnCommandKeys(cmd));
    if (cmd.type === 'resolveLock' && cmd.req.keys === undefined) {
      // A whole-region resolve: the range is fixed at proposal time (the epoch check at apply
      // time guarantees it is still this region's).
      cmd.req.start = peer.region.startKey;
      cmd.req.end = peer.region.endKey;
    }
    const started = performance.now();
    const response = await this.withTimeout(peer.proposeTxn(cmd), deadlineMs, cmd.type);
    this.regionOps.noteTxn(peer.regionId, cmd);
    this.metrics.commandSeconds.observe({ kind: 'txn_write' }, (performance.now() - started) / 1000);
    return response;
  }

  /**
   * Snapshot reads at `version` after a ReadIndex barrier: a lock that may commit at or below
   * `version` makes them throw `KeyLockedError` (never a dirty read). `resolved` lists start
   * timestamps the reader knows commit after `version`.
   */
  async txnGet(
    ctx: RequestContext,
    keys: readonly Uint8Array[],
    version: bigint,
    resolved: readonly bigint[],
    deadlineMs?: number,
  ): Promise<{ pairs: MvccPair[]; locked?: Error }> {
    const peer = this.leaderFor(ctx, keys);
    const started = performance.now();
    await this.withTimeout(peer.readBarrier(), deadlineMs, 'read');
    const ts = version === 0n ? MAX_TS : version;
    const opts = resolved.length > 0 ? { bypassLocks: resolved } : undefined;
    const pairs: MvccPair[] = [];
    for (const key of keys) {
      let v: MvccValue | undefined;
      try {
        v = await mvccGet(this.db, key, ts, opts);
      } catch (err) {
        if ((err as { code?: string }).code === 'Locked') return { pairs, locked: err as Error };
        throw err;
      }
      if (v) pairs.push({ key: Buffer.from(key), ...v });
    }
    this.metrics.commandSeconds.observe({ kind: 'txn_read' }, (performance.now() - started) / 1000);
    return { pairs };
  }

  async txnScan(
    ctx: RequestContext,
    start: Uint8Array,
    end: Uint8Array,
    limit: number,
    version: bigint,
    resolved: readonly bigint[],
    deadlineMs?: number,
  ): Promise<ScanResult> {
    const peer = this.leaderFor(ctx, [start]);
    const started = performance.now();
    await this.withTimeout(peer.readBarrier(), deadlineMs, 'scan');
    const { lo, hi } = clampToRegion(start, end, peer.region);
    const ts = version === 0n ? MAX_TS : version;
    const result = await mvccScan(
      this.db,
      lo,
      hi,
      ts,
      limit,
      resolved.length > 0 ? { bypassLocks: resolved } : undefined,
    );
    this.metrics.commandSeconds.observe({ kind: 'txn_scan' }, (performance.now() - started) / 1000);
    return result;
  }

  /** Adds the store's gRPC services (NoKV, RaftAdmin, RaftTransport) to a server. */
  addServicesTo(server: grpc.Server): void {
    for (const s of storeServices(this)) server.addService(s.definition, s.implementation);
  }

  // --- admin ----------------------------------------------------------------------------------

  peer(regionId: bigint): Peer | undefined {
    return this.peers.get(regionId);
  }

  /** Faults on what this store sends to `toStoreId` (undefined clears them). Chaos for tests and the lab. */
  setLinkFault(toStoreId: bigint, fault: LinkFault | undefined): void {
    if (!this.faultInjection) {
      throw new StoreError(
        'FailedPrecondition',
        `fault injection is off on store ${this.storeId}; start it with --enable-fault-injection`,
      );
    }
    if (toStoreId === this.storeId || toStoreId === 0n) {
      throw new StoreError('InvalidArgument', `to_store_id must name another store, got ${toStoreId}`);
    }
    if (fault === undefined) this.transport.clearLinkFault(toStoreId);
    else this.transport.setLinkFault(toStoreId, fault);
    this.logger.warn({ to: String(toStoreId), fault: fault ?? 'cleared' }, 'link fault set');
  }

  transferLeader(regionId: bigint, toPeerId: bigint): void {
    const peer = this.peers.get(regionId);
    if (!peer) throw RegionError.regionNotFound(regionId);
    peer.transferLeader(toPeerId);
  }

  async changePeer(
    regionId: bigint,
    kind: 'add-voter' | 'add-learner' | 'remove',
    target: RegionPeer,
    deadlineMs?: number,
  ): Promise<RegionMeta> {
    const peer = this.peers.get(regionId);
    if (!peer) throw RegionError.regionNotFound(regionId);
    if (kind !== 'remove' && this.resolveKnown(target.storeId) === false) {
      throw new StoreError('InvalidArgument', `store ${target.storeId} has no known address`);
    }
    const region = await this.withTimeout(peer.changePeer(kind, target), deadlineMs, 'membership change');
    this.transport.watchStores(this.knownStores());
    return region;
  }

  /**
   * Splits a region this store leads at `splitKey`: it keeps [start, splitKey) and region
   * `newRegionId` (peers `newPeerIds`, in the order of the region's peers) takes the rest.
   * Resolves once the split is applied here. Retrying a split that took effect succeeds.
   */
  splitRegion(
    regionId: bigint,
    splitKey: Uint8Array,
    newRegionId: bigint,
    newPeerIds: readonly bigint[],
    deadlineMs?: number,
  ): Promise<SplitResult> {
    return this.regionOps.splitRegion(regionId, splitKey, newRegionId, newPeerIds, deadlineMs);
  }

  /** First step of merging `sourceId` into its left neighbour `targetId` (this store leads the source). */
  prepareMerge(sourceId: bigint, targetId: bigint, deadlineMs?: number): Promise<PrepareMergeResult> {
    return this.regionOps.prepareMerge(sourceId, targetId, deadlineMs);
  }

  /**
   * Second step (this store leads the target), once every replica of the source applied
   * PrepareMerge at `prepareIndex`. Resolves with the target's new meta.
   */
  commitMerge(
    targetId: bigint,
    source: RegionMeta,
    prepareIndex: bigint,
    deadlineMs?: number,
  ): Promise<RegionMeta> {
    return this.regionOps.commitMerge(targetId, source, prepareIndex, deadlineMs);
  }

  // --- region snapshots, and membership changes with them (region-admin.ts, region-install.ts) ---

  /** Snapshot transfers in flight, then the most recent finished ones. */
  snapshotProgress(): SnapshotTransferView[] {
    return this.snapshots.list();
  }

  /**
   * A snapshot of a region this store leads, generated now (SST payload, snapshot-payload.ts).
   * @throws StoreError `NotFound` / `FailedPrecondition` (not the leader).
   */
  exportRegionSnapshot(regionId: bigint): Promise<ExportedRegionSnapshot> {
    return exportRegionSnapshot(this, regionId);
  }

  /**
   * Installs a region snapshot (header and the whole payload) as a new PENDING peer
   * `header.peerId` here, into an empty peer only, and publishes it. Nothing is left behind when
   * it fails.
   */
  importRegionSnapshot(
    header: RegionSnapshotHeader,
    data: Uint8Array,
    transfer?: SnapshotTransfer,
  ): Promise<RegionMeta> {
    return installRegionSnapshot(this.internals(), header, data, transfer);
  }

  /** Adds a peer with a snapshot to a region this store leads (see region-admin.ts addPeer). */
  addPeer(req: AddPeerRequest): Promise<AddPeerResult> {
    return addPeer(this, this.internals(), req);
  }

  /** Removes a peer from a region this store leads; a peer that is not a member is a no-op. */
  removePeer(regionId: bigint, peerId: bigint, deadlineMs?: number): Promise<RegionMeta> {
    return removePeer(this, regionId, peerId, deadlineMs);
  }

  /** What this store knows of a region (an unknown one: all zero, `known` false). */
  regionRuntimeStatus(regionId: bigint): Promise<RegionRuntimeStatus> {
    return regionRuntimeStatus(this, this.internals(), regionId);
  }

  /** @internal The routing tables and hooks region-install.ts and region-admin.ts work with. */
  internals(): StoreInternals {
    const store = this;
    return {
      storeId: this.storeId,
      db: this.db,
      logger: this.logger,
      get stopped() {
        return store.stopped;
      },
      peers: this.peers,
      tombstones: this.tombstones,
      creating: this.creating,
      openPeer: async (id) => {
        const peer = await this.openPeer(id);
        this.transport.watchStores(this.knownStores());
        return peer;
      },
      route: (m) => this.route(m),
      resolveStoreAddress: (id) => this.resolveStoreAddress(id),
      learnStoreAddress: (id, address) => {
        this.learnedAddresses.set(id, address);
      },
    };
  }

  regionStatuses(): RegionStatusView[] {
    return [...this.peers.values()]
      .sort((a, b) => (a.regionId < b.regionId ? -1 : 1))
      .map((p) => {
        const s = p.status();
        return {
          regionId: String(s.regionId),
          peerId: String(s.peerId),
          role: s.role,
          leaderPeerId: String(s.leaderPeerId),
          term: String(s.term),
          commitIndex: String(s.commitIndex),
          appliedIndex: String(s.appliedIndex),
          lastIndex: String(s.lastIndex),
          startKey: Buffer.from(s.region.startKey).toString('utf8'),
          endKey: Buffer.from(s.region.endKey).toString('utf8'),
          epoch: { version: String(s.region.epoch.version), confVersion: String(s.region.epoch.confVersion) },
          peers: s.region.peers.map((x) => ({
            storeId: String(x.storeId),
            peerId: String(x.peerId),
            learner: x.learner,
          })),
          hibernating: s.hibernating,
        };
      });
  }

  /** A JSON-safe snapshot of the store's state and counters. */
  stats(): Record<string, unknown> {
    let leaders = 0;
    let hibernating = 0;
    for (const p of this.peers.values()) {
      if (p.isLeader) leaders++;
      if (p.hibernating) hibernating++;
    }
    return {
      storeId: String(this.storeId),
      uptimeMs: Date.now() - this.startedAt,
      regions: this.peers.size,
      leaders,
      hibernating,
      tombstones: this.tombstones.size,
      events: Object.fromEntries(this.events),
      transport: this.transport.stats(),
      snapshots: this.snapshots.stats(),
    };
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.ticker) clearInterval(this.ticker);
    this.regionOps.stop();
    for (const p of this.peers.values()) p.stop('store stopping');
    await this.transport.close();
    // Let Ready loops that are mid-write finish before the caller closes the engine.
    await Promise.all([...this.peers.values()].map((p) => p.idle()));
    this.peers.clear();
  }

  // --- Raft message routing (the transport's server side calls these) ----------------------------

  onRaftMessages(messages: readonly RaftMessage[]): void {
    for (const m of messages) this.route(m);
  }

  async onSnapshot(message: RaftMessage): Promise<void> {
    this.route(message);
  }

  private route(m: RaftMessage): void {
    if (this.stopped) return;
    if (m.toPeer.storeId !== this.storeId) {
      this.metrics.droppedMessages.inc({ reason: 'wrong_store' });
      return;
    }
    const peer = this.peers.get(m.regionId);
    if (m.tombstone === true) {
      if (peer?.peerId === m.toPeer.peerId) this.onTombstone(peer, m);
      return;
    }
    if (peer) {
      if (peer.peerId !== m.toPeer.peerId) this.metrics.droppedMessages.inc({ reason: 'stale_peer' });
      else if (removedSender(peer, m)) this.replyTombstone(peer, m);
      else peer.step(m);
      return;
    }
    const pending = this.creating.get(m.regionId);
    if (pending) {
      pending.push(m);
      return;
    }
    const removed = this.tombstones.get(m.regionId);
    if (removed !== undefined && m.toPeer.peerId <= removed) {
      this.metrics.droppedMessages.inc({ reason: 'tombstone' });
      return;
    }
    // Only a leader's replication creates a replica here (a vote request must not).
    const creates =
      m.message.type === MessageType.App ||
      m.message.type === MessageType.Heartbeat ||
      m.message.type === MessageType.Snap;
    if (!creates) {
      this.metrics.droppedMessages.inc({ reason: 'unknown_region' });
      return;
    }
    const refused = this.regionOps.refuseCreate(m);
    if (refused !== undefined) {
      this.metrics.droppedMessages.inc({ reason: refused });
      return;
    }
    this.creating.set(m.regionId, [m]);
    void this.createPeerFromMessage(m);
  }

  /**
   * The sender was removed from the region but missed the change (it was cut off when the change
   * committed, and the leader no longer talks to it): it is told so instead of being heard.
   */
  private replyTombstone(peer: Peer, m: RaftMessage): void {
    this.metrics.droppedMessages.inc({ reason: 'removed_sender' });
    const region = peer.region;
    this.transport.send({
      regionId: m.regionId,
      fromPeer: m.toPeer,
      toPeer: m.fromPeer,
      epoch: region.epoch,
      message: {
        type: MessageType.HeartbeatResp,
        to: m.fromPeer.peerId,
        from: m.toPeer.peerId,
        term: 0n,
        logTerm: 0n,
        index: 0n,
        entries: [],
        commit: 0n,
        reject: false,
        rejectHint: 0n,
        context: new Uint8Array(0),
      },
      startKey: region.startKey,
      endKey: region.endKey,
      hibernate: false,
      tombstone: true,
    });
  }

  /**
   * A peer of a newer configuration of the region says it does not list this peer: it was removed
   * and never applied the change. It is destroyed (and tombstoned) as if it had.
   */
  private onTombstone(peer: Peer, m: RaftMessage): void {
    if (peer.isStopped || peer.region.state === RegionState.Pending) return;
    if (m.epoch.confVersion <= peer.region.epoch.confVersion) return;
    this.logger.warn(
      {
        region: String(peer.regionId),
        peer: String(peer.peerId),
        confVersion: String(peer.region.epoch.confVersion),
        from: String(m.fromPeer.peerId),
        theirConfVersion: String(m.epoch.confVersion),
      },
      'this peer was removed from the region without applying the change; destroying it',
    );
    this.onPeerRemoved(peer, 'removed from the region (told by a peer of a newer configuration)');
  }

  private async createPeerFromMessage(m: RaftMessage): Promise<void> {
    try {
      const region: RegionMeta = {
        id: m.regionId,
        startKey: m.startKey,
        endKey: m.endKey,
        epoch: m.epoch,
        peers: [m.fromPeer, m.toPeer],
        state: RegionState.Running,
      };
      await PeerStorage.createUninitialized(this.db, region);
      await this.openPeer(m.regionId);
      this.logger.info(
        { region: String(m.regionId), peer: String(m.toPeer.peerId), from: String(m.fromPeer.peerId) },
        'created a replica on a leader’s request',
      );
    } catch (err) {
      this.logger.error({ region: String(m.regionId), err: (err as Error).message }, 'cannot create replica');
    } finally {
      const queued = this.creating.get(m.regionId) ?? [];
      this.creating.delete(m.regionId);
      for (const q of queued) this.route(q);
    }
  }

  private async openPeer(regionId: bigint): Promise<Peer> {
    let peer: Peer | undefined;
    const storage = await PeerStorage.open(this.db, regionId, {
      logger: this.logger,
      onSnapshotReady: () => peer?.wake(),
    });
    peer = new Peer(this.host, storage, this.peerOptions);
    this.peers.set(regionId, peer);
    return peer;
  }

  private tick(): void {
    const started = performance.now();
    for (const peer of this.peers.values()) if (!peer.hibernating) peer.tick();
    this.metrics.tickSeconds.observe((performance.now() - started) / 1000);
  }

  private onRegionChanged(peer: Peer): void {
    this.logger.info(
      {
        region: String(peer.regionId),
        epoch: `${peer.region.epoch.version}/${peer.region.epoch.confVersion}`,
        peers: peer.region.peers.map((p) => `${p.storeId}:${p.peerId}${p.learner ? 'L' : ''}`).join(','),
      },
      'region changed',
    );
    this.transport.watchStores(this.knownStores());
    this.regionOps.regionChanged(peer);
  }

  private onPeerRemoved(peer: Peer, reason: string): void {
    if (this.peers.get(peer.regionId) !== peer) return;
    this.peers.delete(peer.regionId);
    peer.stop(reason);
    const removed = reason.startsWith('removed');
    this.logger.warn({ region: String(peer.regionId), peer: String(peer.peerId), reason }, 'peer stopped');
    if (!removed) return; // a failed peer keeps its state: a restart recovers it
    this.tombstones.set(peer.regionId, peer.peerId);
    const tomb = Buffer.alloc(8);
    tomb.writeBigUInt64BE(peer.peerId);
    void peer
      .idle()
      .then(() =>
        this.db.internal.write(
          [{ cf: 'default', op: 'put', key: tombstoneKey(peer.regionId), value: tomb }],
          {
            sync: true,
          },
        ),
      )
      .then(() => peer.storage.destroy())
      .catch((err: Error) =>
        this.logger.error(
          { region: String(peer.regionId), err: err.message },
          'cannot destroy removed replica',
        ),
      );
  }

  private knownStores(): bigint[] {
    const ids = new Set<bigint>();
    for (const p of this.peers.values())
      for (const x of p.region.peers) if (x.storeId !== this.storeId) ids.add(x.storeId);
    return [...ids];
  }

  private resolveKnown(storeId: bigint): boolean {
    return storeId === this.storeId || this.resolveStoreAddress(storeId) !== undefined;
  }

  private withTimeout<T>(promise: Promise<T>, deadlineMs: number | undefined, what: string): Promise<T> {
    const ms = Math.max(0, Math.min(this.commandTimeoutMs, deadlineMs ?? Number.POSITIVE_INFINITY));
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(new StoreError('DeadlineExceeded', `${what} did not finish within ${Math.round(ms)} ms`)),
        ms,
      );
      promise.then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });
  }
}

/**
 * Whether `m` comes from a peer that `peer`'s region no longer lists, sent from an older
 * configuration: the sender was removed. Only a region whose peer list is its configuration can
 * tell (not an uninitialized replica, which knows only its leader, nor a PENDING install).
 */
function removedSender(peer: Peer, m: RaftMessage): boolean {
  const region = peer.region;
  if (region.state === RegionState.Pending || !peer.storage.isInitialized()) return false;
  if (m.epoch.confVersion >= region.epoch.confVersion) return false;
  return !region.peers.some((p) => p.peerId === m.fromPeer.peerId);
}

function rangesOverlap(a: RegionMeta, b: RegionMeta): boolean {
  const aEndsBeforeB = a.endKey.length > 0 && Buffer.compare(a.endKey, b.startKey) <= 0;
  const bEndsBeforeA = b.endKey.length > 0 && Buffer.compare(b.endKey, a.startKey) <= 0;
  return !aEndsBeforeB && !bEndsBeforeA;
}

/** [start, end) ∩ the region's range (empty end = +inf on both sides). */
function clampToRegion(
  start: Uint8Array,
  end: Uint8Array,
  region: RegionMeta,
): { lo: Uint8Array; hi: Uint8Array } {
  const lo = Buffer.compare(start, region.startKey) > 0 ? start : region.startKey;
  let hi = region.endKey;
  if (end.length > 0 && (hi.length === 0 || Buffer.compare(end, hi) < 0)) hi = end;
  return { lo, hi };
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

class StoreMetrics {
  readonly peerEvents: Counter<'event'>;
  readonly droppedMessages: Counter<'reason'>;
  readonly commandSeconds: Histogram<'kind'>;
  readonly tickSeconds: Histogram;

  constructor(registry: Registry | undefined, store: Store) {
    const registers = registry ? [registry] : [];
    this.peerEvents = new Counter({
      name: 'nokv_store_peer_events_total',
      help: 'Peer lifecycle and pipeline events (proposals, reads, applied entries, hibernation ...)',
      labelNames: ['event'],
      registers,
    });
    this.droppedMessages = new Counter({
      name: 'nokv_store_dropped_raft_messages_total',
      help: 'Incoming Raft messages the store dropped, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.commandSeconds = new Histogram({
      name: 'nokv_store_command_seconds',
      help: 'KV command latency on the leader (write: propose to apply; read/scan: barrier and read)',
      labelNames: ['kind'],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 3],
      registers,
    });
    this.tickSeconds = new Histogram({
      name: 'nokv_store_tick_seconds',
      help: 'Time to tick every awake peer once',
      buckets: [0.00001, 0.0001, 0.001, 0.01, 0.1],
      registers,
    });
    new Gauge({
      name: 'nokv_store_regions',
      help: 'Regions hosted, leaders and quiet (hibernating) regions',
      labelNames: ['kind'],
      registers,
      collect() {
        const s = store.stats();
        this.set({ kind: 'hosted' }, Number(s.regions));
        this.set({ kind: 'leader' }, Number(s.leaders));
        this.set({ kind: 'hibernating' }, Number(s.hibernating));
      },
    });
  }
}
