import type * as grpc from '@grpc/grpc-js';
import {
  epochFromWire,
  NoKVService,
  type nokv,
  peerFromWire,
  RaftAdminService,
  regionFromWire,
  regionToWire,
  uint64FromWire,
  uint64ToWire,
} from '@nokv/proto';
import { GrpcStatusError, serverDefinition, unaryHandler } from '../grpc/index.js';
import { type LinkFault, raftTransportService, validateLinkFault } from '../transport/index.js';
import {
  type BatchRollbackResponse,
  type CheckTxnStatusAction,
  type CheckTxnStatusResponse,
  type CommitResponse,
  CommitTsExpiredError,
  KeyLockedError,
  type LockKind,
  MAX_TS,
  type Mutation,
  type PrewriteResponse,
  type ResolveLockResponse,
  TxnCommittedError,
  type TxnError,
  TxnNotFoundError,
  WriteConflictError,
} from '../txn/index.js';
import { adminSnapshotHandlers } from './admin-snapshot-service.js';
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
/** Most keys one batch RPC may carry. */
export const MAX_BATCH_KEYS = 4096;
export const MAX_SCAN_LIMIT = 10_000;

type Ctx = nokv.kv.v1.Context.$Properties | null | undefined;
type Long = Parameters<typeof uint64FromWire>[0];

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

// --- transactional wire helpers ----------------------------------------------------------------

type KeyErrorWire = nokv.kv.v1.KeyError.$Properties;
const u64 = uint64ToWire;

/** A transaction-layer error as the wire's KeyError (one field set). */
export function keyErrorToWire(err: TxnError): KeyErrorWire {
  if (err instanceof KeyLockedError) {
    return {
      locked: {
        primaryLock: err.primary,
        key: err.key,
        lockVersion: u64(err.lockTs, 'lock_version'),
        lockTtl: u64(BigInt(err.ttl), 'lock_ttl'),
        minCommitTs: u64(err.minCommitTs, 'min_commit_ts'),
      },
    };
  }
  if (err instanceof WriteConflictError) {
    return {
      writeConflict: {
        key: err.key ?? new Uint8Array(0),
        startTs: u64(err.startTs, 'start_ts'),
        conflictStartTs: u64(err.conflictStartTs, 'conflict_start_ts'),
        conflictTs: u64(err.conflictTs, 'conflict_ts'),
      },
    };
  }
  if (err.code === 'AlreadyExists') return { alreadyExists: { key: err.key ?? new Uint8Array(0) } };
  if (err instanceof CommitTsExpiredError) {
    return {
      commitTsExpired: {
        key: err.key ?? new Uint8Array(0),
        commitTs: u64(err.commitTs, 'commit_ts'),
        minCommitTs: u64(err.minCommitTs, 'min_commit_ts'),
      },
    };
  }
  if (err instanceof TxnNotFoundError) {
    return {
      txnNotFound: { primaryKey: err.key ?? new Uint8Array(0), startTs: u64(err.startTs, 'start_ts') },
    };
  }
  if (err instanceof TxnCommittedError) {
    return { committed: { key: err.key ?? new Uint8Array(0), commitTs: u64(err.commitTs, 'commit_ts') } };
  }
  // Aborted, TxnLockNotFound, InvalidRequest (the request passed the handler's checks but the
  // command refused it): the transaction cannot go on.
  return { abort: `${err.code}: ${err.message}` };
}

const ACTIONS: Record<CheckTxnStatusAction, number> = {
  NoAction: 0,
  TtlExpireRollback: 1,
  LockNotExistRollback: 2,
  MinCommitTsPushed: 3,
};

const MUTATION_OPS: readonly LockKind[] = ['put', 'delete', 'lock'];

function version(v: Long, field: string, allowZero = false): bigint {
  const ts = uint64FromWire(v);
  if (ts > MAX_TS || (!allowZero && ts === 0n)) throw invalid(`${field} must be in [1, 2^64-2]; got ${ts}`);
  return ts;
}

