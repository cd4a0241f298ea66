import { crc32c } from '@node-rs/crc32';
import {
  MessageType,
  type RaftMessage,
  RaftTransportService,
  raftMessageToWire,
  uint64ToWire,
} from '@nokv/proto';
import { Registry } from 'prom-client';
import { type ClientOptions, type ClientStream, createClient, type RpcClient } from '../grpc/index.js';
import type { SnapshotTracker } from '../store/snapshot-tracker.js';
import { type LinkFault, validateLinkFault } from './faults.js';
import { type DropReason, SenderMetrics } from './metrics.js';
import { encodeRaftMessage, frameBatch, framedLength, withoutSnapshotData } from './wire.js';

// The client side of Raft traffic between stores. One sender per destination store owns a queue and
// one long-lived `RaftTransport/Send` client stream; it drains the queue into RaftMessageBatches,
// one batch in flight at a time, so a burst coalesces into few batches. Snapshots go separately,
// in chunks, on `SendSnapshot` streams. Nothing here throws at the caller: every failure turns into
// a dropped message (counted) and a callback the store feeds back to Raft.

export interface TransportLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const silentLogger: TransportLogger = { debug() {}, info() {}, warn() {}, error() {} };

export interface RaftTransportOptions {
  /** This store's id (logs and stats). */
  storeId: bigint;
  /** `host:port` of a store's gRPC server; undefined when unknown (its messages are dropped). */
  resolveStoreAddress(storeId: bigint): string | undefined;
  /** Per-destination queue limits (defaults 4096 messages, 64 MiB); beyond them messages are dropped. */
  maxQueueMessages?: number;
  maxQueueBytes?: number;
  /** Per-batch limits (defaults 256 messages, 4 MiB; a single larger message still goes alone). */
  maxBatchMessages?: number;
  maxBatchBytes?: number;
  /** Snapshot data chunk size (default 64 KiB). */
  snapshotChunkBytes?: number;
  /** Outgoing snapshots in flight at once (default 2); the rest wait. */
  maxConcurrentSnapshots?: number;
  /** Deadline of one snapshot transfer (default 10 min). */
  snapshotTimeoutMs?: number;
  /** Empty-batch keepalive interval for watched stores (default 1000). */
  probeIntervalMs?: number;
  /** Queued messages are dropped (with onUnreachable) once the link has been down this long (default 1000). */
  unreachableAfterMs?: number;
  /** A connection attempt that has not produced a working stream by then fails (default 2000). */
  connectTimeoutMs?: number;
  /** Reconnect backoff: exponential with jitter between these (defaults 100 ms, 5 s). */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** Where metrics are registered (default: a private registry). */
  registry?: Registry;
  logger?: TransportLogger;
  /** The random source of the chaos hooks (default Math.random); see `seededRandom`. */
  random?: () => number;
  /** gRPC channel options of the per-store clients. */
  client?: ClientOptions;
  /** Where outgoing snapshot transfers report their progress (the store's tracker). */
  snapshotTracker?: SnapshotTracker;
}

export type SnapshotStatus = 'ok' | 'failed';
export type StoreStatus = 'up' | 'down';
type SenderState = 'idle' | 'connecting' | 'connected' | 'backoff' | 'closed';

export interface StoreLinkStats {
  address: string | null;
  state: SenderState;
  /** 'unknown' until the link first failed or worked after a failure. */
  status: StoreStatus | 'unknown';
  watched: boolean;
  queued: number;
  queuedBytes: number;
  delayed: number;
  messagesSent: number;
  batchesSent: number;
  bytesSent: number;
  dropped: Partial<Record<DropReason, number>>;
  reconnects: number;
  consecutiveFailures: number;
  lastError: string | null;
  snapshotsSent: number;
  snapshotsFailed: number;
  fault: LinkFault | null;
}

export interface TransportStats {
  storeId: string;
  closed: boolean;
  activeSnapshots: number;
  pendingSnapshots: number;
  stores: Record<string, StoreLinkStats>;
}

