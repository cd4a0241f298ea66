import { nodeVfs, readModeFile } from '@nokv/engine';
import { RaftAdminService, type RegionMeta, regionFromWire, uint64FromWire, uint64ToWire } from '@nokv/proto';
import { createClient, type RpcClient } from '../grpc/index.js';
import { MigrateError } from './errors.js';
import { type MigrationStage, readProgress, writeProgress } from './progress.js';

type AdminClient = RpcClient<typeof RaftAdminService>;

/** One region as a store sees it right now (RegionRuntimeStatus). */
export interface RuntimeStatus {
  addr: string;
  known: boolean;
  hosted: boolean;
  member: boolean;
  tombstone: boolean;
  localPeerId: bigint;
  leaderPeerId: bigint;
  leader: boolean;
  region?: RegionMeta;
  appliedIndex: bigint;
  appliedTerm: bigint;
}

export interface RemoteOptions {
  /** Per-RPC deadline (default 5 s). */
  rpcTimeoutMs?: number;
  onProgress?: (message: string) => void;
}

function admin(addr: string): AdminClient {
  return createClient(RaftAdminService, addr);
}

async function withAdmin<T>(addr: string, fn: (c: AdminClient) => Promise<T>): Promise<T> {
  const c = admin(addr);
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

function remoteFailed(what: string, addr: string, err: unknown): MigrateError {
  return new MigrateError('RemoteFailed', `${what} at ${addr} failed: ${(err as Error).message}`, {
    cause: err,
  });
}

/** RegionRuntimeStatus of one region on the store at `addr`. */
export async function runtimeStatus(
  addr: string,
  regionId: bigint,
  opts: RemoteOptions = {},
): Promise<RuntimeStatus> {
  return withAdmin(addr, async (c) => {
    let r: Awaited<ReturnType<AdminClient['call']>>;
    try {
      r = await c.call(
        RaftAdminService.RegionRuntimeStatus,
        { regionId: uint64ToWire(regionId, 'regionId') },
        { deadlineMs: opts.rpcTimeoutMs ?? 5000 },
      );
    } catch (err) {
      throw remoteFailed('RegionRuntimeStatus', addr, err);
    }
    const s = r as {
      known?: boolean;
      hosted?: boolean;
      member?: boolean;
      tombstone?: boolean;
      localPeerId?: unknown;
      leaderPeerId?: unknown;
      leader?: boolean;
      region?: Parameters<typeof regionFromWire>[0];
      appliedIndex?: unknown;
      appliedTerm?: unknown;
    };
    return {
      addr,
      known: s.known === true,
      hosted: s.hosted === true,
      member: s.member === true,
      tombstone: s.tombstone === true,
      localPeerId: u64(s.localPeerId),
      leaderPeerId: u64(s.leaderPeerId),
      leader: s.leader === true,
      ...(s.region ? { region: regionFromWire(s.region) } : {}),
      appliedIndex: u64(s.appliedIndex),
      appliedTerm: u64(s.appliedTerm),
    };
  });
}

function u64(v: unknown): bigint {
  return v === undefined || v === null ? 0n : uint64FromWire(v as Parameters<typeof uint64FromWire>[0]);
}

/** Polls `check` every `pollMs` until it returns true; `Timeout` after `waitMs`. */
async function waitFor(
  what: string,
  waitMs: number,
  pollMs: number,
  check: () => Promise<boolean>,
): Promise<void> {
  const deadline = Date.now() + waitMs;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
      last = undefined;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      throw new MigrateError(
        'Timeout',
        `${what} did not happen within ${waitMs} ms${last ? ` (last error: ${(last as Error).message})` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** Fails unless the store at `addr` leads the region; names the leader when it knows one. */
async function requireLeader(addr: string, regionId: bigint, opts: RemoteOptions): Promise<RuntimeStatus> {
  const s = await runtimeStatus(addr, regionId, opts);
  if (!s.hosted) throw new MigrateError('NotLeader', `the store at ${addr} does not host region ${regionId}`);
  if (!s.leader) {
    const lead = s.region?.peers.find((p) => p.peerId === s.leaderPeerId);
    throw new MigrateError(
      'NotLeader',
      `the store at ${addr} is not the leader of region ${regionId}${lead ? `; the leader is peer ${lead.peerId} on store ${lead.storeId}` : ''}: pass the leader's address with --addr`,
    );
  }
  return s;
}

/** Writes a checkpoint when a workdir was given (the ids come from the last one or MODE.json). */
async function checkpointer(workdir: string | undefined) {
  if (workdir === undefined) return async (_stage: MigrationStage, _extra: object = {}) => {};
  const last = await readProgress(workdir);
  const mode = await readModeFile(nodeVfs, workdir);
  const ids = {
    storeId: last?.storeId ?? mode?.storeId ?? 0,
    regionId: last?.regionId ?? mode?.regionId ?? 0,
    peerId: last?.peerId ?? mode?.peerId ?? 0,
  };
  return async (stage: MigrationStage, extra: object = {}) => {
    await writeProgress(workdir, { stage, ...ids, ...extra });
  };
}

