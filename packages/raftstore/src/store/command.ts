import {
  epochFromWire,
  epochToWire,
  nokv,
  peerFromWire,
  peerToWire,
  type RegionEpoch,
  type RegionMeta,
  type RegionPeer,
  regionFromWire,
  regionToWire,
  uint64FromWire,
  uint64ToWire,
} from '@nokv/proto';
import type {
  BatchRollbackRequest,
  CheckTxnStatusRequest,
  CommitRequest,
  Mutation,
  PrewriteRequest,
  ResolveLockRequest,
} from '../txn/commands.js';
import type { LockKind } from '../txn/records.js';
import { StoreError } from './errors.js';

// The payload of a normal Raft entry (nokv.cmd.v1.RaftCmdRequest) and of a membership change's
// context (ConfChangeContext), as bigint views. Entries are framed with a one-byte tag so that a
// payload of another kind (or garbage) is recognised at apply instead of misread.

const CMD_TAG = 0xce;

export type WriteRequest =
  | { op: 'put'; key: Uint8Array; value: Uint8Array }
  | { op: 'delete'; key: Uint8Array };

/** One Percolator command (run against the engine when its entry is applied). */
export type TxnCommand =
  | { type: 'prewrite'; req: PrewriteRequest }
  | { type: 'commit'; req: CommitRequest }
  | { type: 'batchRollback'; req: BatchRollbackRequest }
  | { type: 'resolveLock'; req: ResolveLockRequest }
  | { type: 'checkTxnStatus'; req: CheckTxnStatusRequest };

/** A command that changes the region itself (split, merge); applied by `split-merge.ts`. */
export type AdminCommand =
  | { type: 'split'; splitKey: Uint8Array; newRegionId: bigint; newPeerIds: bigint[] }
  | { type: 'prepareMerge'; targetRegionId: bigint }
  | { type: 'commitMerge'; source: RegionMeta; sourcePrepareIndex: bigint };

export interface RaftCommand {
  regionId: bigint;
  epoch: RegionEpoch;
  peerId: bigint;
  /** Raw writes (empty when the command is transactional or an admin command). */
  requests: WriteRequest[];
  /** A transactional command (the entry then holds nothing else). */
  txn?: TxnCommand;
  /** A split or merge step (the entry then holds nothing else). */
  admin?: AdminCommand;
}

const LOCK_KINDS: readonly LockKind[] = ['put', 'delete', 'lock'];

/** The keys of a transactional command that must lie in the region (a prewrite's primary need not). */
export function txnCommandKeys(cmd: TxnCommand): Uint8Array[] {
  switch (cmd.type) {
    case 'prewrite':
      return cmd.req.mutations.map((m) => m.key);
    case 'commit':
    case 'batchRollback':
      return [...cmd.req.keys];
    case 'resolveLock':
      return [...(cmd.req.keys ?? [])];
    case 'checkTxnStatus':
      return [cmd.req.primaryKey];
  }
}

const u64 = uint64ToWire;

function txnToWire(cmd: TxnCommand): nokv.cmd.v1.Request.$Properties {
  switch (cmd.type) {
    case 'prewrite': {
      const r = cmd.req;
      return {
        prewrite: {
          mutations: r.mutations.map((m) => ({
            op: LOCK_KINDS.indexOf(m.op),
            key: m.key,
            value: m.value ?? new Uint8Array(0),
            assertNotExist: m.assertNotExist ?? false,
          })),
          primary: r.primary,
          startTs: u64(r.startTs, 'start_ts'),
          lockTtl: u64(BigInt(r.lockTtl), 'lock_ttl'),
          minCommitTs: u64(r.minCommitTs ?? 0n, 'min_commit_ts'),
        },
      };
    }
    case 'commit':
      return {
        commit: {
          keys: [...cmd.req.keys],
          startTs: u64(cmd.req.startTs, 'start_ts'),
          commitTs: u64(cmd.req.commitTs, 'commit_ts'),
        },
      };
    case 'batchRollback':
      return { batchRollback: { keys: [...cmd.req.keys], startTs: u64(cmd.req.startTs, 'start_ts') } };
    case 'resolveLock':
      return {
        resolveLock: {
          startTs: u64(cmd.req.startTs, 'start_ts'),
          commitTs: u64(cmd.req.commitTs, 'commit_ts'),
          keys: [...(cmd.req.keys ?? [])],
          start: cmd.req.start ?? new Uint8Array(0),
          end: cmd.req.end ?? new Uint8Array(0),
        },
      };
    case 'checkTxnStatus': {
      const r = cmd.req;
      return {
        checkTxnStatus: {
          primaryKey: r.primaryKey,
          lockTs: u64(r.lockTs, 'lock_ts'),
          currentTs: u64(r.currentTs, 'current_ts'),
          callerStartTs: u64(r.callerStartTs, 'caller_start_ts'),
          rollbackIfNotExist: r.rollbackIfNotExist,
        },
      };
    }
  }
}