function keyList(keys: Uint8Array[] | null | undefined, field: string, allowEmpty = false): Uint8Array[] {
  const list = keys ?? [];
  if (list.length === 0 && !allowEmpty) throw invalid(`${field} is empty`);
  const seen = new Set<string>();
  for (const k of list) {
    key(k, `${field} entry`);
    const id = Buffer.from(k).toString('latin1');
    if (seen.has(id)) throw invalid(`duplicate key in ${field}`);
    seen.add(id);
  }
  return list;
}

function resolvedLocks(list: Long[] | null | undefined): bigint[] {
  return (list ?? []).map((v) => uint64FromWire(v));
}

function scanBounds(
  startKey: Uint8Array | null | undefined,
  endKey: Uint8Array | null | undefined,
  limitIn: number | null | undefined,
) {
  const limit = limitIn === 0 || limitIn == null ? DEFAULT_SCAN_LIMIT : limitIn;
  if (limit > MAX_SCAN_LIMIT) throw invalid(`limit ${limit} exceeds ${MAX_SCAN_LIMIT}`);
  const start = startKey ?? new Uint8Array(0);
  const end = endKey ?? new Uint8Array(0);
  if (start.length > MAX_KEY_BYTES || end.length > MAX_KEY_BYTES) throw invalid('scan bound too long');
  if (end.length > 0 && Buffer.compare(start, end) >= 0)
    throw invalid('scan start_key must be below end_key');
  return { start, end, limit };
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
      RawBatchPut: unaryHandler(
        NoKVService.RawBatchPut,
        (req, call) =>
          withRegionError(async () => {
            const pairs = req.pairs ?? [];
            if (pairs.length === 0) throw invalid('a batch put needs at least one pair');
            if (pairs.length > MAX_BATCH_KEYS)
              throw invalid(`${pairs.length} pairs exceed the limit of ${MAX_BATCH_KEYS}`);
            const requests = pairs.map((p, i) => {
              const value = p.value ?? new Uint8Array(0);
              if (value.length > MAX_VALUE_BYTES) {
                throw invalid(`pairs[${i}].value is ${value.length} bytes; the limit is ${MAX_VALUE_BYTES}`);
              }
              return { op: 'put' as const, key: key(p.key, `pairs[${i}].key`), value };
            });
            await store.write(context(req.context), requests, remainingMs(call));
            return {};
          }),
        opts,
      ),
      RawBatchGet: unaryHandler(
        NoKVService.RawBatchGet,
        (req, call) =>
          withRegionError(async () => {
            const keys = (req.keys ?? []).map((k, i) => key(k, `keys[${i}]`));
            if (keys.length === 0) throw invalid('a batch get needs at least one key');
            if (keys.length > MAX_BATCH_KEYS)
              throw invalid(`${keys.length} keys exceed the limit of ${MAX_BATCH_KEYS}`);
            const values = await store.batchGet(context(req.context), keys, remainingMs(call));
            return { values: values.map((v) => (v === undefined ? { notFound: true } : { value: v })) };
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
      KvGet: unaryHandler(
        NoKVService.KvGet,
        (req, call) =>
          withRegionError(async () => {
            const k = key(req.key);
            const v = version(req.version, 'version', true);
            const r = await store.txnGet(
              context(req.context),
              [k],
              v,
              resolvedLocks(req.resolvedLocks),
              remainingMs(call),
            );
            if (r.locked) return { error: keyErrorToWire(r.locked as TxnError) };
            const found = r.pairs[0];
            return found ? { value: found.value } : { notFound: true };
          }),
        opts,
      ),
      KvBatchGet: unaryHandler(
        NoKVService.KvBatchGet,
        (req, call) =>
          withRegionError(async () => {
            const keys = keyList(req.keys, 'keys', true);
            if (keys.length === 0) return {};
            const v = version(req.version, 'version', true);
            const r = await store.txnGet(
              context(req.context),
              keys,
              v,
              resolvedLocks(req.resolvedLocks),
              remainingMs(call),
            );
            return {
              pairs: r.pairs.map((p) => ({ key: p.key, value: p.value })),
              ...(r.locked ? { error: keyErrorToWire(r.locked as TxnError) } : {}),
            };
          }),
        opts,
      ),
      KvScan: unaryHandler(
        NoKVService.KvScan,
        (req, call) =>
          withRegionError(async () => {
            const { start, end, limit } = scanBounds(req.startKey, req.endKey, req.limit);
            const v = version(req.version, 'version', true);
            const r = await store.txnScan(
              context(req.context),
              start,
              end,
              limit,
              v,
              resolvedLocks(req.resolvedLocks),
              remainingMs(call),
            );
            return {
              kvs: r.pairs.map((p) => ({ key: p.key, value: p.value })),
              ...(r.locked ? { error: keyErrorToWire(r.locked) } : {}),
            };
          }),
        opts,
      ),
      KvPrewrite: unaryHandler(
        NoKVService.KvPrewrite,
        (req, call) =>
          withRegionError(async () => {
            const ms = req.mutations ?? [];
            if (ms.length === 0) throw invalid('mutations is empty');
            keyList(
              ms.map((m) => m.key ?? new Uint8Array(0)),
              'mutations',
            );
            let bytes = 0;
            const mutations: Mutation[] = ms.map((m) => {
              const op = MUTATION_OPS[m.op ?? 0];
              if (op === undefined) throw invalid(`unknown mutation op ${m.op}`);
              const out: Mutation = { op, key: m.key! };
              if (op === 'put') {
                out.value = m.value ?? new Uint8Array(0);
                bytes += out.value.length;
              }
              if (m.assertNotExist) out.assertNotExist = true;
              return out;
            });
            if (bytes > MAX_VALUE_BYTES)
              throw invalid(`values total ${bytes} bytes; the limit is ${MAX_VALUE_BYTES}`);
            const ttl = uint64FromWire(req.lockTtl);
            if (ttl > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid('lock_ttl too large');
            const minCommitTs = version(req.minCommitTs, 'min_commit_ts', true);
            const res = (await store.txnWrite(
              context(req.context),
              {
                type: 'prewrite',
                req: {
                  mutations,
                  primary: key(req.primaryLock, 'primary_lock'),
                  startTs: version(req.startVersion, 'start_version'),
                  lockTtl: Number(ttl),
                  ...(minCommitTs > 0n ? { minCommitTs } : {}),
                },
              },
              remainingMs(call),
            )) as PrewriteResponse;
            return { errors: res.errors.map(keyErrorToWire) };
          }),
        opts,
      ),
      KvCommit: unaryHandler(
        NoKVService.KvCommit,
        (req, call) =>
          withRegionError(async () => {
            const res = (await store.txnWrite(
              context(req.context),
              {
                type: 'commit',
                req: {
                  keys: keyList(req.keys, 'keys'),
                  startTs: version(req.startVersion, 'start_version'),
                  commitTs: version(req.commitVersion, 'commit_version'),
                },
              },
              remainingMs(call),
            )) as CommitResponse;
            return res.error ? { error: keyErrorToWire(res.error) } : {};
          }),
        opts,
      ),
      KvBatchRollback: unaryHandler(
        NoKVService.KvBatchRollback,
        (req, call) =>
          withRegionError(async () => {
            const res = (await store.txnWrite(
              context(req.context),
              {
                type: 'batchRollback',
                req: { keys: keyList(req.keys, 'keys'), startTs: version(req.startVersion, 'start_version') },
              },
              remainingMs(call),
            )) as BatchRollbackResponse;
            return res.error ? { error: keyErrorToWire(res.error) } : {};
          }),
        opts,
      ),
      KvResolveLock: unaryHandler(
        NoKVService.KvResolveLock,
        (req, call) =>
          withRegionError(async () => {
            const keys = keyList(req.keys, 'keys', true);
            const res = (await store.txnWrite(
              context(req.context),
              {
                type: 'resolveLock',
                req: {
                  startTs: version(req.startVersion, 'start_version'),
                  commitTs: version(req.commitVersion, 'commit_version', true),
                  ...(keys.length > 0 ? { keys } : {}),
                },
              },
              remainingMs(call),
            )) as ResolveLockResponse;
            return {
              resolvedLocks: u64(BigInt(res.resolved), 'resolved_locks'),
              ...(res.error ? { error: keyErrorToWire(res.error) } : {}),
            };
          }),
        opts,
      ),
      KvCheckTxnStatus: unaryHandler(
        NoKVService.KvCheckTxnStatus,
        (req, call) =>
          withRegionError(async () => {
            const res = (await store.txnWrite(
              context(req.context),
              {
                type: 'checkTxnStatus',
                req: {
                  primaryKey: key(req.primaryKey, 'primary_key'),
                  lockTs: version(req.lockTs, 'lock_ts'),
                  currentTs: version(req.currentTs, 'current_ts'),
                  callerStartTs: version(req.callerStartTs, 'caller_start_ts', true),
                  rollbackIfNotExist: req.rollbackIfNotExist ?? false,
                },
              },
              remainingMs(call),
            )) as CheckTxnStatusResponse;
            return {
              lockTtl: u64(BigInt(res.lockTtl), 'lock_ttl'),
              commitVersion: u64(res.commitTs, 'commit_version'),
              action: ACTIONS[res.action],
              ...(res.error ? { error: keyErrorToWire(res.error) } : {}),
            };
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
      // RegionRuntimeStatus, AddPeer, RemovePeer, snapshot export/import and progress.
      ...adminSnapshotHandlers(store),
      SetLinkFault: unaryHandler(
        RaftAdminService.SetLinkFault,
        async (req) => {
          const to = uint64FromWire(req.toStoreId);
          if (req.clear) {
            store.setLinkFault(to, undefined);
            return {};
          }
          const fault: LinkFault = {
            ...(req.drop ? { drop: req.drop } : {}),
            ...(req.delayMs ? { delayMs: req.delayMs } : {}),
            ...(req.duplicate ? { duplicate: req.duplicate } : {}),
            ...(req.block ? { block: true } : {}),
          };
          try {
            validateLinkFault(fault);
          } catch (err) {
            throw invalid((err as Error).message);
          }
          store.setLinkFault(to, fault);
          return {};
        },
        opts,
      ),
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
      SplitRegion: unaryHandler(
        RaftAdminService.SplitRegion,
        (req, call) =>
          withRegionError(async () => {
            const regionId = uint64FromWire(req.regionId);
            const newRegionId = uint64FromWire(req.newRegionId);
            const newPeerIds = (req.newPeerIds ?? []).map((id) => uint64FromWire(id));
            if (regionId === 0n || newRegionId === 0n || newPeerIds.length === 0) {
              throw invalid('region_id, new_region_id and new_peer_ids are required');
            }
            const splitKey = key(req.splitKey, 'split_key');
            const { left, right } = await store.splitRegion(
              regionId,
              splitKey,
              newRegionId,
              newPeerIds,
              remainingMs(call),
            );
            return { left: regionToWire(left), right: regionToWire(right) };
          }),
        opts,
      ),
      PrepareMerge: unaryHandler(
        RaftAdminService.PrepareMerge,
        (req, call) =>
          withRegionError(async () => {
            const sourceId = uint64FromWire(req.sourceRegionId);
            const targetId = uint64FromWire(req.targetRegionId);
            if (sourceId === 0n || targetId === 0n || sourceId === targetId) {
              throw invalid('source_region_id and target_region_id are required and must differ');
            }
            const r = await store.prepareMerge(sourceId, targetId, remainingMs(call));
            return {
              source: regionToWire(r.source),
              prepareIndex: uint64ToWire(r.prepareIndex, 'prepare_index'),
            };
          }),
        opts,
      ),
      CommitMerge: unaryHandler(
        RaftAdminService.CommitMerge,
        (req, call) =>
          withRegionError(async () => {
            const targetId = uint64FromWire(req.targetRegionId);
            const prepareIndex = uint64FromWire(req.sourcePrepareIndex);
            if (targetId === 0n || !req.source || prepareIndex === 0n) {
              throw invalid('target_region_id, source and source_prepare_index are required');
            }
            let source: ReturnType<typeof regionFromWire>;
            try {
              source = regionFromWire(req.source);
            } catch (err) {
              throw invalid(`source: ${(err as Error).message}`);
            }
            if (source.id === 0n || source.id === targetId) throw invalid('source.id is required');
            const region = await store.commitMerge(targetId, source, prepareIndex, remainingMs(call));
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
    raftTransportService(
      {
        onRaftMessages: (msgs) => store.onRaftMessages(msgs),
        onSnapshot: (msg) => store.onSnapshot(msg),
      },
      { snapshotTracker: store.snapshots },
    ),
  ];
}