interface Queued {
  msg: RaftMessage;
  bytes: Uint8Array;
  size: number;
  at: number;
}

const MIB = 1024 * 1024;
const DEMAND_WINDOW_MS = 10_000;
const EMPTY = new Uint8Array(0);
const EMPTY_BATCH = Buffer.alloc(0);

type TransportClient = RpcClient<typeof RaftTransportService>;

interface SenderConfig {
  maxQueueMessages: number;
  maxQueueBytes: number;
  maxBatchMessages: number;
  maxBatchBytes: number;
  unreachableAfterMs: number;
  connectTimeoutMs: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
}

/** What a sender needs from its transport. */
interface SenderHost {
  readonly config: SenderConfig;
  readonly metrics: SenderMetrics;
  readonly logger: TransportLogger;
  resolve(storeId: bigint): string | undefined;
  newClient(address: string): TransportClient;
  unreachable(msg: RaftMessage): void;
  storeStatus(storeId: bigint, status: StoreStatus): void;
}

/** The link to one store: its queue, its client and its Send stream. */
class StoreSender {
  readonly label: string;
  state: SenderState = 'idle';
  status: StoreStatus | 'unknown' = 'unknown';
  watched = false;
  client: TransportClient | undefined;
  address: string | undefined;
  snapshotsSent = 0;
  snapshotsFailed = 0;
  fault: LinkFault | undefined;
  delayed: { msg: RaftMessage; releaseAt: number }[] = [];
  delayTimer: NodeJS.Timeout | undefined;
  readonly dropped: Partial<Record<DropReason, number>> = {};

  private queue: Queued[] = [];
  private queuedBytes = 0;
  private stream: ClientStream<Uint8Array, unknown> | undefined;
  /** Bumped whenever the stream is torn down, so late callbacks of an old stream are ignored. */
  private generation = 0;
  private inFlight = false;
  /** Bytes written to the stream whose write has not completed yet (pipelined batches). */
  private outstandingBytes = 0;
  private flushScheduled = false;
  private probePending = false;
  private disconnectedSince: number | null = null;
  private failures = 0;
  private lastDemandAt = 0;
  private lastError: string | null = null;
  private timer: NodeJS.Timeout | undefined;
  private expireTimer: NodeJS.Timeout | undefined;
  private messagesSent = 0;
  private batchesSent = 0;
  private bytesSent = 0;
  private reconnects = 0;

  constructor(
    readonly storeId: bigint,
    private readonly host: SenderHost,
  ) {
    this.label = String(storeId);
  }

  /** Queues one encoded message (chaos already applied). */
  enqueue(msg: RaftMessage, bytes: Uint8Array): void {
    if (this.state === 'closed') {
      this.drop(msg, 'closed', false);
      return;
    }
    const now = Date.now();
    this.lastDemandAt = now;
    if (this.linkExpired(now)) {
      this.drop(msg, 'connection', true);
      if (this.state === 'idle') this.connect();
      return;
    }
    const size = framedLength(bytes);
    const cfg = this.host.config;
    if (this.queue.length >= cfg.maxQueueMessages || this.queuedBytes + size > cfg.maxQueueBytes) {
      this.drop(msg, 'queue_full', true);
      return;
    }
    this.queue.push({ msg, bytes, size, at: now });
    this.queuedBytes += size;
    this.host.metrics.queueDepth.inc({ store: this.label });
    this.kick();
  }

  /** Asks for an empty batch to be written, to learn whether the store is alive. */
  probe(): void {
    if (this.state === 'closed') return;
    this.probePending = true;
    this.kick();
  }

  /** The client to use for this store (snapshots), created on demand; undefined without an address. */
  ensureClient(fromConnect = false): TransportClient | undefined {
    const address = this.host.resolve(this.storeId);
    if (address === undefined) return undefined;
    if (this.client && this.address !== address) {
      // The store moved: the old stream goes with the old channel.
      this.teardown();
      this.client.close();
      this.client = undefined;
      if (this.state === 'connecting' || this.state === 'connected') {
        this.state = 'idle';
        if (!fromConnect && this.queue.length > 0) setImmediate(() => this.kick());
      }
    }
    if (!this.client) {
      this.client = this.host.newClient(address);
      this.address = address;
    }
    return this.client;
  }

