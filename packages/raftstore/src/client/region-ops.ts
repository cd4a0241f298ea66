import { status as GrpcStatus } from '@grpc/grpc-js';
import {
  type nokv,
  peerFromWire,
  RaftAdminService,
  type RegionMeta,
  regionFromWire,
  regionToWire,
  uint64FromWire,
  uint64ToWire,
} from '@nokv/proto';
import { type RpcClient, RpcError } from '../grpc/index.js';

// Client-side orchestration of region split and merge over the stores' RaftAdmin service. A merge
// is two Raft commands in two regions: PrepareMerge on the source (its leader), then, once every
// replica of the source has applied it (its data is final everywhere), CommitMerge on the target.
// Every step is idempotent on the store, so a run that failed halfway is finished by running it
// again.

export type RegionOpsErrorCode = 'InvalidArgument' | 'FailedPrecondition' | 'NotFound' | 'Timeout';

export class RegionOpsError extends Error {
  override readonly name = 'RegionOpsError';
  constructor(
    readonly code: RegionOpsErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** What the orchestration needs of a store's admin client (an `RpcClient` of RaftAdminService). */
export type AdminClient = Pick<RpcClient<typeof RaftAdminService>, 'call'>;

export interface RegionOpsClientOptions {
  /** The RaftAdmin client of a store; undefined when its address is unknown. */
  admin(storeId: bigint): AdminClient | undefined;
  /** Where to look for a region's leader (every store of the cluster will do). */
  storeIds: readonly bigint[];
  /** Deadline of the whole operation (default 30 s). */
  timeoutMs?: number;
  /** Deadline of one RPC (default 5 s). */
  rpcTimeoutMs?: number;
}

export interface MergeOutcome {
  /** The target region after the merge. */
  region: RegionMeta;
  /** The source was gone already: an earlier run finished the merge. */
  alreadyMerged: boolean;
  /** The PrepareMerge index (absent when already merged). */
  prepareIndex?: bigint;
}

type RegionErrorWire = nokv.errors.v1.RegionError.$Properties;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function rangeCovers(outer: RegionMeta, inner: RegionMeta): boolean {
  if (Buffer.compare(outer.startKey, inner.startKey) > 0) return false;
  if (outer.endKey.length === 0) return true;
  return inner.endKey.length > 0 && Buffer.compare(inner.endKey, outer.endKey) <= 0;
}

class Run {
  readonly deadline: number;
  readonly rpcMs: number;

  constructor(readonly opts: RegionOpsClientOptions) {
    this.deadline = Date.now() + (opts.timeoutMs ?? 30_000);
    this.rpcMs = opts.rpcTimeoutMs ?? 5000;
  }

  left(what: string, last: string): number {
    const ms = this.deadline - Date.now();
    if (ms <= 0) throw new RegionOpsError('Timeout', `${what} did not finish in time (last: ${last})`);
    return Math.min(ms, this.rpcMs);
  }

  /**
   * Calls `call` on the leader of a region: follows NotLeader hints, tries the other stores, and
   * retries region errors that pass (an election, a concurrent change of the region). Resolves
   * `'notFound'` once every store said it does not host the region.
   */
  async onLeader<R extends { regionError?: RegionErrorWire | null }>(
    what: string,
    stores: readonly bigint[],
    call: (client: AdminClient, ms: number) => Promise<R>,
  ): Promise<R | 'notFound'> {
    const notFound = new Set<bigint>();
    let hint: bigint | undefined;
    let next = 0;
    let last = 'no attempt made';
    for (let attempt = 0; ; attempt++) {
      const ms = this.left(what, last);
      const storeId = hint ?? stores[next++ % stores.length]!;
      hint = undefined;
      const backoff = () => sleep(Math.min(25 * (attempt + 1), 400));
      const client = this.opts.admin(storeId);
      if (!client) {
        last = `store ${storeId} has no address`;
        if (next % stores.length === 0) await backoff();
        continue;
      }
      let res: R;
      try {
        res = await call(client, ms);
      } catch (err) {
        if (!(err instanceof RpcError)) throw err;
        if (err.status === GrpcStatus.INVALID_ARGUMENT || err.status === GrpcStatus.FAILED_PRECONDITION) {
          throw new RegionOpsError(
            err.status === GrpcStatus.INVALID_ARGUMENT ? 'InvalidArgument' : 'FailedPrecondition',
            `${what}: ${err.details}`,
            { cause: err },
          );
        }
        last = `store ${storeId}: ${err.message}`;
        await backoff();
        continue;
      }
      const re = res.regionError;
      if (!re) return res;
      last = `store ${storeId}: ${re.message ?? 'region error'}`;
      if (re.notLeader) {
        const leader = re.notLeader.leader ? peerFromWire(re.notLeader.leader) : undefined;
        if (leader && leader.storeId !== 0n && leader.storeId !== storeId) hint = leader.storeId;
        else await backoff();
        continue;
      }
      if (re.regionNotFound) {
        notFound.add(storeId);
        if (stores.every((s) => notFound.has(s))) return 'notFound';
        continue;
      }
      if (re.keyNotInRegion) throw new RegionOpsError('InvalidArgument', `${what}: ${re.message}`);
      // EpochNotMatch (the region changed meanwhile), ServerBusy: try again.
      await backoff();
    }
  }

  async status(storeId: bigint, regionId: bigint): Promise<nokv.admin.v1.RegionStatus | undefined> {
    const client = this.opts.admin(storeId);
    if (!client) return undefined;
    try {
      return await client.call(
        RaftAdminService.RegionStatus,
        { regionId: uint64ToWire(regionId, 'region_id') },
        { deadlineMs: this.rpcMs },
      );
    } catch (err) {
      if (err instanceof RpcError) return undefined;
      throw err;
    }
  }
}

function stores(opts: RegionOpsClientOptions, first: readonly bigint[] = []): bigint[] {
  return [...new Set([...first, ...opts.storeIds])];
}

/** Splits a region at `splitKey` through its leader; ids come from the caller (AllocId). */
export async function splitRegion(
  opts: RegionOpsClientOptions & {
    regionId: bigint;
    splitKey: Uint8Array;
    newRegionId: bigint;
    newPeerIds: readonly bigint[];
  },
): Promise<{ left: RegionMeta; right: RegionMeta }> {
  const run = new Run(opts);
  const res = await run.onLeader(`split of region ${opts.regionId}`, stores(opts), (c, ms) =>
    c.call(
      RaftAdminService.SplitRegion,
      {
        regionId: uint64ToWire(opts.regionId, 'region_id'),
        splitKey: opts.splitKey,
        newRegionId: uint64ToWire(opts.newRegionId, 'new_region_id'),
        newPeerIds: opts.newPeerIds.map((id) => uint64ToWire(id, 'new_peer_ids')),
      },
      { deadlineMs: ms },
    ),
  );
  if (res === 'notFound') throw new RegionOpsError('NotFound', `no store hosts region ${opts.regionId}`);
  return { left: regionFromWire(res.left), right: regionFromWire(res.right) };
}

/**
 * Merges region `sourceRegionId` into its left neighbour `targetRegionId` (both on the same
 * stores): PrepareMerge on the source's leader, a wait until every replica of the source applied
 * it, CommitMerge on the target's leader. Running it again after a failure finishes the merge;
 * after a finished merge it reports `alreadyMerged`.
 */
export async function mergeRegions(
  opts: RegionOpsClientOptions & { sourceRegionId: bigint; targetRegionId: bigint },
): Promise<MergeOutcome> {
  const run = new Run(opts);
  const { sourceRegionId: sourceId, targetRegionId: targetId } = opts;
  const prepared = await run.onLeader(`prepare merge of region ${sourceId}`, stores(opts), (c, ms) =>
    c.call(
      RaftAdminService.PrepareMerge,
      {
        sourceRegionId: uint64ToWire(sourceId, 'source_region_id'),
        targetRegionId: uint64ToWire(targetId, 'target_region_id'),
      },
      { deadlineMs: ms },
    ),
  );
  if (prepared === 'notFound') {
    // The source is gone from every store: a previous run committed the merge (the source is only
    // deleted when CommitMerge applies), provided the target is still there.
    for (const storeId of stores(opts)) {
      const t = await run.status(storeId, targetId);
      if (t?.hosted && t.region) return { region: regionFromWire(t.region), alreadyMerged: true };
    }
    throw new RegionOpsError('NotFound', `neither region ${sourceId} nor region ${targetId} is hosted`);
  }
  const source = regionFromWire(prepared.source);
  const prepareIndex = uint64FromWire(prepared.prepareIndex);

  // Every replica of the source must have applied PrepareMerge: CommitMerge hands the source's
  // data, as each store holds it, to the target's replica there.
  for (const p of source.peers) {
    let last = 'not asked yet';
    for (;;) {
      run.left(`wait for region ${sourceId} on store ${p.storeId} to apply ${prepareIndex}`, last);
      const [s, t] = await Promise.all([run.status(p.storeId, sourceId), run.status(p.storeId, targetId)]);
      if (s?.hosted && uint64FromWire(s.appliedIndex) >= prepareIndex) break;
      // Already merged there (a previous run got as far as CommitMerge).
      if (s && !s.hosted && t?.hosted && t.region && rangeCovers(regionFromWire(t.region), source)) break;
      last =
        s === undefined
          ? 'store unreachable'
          : s.hosted
            ? `applied ${uint64FromWire(s.appliedIndex)}`
            : 'not hosted';
      await sleep(50);
    }
  }

  const committed = await run.onLeader(
    `commit merge of region ${sourceId} into ${targetId}`,
    stores(
      opts,
      source.peers.map((p) => p.storeId),
    ),
    (c, ms) =>
      c.call(
        RaftAdminService.CommitMerge,
        {
          targetRegionId: uint64ToWire(targetId, 'target_region_id'),
          source: regionToWire(source),
          sourcePrepareIndex: uint64ToWire(prepareIndex, 'source_prepare_index'),
        },
        { deadlineMs: ms },
      ),
  );
  if (committed === 'notFound') throw new RegionOpsError('NotFound', `no store hosts region ${targetId}`);
  return { region: regionFromWire(committed.region), alreadyMerged: false, prepareIndex };
}
