import type * as grpc from '@grpc/grpc-js';
import {
  epochFromWire,
  NoKVService,
  type nokv,
  peerFromWire,
  RaftAdminService,
  regionToWire,
  uint64FromWire,
  uint64ToWire,
} from '@nokv/proto';
import { GrpcStatusError, serverDefinition, unaryHandler } from '../grpc/index.js';
import { raftTransportService } from '../transport/index.js';
import { RegionError } from './errors.js';
import type { RequestContext, Store } from './store.js';

// The gRPC face of a store: NoKV (raw KV), RaftTransport and RaftAdmin on one server. Handlers
// validate the request shape (anything malformed → INVALID_ARGUMENT, nothing changes), then call
// the store; region-level refusals travel in the response's region_error, other failures as a
// gRPC status (deadline → DEADLINE_EXCEEDED).

/** Largest key a client may send (the engine's own limit is the same). */
export const MAX_KEY_BYTES = 64 * 1024;
/** Largest value of one raw put: it travels in one Raft entry. */
export const MAX_VALUE_BYTES = 8 * 1024 * 1024;
/** Largest request message accepted on the KV and admin services. */
export const MAX_REQUEST_BYTES = MAX_VALUE_BYTES + 1024 * 1024;
export const DEFAULT_SCAN_LIMIT = 256;
export const MAX_SCAN_LIMIT = 10_000;

type Ctx = nokv.kv.v1.Context.$Properties | null | undefined;

function invalid(message: string): GrpcStatusError {
  return new GrpcStatusError(3 /* INVALID_ARGUMENT */, message);
}

function context(ctx: Ctx): RequestContext {
  if (!ctx) throw invalid('request has no context (region id, epoch)');
  const regionId = uint64FromWire(ctx.regionId);
  if (regionId === 0n) throw invalid('context.region_id is required');
  const out: RequestContext = { regionId };
  if (ctx.regionEpoch) out.epoch = epochFromWire(ctx.regionEpoch);
  if (ctx.peer) out.storeId = peerFromWire(ctx.peer).storeId;
  return out;
}

function key(k: Uint8Array | null | undefined, field = 'key'): Uint8Array {
  if (!k || k.length === 0) throw invalid(`${field} is empty`);
  if (k.length > MAX_KEY_BYTES) throw invalid(`${field} is ${k.length} bytes; the limit is ${MAX_KEY_BYTES}`);
  return k;
}

/** Milliseconds left before the caller's deadline (Infinity when it set none). */
function remainingMs(call: grpc.ServerUnaryCall<unknown, unknown>): number {
  const d = call.getDeadline();
  const at = d instanceof Date ? d.getTime() : d;
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : Number.POSITIVE_INFINITY;
}

/** Runs `fn`; a RegionError becomes the response's region_error, everything else propagates. */
async function withRegionError<R extends object>(
  fn: () => Promise<R>,
): Promise<R | { regionError: nokv.errors.v1.RegionError.$Properties }> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof RegionError) return { regionError: err.wire };
    throw err;
  }
}

export interface ServiceEntry {
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
}

