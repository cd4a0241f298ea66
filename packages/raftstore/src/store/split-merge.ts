import type { Database, InternalWrite } from '@nokv/engine';
import { isDeleteRecord } from '@nokv/engine';
import {
  decodeRegionLocalState,
  encodeHardState,
  encodeRegionLocalState,
  encodeSnapshot,
  epochEquals,
  keyInRegion,
  type RaftMessage,
  type RegionMeta,
  RegionState,
} from '@nokv/proto';
import { confStateOfRegion, RAFT_INIT_INDEX, RAFT_INIT_TERM } from '../peer-storage/index.js';
import type { AdminCommand, RaftCommand, TxnCommand, WriteRequest } from './command.js';
import { RegionError, StoreError, showKey } from './errors.js';
import {
  dataRange,
  mergeStateKey,
  raftHardStateKey,
  raftRange,
  raftSnapshotKey,
  regionStateKey,
  tombstoneKey,
  userKeyOf,
} from './keys.js';
import type { StoreLogger } from './logger.js';
import type { Peer } from './peer.js';

// Region split and merge as Raft admin commands (nokv.cmd.v1.AdminCmd), and the automatic split by
// size. All regions of a store share one engine keyspace ('z' ‖ user key), so neither moves data:
//
// * Split hands [split_key, end) to a new region. Every replica applies the split at the same log
//   position, so the child's initial state (the parent's data at that entry, Raft state at
//   RAFT_INIT_INDEX/TERM) is identical everywhere, exactly like a region of the topology file. The
//   child's state is written in the parent's apply batch (one batch with the parent's applied
//   index), so a crash leaves either both or neither.
// * Merge is two entries. PrepareMerge on the source (the right neighbour) makes its data final:
//   state MERGING, version +1, so every write proposed before it fails the epoch check at apply and
//   none is accepted after it. Once every source replica applied it (the orchestrator checks),
//   CommitMerge on the target (the left neighbour) extends the target over the source's range and,
//   in the same batch, deletes the local source replica's Raft state and tombstones it. Its data
//   stays: it is the target's now.
//
// Admin batches are fsynced: other stores act on them (the merge orchestrator reads applied
// indexes), so they must not roll back in a crash.

export interface SplitResult {
  left: RegionMeta;
  right: RegionMeta;
}

export interface PrepareMergeResult {
  source: RegionMeta;
  /** The log index of the PrepareMerge entry on the source. */
  prepareIndex: bigint;
}

/** What applying an admin entry does: refused, or a new region meta, writes and a follow-up. */
export type AdminApplyOutcome =
  | { error: Error }
  | {
      region: RegionMeta;
      /** Written (synced) in the apply batch of the entry, with its applied index. */
      writes: InternalWrite[];
      /** The proposer's answer. */
      value: unknown;
      /** Runs once the batch is durable (starts or forgets peers); never throws. */
      after: () => Promise<void>;
    };

/** Applies split and merge entries for a peer (the store's RegionOps). */
export interface AdminApplier {
  /** The regions an EpochNotMatch for `region` names (it and the regions split off it). */
  currentRegions(region: RegionMeta, keys: readonly Uint8Array[]): RegionMeta[];
  applyAdmin(
    peer: Peer,
    cmd: RaftCommand,
    admin: AdminCommand,
    region: RegionMeta,
    index: bigint,
  ): Promise<AdminApplyOutcome>;
}

/** What split and merge need from the store (closures over its private state). */
export interface RegionOpsHost {
  readonly storeId: bigint;
  readonly db: Database;
  readonly logger: StoreLogger;
  peer(regionId: bigint): Peer | undefined;
  peers(): Iterable<Peer>;
  /** Opens a region whose state is in the engine and routes to it. */
  openPeer(regionId: bigint): Promise<Peer>;
  /** The peer id this store's replica of a region was removed with, if it was. */
  tombstone(regionId: bigint): bigint | undefined;
  /** Drops a merged replica from routing (if `peer` is still the routed one) and tombstones it in memory. */
  forgetPeer(regionId: bigint, peer: Peer | undefined, tombstonePeerId: bigint): void;
  withTimeout<T>(promise: Promise<T>, deadlineMs: number | undefined, what: string): Promise<T>;
}

export interface AutoSplitOptions {
  /** Approximate region size that triggers a split (0 = never). */
  splitSizeBytes: number;
  splitCheckIntervalMs: number;
  /** New region and peer ids (the coordinator's AllocId); without it there is no automatic split. */
  allocIds?: (count: number) => Promise<bigint[]>;
}

