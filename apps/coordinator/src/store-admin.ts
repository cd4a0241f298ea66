import { status as GrpcStatus } from '@grpc/grpc-js';
import {
  type nokv,
  RaftAdminService,
  type RegionMeta,
  regionFromWire,
  regionToWire,
  uint64FromWire,
  uint64ToWire,
} from '@nokv/proto';
import { createClient, type RpcClient, RpcError } from '@nokv/raftstore/grpc';

// What the operator queue asks of stores, in domain terms (bigints, RegionMeta), so the queue and
// its tests do not deal with the wire. `GrpcStoreAdmin` is the real one: RaftAdmin calls over one
// cached channel per store address.

/** A store to call: its id (for messages) and gRPC address. */
export interface StoreRef {
  id: bigint;
  addr: string;
}

/** A store's refusal for a region (the RegionError of the response), e.g. not the leader any more. */
export interface AdminRegionError {
  kind: string;
  message: string;
}

export interface RegionRuntime {
  known: boolean;
  hosted: boolean;
  localPeerId: bigint;
  leaderPeerId: bigint;
  leader: boolean;
  member: boolean;
  tombstone: boolean;
  appliedIndex: bigint;
  region: RegionMeta | undefined;
}

export interface StoreAdmin {
  /** Run on the region's leader: snapshot into the target store, then the membership change. */
  addPeer(
    store: StoreRef,
    req: { regionId: bigint; storeId: bigint; peerId: bigint; targetAddr: string; learner: boolean },
  ): Promise<{ regionError?: AdminRegionError; region?: RegionMeta }>;
  removePeer(
    store: StoreRef,
    req: { regionId: bigint; peerId: bigint },
  ): Promise<{ regionError?: AdminRegionError; region?: RegionMeta }>;
  transferLeader(
    store: StoreRef,
    req: { regionId: bigint; toPeerId: bigint },
  ): Promise<{ regionError?: AdminRegionError }>;
  splitRegion(
    store: StoreRef,
    req: { regionId: bigint; splitKey: Uint8Array; newRegionId: bigint; newPeerIds: bigint[] },
  ): Promise<{ regionError?: AdminRegionError; left?: RegionMeta; right?: RegionMeta }>;
  prepareMerge(
    store: StoreRef,
    req: { sourceRegionId: bigint; targetRegionId: bigint },
  ): Promise<{ regionError?: AdminRegionError; source?: RegionMeta; prepareIndex: bigint }>;
  commitMerge(
    store: StoreRef,
    req: { targetRegionId: bigint; source: RegionMeta; sourcePrepareIndex: bigint },
  ): Promise<{ regionError?: AdminRegionError; region?: RegionMeta }>;
  regionRuntimeStatus(store: StoreRef, req: { regionId: bigint }): Promise<RegionRuntime>;
  close(): void;
}

function regionErrorFromWire(
  e: nokv.errors.v1.RegionError.$Properties | null | undefined,
): AdminRegionError | undefined {
  if (!e) return undefined;
  const kind = e.notLeader
    ? 'NotLeader'
    : e.epochNotMatch
      ? 'EpochNotMatch'
      : e.keyNotInRegion
        ? 'KeyNotInRegion'
        : e.regionNotFound
          ? 'RegionNotFound'
          : e.storeNotMatch
            ? 'StoreNotMatch'
            : e.serverBusy
              ? 'ServerBusy'
              : 'RegionError';
  return { kind, message: e.message || kind };
}

const optRegion = (r: nokv.meta.v1.RegionMeta.$Properties | null | undefined) =>
  r ? regionFromWire(r) : undefined;

/** Whether an admin call's failure is worth retrying (the store may not have the RPC at all). */
export function isPermanentRpcFailure(err: unknown): boolean {
  return (
    err instanceof RpcError &&
    (err.status === GrpcStatus.UNIMPLEMENTED || err.status === GrpcStatus.INVALID_ARGUMENT)
  );
}

export function isUnimplemented(err: unknown): boolean {
  return err instanceof RpcError && err.status === GrpcStatus.UNIMPLEMENTED;
}

export interface GrpcStoreAdminOptions {
  /** Per-call deadline (default 10 s); AddPeer streams a snapshot and gets `addPeerDeadlineMs`. */
  deadlineMs?: number;
  /** Default 120 s. */
  addPeerDeadlineMs?: number;
}

/** RaftAdmin over gRPC, one channel per store address (dropped when the address changes). */
export class GrpcStoreAdmin implements StoreAdmin {
  private readonly clients = new Map<string, RpcClient<typeof RaftAdminService>>();
  private readonly deadlineMs: number;
  private readonly addPeerDeadlineMs: number;

  constructor(opts: GrpcStoreAdminOptions = {}) {
    this.deadlineMs = opts.deadlineMs ?? 10_000;
    this.addPeerDeadlineMs = opts.addPeerDeadlineMs ?? 120_000;
  }

