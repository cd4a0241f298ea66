import { status as grpcStatus } from '@grpc/grpc-js';
import { nokv, type RegionMeta, type RegionPeer, regionToWire, uint64ToWire } from '@nokv/proto';
import { RpcError } from '@nokv/raftstore/grpc';
import type { AdminRegionError, RegionRuntime, StoreAdmin, StoreRef } from './store-admin.js';

// Builders for wire requests (tests and tools).

export function region(
  id: bigint,
  start: string,
  end: string,
  peers: [storeId: bigint, peerId: bigint][],
  epoch: { version: bigint; confVersion: bigint } = { version: 1n, confVersion: 1n },
): RegionMeta {
  return {
    id,
    startKey: Buffer.from(start),
    endKey: Buffer.from(end),
    epoch,
    peers: peers.map(([storeId, peerId]) => ({ storeId, peerId, learner: false })),
    state: 2,
  };
}

export function regionHeartbeatRequest(
  r: RegionMeta,
  leader: RegionPeer | undefined,
  term = 1n,
): nokv.coordinator.v1.RegionHeartbeatRequest.$Properties {
  return {
    region: regionToWire(r),
    ...(leader
      ? { leader: { storeId: uint64ToWire(leader.storeId, 's'), peerId: uint64ToWire(leader.peerId, 'p') } }
      : {}),
    term: uint64ToWire(term, 'term'),
  };
}

export function storeHeartbeatRequest(
  id: bigint,
  addr = `127.0.0.1:${20000 + Number(id)}`,
): nokv.coordinator.v1.StoreHeartbeatRequest.$Properties {
  return { store: { id: uint64ToWire(id, 'id'), addr }, stats: {} };
}

export function decodeReq<T>(
  codec: { encode(m: unknown): { finish(): Uint8Array }; decode(b: Uint8Array): T },
  m: unknown,
): T {
  return codec.decode(codec.encode(m).finish());
}

export const pb = nokv.coordinator.v1;

type AdminMethod = Exclude<keyof StoreAdmin, 'close'>;

/** A recorded StoreAdmin call. */
export interface AdminCall {
  method: AdminMethod;
  storeId: bigint;
  req: Record<string, unknown>;
}

/**
 * A StoreAdmin that behaves like obliging stores: it reads a region from `lookup` (the
 * coordinator's catalog), applies the change and answers with the new metadata, which the queue
 * feeds back into the catalog. TransferLeader calls `onTransferLeader` (tests report the new leader
 * with a region heartbeat there). `failNext` makes the next calls of a method throw or answer with
 * a region error.
 */
export class FakeStoreAdmin implements StoreAdmin {
  readonly calls: AdminCall[] = [];
  private readonly failures = new Map<AdminMethod, (Error | AdminRegionError)[]>();
  onTransferLeader: ((regionId: bigint, toPeerId: bigint) => void | Promise<void>) | undefined;
  /** The RegionRuntimeStatus answer for a hosted peer (false: still catching up). */
  member = true;
  /** Pretend the stores do not implement RegionRuntimeStatus. */
  runtimeUnimplemented = false;
  /** The applied index RegionRuntimeStatus reports (PrepareMerge answers index 42). */
  appliedIndex = 100n;

  constructor(private readonly lookup: (regionId: bigint) => RegionMeta | undefined) {}

  failNext(method: AdminMethod, failure: Error | AdminRegionError, times = 1): void {
    const list = this.failures.get(method) ?? [];
    for (let i = 0; i < times; i++) list.push(failure);
    this.failures.set(method, list);
  }

  callsOf(method: AdminMethod): AdminCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  private enter(method: AdminMethod, store: StoreRef, req: object): AdminRegionError | undefined {
    this.calls.push({ method, storeId: store.id, req: { ...req } });
    const f = this.failures.get(method)?.shift();
    if (f instanceof Error) throw f;
    return f;
  }

  private region(id: bigint): RegionMeta {
    const r = this.lookup(id);
    if (!r) throw new Error(`fake store: no region ${id}`);
    return r;
  }