  close(): void {
    this.state = 'closed';
    this.teardown();
    clearTimeout(this.timer);
    clearTimeout(this.expireTimer);
    clearTimeout(this.delayTimer);
    for (const q of this.queue) this.drop(q.msg, 'closed', false);
    this.queue = [];
    this.queuedBytes = 0;
    this.delayed = [];
    this.host.metrics.queueDepth.set({ store: this.label }, 0);
    this.client?.close();
    this.client = undefined;
  }

  stats(): StoreLinkStats {
    return {
      address: this.address ?? null,
      state: this.state,
      status: this.status,
      watched: this.watched,
      queued: this.queue.length,
      queuedBytes: this.queuedBytes,
      delayed: this.delayed.length,
      messagesSent: this.messagesSent,
      batchesSent: this.batchesSent,
      bytesSent: this.bytesSent,
      dropped: { ...this.dropped },
      reconnects: this.reconnects,
      consecutiveFailures: this.failures,
      lastError: this.lastError,
      snapshotsSent: this.snapshotsSent,
      snapshotsFailed: this.snapshotsFailed,
      fault: this.fault ? { ...this.fault } : null,
    };
  }

  drop(msg: RaftMessage, reason: DropReason, unreachable: boolean): void {
    this.dropped[reason] = (this.dropped[reason] ?? 0) + 1;
    this.host.metrics.dropped.inc({ store: this.label, reason });
    if (unreachable) this.host.unreachable(msg);
  }

  // --- connection -------------------------------------------------------------------------------

  private kick(): void {
    switch (this.state) {
      case 'idle':
        this.connect();
        return;
      case 'connected':
        this.scheduleFlush();
        return;
      default:
        return; // connecting or backing off: the queue waits (and expires)
    }
  }

  private hasDemand(now: number): boolean {
    return (
      this.queue.length > 0 || this.watched || this.probePending || now - this.lastDemandAt < DEMAND_WINDOW_MS
    );
  }

  /** The link has been without a working stream for longer than `unreachableAfterMs`. */
  private linkExpired(now: number): boolean {
    return (
      this.state !== 'connected' &&
      this.disconnectedSince !== null &&
      now - this.disconnectedSince >= this.host.config.unreachableAfterMs
    );
  }

  private connect(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const client = this.ensureClient(true);
    if (this.disconnectedSince === null) this.disconnectedSince = Date.now();
    this.scheduleExpire();
    if (!client) {
      // Nobody knows where the store is: nothing queued can be delivered.
      for (const q of this.takeAll()) this.drop(q.msg, 'no_address', true);
      this.fail(`no address for store ${this.label}`);
      return;
    }
    if (this.failures > 0) {
      this.reconnects++;
      this.host.metrics.reconnects.inc({ store: this.label });
    }
    this.state = 'connecting';
    const gen = ++this.generation;
    const stream = client.openRawClientStream(RaftTransportService.Send);
    this.stream = stream;
    // The server sends its headers as soon as the call starts: that is our "connected".
    stream.call.once('metadata', () => {
      if (gen === this.generation && this.state === 'connecting') this.connected();
    });
    stream.response.then(
      () => {
        if (gen === this.generation) this.fail('the store ended the stream');
      },
      (err: unknown) => {
        if (gen === this.generation) this.fail((err as Error).message);
      },
    );
    this.timer = setTimeout(() => {
      if (gen === this.generation && this.state === 'connecting') {
        this.fail(`no connection within ${this.host.config.connectTimeoutMs} ms`);
      }
    }, this.host.config.connectTimeoutMs);
    this.timer.unref();
  }