function txnFromWire(r: nokv.cmd.v1.Request): TxnCommand | undefined {
  const bytes = (b: Uint8Array | null | undefined): Uint8Array => b ?? new Uint8Array(0);
  if (r.prewrite) {
    const p = r.prewrite;
    const mutations: Mutation[] = (p.mutations ?? []).map((m) => {
      const op = LOCK_KINDS[m.op ?? 0];
      if (op === undefined) throw new StoreError('Internal', `prewrite mutation of unknown op ${m.op}`);
      const out: Mutation = { op, key: bytes(m.key) };
      if (op === 'put') out.value = bytes(m.value);
      if (m.assertNotExist) out.assertNotExist = true;
      return out;
    });
    const minCommitTs = uint64FromWire(p.minCommitTs);
    return {
      type: 'prewrite',
      req: {
        mutations,
        primary: bytes(p.primary),
        startTs: uint64FromWire(p.startTs),
        lockTtl: Number(uint64FromWire(p.lockTtl)),
        ...(minCommitTs > 0n ? { minCommitTs } : {}),
      },
    };
  }
  if (r.commit) {
    return {
      type: 'commit',
      req: {
        keys: (r.commit.keys ?? []).map(bytes),
        startTs: uint64FromWire(r.commit.startTs),
        commitTs: uint64FromWire(r.commit.commitTs),
      },
    };
  }
  if (r.batchRollback) {
    return {
      type: 'batchRollback',
      req: {
        keys: (r.batchRollback.keys ?? []).map(bytes),
        startTs: uint64FromWire(r.batchRollback.startTs),
      },
    };
  }
  if (r.resolveLock) {
    const x = r.resolveLock;
    const keys = (x.keys ?? []).map(bytes);
    const req: ResolveLockRequest = {
      startTs: uint64FromWire(x.startTs),
      commitTs: uint64FromWire(x.commitTs),
    };
    if (keys.length > 0) req.keys = keys;
    else {
      req.start = bytes(x.start);
      req.end = bytes(x.end);
    }
    return { type: 'resolveLock', req };
  }
  if (r.checkTxnStatus) {
    const x = r.checkTxnStatus;
    return {
      type: 'checkTxnStatus',
      req: {
        primaryKey: bytes(x.primaryKey),
        lockTs: uint64FromWire(x.lockTs),
        currentTs: uint64FromWire(x.currentTs),
        callerStartTs: uint64FromWire(x.callerStartTs),
        rollbackIfNotExist: x.rollbackIfNotExist ?? false,
      },
    };
  }
  return undefined;
}

function adminToWire(cmd: AdminCommand): nokv.cmd.v1.AdminCmd.$Properties {
  switch (cmd.type) {
    case 'split':
      return {
        split: {
          splitKey: cmd.splitKey,
          newRegionId: u64(cmd.newRegionId, 'new_region_id'),
          newPeerIds: cmd.newPeerIds.map((id) => u64(id, 'new_peer_ids')),
        },
      };
    case 'prepareMerge':
      return { prepareMerge: { targetRegionId: u64(cmd.targetRegionId, 'target_region_id') } };
    case 'commitMerge':
      return {
        commitMerge: {
          source: regionToWire(cmd.source),
          sourcePrepareIndex: u64(cmd.sourcePrepareIndex, 'source_prepare_index'),
        },
      };
  }
}

