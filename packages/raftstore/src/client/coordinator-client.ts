import { CoordinatorService, type RegionMeta, regionFromWire, uint64FromWire } from '@nokv/proto';
import { createClient, type RpcClient } from '../grpc/index.js';
import { ClientError, RawClient } from './raw-client.js';

// What a client asks the coordinator: where a key's region is, where the stores are, and
// timestamps. Route answers are cached by the RawClient; with the coordinator down a client with
// a warm cache keeps working, a cold one gets RouteUnavailable, and timestamps are unavailable
// (TsoUnavailable: a transaction cannot start or commit without one, and nothing else is safe).

export class CoordinatorClient {
  private readonly rpc: RpcClient<typeof CoordinatorService>;
  private readonly tsoQueue: { resolve(ts: bigint): void; reject(err: Error): void }[] = [];
  private tsoInFlight = false;

  constructor(
    readonly address: string,
    private readonly timeoutMs = 2000,
  ) {
    this.rpc = createClient(CoordinatorService, address);
  }

  async regionByKey(key: Uint8Array): Promise<RegionMeta | undefined> {
    const res = await this.rpc.call(
      CoordinatorService.GetRegionByKey,
      { key },
      { deadlineMs: this.timeoutMs },
    );
    return res.notFound || !res.region ? undefined : regionFromWire(res.region);
  }

  /** Store id → gRPC address of every store the coordinator knows. */
  async stores(): Promise<Map<bigint, string>> {
    const res = await this.rpc.call(CoordinatorService.ListStores, {}, { deadlineMs: this.timeoutMs });
    const out = new Map<bigint, string>();
    for (const s of res.stores ?? []) if (s.addr) out.set(uint64FromWire(s.id), s.addr);
    return out;
  }

  /**
   * One timestamp. Concurrent callers share RPCs: while one Tso call is out, new requests queue and
   * the next call asks for all of them at once (the coordinator hands out a contiguous range), so
   * a busy client pays one round trip per batch rather than per transaction.
   */
  tso(): Promise<bigint> {
    return new Promise((resolve, reject) => {
      this.tsoQueue.push({ resolve, reject });
      if (!this.tsoInFlight) void this.flushTso();
    });
  }

  private async flushTso(): Promise<void> {
    this.tsoInFlight = true;
    while (this.tsoQueue.length > 0) {
      const batch = this.tsoQueue.splice(0, 65_536);
      try {
        const res = await this.rpc.call(
          CoordinatorService.Tso,
          { count: batch.length },
          { deadlineMs: this.timeoutMs },
        );
        const first = uint64FromWire(res.timestamp);
        if ((res.count ?? 0) < batch.length)
          throw new Error(`asked for ${batch.length} timestamps, got ${res.count}`);
        for (let i = 0; i < batch.length; i++) batch[i]!.resolve(first + BigInt(i));
      } catch (err) {
        const e = new ClientError(
          'TsoUnavailable',
          `no timestamp from the coordinator at ${this.address}: ${(err as Error).message}`,
          { cause: err },
        );
        for (const w of batch) w.reject(e);
      }
    }
    this.tsoInFlight = false;
  }

  close(): void {
    this.rpc.close();
  }
}

export interface ClusterClientOptions {
  coordinatorAddr: string;
  timeoutMs?: number;
  rpcTimeoutMs?: number;
}

/**
 * A RawClient that routes through the coordinator: store addresses from ListStores (refreshed
 * when an unknown store shows up), regions looked up by key and cached.
 * @throws ClientError `RouteUnavailable` when the coordinator cannot be reached at connect time.
 */
export async function connectCluster(
  opts: ClusterClientOptions,
): Promise<{ client: RawClient; coordinator: CoordinatorClient; close(): void }> {
  const coordinator = new CoordinatorClient(opts.coordinatorAddr);
  let stores: Map<bigint, string>;
  try {
    stores = await coordinator.stores();
  } catch (err) {
    coordinator.close();
    throw new ClientError(
      'RouteUnavailable',
      `coordinator ${opts.coordinatorAddr} is unreachable: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  let refreshing: Promise<void> | undefined;
  const refreshStores = () => {
    refreshing ??= coordinator
      .stores()
      .then((s) => {
        stores = s;
      })
      .catch(() => {})
      .finally(() => {
        refreshing = undefined;
      });
  };
  const client = new RawClient({
    regions: [],
    resolveStoreAddress: (id) => {
      const addr = stores.get(id);
      if (addr === undefined) refreshStores();
      return addr;
    },
    lookupRegion: async (key) => {
      const region = await coordinator.regionByKey(key);
      if (region?.peers.some((p) => !stores.has(p.storeId))) {
        refreshStores();
        await refreshing;
      }
      return region;
    },
    ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    ...(opts.rpcTimeoutMs !== undefined ? { rpcTimeoutMs: opts.rpcTimeoutMs } : {}),
  });
  return {
    client,
    coordinator,
    close: () => {
      client.close();
      coordinator.close();
    },
  };
}