  private connected(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    clearTimeout(this.expireTimer);
    this.expireTimer = undefined;
    this.state = 'connected';
    this.failures = 0;
    this.disconnectedSince = null;
    this.lastError = null;
    const was = this.status;
    this.status = 'up';
    this.host.logger.debug({ toStore: this.label, address: this.address }, 'transport: connected');
    if (was === 'down') {
      this.host.logger.info(
        { toStore: this.label, address: this.address },
        'transport: store is reachable again',
      );
      this.host.storeStatus(this.storeId, 'up');
    }
    this.scheduleFlush();
  }

  /** A connection attempt failed or the stream broke. */
  private fail(reason: string): void {
    if (this.state === 'closed') return;
    const wasConnected = this.state === 'connected';
    this.teardown();
    clearTimeout(this.timer);
    this.timer = undefined;
    const now = Date.now();
    this.failures++;
    this.lastError = reason;
    if (this.disconnectedSince === null) this.disconnectedSince = now;
    const needed = this.queue.length > 0 || this.watched || this.probePending;
    if (needed && this.status !== 'down') {
      this.status = 'down';
      this.host.logger.warn(
        { toStore: this.label, address: this.address, reason, wasConnected },
        'transport: store unreachable',
      );
      this.host.storeStatus(this.storeId, 'down');
    } else {
      this.host.logger.debug({ toStore: this.label, reason, wasConnected }, 'transport: link failed');
    }
    this.expire();
    if (!this.hasDemand(now)) {
      // Nobody is waiting: stop retrying; the next message starts afresh.
      this.state = 'idle';
      this.disconnectedSince = null;
      clearTimeout(this.expireTimer);
      this.expireTimer = undefined;
      return;
    }
    this.state = 'backoff';
    const cfg = this.host.config;
    const base = Math.min(cfg.maxBackoffMs, cfg.initialBackoffMs * 2 ** Math.min(this.failures - 1, 30));
    const delay = base / 2 + (Math.random() * base) / 2;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.state !== 'backoff') return;
      if (this.hasDemand(Date.now())) this.connect();
      else {
        this.state = 'idle';
        this.disconnectedSince = null;
      }
    }, delay);
    this.timer.unref();
    this.scheduleExpire();
  }

  /** Ends the current stream, if any; its late callbacks are ignored. */
  private teardown(): void {
    this.generation++;
    this.inFlight = false;
    this.outstandingBytes = 0;
    const stream = this.stream;
    this.stream = undefined;
    stream?.cancel();
  }

  private scheduleExpire(): void {
    if (this.expireTimer || this.disconnectedSince === null) return;
    const wait = Math.max(0, this.disconnectedSince + this.host.config.unreachableAfterMs - Date.now());
    this.expireTimer = setTimeout(() => {
      this.expireTimer = undefined;
      this.expire();
    }, wait + 1);
    this.expireTimer.unref();
  }

  /** Drops everything queued (reporting each unreachable) once the link has been down too long. */
  private expire(): void {
    if (!this.linkExpired(Date.now())) return;
    const expired = this.takeAll();
    if (expired.length > 0) {
      this.host.logger.debug(
        { toStore: this.label, dropped: expired.length },
        'transport: dropping messages queued for an unreachable store',
      );
    }
    for (const q of expired) this.drop(q.msg, 'connection', true);
  }

  private takeAll(): Queued[] {
    const all = this.queue;
    this.queue = [];
    this.queuedBytes = 0;
    this.host.metrics.queueDepth.set({ store: this.label }, 0);
    return all;
  }

  // --- writing ----------------------------------------------------------------------------------

  private scheduleFlush(): void {
    if (this.flushScheduled || this.inFlight) return;
    this.flushScheduled = true;
    // Let the current tick's sends join the batch.
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.state !== 'connected' || this.inFlight || !this.stream) return;
    const cfg = this.host.config;
    let count = 0;
    let bytes = 0;
    while (count < this.queue.length && count < cfg.maxBatchMessages) {
      const q = this.queue[count]!;
      if (count > 0 && bytes + q.size > cfg.maxBatchBytes) break;
      bytes += q.size;
      count++;
    }
    if (count === 0 && !this.probePending) return;
    const taken = this.queue.splice(0, count);
    this.queuedBytes -= bytes;
    this.probePending = false;
    const payload = count === 0 ? EMPTY_BATCH : frameBatch(taken.map((q) => q.bytes));
    const oldest = taken[0]?.at ?? Date.now();
    const labels = { store: this.label };
    this.host.metrics.queueDepth.dec(labels, count);
    // Batches are pipelined: grpc-js completes a write only once HTTP/2 has flushed it, and
    // waiting for that before writing the next batch costs a round of the event loop per batch.
    // Up to MAX_OUTSTANDING_BYTES may be in the pipe; beyond that, wait for completions.
    this.outstandingBytes += payload.length;
    this.inFlight = this.outstandingBytes >= MAX_OUTSTANDING_BYTES;
    const gen = this.generation;
    this.stream.write(payload).then(
      () => {
        if (gen !== this.generation) return;
        this.outstandingBytes -= payload.length;
        this.inFlight = this.outstandingBytes >= MAX_OUTSTANDING_BYTES;
        this.messagesSent += count;
        this.batchesSent++;
        this.bytesSent += payload.length;
        const m = this.host.metrics;
        m.messagesSent.inc(labels, count);
        m.batchesSent.inc(labels);
        m.bytesSent.inc(labels, payload.length);
        m.batchSeconds.observe(labels, (Date.now() - oldest) / 1000);
        if (this.queue.length > 0 || this.probePending) this.flush();
      },
      (err: unknown) => {
        // The messages of a batch lost with its stream are gone; Raft retransmits.
        if (gen === this.generation) this.fail((err as Error).message);
      },
    );
    if (!this.inFlight && this.queue.length > 0) this.scheduleFlush();
  }
}