function adminFromWire(a: nokv.cmd.v1.AdminCmd): AdminCommand {
  if (a.split) {
    return {
      type: 'split',
      splitKey: a.split.splitKey ?? new Uint8Array(0),
      newRegionId: uint64FromWire(a.split.newRegionId),
      newPeerIds: (a.split.newPeerIds ?? []).map((id) => uint64FromWire(id)),
    };
  }
  if (a.prepareMerge) {
    return { type: 'prepareMerge', targetRegionId: uint64FromWire(a.prepareMerge.targetRegionId) };
  }
  if (a.commitMerge) {
    return {
      type: 'commitMerge',
      source: regionFromWire(a.commitMerge.source),
      sourcePrepareIndex: uint64FromWire(a.commitMerge.sourcePrepareIndex),
    };
  }
  throw new StoreError('Internal', 'admin command of no known kind');
}

export function encodeCommand(cmd: RaftCommand): Uint8Array {
  const body = nokv.cmd.v1.RaftCmdRequest.encode({
    header: {
      regionId: uint64ToWire(cmd.regionId, 'region_id'),
      regionEpoch: epochToWire(cmd.epoch),
      peerId: uint64ToWire(cmd.peerId, 'peer_id'),
    },
    requests: cmd.txn
      ? [txnToWire(cmd.txn)]
      : cmd.requests.map((r) =>
          r.op === 'put' ? { put: { key: r.key, value: r.value } } : { delete: { key: r.key } },
        ),
    admin: cmd.admin ? adminToWire(cmd.admin) : null,
  }).finish();
  const out = new Uint8Array(body.length + 1);
  out[0] = CMD_TAG;
  out.set(body, 1);
  return out;
}

/** @throws StoreError `Internal` for an entry that is not a framed command (a bug or corruption). */
export function decodeCommand(data: Uint8Array): RaftCommand {
  if (data.length === 0 || data[0] !== CMD_TAG) {
    throw new StoreError('Internal', `log entry is not a framed command (first byte ${data[0] ?? 'none'})`);
  }
  let m: nokv.cmd.v1.RaftCmdRequest;
  try {
    m = nokv.cmd.v1.RaftCmdRequest.decode(data.subarray(1));
  } catch (err) {
    throw new StoreError('Internal', `log entry does not decode as a command: ${(err as Error).message}`);
  }
  const requests: WriteRequest[] = [];
  let txn: TxnCommand | undefined;
  for (const r of m.requests ?? []) {
    const t = txnFromWire(r);
    if (t) {
      if (txn || (m.requests ?? []).length !== 1) {
        throw new StoreError('Internal', 'a transactional command must be the only request of its entry');
      }
      txn = t;
    } else if (r.put)
      requests.push({
        op: 'put',
        key: r.put.key ?? new Uint8Array(0),
        value: r.put.value ?? new Uint8Array(0),
      });
    else if (r.delete) requests.push({ op: 'delete', key: r.delete.key ?? new Uint8Array(0) });
    else throw new StoreError('Internal', 'command holds a request of no known kind');
  }
  let admin: AdminCommand | undefined;
  if (m.admin) {
    if (requests.length > 0 || txn) {
      throw new StoreError('Internal', 'an admin command must be the only request of its entry');
    }
    try {
      admin = adminFromWire(m.admin);
    } catch (err) {
      if (err instanceof StoreError) throw err;
      throw new StoreError('Internal', `admin command does not decode: ${(err as Error).message}`);
    }
  }
  return {
    regionId: uint64FromWire(m.header?.regionId),
    epoch: epochFromWire(m.header?.regionEpoch),
    peerId: uint64FromWire(m.header?.peerId),
    requests,
    ...(txn ? { txn } : {}),
    ...(admin ? { admin } : {}),
  };
}

/** The peers a membership change adds (with their stores), carried in ConfChangeV2.context. */
export function encodeConfChangeContext(peers: RegionPeer[]): Uint8Array {
  return nokv.cmd.v1.ConfChangeContext.encode({ peers: peers.map(peerToWire) }).finish();
}

export function decodeConfChangeContext(data: Uint8Array): RegionPeer[] {
  try {
    return (nokv.cmd.v1.ConfChangeContext.decode(data).peers ?? []).map(peerFromWire);
  } catch (err) {
    throw new StoreError('Internal', `conf change context does not decode: ${(err as Error).message}`);
  }
}
