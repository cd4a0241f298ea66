import { status as GrpcStatus } from '@grpc/grpc-js';
import {
  epochToWire,
  keyInRegion,
  NoKVService,
  type nokv,
  peerFromWire,
  type RegionMeta,
  regionFromWire,
  uint64FromWire,
  uint64ToWire,
} from '@nokv/proto';
import { createClient, type RpcClient, RpcError } from '../grpc/index.js';

// A raw KV client for a NoKV cluster: finds the region of a key, talks to its leader, and
// follows region errors (NotLeader hints, stale epochs, unknown regions) until the operation's
// deadline. Reads are retried freely. A write is retried only when the store refused it before it
// could take effect; when its fate is unknown (the connection failed mid-call, or time ran out)
// the write fails with code 'Unknown' so the caller never mistakes "maybe" for "no".

export type ClientErrorCode =
  | 'Unknown'
  | 'Timeout'
  | 'NoRoute'
  | 'RouteUnavailable'
  | 'TsoUnavailable'
  | 'Conflict'
  | 'StoreNotMatch'
  | 'InvalidArgument'
  /** Transactions: failed before its commit point (nothing committed); the caller may retry. */
  | 'Aborted';

export class ClientError extends Error {
  override readonly name = 'ClientError';
  constructor(
    readonly code: ClientErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface RawClientOptions {
  /** Store id → gRPC address. */
  resolveStoreAddress(storeId: bigint): string | undefined;
  /** The routing table to start from (the topology's regions); refreshed from EpochNotMatch replies. */
  regions: readonly RegionMeta[];
  /** Whole-operation deadline, retries included (default 5000 ms). */
  timeoutMs?: number;
  /** Deadline of one RPC attempt (default 2000 ms). */
  rpcTimeoutMs?: number;
  /**
   * Where to look up a region the cache does not hold (the coordinator). Without it the client
   * routes by `regions` and the EpochNotMatch replies alone. A lookup that fails is a
   * `RouteUnavailable` error; the cached routes keep working meanwhile.
   */
  lookupRegion?: (key: Uint8Array) => Promise<RegionMeta | undefined>;
}

type RegionErrorWire = nokv.errors.v1.RegionError.$Properties;

interface Pending {
  key: Uint8Array;
  value?: Uint8Array;
  resolve(value: Buffer | undefined): void;
  reject(err: Error): void;
}

interface BatchQueue {
  items: Pending[];
  /** Batches of this queue being sent right now. */
  inFlight: number;
}

/** Requests per coalesced RPC, and such RPCs out at once per region and kind. */
const MAX_BATCH = 512;
const MAX_BATCHES_IN_FLIGHT = 2;

interface Attempt<R> {
  response: R;
  regionError?: RegionErrorWire | null;
}

export class RawClient {
  private regions: RegionMeta[];
  private readonly leaders = new Map<bigint, bigint>();
  private readonly rotation = new Map<bigint, number>();
  private readonly clients = new Map<string, RpcClient<typeof NoKVService>>();
  private readonly timeoutMs: number;
  private readonly rpcTimeoutMs: number;
  private closed = false;
  /** Coalescing queues of gets and puts, by `kind:regionId`. */
  private readonly queues = new Map<string, BatchQueue>();

  constructor(private readonly options: RawClientOptions) {
    this.regions = sortRegions(options.regions);
    this.timeoutMs = options.timeoutMs ?? 5000;
    this.rpcTimeoutMs = options.rpcTimeoutMs ?? 2000;
  }

  /**
   * Reads a key. Concurrent gets of one region are coalesced into RawBatchGet calls (one RPC and
   * one ReadIndex barrier per batch; each read still sees every write acknowledged before it).
   */
  async get(key: Uint8Array | string): Promise<Buffer | undefined> {
    const k = bytes(key);
    const region = await this.locateAsync(k);
    return new Promise((resolve, reject) => this.enqueue('get', region.id, { key: k, resolve, reject }));
  }

  /**
   * Writes a key. Concurrent puts to one region are coalesced into RawBatchPut calls: one RPC and
   * one Raft entry per batch, applied atomically, so each put takes effect at a single point
   * between its call and its return. A batch whose outcome is unknown fails every put in it with
   * `Unknown`.
   */
  async put(key: Uint8Array | string, value: Uint8Array | string): Promise<void> {
    const k = bytes(key);
    const v = bytes(value);
    const region = await this.locateAsync(k);
    return new Promise((resolve, reject) =>
      this.enqueue('put', region.id, { key: k, value: v, resolve: () => resolve(), reject }),
    );
  }

  private enqueue(kind: 'get' | 'put', regionId: bigint, item: Pending): void {
    const tag = `${kind}:${regionId}`;
    let q = this.queues.get(tag);
    if (!q) {
      q = { items: [], inFlight: 0 };
      this.queues.set(tag, q);
    }
    q.items.push(item);
    if (q.inFlight < MAX_BATCHES_IN_FLIGHT) {
      q.inFlight++;
      // Let the requests of this turn of the event loop join the batch.
      setImmediate(() => void this.drain(kind, q));
    }
  }

  private async drain(kind: 'get' | 'put', q: BatchQueue): Promise<void> {
    while (q.items.length > 0) {
      const batch = q.items.splice(0, MAX_BATCH);
      try {
        if (kind === 'put') {
          await this.regionCall(batch[0]!.key, 'write', (client, ctx, ms) => {
            this.regroup(kind, batch, ctx);
            return client.call(
              NoKVService.RawBatchPut,
              { context: ctx, pairs: batch.map((b) => ({ key: b.key, value: b.value! })) },
              { deadlineMs: ms },
            );
          });
          for (const b of batch) b.resolve(undefined);
        } else {
          const res = await this.regionCall(batch[0]!.key, 'read', (client, ctx, ms) => {
            this.regroup(kind, batch, ctx);
            return client.call(
              NoKVService.RawBatchGet,
              { context: ctx, keys: batch.map((b) => b.key) },
              { deadlineMs: ms },
            );
          });
          const values = res.values ?? [];
          batch.forEach((b, i) => {
            const v = values[i];
            b.resolve(!v || v.notFound ? undefined : Buffer.from(v.value ?? new Uint8Array(0)));
          });
        }
      } catch (err) {
        for (const b of batch) b.reject(err as Error);
      }
    }
    q.inFlight--;
  }

  /**
   * Before each attempt of a batch: the items whose keys the routing table no longer places in
   * the region the attempt goes to (a split learned from a reply since the batch was formed) leave
   * the batch and are queued again by their region. The first key stays: the attempt is routed by
   * it. A refused attempt took no effect, so a put moved to another batch is still applied once.
   */
  private regroup(kind: 'get' | 'put', batch: Pending[], ctx: nokv.kv.v1.Context.$Properties): void {
    const regionId = uint64FromWire(ctx.regionId);
    for (let i = batch.length - 1; i > 0; i--) {
      const b = batch[i]!;
      if (this.regions.find((r) => keyInRegion(b.key, r))?.id === regionId) continue;
      batch.splice(i, 1);
      this.locateAsync(b.key).then(
        (r) => this.enqueue(kind, r.id, b),
        (err: Error) => b.reject(err),
      );
    }
  }

  async delete(key: Uint8Array | string): Promise<void> {
    const k = bytes(key);
    await this.regionCall(k, 'write', (client, ctx, ms) =>
      client.call(NoKVService.RawDelete, { context: ctx, key: k }, { deadlineMs: ms }),
    );
  }

  /** Keys in [start, end) (empty end = +inf) across regions, ascending, at most `limit`. */
  async scan(
    start: Uint8Array | string,
    end: Uint8Array | string,
    limit = 256,
  ): Promise<{ key: Buffer; value: Buffer }[]> {
    const out: { key: Buffer; value: Buffer }[] = [];
    let from = Buffer.from(bytes(start));
    const to = Buffer.from(bytes(end));
    while (out.length < limit) {
      const region = await this.locateAsync(from);
      const res = await this.regionCall(from, 'read', (client, ctx, ms) =>
        client.call(
          NoKVService.RawScan,
          { context: ctx, startKey: from, endKey: to, limit: limit - out.length },
          { deadlineMs: ms },
        ),
      );
      for (const kv of res.kvs ?? [])
        out.push({ key: Buffer.from(kv.key ?? []), value: Buffer.from(kv.value ?? []) });
      // Continue in the next region unless this one reached the end of the range.
      const regionEnd = Buffer.from((await this.locateAsync(from)).endKey);
      if (regionEnd.length === 0 || (to.length > 0 && Buffer.compare(regionEnd, to) >= 0)) break;
      if (region.id === (await this.locateAsync(regionEnd)).id) break;
      from = regionEnd;
    }
    return out.slice(0, limit);
  }

  close(): void {
    this.closed = true;
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }

  /** The region the client believes holds `key`. */
  locate(key: Uint8Array): RegionMeta {
    const r = this.regions.find((x) => keyInRegion(key, x));
    if (!r) throw new ClientError('NoRoute', `no region known for key ${Buffer.from(key).toString('hex')}`);
    return r;
  }

  /** The region of `key`, from the cache or else the lookup (the coordinator). */
  async locateAsync(key: Uint8Array): Promise<RegionMeta> {
    const cached = this.regions.find((x) => keyInRegion(key, x));
    if (cached) return cached;
    const lookup = this.options.lookupRegion;
    if (!lookup) return this.locate(key);
    let found: RegionMeta | undefined;
    try {
      found = await lookup(key);
    } catch (err) {
      throw new ClientError(
        'RouteUnavailable',
        `cannot look up the region of a key: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    if (!found) throw new ClientError('NoRoute', `no region holds key ${Buffer.from(key).toString('hex')}`);
    this.upsertRegions([found]);
    return found;
  }

  /**
   * Sends one region-addressed request for `key` to the region's leader, following region errors
   * until the deadline (the building block of every operation, transactional ones included).
   * `kind: 'write'` never retries once the request may have taken effect.
   */
  async regionCall<R extends { regionError?: RegionErrorWire | null }>(
    key: Uint8Array,
    kind: 'read' | 'write',
    call: (
      client: RpcClient<typeof NoKVService>,
      ctx: nokv.kv.v1.Context.$Properties,
      ms: number,
    ) => Promise<R>,
  ): Promise<R> {
    if (this.closed) throw new ClientError('InvalidArgument', 'client is closed');
    const deadline = Date.now() + this.timeoutMs;
    let lastProblem = 'no attempt made';
    for (let attempt = 0; ; attempt++) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new ClientError(
          kind === 'write' && attempt > 0 ? 'Unknown' : 'Timeout',
          `${kind} did not complete within ${this.timeoutMs} ms (last: ${lastProblem})`,
        );
      }
      const region = await this.locateAsync(key);
      const storeId = this.pickStore(region);
      const address = this.options.resolveStoreAddress(storeId);
      if (address === undefined) {
        this.rotate(region);
        lastProblem = `store ${storeId} has no address`;
        continue;
      }
      const ctx: nokv.kv.v1.Context.$Properties = {
        regionId: uint64ToWire(region.id, 'region_id'),
        regionEpoch: epochToWire(region.epoch),
        peer: { storeId: uint64ToWire(storeId, 'store_id') },
      };
      let result: Attempt<R>;
      try {
        const response = await call(this.client(address), ctx, Math.min(left, this.rpcTimeoutMs));
        result = { response, regionError: response.regionError };
      } catch (err) {
        if (!(err instanceof RpcError)) throw err;
        if (err.status === GrpcStatus.INVALID_ARGUMENT) {
          throw new ClientError('InvalidArgument', err.details, { cause: err });
        }
        // The request may have reached the leader and taken effect: a write cannot be retried,
        // unless the call never left this process (no connection to the store at all).
        if (kind === 'write' && !neverSent(err)) {
          throw new ClientError('Unknown', `write outcome unknown: ${err.message}`, { cause: err });
        }
        this.leaders.delete(region.id);
        this.rotate(region);
        lastProblem = `store ${storeId}: ${err.code}`;
        await sleep(Math.min(20 * (attempt + 1), 200));
        continue;
      }
      const re = result.regionError;
      if (!re) return result.response;
      lastProblem = re.message ?? 'region error';
      await this.onRegionError(region, storeId, re, attempt);
    }
  }

  private async onRegionError(region: RegionMeta, storeId: bigint, re: RegionErrorWire, attempt: number) {
    if (re.notLeader) {
      const leader = re.notLeader.leader ? peerFromWire(re.notLeader.leader) : undefined;
      if (leader && leader.storeId !== 0n && leader.storeId !== storeId) {
        this.leaders.set(region.id, leader.storeId);
        return;
      }
      // No leader known (an election is under way): try another replica after a pause.
      this.leaders.delete(region.id);
      this.rotate(region);
      await sleep(Math.min(25 * (attempt + 1), 250));
      return;
    }
    if (re.epochNotMatch) {
      const current = (re.epochNotMatch.currentRegions ?? []).map(regionFromWire);
      if (current.length > 0) this.upsertRegions(current);
      else await sleep(20);
      return;
    }
    if (re.storeNotMatch) {
      throw new ClientError(
        'StoreNotMatch',
        `store ${uint64FromWire(re.storeNotMatch.actualStoreId)} answered for store ${uint64FromWire(re.storeNotMatch.requestStoreId)}`,
      );
    }
    if (re.serverBusy) {
      await sleep(re.serverBusy.backoffMs || 20);
      return;
    }
    // KeyNotInRegion, RegionNotFound: this replica's view differs; try another (and, with a
    // coordinator to ask, forget the cached route so the next attempt looks it up afresh).
    if (this.options.lookupRegion) this.regions = this.regions.filter((r) => r.id !== region.id);
    this.leaders.delete(region.id);
    this.rotate(region);
    await sleep(Math.min(20 * (attempt + 1), 200));
  }

  private pickStore(region: RegionMeta): bigint {
    const cached = this.leaders.get(region.id);
    if (cached !== undefined) return cached;
    const voters = region.peers.filter((p) => !p.learner);
    const i = (this.rotation.get(region.id) ?? 0) % Math.max(1, voters.length);
    const peer = voters[i] ?? region.peers[0];
    if (!peer) throw new ClientError('NoRoute', `region ${region.id} has no peers`);
    return peer.storeId;
  }

  private rotate(region: RegionMeta): void {
    this.rotation.set(region.id, (this.rotation.get(region.id) ?? 0) + 1);
  }

  private upsertRegions(updated: RegionMeta[]): void {
    const ids = new Set(updated.map((r) => r.id));
    const kept = this.regions.filter((r) => !ids.has(r.id) && !updated.some((u) => overlaps(u, r)));
    this.regions = sortRegions([...kept, ...updated]);
    for (const r of updated) {
      const cached = this.leaders.get(r.id);
      if (cached !== undefined && !r.peers.some((p) => p.storeId === cached)) this.leaders.delete(r.id);
    }
  }

  private client(address: string): RpcClient<typeof NoKVService> {
    let c = this.clients.get(address);
    if (!c) {
      c = createClient(NoKVService, address);
      this.clients.set(address, c);
    }
    return c;
  }
}

/** grpc-js fails a call with this before sending anything when it has no connection to the server. */
function neverSent(err: RpcError): boolean {
  return err.status === GrpcStatus.UNAVAILABLE && err.details.startsWith('No connection established');
}

function bytes(v: Uint8Array | string): Uint8Array {
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
}

function sortRegions(rs: readonly RegionMeta[]): RegionMeta[] {
  return [...rs].sort((a, b) => Buffer.compare(a.startKey, b.startKey));
}

function overlaps(a: RegionMeta, b: RegionMeta): boolean {
  const aEndsBeforeB = a.endKey.length > 0 && Buffer.compare(a.endKey, b.startKey) <= 0;
  const bEndsBeforeA = b.endKey.length > 0 && Buffer.compare(b.endKey, a.startKey) <= 0;
  return !aEndsBeforeB && !bEndsBeforeA;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