/** Bytes of batches that may be written to a store's stream before earlier writes complete. */
const MAX_OUTSTANDING_BYTES = 8 * 1024 * 1024;

interface PendingSnapshot {
  msg: RaftMessage;
  sender: StoreSender;
}

/**
 * Sends Raft messages to other stores. `send` never throws; failures come back through
 * `onUnreachable`, `onSnapshotStatus` and `onStoreStatus` (called asynchronously, never inside
 * `send`, and never after `close()`).
 */
export class RaftTransport {
  /** A message could not be sent (queue full, or its store has been unreachable for a while). */
  onUnreachable: (msg: RaftMessage) => void = () => {};
  /** How an outgoing MsgSnap ended. */
  onSnapshotStatus: (msg: RaftMessage, status: SnapshotStatus) => void = () => {};
  /** A store with traffic for it became unreachable, or reachable again. */
  onStoreStatus: (storeId: bigint, status: StoreStatus) => void = () => {};

  readonly storeId: bigint;
  private readonly senders = new Map<bigint, StoreSender>();
  private readonly host: SenderHost;
  private readonly random: () => number;
  private readonly resolveStoreAddress: (storeId: bigint) => string | undefined;
  private readonly snapshotChunkBytes: number;
  private readonly maxConcurrentSnapshots: number;
  private readonly snapshotTimeoutMs: number;
  private readonly pendingSnapshots: PendingSnapshot[] = [];
  private readonly activeSnapshots = new Set<Promise<void>>();
  private readonly snapshotStreams = new Set<ClientStream<unknown, unknown>>();
  private readonly snapshotTracker: SnapshotTracker | undefined;
  private readonly probeTimer: NodeJS.Timeout;
  private closed = false;

