import {
  CoordinatorService,
  type nokv,
  peerToWire,
  type RegionMeta,
  regionToWire,
  uint64FromWire,
  uint64ToWire,
} from '@nokv/proto';
import type { RegionStatusView } from '@nokv/raftstore';
import { createClient, type RpcClient } from '@nokv/raftstore/grpc';
import type { NodeLogger } from './logger.js';

// The store's side of the coordinator: every interval a StoreHeartbeat (which also registers the
// store and its addresses), then the heartbeats of the regions it leads in RegionHeartbeatBatch
// calls (up to `batchSize` per call). A region whose heartbeat would say the same as the last one
// the coordinator acknowledged (same epoch, peers, term, applied index) is left out, except in a
// full refresh every `fullRefreshEvery` rounds and in the first round after a failed one (the
// coordinator may have restarted and forgotten leaders), so a thousand idle regions cost one small
// call per round. The coordinator therefore trusts a leader for longer than the refresh period
// (its --region-heartbeat-timeout-ms, 3 × the store timeout by default).
//
// The data plane never waits on this: with the coordinator down the store keeps serving, and the
// next successful round brings the coordinator up to date (heartbeats carry the whole current
// state, so nothing is queued). Transfer-leader hints in the StoreHeartbeat reply are still
// carried out, although the coordinator now moves leaders with RaftAdmin calls of its own.

/** What the heartbeat reads from the store (the raftstore Store has it; tests pass a fake). */
export interface HeartbeatStore {
  readonly storeId: bigint;
  regionStatuses(): readonly Pick<
    RegionStatusView,
    'regionId' | 'role' | 'term' | 'appliedIndex' | 'epoch' | 'peers'
  >[];
  peer(regionId: bigint):
    | {
        readonly isLeader: boolean;
        status(): { peerId: bigint; term: bigint; appliedIndex: bigint; region: RegionMeta };
      }
    | undefined;
  transferLeader(regionId: bigint, toPeerId: bigint): void;
}

export interface HeartbeatOptions {
  store: HeartbeatStore;
  coordinatorAddr: string;
  addr: string;
  httpAddr?: string;
  intervalMs?: number;
  /** Every this many rounds every led region is sent, changed or not (default 10; 1 = always). */
  fullRefreshEvery?: number;
  /** Region heartbeats per RegionHeartbeatBatch call (default 1000). */
  batchSize?: number;
  /** Per-call deadline (default 2000 ms; a batch gets 4× that). */
  rpcTimeoutMs?: number;
  logger: NodeLogger;
}

export interface HeartbeatStatus {
  /** healthy: the last round reached the coordinator; unavailable: it did not. */
  mode: 'healthy' | 'unavailable' | 'starting';
  lastOkAtMs: number;
  lastError: string | null;
  rounds: number;
  failedRounds: number;
  leaderTransfersDone: number;
  /** Region heartbeats sent (entries of batches) and the batch calls carrying them. */
  regionHeartbeatsSent: number;
  regionBatchesSent: number;
  /** Led regions left out because nothing changed since the last acknowledged heartbeat. */
  regionHeartbeatsSkipped: number;
  /** The last round: regions led, heartbeats sent, and whether it was a full refresh. */
  lastRound: { leaders: number; sent: number; full: boolean } | null;
}

type RegionHeartbeat = nokv.coordinator.v1.RegionHeartbeatRequest.$Properties;

/** What a region's heartbeat says, as one comparable string. */
function signature(r: Pick<RegionStatusView, 'term' | 'appliedIndex' | 'epoch' | 'peers'>): string {
  const peers = r.peers.map((p) => `${p.storeId}:${p.peerId}${p.learner ? 'L' : ''}`).join(',');
  return `${r.term}|${r.appliedIndex}|${r.epoch.version}.${r.epoch.confVersion}|${peers}`;
}

export class CoordinatorHeartbeat {
  private readonly client: RpcClient<typeof CoordinatorService>;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** Region id → the signature of the last heartbeat the coordinator acknowledged (led regions only). */
  private readonly acked = new Map<string, string>();
  /** Send every led region in the next round (first round, after a failure). */
  private fullNext = true;
  private readonly fullEvery: number;
  private readonly batchSize: number;
  private readonly rpcTimeoutMs: number;
  readonly status: HeartbeatStatus = {
    mode: 'starting',
    lastOkAtMs: 0,
    lastError: null,
    rounds: 0,
    failedRounds: 0,
    leaderTransfersDone: 0,
    regionHeartbeatsSent: 0,
    regionBatchesSent: 0,
    regionHeartbeatsSkipped: 0,
    lastRound: null,
  };

  constructor(private readonly options: HeartbeatOptions) {
    this.client = createClient(CoordinatorService, options.coordinatorAddr);
    this.fullEvery = Math.max(1, options.fullRefreshEvery ?? 10);
    this.batchSize = Math.max(1, options.batchSize ?? 1000);
    this.rpcTimeoutMs = options.rpcTimeoutMs ?? 2000;
  }

