import { CoordinatorService, peerToWire, regionToWire, uint64FromWire, uint64ToWire } from '@nokv/proto';
import type { Store } from '@nokv/raftstore';
import { createClient, type RpcClient } from '@nokv/raftstore/grpc';
import type { NodeLogger } from './logger.js';

// The store's side of the coordinator: every interval a StoreHeartbeat (which also registers the
// store and its addresses) and a RegionHeartbeat for each region it leads. The coordinator's
// answer may carry transfer-leader hints, which the store executes. The data plane never waits on
// this: with the coordinator down the store keeps serving, and the next successful round brings
// the coordinator up to date (heartbeats carry the whole current state, so nothing is queued).

export interface HeartbeatOptions {
  store: Store;
  coordinatorAddr: string;
  addr: string;
  httpAddr?: string;
  intervalMs?: number;
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
}

export class CoordinatorHeartbeat {
  private readonly client: RpcClient<typeof CoordinatorService>;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  readonly status: HeartbeatStatus = {
    mode: 'starting',
    lastOkAtMs: 0,
    lastError: null,
    rounds: 0,
    failedRounds: 0,
    leaderTransfersDone: 0,
  };

  constructor(private readonly options: HeartbeatOptions) {
    this.client = createClient(CoordinatorService, options.coordinatorAddr);
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

  /** One heartbeat round; never throws. */
  async round(): Promise<void> {
    const { store, logger } = this.options;
    this.status.rounds++;
    try {
      const statuses = store.regionStatuses();
      const leaders = statuses.filter((r) => r.role === 'leader');
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
            leaderCount: uint64ToWire(BigInt(leaders.length), 'leader_count'),
          },
        },
        { deadlineMs: 2000 },
      );
      for (const r of leaders) {
        const peer = store.peer(BigInt(r.regionId));
        if (!peer?.isLeader) continue;
        const s = peer.status();
        const me = s.region.peers.find((p) => p.peerId === s.peerId);
        await this.client.call(
          CoordinatorService.RegionHeartbeat,
          {
            region: regionToWire(s.region),
            ...(me ? { leader: peerToWire(me) } : {}),
            term: uint64ToWire(s.term, 'term'),
            appliedIndex: uint64ToWire(s.appliedIndex, 'applied_index'),
          },
          { deadlineMs: 2000 },
        );
      }
      for (const op of res.operations ?? []) {
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
      if (this.status.mode !== 'healthy')
        logger.info({ coordinator: this.options.coordinatorAddr }, 'coordinator reachable');
      this.status.mode = 'healthy';
      this.status.lastOkAtMs = Date.now();
      this.status.lastError = null;
    } catch (err) {
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
}