  constructor(opts: RaftTransportOptions) {
    this.storeId = opts.storeId;
    this.resolveStoreAddress = opts.resolveStoreAddress;
    this.random = opts.random ?? Math.random;
    this.snapshotChunkBytes = positive(opts.snapshotChunkBytes ?? 64 * 1024, 'snapshotChunkBytes');
    this.maxConcurrentSnapshots = positive(opts.maxConcurrentSnapshots ?? 2, 'maxConcurrentSnapshots');
    this.snapshotTimeoutMs = positive(opts.snapshotTimeoutMs ?? 600_000, 'snapshotTimeoutMs');
    this.snapshotTracker = opts.snapshotTracker;
    const config: SenderConfig = {
      maxQueueMessages: positive(opts.maxQueueMessages ?? 4096, 'maxQueueMessages'),
      maxQueueBytes: positive(opts.maxQueueBytes ?? 64 * MIB, 'maxQueueBytes'),
      maxBatchMessages: positive(opts.maxBatchMessages ?? 256, 'maxBatchMessages'),
      maxBatchBytes: positive(opts.maxBatchBytes ?? 4 * MIB, 'maxBatchBytes'),
      unreachableAfterMs: positive(opts.unreachableAfterMs ?? 1000, 'unreachableAfterMs'),
      connectTimeoutMs: positive(opts.connectTimeoutMs ?? 2000, 'connectTimeoutMs'),
      initialBackoffMs: positive(opts.initialBackoffMs ?? 100, 'initialBackoffMs'),
      maxBackoffMs: positive(opts.maxBackoffMs ?? 5000, 'maxBackoffMs'),
    };
    const clientOptions: ClientOptions = { ...opts.client };
    const logger = opts.logger ?? silentLogger;
    this.host = {
      config,
      metrics: new SenderMetrics(opts.registry ?? new Registry()),
      logger,
      resolve: (id) => this.resolve(id),
      newClient: (address) => createClient(RaftTransportService, address, clientOptions),
      unreachable: (msg) => this.callback(() => this.onUnreachable(msg)),
      storeStatus: (id, status) => this.callback(() => this.onStoreStatus(id, status)),
    };
    const probeIntervalMs = positive(opts.probeIntervalMs ?? 1000, 'probeIntervalMs');
    this.probeTimer = setInterval(() => {
      for (const s of this.senders.values()) if (s.watched) s.probe();
    }, probeIntervalMs);
    this.probeTimer.unref();
  }

  /** Queues a message for `msg.toPeer.storeId`. Never throws. */
  send(msg: RaftMessage): void {
    if (this.closed) return;
    let sender: StoreSender;
    try {
      sender = this.sender(msg.toPeer.storeId);
    } catch (err) {
      this.host.logger.error({ err }, 'transport: cannot route message');
      return;
    }
    const fault = sender.fault;
    if (fault) {
      if (fault.block) {
        this.dropFaulted(sender, msg, 'blocked');
        return;
      }
      if (fault.drop !== undefined && fault.drop > 0 && this.random() < fault.drop) {
        this.dropFaulted(sender, msg, 'fault_drop');
        return;
      }
    }
    const copies =
      fault?.duplicate !== undefined &&
      fault.duplicate > 0 &&
      msg.message.type !== MessageType.Snap &&
      this.random() < fault.duplicate
        ? 2
        : 1;
    const delayMs = fault?.delayMs ?? 0;
    for (let i = 0; i < copies; i++) {
      if (delayMs > 0 || sender.delayed.length > 0) this.delay(sender, msg, delayMs);
      else this.dispatch(sender, msg);
    }
  }

  /** The stores to keep probing (replaces the previous set): their deaths are noticed even when quiet. */
  watchStores(ids: Iterable<bigint>): void {
    if (this.closed) return;
    const want = new Set(ids);
    want.delete(this.storeId);
    for (const s of this.senders.values()) s.watched = want.has(s.storeId);
    for (const id of want) {
      const s = this.sender(id);
      if (!s.watched) {
        s.watched = true;
        s.probe();
      }
    }
  }

  /** Writes an empty batch to `storeId` now (connecting if needed); the outcome shows in onStoreStatus. */
  probe(storeId: bigint): void {
    if (this.closed) return;
    this.sender(storeId).probe();
  }