  start(): void {
    const every = this.options.intervalMs ?? 1000;
    const tick = () => {
      if (this.stopped) return;
      this.running = this.round().finally(() => {
        this.running = undefined;
        if (!this.stopped) this.timer = setTimeout(tick, every);
      });
    };
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    this.client.close();
  }

  /** The heartbeats of the led regions to send this round, with their signatures. */
  private regionHeartbeats(
    statuses: ReturnType<HeartbeatStore['regionStatuses']>,
    full: boolean,
  ): { items: { regionId: string; sig: string; hb: RegionHeartbeat }[]; leaders: number } {
    const { store } = this.options;
    const led = new Set<string>();
    const items: { regionId: string; sig: string; hb: RegionHeartbeat }[] = [];
    for (const r of statuses) {
      if (r.role !== 'leader') continue;
      led.add(r.regionId);
      const sig = signature(r);
      if (!full && this.acked.get(r.regionId) === sig) {
        this.status.regionHeartbeatsSkipped++;
        continue;
      }
      const peer = store.peer(BigInt(r.regionId));
      if (!peer?.isLeader) continue;
      const s = peer.status();
      const me = s.region.peers.find((p) => p.peerId === s.peerId);
      items.push({
        regionId: r.regionId,
        sig,
        hb: {
          region: regionToWire(s.region),
          ...(me ? { leader: peerToWire(me) } : {}),
          term: uint64ToWire(s.term, 'term'),
          appliedIndex: uint64ToWire(s.appliedIndex, 'applied_index'),
        },
      });
    }
    // A region led again later is sent again.
    for (const id of this.acked.keys()) if (!led.has(id)) this.acked.delete(id);
    return { items, leaders: led.size };
  }

  /** One heartbeat round; never throws. */
  async round(): Promise<void> {
    const { store, logger } = this.options;
    this.status.rounds++;
    try {
      const statuses = store.regionStatuses();
      let leaderCount = 0;
      for (const r of statuses) if (r.role === 'leader') leaderCount++;
      const res = await this.client.call(
        CoordinatorService.StoreHeartbeat,
        {
          store: {
            id: uint64ToWire(store.storeId, 'store.id'),
            addr: this.options.addr,
            httpAddr: this.options.httpAddr ?? '',
          },
          stats: {
            regionCount: uint64ToWire(BigInt(statuses.length), 'region_count'),
            leaderCount: uint64ToWire(BigInt(leaderCount), 'leader_count'),
          },
        },
        { deadlineMs: this.rpcTimeoutMs },
      );
      const full = this.fullNext || this.status.rounds % this.fullEvery === 0;
      const { items, leaders } = this.regionHeartbeats(statuses, full);
      for (let i = 0; i < items.length; i += this.batchSize) {
        const chunk = items.slice(i, i + this.batchSize);
        await this.client.call(
          CoordinatorService.RegionHeartbeatBatch,
          { heartbeats: chunk.map((c) => c.hb) },
          { deadlineMs: 4 * this.rpcTimeoutMs },
        );
        // Stale answers count as acknowledged too: sending the same metadata again cannot help.
        for (const c of chunk) this.acked.set(c.regionId, c.sig);
        this.status.regionBatchesSent++;
        this.status.regionHeartbeatsSent += chunk.length;
      }
      this.fullNext = false;
      this.status.lastRound = { leaders, sent: items.length, full };
      this.applyHints(res.operations ?? []);
      if (this.status.mode !== 'healthy')
        logger.info({ coordinator: this.options.coordinatorAddr }, 'coordinator reachable');
      this.status.mode = 'healthy';
      this.status.lastOkAtMs = Date.now();
      this.status.lastError = null;
    } catch (err) {
      this.fullNext = true;
      this.status.failedRounds++;
      const message = (err as Error).message;
      if (this.status.mode !== 'unavailable') {
        logger.warn(
          { coordinator: this.options.coordinatorAddr, err: message },
          'coordinator unavailable; still serving',
        );
      }
      this.status.mode = 'unavailable';
      this.status.lastError = message;
    }
  }

  private applyHints(ops: readonly nokv.coordinator.v1.Operation.$Properties[]): void {
    const { store, logger } = this.options;
    for (const op of ops) {
      if (op.type !== 1) continue; // TRANSFER_LEADER
      const regionId = uint64FromWire(op.regionId);
      const to = uint64FromWire(op.toPeerId);
      try {
        store.transferLeader(regionId, to);
        this.status.leaderTransfersDone++;
        logger.info(
          { region: String(regionId), to: String(to) },
          'transferring leadership on a coordinator hint',
        );
      } catch (err) {
        logger.debug(
          { region: String(regionId), err: (err as Error).message },
          'leader transfer hint not applied',
        );
      }
    }
  }
}