export interface ExpandTarget {
  storeId: bigint;
  peerId: bigint;
  /** The target store's gRPC address: the snapshot goes there, and it is polled until it hosts the peer. */
  addr?: string;
}

export interface ExpandOptions extends RemoteOptions {
  /** The region leader's gRPC address. */
  addr: string;
  regionId: bigint;
  targets: ExpandTarget[];
  /** Checkpoints go to this workdir's MIGRATION_PROGRESS.json when given. */
  workdir?: string;
  /** How long to wait for each step (default 30 s); 0 = fire AddPeer and return. */
  waitMs?: number;
  pollIntervalMs?: number;
  /** Test hook, called after each checkpoint. */
  afterCheckpoint?: (stage: MigrationStage) => void;
}

export interface ExpandResult {
  regionId: string;
  added: {
    storeId: string;
    peerId: string;
    alreadyMember: boolean;
    snapshotBytes: string;
    appliedIndex: string;
  }[];
  region?: RegionMeta;
}

/**
 * `migrate expand`: adds the targets one at a time. Each: AddPeer on the leader (which streams a
 * region snapshot into the target and then changes the membership), then wait until the leader's
 * region lists the peer and the target hosts it as a member with data applied. Re-running after an
 * interruption skips the peers that are already members.
 */
export async function expand(opts: ExpandOptions): Promise<ExpandResult> {
  if (opts.targets.length === 0)
    throw new MigrateError('InvalidArgument', 'expand needs at least one --target');
  const say = opts.onProgress ?? (() => {});
  const waitMs = opts.waitMs ?? 30_000;
  const poll = opts.pollIntervalMs ?? 200;
  const cp = await checkpointer(opts.workdir);
  const mark = async (stage: MigrationStage, extra: object = {}) => {
    await cp(stage, extra);
    opts.afterCheckpoint?.(stage);
  };
  await mark('expand-rollout-started', { totalTargets: opts.targets.length, completedTargets: 0 });
  const result: ExpandResult = { regionId: String(opts.regionId), added: [] };
  for (const [i, t] of opts.targets.entries()) {
    const extra = {
      targetStoreId: Number(t.storeId),
      targetPeerId: Number(t.peerId),
      totalTargets: opts.targets.length,
      completedTargets: i,
    };
    await mark('expand-target-pending', extra);
    const before = await requireLeader(opts.addr, opts.regionId, opts);
    const already = before.region?.peers.some((p) => p.peerId === t.peerId) === true;
    let snapshotBytes = 0n;
    if (!already) {
      say(
        `adding peer ${t.peerId} on store ${t.storeId} (snapshot ${t.addr ? `to ${t.addr}` : 'via the leader'})`,
      );
      const res = await withAdmin(opts.addr, async (c) => {
        try {
          return await c.call(
            RaftAdminService.AddPeer,
            {
              regionId: uint64ToWire(opts.regionId, 'regionId'),
              storeId: uint64ToWire(t.storeId, 'storeId'),
              peerId: uint64ToWire(t.peerId, 'peerId'),
              targetAddr: t.addr ?? '',
            },
            { deadlineMs: Math.max(waitMs, 10_000) },
          );
        } catch (err) {
          throw remoteFailed('AddPeer', opts.addr, err);
        }
      });
      const r = res as { regionError?: { message?: string } | null; snapshotBytes?: unknown };
      if (r.regionError) {
        throw new MigrateError('RemoteFailed', `AddPeer refused: ${r.regionError.message ?? 'region error'}`);
      }
      snapshotBytes = u64(r.snapshotBytes);
    } else {
      say(`peer ${t.peerId} is already a member; checking it`);
    }
    if (waitMs === 0) {
      result.added.push({
        storeId: String(t.storeId),
        peerId: String(t.peerId),
        alreadyMember: already,
        snapshotBytes: String(snapshotBytes),
        appliedIndex: '0',
      });
      continue;
    }
    await waitFor(
      `region ${opts.regionId} listing peer ${t.peerId} on the leader`,
      waitMs,
      poll,
      async () => {
        const s = await runtimeStatus(opts.addr, opts.regionId, opts);
        result.region = s.region;
        return s.region?.peers.some((p) => p.peerId === t.peerId) === true;
      },
    );
    let applied = 0n;
    if (t.addr) {
      const addr = t.addr;
      await waitFor(`store ${t.storeId} hosting peer ${t.peerId}`, waitMs, poll, async () => {
        const s = await runtimeStatus(addr, opts.regionId, opts);
        applied = s.appliedIndex;
        return s.known && s.hosted && s.member && s.localPeerId === t.peerId && s.appliedIndex > 0n;
      });
    }
    say(`peer ${t.peerId} on store ${t.storeId} is hosted${t.addr ? ` (applied index ${applied})` : ''}`);
    result.added.push({
      storeId: String(t.storeId),
      peerId: String(t.peerId),
      alreadyMember: already,
      snapshotBytes: String(snapshotBytes),
      appliedIndex: String(applied),
    });
    await mark('expand-target-hosted', { ...extra, completedTargets: i + 1 });
  }
  return result;
}