  /** What the transport last saw of a store: 'unknown' before any failure. */
  storeStatus(storeId: bigint): StoreStatus | 'unknown' {
    return this.senders.get(storeId)?.status ?? 'unknown';
  }

  // --- chaos ----------------------------------------------------------------------------------------

  /** Injects faults on the link to `toStoreId` (replacing any previous ones). */
  setLinkFault(toStoreId: bigint, fault: LinkFault): void {
    this.sender(toStoreId).fault = validateLinkFault(fault);
  }

  /** Removes the link's faults; messages it was delaying are released now, in order. */
  clearLinkFault(toStoreId: bigint): void {
    const s = this.senders.get(toStoreId);
    if (!s) return;
    s.fault = undefined;
    this.releaseDelayed(s, Number.POSITIVE_INFINITY);
  }

  clearAllFaults(): void {
    for (const id of this.senders.keys()) this.clearLinkFault(id);
  }

  // --- introspection --------------------------------------------------------------------------------

  stats(): TransportStats {
    const stores: Record<string, StoreLinkStats> = {};
    for (const [id, s] of this.senders) stores[String(id)] = s.stats();
    return {
      storeId: String(this.storeId),
      closed: this.closed,
      activeSnapshots: this.activeSnapshots.size,
      pendingSnapshots: this.pendingSnapshots.length,
      stores,
    };
  }

  /** Stops every sender, cancels snapshots in flight and closes the channels. */
  async close(): Promise<void> {
    if (this.closed) {
      await Promise.allSettled([...this.activeSnapshots]);
      return;
    }
    this.closed = true;
    clearInterval(this.probeTimer);
    this.pendingSnapshots.length = 0;
    for (const stream of this.snapshotStreams) stream.cancel();
    await Promise.allSettled([...this.activeSnapshots]);
    for (const s of this.senders.values()) s.close();
  }

  // --- internals ------------------------------------------------------------------------------------

  private sender(storeId: bigint): StoreSender {
    let s = this.senders.get(storeId);
    if (!s) {
      s = new StoreSender(storeId, this.host);
      this.senders.set(storeId, s);
    }
    return s;
  }

  private resolve(storeId: bigint): string | undefined {
    try {
      return this.resolveStoreAddress(storeId);
    } catch (err) {
      this.host.logger.warn({ err, toStore: String(storeId) }, 'transport: resolveStoreAddress threw');
      return undefined;
    }
  }

  private callback(fn: () => void): void {
    queueMicrotask(() => {
      if (this.closed) return;
      try {
        fn();
      } catch (err) {
        this.host.logger.error({ err }, 'transport: callback threw');
      }
    });
  }

  private dropFaulted(sender: StoreSender, msg: RaftMessage, reason: 'blocked' | 'fault_drop'): void {
    sender.drop(msg, reason, false);
    if (msg.message.type === MessageType.Snap) this.snapshotDone(sender, msg, 'failed');
  }

  private delay(sender: StoreSender, msg: RaftMessage, delayMs: number): void {
    const last = sender.delayed[sender.delayed.length - 1];
    const releaseAt = Math.max(Date.now() + delayMs, last?.releaseAt ?? 0);
    sender.delayed.push({ msg, releaseAt });
    if (!sender.delayTimer) this.armDelay(sender);
  }

  private armDelay(sender: StoreSender): void {
    const head = sender.delayed[0];
    if (!head) return;
    sender.delayTimer = setTimeout(
      () => {
        sender.delayTimer = undefined;
        this.releaseDelayed(sender, Date.now());
      },
      Math.max(0, head.releaseAt - Date.now()),
    );
    sender.delayTimer.unref();
  }

  private releaseDelayed(sender: StoreSender, now: number): void {
    if (this.closed) return;
    let n = 0;
    while (n < sender.delayed.length && sender.delayed[n]!.releaseAt <= now) n++;
    const due = sender.delayed.splice(0, n);
    for (const d of due) this.dispatch(sender, d.msg);
    clearTimeout(sender.delayTimer);
    sender.delayTimer = undefined;
    this.armDelay(sender);
  }