export function kvService(store: Store): ServiceEntry {
  const opts = { maxRequestBytes: MAX_REQUEST_BYTES };
  return {
    definition: serverDefinition(NoKVService),
    implementation: {
      RawGet: unaryHandler(
        NoKVService.RawGet,
        (req, call) =>
          withRegionError(async () => {
            const value = await store.get(context(req.context), key(req.key), remainingMs(call));
            return value === undefined ? { notFound: true } : { value };
          }),
        opts,
      ),
      RawPut: unaryHandler(
        NoKVService.RawPut,
        (req, call) =>
          withRegionError(async () => {
            const k = key(req.key);
            const value = req.value ?? new Uint8Array(0);
            if (value.length > MAX_VALUE_BYTES) {
              throw invalid(`value is ${value.length} bytes; the limit is ${MAX_VALUE_BYTES}`);
            }
            await store.write(context(req.context), [{ op: 'put', key: k, value }], remainingMs(call));
            return {};
          }),
        opts,
      ),
      RawDelete: unaryHandler(
        NoKVService.RawDelete,
        (req, call) =>
          withRegionError(async () => {
            await store.write(context(req.context), [{ op: 'delete', key: key(req.key) }], remainingMs(call));
            return {};
          }),
        opts,
      ),
      RawScan: unaryHandler(
        NoKVService.RawScan,
        (req, call) =>
          withRegionError(async () => {
            const limit = req.limit === 0 || req.limit == null ? DEFAULT_SCAN_LIMIT : req.limit;
            if (limit > MAX_SCAN_LIMIT) throw invalid(`limit ${limit} exceeds ${MAX_SCAN_LIMIT}`);
            const start = req.startKey ?? new Uint8Array(0);
            const end = req.endKey ?? new Uint8Array(0);
            if (start.length > MAX_KEY_BYTES || end.length > MAX_KEY_BYTES)
              throw invalid('scan bound too long');
            if (end.length > 0 && Buffer.compare(start, end) >= 0)
              throw invalid('scan start_key must be below end_key');
            const rows = await store.scan(context(req.context), start, end, limit, remainingMs(call));
            return { kvs: rows };
          }),
        opts,
      ),
    },
  };
}

export function adminService(store: Store): ServiceEntry {
  const opts = { maxRequestBytes: 64 * 1024 };
  const statusOf = (regionId: bigint): nokv.admin.v1.RegionStatus.$Properties => {
    const peer = store.peer(regionId);
    if (!peer) return { hosted: false };
    const s = peer.status();
    return {
      hosted: true,
      region: regionToWire(s.region),
      peerId: uint64ToWire(s.peerId, 'peer_id'),
      leaderPeerId: uint64ToWire(s.leaderPeerId, 'leader_peer_id'),
      term: uint64ToWire(s.term, 'term'),
      commitIndex: uint64ToWire(s.commitIndex, 'commit_index'),
      appliedIndex: uint64ToWire(s.appliedIndex, 'applied_index'),
      role: s.role,
      hibernating: s.hibernating,
    };
  };
  return {
    definition: serverDefinition(RaftAdminService),
    implementation: {
      RegionStatus: unaryHandler(
        RaftAdminService.RegionStatus,
        async (req) => statusOf(uint64FromWire(req.regionId)),
        opts,
      ),
      ListRegions: unaryHandler(
        RaftAdminService.ListRegions,
        async () => ({
          regions: store.regionStatuses().map((r) => statusOf(BigInt(r.regionId))),
        }),
        opts,
      ),
      TransferLeader: unaryHandler(
        RaftAdminService.TransferLeader,
        (req) =>
          withRegionError(async () => {
            const regionId = uint64FromWire(req.regionId);
            const to = uint64FromWire(req.toPeerId);
            if (regionId === 0n || to === 0n) throw invalid('region_id and to_peer_id are required');
            store.transferLeader(regionId, to);
            return {};
          }),
        opts,
      ),
      ChangePeer: unaryHandler(
        RaftAdminService.ChangePeer,
        (req, call) =>
          withRegionError(async () => {
            const regionId = uint64FromWire(req.regionId);
            const peer = peerFromWire(req.peer);
            if (regionId === 0n || peer.peerId === 0n || (req.kind !== 2 && peer.storeId === 0n)) {
              throw invalid('region_id, peer.peer_id and (to add) peer.store_id are required');
            }
            const kind =
              req.kind === 0
                ? 'add-voter'
                : req.kind === 1
                  ? 'add-learner'
                  : req.kind === 2
                    ? 'remove'
                    : undefined;
            if (kind === undefined) throw invalid(`unknown change kind ${req.kind}`);
            const region = await store.changePeer(regionId, kind, peer, remainingMs(call));
            return { region: regionToWire(region) };
          }),
        opts,
      ),
    },
  };
}

/** Every service a store serves, ready for `server.addService`. */
export function storeServices(store: Store): ServiceEntry[] {
  return [
    kvService(store),
    adminService(store),
    raftTransportService({
      onRaftMessages: (msgs) => store.onRaftMessages(msgs),
      onSnapshot: (msg) => store.onSnapshot(msg),
    }),
  ];
}