export interface PeerMoveOptions extends RemoteOptions {
  /** The region leader's gRPC address. */
  addr: string;
  /** The gRPC address of the store holding `peerId`. */
  targetAddr: string;
  regionId: bigint;
  peerId: bigint;
  workdir?: string;
  waitMs?: number;
  pollIntervalMs?: number;
  /** Test hook, called after each checkpoint. */
  afterCheckpoint?: (stage: MigrationStage) => void;
}

/** `migrate transfer-leader`: moves leadership to `peerId` and waits until both sides agree. */
export async function transferLeader(opts: PeerMoveOptions): Promise<RuntimeStatus> {
  const waitMs = opts.waitMs ?? 30_000;
  const poll = opts.pollIntervalMs ?? 200;
  const write = await checkpointer(opts.workdir);
  const cp = async (stage: MigrationStage, extra: object) => {
    await write(stage, extra);
    if (opts.workdir !== undefined) opts.afterCheckpoint?.(stage);
  };
  const extra = { targetPeerId: Number(opts.peerId) };
  const now = await runtimeStatus(opts.addr, opts.regionId, opts);
  if (!(now.leader && now.localPeerId === opts.peerId)) {
    await requireLeader(opts.addr, opts.regionId, opts);
    await cp('transfer-leader-started', extra);
    await withAdmin(opts.addr, async (c) => {
      try {
        const r = (await c.call(
          RaftAdminService.TransferLeader,
          {
            regionId: uint64ToWire(opts.regionId, 'regionId'),
            toPeerId: uint64ToWire(opts.peerId, 'toPeerId'),
          },
          { deadlineMs: opts.rpcTimeoutMs ?? 5000 },
        )) as { regionError?: { message?: string } | null };
        if (r.regionError) throw new Error(r.regionError.message ?? 'region error');
      } catch (err) {
        throw remoteFailed('TransferLeader', opts.addr, err);
      }
    });
  }
  await waitFor(
    `leadership of region ${opts.regionId} moving to peer ${opts.peerId}`,
    waitMs,
    poll,
    async () => {
      const s = await runtimeStatus(opts.targetAddr, opts.regionId, opts);
      return s.leader && s.localPeerId === opts.peerId;
    },
  );
  await cp('transfer-leader-finished', extra);
  return runtimeStatus(opts.targetAddr, opts.regionId, opts);
}

/** `migrate remove-peer`: removes `peerId` and waits until its store no longer hosts it. */
export async function removePeer(opts: PeerMoveOptions): Promise<{ region?: RegionMeta }> {
  const waitMs = opts.waitMs ?? 30_000;
  const poll = opts.pollIntervalMs ?? 200;
  const write = await checkpointer(opts.workdir);
  const cp = async (stage: MigrationStage, extra: object) => {
    await write(stage, extra);
    if (opts.workdir !== undefined) opts.afterCheckpoint?.(stage);
  };
  const extra = { targetPeerId: Number(opts.peerId) };
  const leader = await requireLeader(opts.addr, opts.regionId, opts);
  if (leader.localPeerId === opts.peerId) {
    throw new MigrateError(
      'InvalidArgument',
      `peer ${opts.peerId} is the leader; transfer leadership away first (nokv migrate transfer-leader)`,
    );
  }
  let region = leader.region;
  if (region?.peers.some((p) => p.peerId === opts.peerId)) {
    await cp('remove-peer-started', extra);
    await withAdmin(opts.addr, async (c) => {
      try {
        const r = (await c.call(
          RaftAdminService.RemovePeer,
          { regionId: uint64ToWire(opts.regionId, 'regionId'), peerId: uint64ToWire(opts.peerId, 'peerId') },
          { deadlineMs: Math.max(waitMs, 5000) },
        )) as { regionError?: { message?: string } | null };
        if (r.regionError) throw new Error(r.regionError.message ?? 'region error');
      } catch (err) {
        throw remoteFailed('RemovePeer', opts.addr, err);
      }
    });
    await waitFor(`region ${opts.regionId} dropping peer ${opts.peerId}`, waitMs, poll, async () => {
      const s = await runtimeStatus(opts.addr, opts.regionId, opts);
      region = s.region;
      return !s.hosted || !s.region?.peers.some((p) => p.peerId === opts.peerId);
    });
  }
  await waitFor(`the store at ${opts.targetAddr} dropping peer ${opts.peerId}`, waitMs, poll, async () => {
    const s = await runtimeStatus(opts.targetAddr, opts.regionId, opts);
    return !s.hosted || s.localPeerId !== opts.peerId;
  });
  await cp('remove-peer-finished', extra);
  return region ? { region } : {};
}