  private dispatch(sender: StoreSender, msg: RaftMessage): void {
    if (msg.message.type === MessageType.Snap) {
      this.pendingSnapshots.push({ msg, sender });
      this.runSnapshots();
      return;
    }
    let bytes: Uint8Array;
    try {
      bytes = encodeRaftMessage(msg);
    } catch (err) {
      this.host.logger.error(
        { err, store: sender.label, region: String(msg.regionId) },
        'transport: cannot encode message',
      );
      sender.drop(msg, 'encode', false);
      return;
    }
    sender.enqueue(msg, bytes);
  }

  // --- snapshots ------------------------------------------------------------------------------------

  private runSnapshots(): void {
    while (!this.closed && this.activeSnapshots.size < this.maxConcurrentSnapshots) {
      const next = this.pendingSnapshots.shift();
      if (!next) return;
      const task: Promise<void> = this.transferSnapshot(next).then(
        () => this.snapshotDone(next.sender, next.msg, 'ok'),
        (err: unknown) => {
          this.host.logger.warn(
            { err: (err as Error).message, store: next.sender.label, region: String(next.msg.regionId) },
            'transport: snapshot failed',
          );
          this.snapshotDone(next.sender, next.msg, 'failed');
        },
      );
      this.activeSnapshots.add(task);
      void task.finally(() => {
        this.activeSnapshots.delete(task);
        this.runSnapshots();
      });
    }
  }

  private snapshotDone(sender: StoreSender, msg: RaftMessage, status: SnapshotStatus): void {
    const labels = { store: sender.label };
    if (status === 'ok') {
      sender.snapshotsSent++;
      this.host.metrics.snapshotsSent.inc(labels);
    } else {
      sender.snapshotsFailed++;
      this.host.metrics.snapshotsFailed.inc(labels);
    }
    this.callback(() => this.onSnapshotStatus(msg, status));
  }

  private async transferSnapshot(pending: PendingSnapshot): Promise<void> {
    const { msg, sender } = pending;
    const data = msg.message.snapshot?.data ?? EMPTY;
    const progress = this.snapshotTracker?.begin({
      kind: 'raft',
      direction: 'send',
      regionId: msg.regionId,
      peerStoreId: sender.storeId,
      bytesTotal: data.length,
      stage: 'stream',
    });
    try {
      await this.streamSnapshot(pending, data, (n) => progress?.advance(n));
      progress?.done();
    } catch (err) {
      progress?.fail(err);
      throw err;
    }
  }

  private async streamSnapshot(
    { msg, sender }: PendingSnapshot,
    data: Uint8Array,
    sent: (bytes: number) => void,
  ): Promise<void> {
    const client = sender.ensureClient();
    if (!client) throw new Error(`no address for store ${sender.label}`);
    const header = {
      message: raftMessageToWire(withoutSnapshotData(msg)),
      totalBytes: uint64ToWire(BigInt(data.length), 'SnapshotHeader.total_bytes'),
      crc32c: crc32c(data),
    };
    const stream = client.openClientStream(RaftTransportService.SendSnapshot, {
      deadlineMs: this.snapshotTimeoutMs,
    });
    const any = stream as ClientStream<unknown, unknown>;
    this.snapshotStreams.add(any);
    try {
      await stream.write({ header });
      for (let off = 0; off < data.length; off += this.snapshotChunkBytes) {
        const chunk = data.subarray(off, Math.min(data.length, off + this.snapshotChunkBytes));
        await stream.write({ data: chunk });
        this.host.metrics.snapshotBytesSent.inc({ store: sender.label }, chunk.length);
        sent(chunk.length);
      }
      await stream.end();
    } catch (err) {
      stream.cancel();
      throw err;
    } finally {
      this.snapshotStreams.delete(any);
    }
  }
}

function positive(n: number, name: string): number {
  if (!(n > 0) || !Number.isFinite(n))
    throw new RangeError(`RaftTransport option ${name} = ${n} must be > 0`);
  return n;
}