  private client(store: StoreRef): RpcClient<typeof RaftAdminService> {
    let c = this.clients.get(store.addr);
    if (!c) {
      c = createClient(RaftAdminService, store.addr);
      this.clients.set(store.addr, c);
    }
    return c;
  }

  async addPeer(
    store: StoreRef,
    req: { regionId: bigint; storeId: bigint; peerId: bigint; targetAddr: string; learner: boolean },
  ) {
    const res = await this.client(store).call(
      RaftAdminService.AddPeer,
      {
        regionId: uint64ToWire(req.regionId, 'region_id'),
        storeId: uint64ToWire(req.storeId, 'store_id'),
        peerId: uint64ToWire(req.peerId, 'peer_id'),
        targetAddr: req.targetAddr,
        learner: req.learner,
      },
      { deadlineMs: this.addPeerDeadlineMs },
    );
    return withRegionError(res.regionError, { region: optRegion(res.region) });
  }

  async removePeer(store: StoreRef, req: { regionId: bigint; peerId: bigint }) {
    const res = await this.client(store).call(
      RaftAdminService.RemovePeer,
      { regionId: uint64ToWire(req.regionId, 'region_id'), peerId: uint64ToWire(req.peerId, 'peer_id') },
      { deadlineMs: this.deadlineMs },
    );
    return withRegionError(res.regionError, { region: optRegion(res.region) });
  }

  async transferLeader(store: StoreRef, req: { regionId: bigint; toPeerId: bigint }) {
    const res = await this.client(store).call(
      RaftAdminService.TransferLeader,
      {
        regionId: uint64ToWire(req.regionId, 'region_id'),
        toPeerId: uint64ToWire(req.toPeerId, 'to_peer_id'),
      },
      { deadlineMs: this.deadlineMs },
    );
    return withRegionError(res.regionError, {});
  }

  async splitRegion(
    store: StoreRef,
    req: { regionId: bigint; splitKey: Uint8Array; newRegionId: bigint; newPeerIds: bigint[] },
  ) {
    const res = await this.client(store).call(
      RaftAdminService.SplitRegion,
      {
        regionId: uint64ToWire(req.regionId, 'region_id'),
        splitKey: req.splitKey,
        newRegionId: uint64ToWire(req.newRegionId, 'new_region_id'),
        newPeerIds: req.newPeerIds.map((id) => uint64ToWire(id, 'new_peer_ids')),
      },
      { deadlineMs: this.deadlineMs },
    );
    return withRegionError(res.regionError, { left: optRegion(res.left), right: optRegion(res.right) });
  }

  async prepareMerge(store: StoreRef, req: { sourceRegionId: bigint; targetRegionId: bigint }) {
    const res = await this.client(store).call(
      RaftAdminService.PrepareMerge,
      {
        sourceRegionId: uint64ToWire(req.sourceRegionId, 'source_region_id'),
        targetRegionId: uint64ToWire(req.targetRegionId, 'target_region_id'),
      },
      { deadlineMs: this.deadlineMs },
    );
    return withRegionError(res.regionError, {
      source: optRegion(res.source),
      prepareIndex: uint64FromWire(res.prepareIndex),
    });
  }

  async commitMerge(
    store: StoreRef,
    req: { targetRegionId: bigint; source: RegionMeta; sourcePrepareIndex: bigint },
  ) {
    const res = await this.client(store).call(
      RaftAdminService.CommitMerge,
      {
        targetRegionId: uint64ToWire(req.targetRegionId, 'target_region_id'),
        source: regionToWire(req.source),
        sourcePrepareIndex: uint64ToWire(req.sourcePrepareIndex, 'source_prepare_index'),
      },
      { deadlineMs: this.deadlineMs },
    );
    return withRegionError(res.regionError, { region: optRegion(res.region) });
  }

  async regionRuntimeStatus(store: StoreRef, req: { regionId: bigint }): Promise<RegionRuntime> {
    const res = await this.client(store).call(
      RaftAdminService.RegionRuntimeStatus,
      { regionId: uint64ToWire(req.regionId, 'region_id') },
      { deadlineMs: this.deadlineMs },
    );
    return {
      known: res.known,
      hosted: res.hosted,
      localPeerId: uint64FromWire(res.localPeerId),
      leaderPeerId: uint64FromWire(res.leaderPeerId),
      leader: res.leader,
      member: res.member,
      tombstone: res.tombstone,
      appliedIndex: uint64FromWire(res.appliedIndex),
      region: optRegion(res.region),
    };
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}

function withRegionError<T extends object>(
  e: nokv.errors.v1.RegionError.$Properties | null | undefined,
  rest: T,
): T & { regionError?: AdminRegionError } {
  const regionError = regionErrorFromWire(e);
  return regionError ? { ...rest, regionError } : rest;
}