export const DEFAULT_SPLIT_SIZE_BYTES = 96 * 1024 * 1024;
export const DEFAULT_SPLIT_CHECK_INTERVAL_MS = 10_000;
/** Column families of the transaction layer, which count towards a region's size. */
const TXN_CFS = ['lock', 'write', 'data'] as const;
/** Right neighbours named in an EpochNotMatch (see `currentRegions`). */
const MAX_NEIGHBOURS = 16;

function put(key: Uint8Array, value: Uint8Array): InternalWrite {
  return { cf: 'default', op: 'put', key, value };
}

function del(key: Uint8Array): InternalWrite {
  return { cf: 'default', op: 'delete', key };
}

function u64Bytes(...values: bigint[]): Buffer {
  const b = Buffer.alloc(8 * values.length);
  values.forEach((v, i) => {
    b.writeBigUInt64BE(v, 8 * i);
  });
  return b;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.compare(a, b) === 0;
}

/** Whether `outer` covers all of `inner`'s range (empty start = -inf, empty end = +inf). */
export function rangeCovers(
  outer: Pick<RegionMeta, 'startKey' | 'endKey'>,
  inner: Pick<RegionMeta, 'startKey' | 'endKey'>,
): boolean {
  if (Buffer.compare(outer.startKey, inner.startKey) > 0) return false;
  if (outer.endKey.length === 0) return true;
  return inner.endKey.length > 0 && Buffer.compare(inner.endKey, outer.endKey) <= 0;
}

export function rangesOverlap(
  a: Pick<RegionMeta, 'startKey' | 'endKey'>,
  b: Pick<RegionMeta, 'startKey' | 'endKey'>,
): boolean {
  const aBeforeB = a.endKey.length > 0 && Buffer.compare(a.endKey, b.startKey) <= 0;
  const bBeforeA = b.endKey.length > 0 && Buffer.compare(b.endKey, a.startKey) <= 0;
  return !aBeforeB && !bBeforeA;
}

function storeSet(region: RegionMeta): string {
  return [...new Set(region.peers.map((p) => p.storeId))]
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .join(',');
}

/** The Raft and region state a region starts from (as `PeerStorage.bootstrap` writes it). */
export function initialStateWrites(region: RegionMeta): InternalWrite[] {
  return [
    put(
      regionStateKey(region.id),
      encodeRegionLocalState({
        region,
        appliedIndex: RAFT_INIT_INDEX,
        appliedTerm: RAFT_INIT_TERM,
        truncatedIndex: RAFT_INIT_INDEX,
        truncatedTerm: RAFT_INIT_TERM,
      }),
    ),
    put(
      raftHardStateKey(region.id),
      encodeHardState({ term: RAFT_INIT_TERM, vote: 0n, commit: RAFT_INIT_INDEX }),
    ),
    put(
      raftSnapshotKey(region.id),
      encodeSnapshot({
        data: new Uint8Array(0),
        metadata: { index: RAFT_INIT_INDEX, term: RAFT_INIT_TERM, confState: confStateOfRegion(region) },
      }),
    ),
  ];
}

/** Bytes a batch of raw writes adds (an estimate for the automatic split). */
export function writeBytes(requests: readonly WriteRequest[]): number {
  let n = 0;
  for (const r of requests) n += r.key.length + (r.op === 'put' ? r.value.length : 0);
  return n;
}