  private static bump(r: RegionMeta, peers: RegionMeta['peers']): RegionMeta {
    return { ...r, peers, epoch: { version: r.epoch.version, confVersion: r.epoch.confVersion + 1n } };
  }

  async addPeer(
    store: StoreRef,
    req: { regionId: bigint; storeId: bigint; peerId: bigint; targetAddr: string; learner: boolean },
  ) {
    const regionError = this.enter('addPeer', store, req);
    if (regionError) return { regionError };
    const r = this.region(req.regionId);
    return {
      region: FakeStoreAdmin.bump(r, [
        ...r.peers,
        { storeId: req.storeId, peerId: req.peerId, learner: req.learner },
      ]),
    };
  }

  async removePeer(store: StoreRef, req: { regionId: bigint; peerId: bigint }) {
    const regionError = this.enter('removePeer', store, req);
    if (regionError) return { regionError };
    const r = this.region(req.regionId);
    return {
      region: FakeStoreAdmin.bump(
        r,
        r.peers.filter((p) => p.peerId !== req.peerId),
      ),
    };
  }

  async transferLeader(store: StoreRef, req: { regionId: bigint; toPeerId: bigint }) {
    const regionError = this.enter('transferLeader', store, req);
    if (regionError) return { regionError };
    await this.onTransferLeader?.(req.regionId, req.toPeerId);
    return {};
  }

  async splitRegion(
    store: StoreRef,
    req: { regionId: bigint; splitKey: Uint8Array; newRegionId: bigint; newPeerIds: bigint[] },
  ) {
    const regionError = this.enter('splitRegion', store, req);
    if (regionError) return { regionError };
    const r = this.region(req.regionId);
    const epoch = { version: r.epoch.version + 1n, confVersion: r.epoch.confVersion };
    return {
      left: { ...r, endKey: req.splitKey, epoch },
      right: {
        ...r,
        id: req.newRegionId,
        startKey: req.splitKey,
        epoch,
        peers: r.peers.map((p, i) => ({ ...p, peerId: req.newPeerIds[i]! })),
      },
    };
  }

  async prepareMerge(store: StoreRef, req: { sourceRegionId: bigint; targetRegionId: bigint }) {
    const regionError = this.enter('prepareMerge', store, req);
    if (regionError) return { regionError, prepareIndex: 0n };
    return { source: this.region(req.sourceRegionId), prepareIndex: 42n };
  }

  async commitMerge(
    store: StoreRef,
    req: { targetRegionId: bigint; source: RegionMeta; sourcePrepareIndex: bigint },
  ) {
    const regionError = this.enter('commitMerge', store, req);
    if (regionError) return { regionError };
    const t = this.region(req.targetRegionId);
    const s = req.source;
    const sourceFirst = s.endKey.length > 0 && Buffer.compare(s.endKey, t.startKey) === 0;
    const version = (t.epoch.version > s.epoch.version ? t.epoch.version : s.epoch.version) + 1n;
    return {
      region: {
        ...t,
        startKey: sourceFirst ? s.startKey : t.startKey,
        endKey: sourceFirst ? t.endKey : s.endKey,
        epoch: { version, confVersion: t.epoch.confVersion },
      },
    };
  }

  async regionRuntimeStatus(store: StoreRef, req: { regionId: bigint }): Promise<RegionRuntime> {
    this.enter('regionRuntimeStatus', store, req);
    if (this.runtimeUnimplemented) {
      throw new RpcError(grpcStatus.UNIMPLEMENTED, 'Unimplemented', 'no such method', 'RegionRuntimeStatus');
    }
    const r = this.lookup(req.regionId);
    const peer = r?.peers.find((p) => p.storeId === store.id);
    return {
      known: peer !== undefined,
      hosted: peer !== undefined,
      localPeerId: peer?.peerId ?? 0n,
      leaderPeerId: 0n,
      leader: false,
      member: peer !== undefined && this.member,
      tombstone: false,
      appliedIndex: this.appliedIndex,
      region: r,
    };
  }

  close(): void {}
}