function txnBytes(cmd: TxnCommand): number {
  if (cmd.type !== 'prewrite') return 0;
  let n = 0;
  for (const m of cmd.req.mutations) n += m.key.length + (m.value?.length ?? 0);
  return n;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * A store's split and merge machinery: proposes the admin commands (leader side), applies them
 * (every replica), keeps the routing rules that go with them, and runs the automatic split.
 */
export class RegionOps implements AdminApplier {
  /** Children whose state a split is writing: messages for them wait for the split, not create them. */
  private readonly splitChildren = new Map<bigint, RegionMeta>();
  /** Merged sources being stopped and deleted here. */
  private readonly destroying = new Set<bigint>();
  /** Bytes written through this store's leaders since each region's last size check. */
  private readonly written = new Map<bigint, number>();
  /** Each region's size at its last check. */
  private readonly sizes = new Map<bigint, number>();
  private timer: NodeJS.Timeout | undefined;
  private checking = false;
  private stopped = false;

  constructor(
    private readonly host: RegionOpsHost,
    private readonly auto: AutoSplitOptions,
  ) {}

  private get autoSplitEnabled(): boolean {
    return this.auto.splitSizeBytes > 0 && this.auto.allocIds !== undefined;
  }

  /** After the store opened its regions: finishes merges a crash interrupted, starts size checks. */
  async start(): Promise<void> {
    await this.dropMergedSources();
    if (this.autoSplitEnabled) {
      this.timer = setInterval(() => void this.checkSizes(), Math.max(10, this.auto.splitCheckIntervalMs));
      this.timer.unref();
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
  }

  // --- proposals (the leader's store) -------------------------------------------------------------

  /** Splits a region at `splitKey`; resolves once the split is applied on this (the leader's) store. */
  async splitRegion(
    regionId: bigint,
    splitKey: Uint8Array,
    newRegionId: bigint,
    newPeerIds: readonly bigint[],
    deadlineMs?: number,
  ): Promise<SplitResult> {
    const peer = this.livePeer(regionId);
    const region = peer.region;
    // A retry of a split that took effect (its answer was lost) succeeds again.
    const child = this.host.peer(newRegionId);
    if (
      child &&
      !child.isStopped &&
      bytesEqual(child.region.startKey, splitKey) &&
      bytesEqual(region.endKey, splitKey)
    ) {
      return { left: region, right: child.region };
    }
    if (splitKey.length === 0) throw new StoreError('InvalidArgument', 'split key is empty');
    if (!keyInRegion(splitKey, region)) throw RegionError.keyNotInRegion(splitKey, region);
    if (bytesEqual(splitKey, region.startKey)) {
      throw new StoreError(
        'InvalidArgument',
        `split key ${showKey(splitKey)} is the start of region ${regionId}; nothing would be left of it`,
      );
    }
    if (region.state === RegionState.Merging) {
      throw new StoreError('FailedPrecondition', `region ${regionId} is merging; it cannot split`);
    }
    if (newRegionId === 0n || newRegionId === regionId || child !== undefined) {
      throw new StoreError('InvalidArgument', `new region id ${newRegionId} is not free`);
    }
    if (newPeerIds.length !== region.peers.length) {
      throw new StoreError(
        'InvalidArgument',
        `region ${regionId} has ${region.peers.length} peers; ${newPeerIds.length} new peer ids given`,
      );
    }
    if (newPeerIds.includes(0n) || new Set(newPeerIds).size !== newPeerIds.length) {
      throw new StoreError('InvalidArgument', 'new peer ids must be distinct and non-zero');
    }
    const { applied } = peer.proposeAdmin({
      type: 'split',
      splitKey: Buffer.from(splitKey),
      newRegionId,
      newPeerIds: [...newPeerIds],
    });
    return (await this.host.withTimeout(applied, deadlineMs, 'split')) as SplitResult;
  }

  /**
   * Proposes PrepareMerge on the source (this store must lead it), after checking against this
   * store's view that the target is its left neighbour on the same stores. Idempotent: a source
   * already merging into `targetId` answers with its recorded prepare index.
   */
  async prepareMerge(sourceId: bigint, targetId: bigint, deadlineMs?: number): Promise<PrepareMergeResult> {
    const peer = this.livePeer(sourceId);
    const source = peer.region;
    if (source.state === RegionState.Merging) {
      const recorded = await this.mergeState(sourceId);
      if (recorded?.targetId === targetId) return { source, prepareIndex: recorded.prepareIndex };
      throw new StoreError(
        'FailedPrecondition',
        `region ${sourceId} is already merging into region ${recorded?.targetId ?? 'unknown'}`,
      );
    }
    if (targetId === 0n || targetId === sourceId) {
      throw new StoreError('InvalidArgument', 'target region must be another region');
    }
    if (!peer.isLeader) throw RegionError.notLeader(sourceId, peer.leader());
    const target = this.host.peer(targetId);
    if (!target || target.isStopped) {
      throw new StoreError('FailedPrecondition', `target region ${targetId} is not hosted on this store`);
    }
    this.checkMergeable(target.region, source);
    const { index, applied } = peer.proposeAdmin({ type: 'prepareMerge', targetRegionId: targetId });
    const result = (await this.host.withTimeout(applied, deadlineMs, 'prepare merge')) as PrepareMergeResult;
    return { source: result.source, prepareIndex: index };
  }

  /**
   * Proposes CommitMerge on the target (this store must lead it). The caller has made sure every
   * replica of the source applied PrepareMerge; this store's own replica is checked again.
   * Idempotent: a target that already covers the source's range answers with its meta.
   */
  async commitMerge(
    targetId: bigint,
    source: RegionMeta,
    prepareIndex: bigint,
    deadlineMs?: number,
  ): Promise<RegionMeta> {
    const peer = this.livePeer(targetId);
    const target = peer.region;
    const local = this.host.peer(source.id);
    if (rangeCovers(target, source) && (!local || local.isStopped)) return target;
    if (source.state !== RegionState.Merging) {
      throw new StoreError('FailedPrecondition', `region ${source.id} has not prepared a merge`);
    }
    this.checkMergeable(target, source);
    if (local && !local.isStopped) {
      const s = local.region;
      if (s.state !== RegionState.Merging || !epochEquals(s.epoch, source.epoch)) {
        throw new StoreError(
          'FailedPrecondition',
          `this store's replica of region ${source.id} has not applied that PrepareMerge`,
        );
      }
      if (local.storage.appliedIndex < prepareIndex) {
        throw new StoreError(
          'FailedPrecondition',
          `this store's replica of region ${source.id} applied ${local.storage.appliedIndex} < prepare index ${prepareIndex}`,
        );
      }
    }
    const { applied } = peer.proposeAdmin({
      type: 'commitMerge',
      source,
      sourcePrepareIndex: prepareIndex,
    });
    return (await this.host.withTimeout(applied, deadlineMs, 'commit merge')) as RegionMeta;
  }

  private livePeer(regionId: bigint): Peer {
    if (this.stopped) throw new StoreError('Unavailable', `store ${this.host.storeId} is stopping`);
    const peer = this.host.peer(regionId);
    if (!peer || peer.isStopped) throw RegionError.regionNotFound(regionId);
    return peer;
  }

  /** A target and source that can merge: target is the source's left neighbour, on the same stores. */
  private checkMergeable(target: RegionMeta, source: RegionMeta): void {
    if (target.state === RegionState.Merging) {
      throw new StoreError('FailedPrecondition', `target region ${target.id} is merging itself`);
    }
    if (target.endKey.length === 0 || !bytesEqual(target.endKey, source.startKey)) {
      throw new StoreError(
        'FailedPrecondition',
        `region ${target.id} [${showKey(target.startKey)}, ${showKey(target.endKey)}) is not the left neighbour of region ${source.id} [${showKey(source.startKey)}, ${showKey(source.endKey)})`,
      );
    }
    if (storeSet(target) !== storeSet(source)) {
      throw new StoreError(
        'FailedPrecondition',
        `regions ${target.id} and ${source.id} are on different stores (${storeSet(target)} vs ${storeSet(source)}); move peers first`,
      );
    }
  }

  private async mergeState(
    regionId: bigint,
  ): Promise<{ targetId: bigint; prepareIndex: bigint } | undefined> {
    const raw = await this.host.db.get(mergeStateKey(regionId));
    if (raw === undefined || raw.length !== 16) return undefined;
    return { targetId: raw.readBigUInt64BE(0), prepareIndex: raw.readBigUInt64BE(8) };
  }

  // --- routing --------------------------------------------------------------------------------------

  /**
   * Why a message for a region this store does not host must not create a replica here, if so: the
   * region is a split child this store is about to create, or its range overlaps a live local
   * replica (this store's own split of that replica will create it; a replica created from a
   * message would hold the same keys twice).
   */
  refuseCreate(m: RaftMessage): string | undefined {
    if (this.splitChildren.has(m.regionId)) return 'split_pending';
    for (const p of this.host.peers()) {
      if (!p.isStopped && rangesOverlap(p.region, m)) return 'overlaps_local_region';
    }
    return undefined;
  }

  /**
   * The regions to name in an EpochNotMatch for `region`: it, the local regions now holding `keys`,
   * and the chain of local regions to its right. A split leaves the parent the left part, so the
   * children of every split the caller missed are in that chain: the caller's routing table gets
   * the parent's whole old range back, not a hole.
   */
  currentRegions(region: RegionMeta, keys: readonly Uint8Array[]): RegionMeta[] {
    const out = [region];
    const add = (r: RegionMeta | undefined) => {
      if (r && !out.some((x) => x.id === r.id)) out.push(r);
    };
    for (const k of keys) {
      if (k.length > 0 && !keyInRegion(k, region)) add(this.liveRegionFor(k));
    }
    let end = region.endKey;
    for (let i = 0; i < MAX_NEIGHBOURS && end.length > 0; i++) {
      const next = this.liveRegionFor(end);
      if (!next || !bytesEqual(next.startKey, end)) break;
      add(next);
      end = next.endKey;
    }
    return out;
  }

  /**
   * For a request to a region that was merged away (or removed) here: an EpochNotMatch naming the
   * local regions that hold its keys now, so a client without a coordinator still finds them.
   */
  goneRegionError(regionId: bigint, keys: readonly Uint8Array[]): RegionError | undefined {
    if (this.host.tombstone(regionId) === undefined) return undefined;
    const regions: RegionMeta[] = [];
    for (const k of keys) {
      const r = this.liveRegionFor(k);
      if (r && !regions.some((x) => x.id === r.id)) regions.push(r);
    }
    if (regions.length === 0) return undefined;
    return RegionError.epochNotMatch({ version: 0n, confVersion: 0n }, regions);
  }

  private liveRegionFor(key: Uint8Array): RegionMeta | undefined {
    for (const p of this.host.peers()) {
      if (!p.isStopped && p.storage.isInitialized() && keyInRegion(key, p.region)) return p.region;
    }
    // A split child between its parent's apply and its peer's start.
    for (const r of this.splitChildren.values()) if (keyInRegion(key, r)) return r;
    return undefined;
  }

  /** A region's meta changed (snapshot, membership, split, merge). */
  regionChanged(peer: Peer): void {
    // A target that took a source's range by snapshot (it missed the CommitMerge entry) leaves the
    // local source replica behind.
    if (peer.region.state !== RegionState.Merging) void this.dropMergedSources();
  }

  // --- apply (every replica) ------------------------------------------------------------------------

  async applyAdmin(
    peer: Peer,
    cmd: RaftCommand,
    admin: AdminCommand,
    region: RegionMeta,
    index: bigint,
  ): Promise<AdminApplyOutcome> {
    // Admin commands depend on the peers (split) and the range (all): both parts must match.
    if (!epochEquals(cmd.epoch, region.epoch)) {
      return { error: RegionError.epochNotMatch(cmd.epoch, [region]) };
    }
    switch (admin.type) {
      case 'split':
        return this.applySplit(peer, admin, region);
      case 'prepareMerge':
        return this.applyPrepareMerge(admin, region, index);
      case 'commitMerge':
        return this.applyCommitMerge(peer, admin, region);
    }
  }

  private async applySplit(
    parent: Peer,
    cmd: Extract<AdminCommand, { type: 'split' }>,
    region: RegionMeta,
  ): Promise<AdminApplyOutcome> {
    const refuse = (why: string): AdminApplyOutcome => ({
      error: new StoreError('FailedPrecondition', `region ${region.id}: split refused: ${why}`),
    });
    const key = cmd.splitKey;
    if (region.state === RegionState.Merging) return refuse('the region is merging');
    if (key.length === 0 || !keyInRegion(key, region) || bytesEqual(key, region.startKey)) {
      return { error: RegionError.keyNotInRegion(key, region) };
    }
    const ids = cmd.newPeerIds;
    if (cmd.newRegionId === 0n || cmd.newRegionId === region.id) return refuse('bad new region id');
    if (ids.length !== region.peers.length || ids.includes(0n) || new Set(ids).size !== ids.length) {
      return refuse('new peer ids do not match the peers');
    }
    const left: RegionMeta = {
      ...region,
      endKey: key,
      epoch: { ...region.epoch, version: region.epoch.version + 1n },
    };
    const right: RegionMeta = {
      id: cmd.newRegionId,
      startKey: key,
      endKey: region.endKey,
      epoch: { version: 1n, confVersion: 1n },
      peers: region.peers.map((p, i) => ({ storeId: p.storeId, peerId: ids[i]!, learner: p.learner })),
      state: RegionState.Running,
    };
    // A replay after the child came to exist otherwise (a snapshot from its leader, or a split
    // already applied before a restart) must not reset it.
    const exists =
      this.host.peer(right.id) !== undefined ||
      this.host.tombstone(right.id) !== undefined ||
      (await this.host.db.get(regionStateKey(right.id))) !== undefined;
    if (!exists) this.splitChildren.set(right.id, right);
    return {
      region: left,
      writes: exists ? [] : initialStateWrites(right),
      value: { left, right } satisfies SplitResult,
      after: async () => {
        this.sizes.delete(region.id);
        this.written.delete(region.id);
        this.host.logger.info(
          {
            region: String(region.id),
            child: String(right.id),
            splitKey: showKey(key),
            version: String(left.epoch.version),
            created: !exists,
          },
          'region split',
        );
        if (exists) return;
        try {
          const child = await this.host.openPeer(right.id);
          // The parent's leader starts the child's first election at once rather than after an
          // election timeout (the other replicas create their child when they apply the split).
          if (parent.isLeader && !parent.isStopped) child.campaign();
        } catch (err) {
          this.host.logger.error(
            { region: String(right.id), err: (err as Error).message },
            'cannot start the region a split created (a restart recovers it)',
          );
        } finally {
          this.splitChildren.delete(right.id);
        }
      },
    };
  }

  private applyPrepareMerge(
    cmd: Extract<AdminCommand, { type: 'prepareMerge' }>,
    region: RegionMeta,
    index: bigint,
  ): AdminApplyOutcome {
    if (region.state === RegionState.Merging) {
      return {
        error: new StoreError('FailedPrecondition', `region ${region.id} is already merging`),
      };
    }
    if (cmd.targetRegionId === 0n || cmd.targetRegionId === region.id) {
      return { error: new StoreError('FailedPrecondition', 'merge target must be another region') };
    }
    const source: RegionMeta = {
      ...region,
      state: RegionState.Merging,
      epoch: { ...region.epoch, version: region.epoch.version + 1n },
    };
    return {
      region: source,
      writes: [put(mergeStateKey(region.id), u64Bytes(cmd.targetRegionId, index))],
      value: { source, prepareIndex: index } satisfies PrepareMergeResult,
      after: async () => {
        this.host.logger.info(
          { region: String(region.id), target: String(cmd.targetRegionId), prepareIndex: String(index) },
          'region prepared to merge; it refuses writes from now on',
        );
      },
    };
  }

  private async applyCommitMerge(
    target: Peer,
    cmd: Extract<AdminCommand, { type: 'commitMerge' }>,
    region: RegionMeta,
  ): Promise<AdminApplyOutcome> {
    const source = cmd.source;
    const refuse = (why: string): AdminApplyOutcome => ({
      error: new StoreError('FailedPrecondition', `region ${region.id}: merge refused: ${why}`),
    });
    if (region.state === RegionState.Merging) return refuse('the target is merging itself');
    if (source.id === 0n || source.id === region.id) return refuse('bad source region');
    if (region.endKey.length === 0 || !bytesEqual(region.endKey, source.startKey)) {
      return refuse(`region ${source.id} is not its right neighbour`);
    }
    const merged: RegionMeta = {
      ...region,
      endKey: source.endKey,
      epoch: {
        version:
          (region.epoch.version > source.epoch.version ? region.epoch.version : source.epoch.version) + 1n,
        confVersion: region.epoch.confVersion,
      },
    };
    const taken = await this.takeOverSource(target, source.id, cmd.sourcePrepareIndex);
    return {
      region: merged,
      writes: taken.writes,
      value: merged,
      after: async () => {
        if (taken.peerId !== undefined) this.host.forgetPeer(source.id, taken.peer, taken.peerId);
        this.sizes.delete(region.id);
        this.host.logger.info(
          {
            region: String(region.id),
            source: String(source.id),
            endKey: showKey(merged.endKey),
            version: String(merged.epoch.version),
            localSource: taken.peerId !== undefined,
          },
          'region merged',
        );
        try {
          // Its state is gone with the batch above; this only makes the storage refuse writes.
          await taken.peer?.storage.destroy({ keepData: true });
        } catch (err) {
          this.host.logger.warn({ region: String(source.id), err: (err as Error).message }, 'source cleanup');
        } finally {
          this.destroying.delete(source.id);
        }
      },
    };
  }

  /**
   * Stops the local replica of a merge's source once it has applied PrepareMerge (so its data is
   * final and nothing more is written for it) and returns the writes that delete its Raft state
   * and tombstone it. Nothing when the source is already gone here.
   */
  private async takeOverSource(
    target: Peer,
    sourceId: bigint,
    prepareIndex: bigint,
  ): Promise<{ writes: InternalWrite[]; peer?: Peer; peerId?: bigint }> {
    const live = this.host.peer(sourceId);
    let peerId = live?.peerId;
    if (live) {
      this.destroying.add(sourceId);
      if (!live.isStopped) {
        let warnedAt = Date.now();
        while (live.storage.appliedIndex < prepareIndex) {
          if (live.isStopped || target.isStopped || this.stopped) {
            this.destroying.delete(sourceId);
            throw new StoreError(
              'Unavailable',
              `merge into region ${target.regionId}: stopped while waiting for region ${sourceId} to apply ${prepareIndex}`,
            );
          }
          live.wake();
          await sleep(10);
          if (Date.now() - warnedAt > 5000) {
            warnedAt = Date.now();
            this.host.logger.warn(
              {
                region: String(target.regionId),
                source: String(sourceId),
                applied: String(live.storage.appliedIndex),
                prepareIndex: String(prepareIndex),
              },
              'merge waits for the local source replica to apply PrepareMerge',
            );
          }
        }
        live.stop(`merged into region ${target.regionId}`);
      }
      await live.idle();
    }
    const raw = await this.host.db.get(regionStateKey(sourceId));
    if (raw !== undefined) {
      const st = decodeRegionLocalState(raw);
      peerId ??= st.region.peers.find((p) => p.storeId === this.host.storeId)?.peerId;
      if (st.appliedIndex < prepareIndex) {
        this.host.logger.error(
          { region: String(sourceId), applied: String(st.appliedIndex), prepareIndex: String(prepareIndex) },
          'merged source replica had not applied PrepareMerge; its data here may be incomplete',
        );
      }
    }
    if (live === undefined && raw === undefined) return { writes: [] };
    const writes: InternalWrite[] = [
      { cf: 'default', op: 'deleteRange', key: raftRange(sourceId).lo, end: raftRange(sourceId).hi },
      del(regionStateKey(sourceId)),
      del(mergeStateKey(sourceId)),
      put(tombstoneKey(sourceId), u64Bytes(peerId ?? 0n)),
    ];
    return { writes, ...(live ? { peer: live } : {}), peerId: peerId ?? 0n };
  }

  /**
   * Stops and deletes local sources whose merge this store learned of otherwise than by applying
   * CommitMerge (a snapshot of the target, or a crash between the two): a MERGING replica whose
   * range a live, newer local region covers.
   */
  private async dropMergedSources(): Promise<void> {
    const peers = [...this.host.peers()].filter((p) => !p.isStopped);
    for (const s of peers) {
      if (s.region.state !== RegionState.Merging || this.destroying.has(s.regionId)) continue;
      const t = peers.find(
        (x) =>
          x !== s &&
          !x.isStopped &&
          x.region.state !== RegionState.Merging &&
          x.storage.isInitialized() &&
          rangeCovers(x.region, s.region) &&
          x.region.epoch.version > s.region.epoch.version,
      );
      if (!t) continue;
      this.destroying.add(s.regionId);
      try {
        s.stop(`merged into region ${t.regionId}`);
        await s.idle();
        await this.host.db.internal.write(
          [
            {
              cf: 'default',
              op: 'deleteRange',
              key: raftRange(s.regionId).lo,
              end: raftRange(s.regionId).hi,
            },
            del(regionStateKey(s.regionId)),
            del(mergeStateKey(s.regionId)),
            put(tombstoneKey(s.regionId), u64Bytes(s.peerId)),
          ],
          { sync: true },
        );
        this.host.forgetPeer(s.regionId, s, s.peerId);
        await s.storage.destroy({ keepData: true }).catch(() => {});
        this.host.logger.info(
          { region: String(s.regionId), target: String(t.regionId) },
          'dropped a merged source replica the target already covers',
        );
      } catch (err) {
        this.host.logger.error(
          { region: String(s.regionId), err: (err as Error).message },
          'cannot drop a merged source replica',
        );
      } finally {
        this.destroying.delete(s.regionId);
      }
    }
  }

  // --- automatic split --------------------------------------------------------------------------------

  /** Counts raw writes a leader of this store accepted. */
  noteWrite(regionId: bigint, requests: readonly WriteRequest[]): void {
    if (this.autoSplitEnabled) this.add(regionId, writeBytes(requests));
  }

  /** Counts a transactional command a leader of this store accepted. */
  noteTxn(regionId: bigint, cmd: TxnCommand): void {
    if (this.autoSplitEnabled) this.add(regionId, txnBytes(cmd));
  }

  private add(regionId: bigint, bytes: number): void {
    if (bytes > 0) this.written.set(regionId, (this.written.get(regionId) ?? 0) + bytes);
  }

  /**
   * One round of size checks. A region is measured when its estimate (size at the last check plus
   * bytes written since) reaches the split size, or, never measured, once 1/16 of it was written
   * (so a region that was already large when the store started is found too).
   */
  async checkSizes(): Promise<void> {
    if (this.checking || this.stopped || !this.autoSplitEnabled) return;
    this.checking = true;
    const limit = this.auto.splitSizeBytes;
    try {
      for (const [regionId, bytes] of [...this.written]) {
        if (this.stopped) return;
        const peer = this.host.peer(regionId);
        if (!peer || peer.isStopped || !peer.isLeader || peer.region.state === RegionState.Merging) {
          this.written.delete(regionId);
          continue;
        }
        const known = this.sizes.get(regionId);
        const due = known === undefined ? bytes >= Math.max(1, limit / 16) : known + bytes >= limit;
        if (!due) continue;
        this.written.delete(regionId);
        try {
          const region = peer.region;
          const { bytes: size, splitKey } = await this.measure(region);
          this.sizes.set(regionId, size);
          if (size < limit || splitKey === undefined) continue;
          const ids = await this.auto.allocIds!(1 + region.peers.length);
          if (ids.length !== 1 + region.peers.length) {
            throw new StoreError('Internal', `allocIds returned ${ids.length} ids`);
          }
          const [newRegionId, ...peerIds] = ids as [bigint, ...bigint[]];
          const { left, right } = await this.splitRegion(regionId, splitKey, newRegionId, peerIds);
          this.sizes.set(left.id, Math.floor(size / 2));
          this.sizes.set(right.id, size - Math.floor(size / 2));
          this.host.logger.info(
            { region: String(regionId), child: String(right.id), bytes: size, splitKey: showKey(splitKey) },
            'split a region that outgrew the split size',
          );
        } catch (err) {
          this.host.logger.warn(
            { region: String(regionId), err: (err as Error).message },
            'automatic split failed; the next check retries',
          );
        }
      }
    } finally {
      this.checking = false;
    }
  }

  /**
   * The bytes a region holds (raw values and every transaction record) and a key near the middle
   * of them: one pass, keeping a few hundred samples of cumulative size along the way.
   */
  async measure(region: RegionMeta): Promise<{ bytes: number; splitKey?: Buffer }> {
    const { lo, hi } = dataRange(region.startKey, region.endKey);
    const bucket = Math.max(1, Math.floor(this.auto.splitSizeBytes / 256));
    const samples: { key: Buffer; bytes: number }[] = [];
    let total = 0;
    let seen = 0;
    const sampler = () => {
      let acc = 0;
      let last: Buffer | undefined;
      return {
        add(key: Buffer, n: number) {
          seen++;
          acc += n;
          last = key;
          if (acc >= bucket) {
            samples.push({ key: Buffer.from(key), bytes: acc });
            total += acc;
            acc = 0;
          }
        },
        end() {
          if (acc > 0 && last) {
            samples.push({ key: Buffer.from(last), bytes: acc });
            total += acc;
          }
        },
      };
    };
    // Iterators resolve in microtasks: give timers and I/O (Raft ticks, the transport) a turn now
    // and then while a large region is read.
    const breathe = () => (seen % 1024 === 0 ? new Promise<void>((r) => setImmediate(r)) : undefined);
    const raw = sampler();
    for await (const [k, v] of this.host.db.iterate({ gte: lo, lt: hi })) {
      raw.add(k, k.length + v.length);
      await breathe();
    }
    raw.end();
    for (const cf of TXN_CFS) {
      const s = sampler();
      for await (const rec of this.host.db.internal.scan({ cf, gte: lo, lt: hi })) {
        if (!isDeleteRecord(rec)) s.add(rec.key, rec.key.length + rec.value.length + 8);
        await breathe();
      }
      s.end();
    }
    samples.sort((a, b) => Buffer.compare(a.key, b.key));
    let cumulative = 0;
    for (const s of samples) {
      cumulative += s.bytes;
      if (cumulative * 2 < total) continue;
      const key = Buffer.from(userKeyOf(s.key));
      if (key.length > 0 && Buffer.compare(key, region.startKey) > 0 && keyInRegion(key, region)) {
        return { bytes: total, splitKey: key };
      }
    }
    return { bytes: total };
  }
}
