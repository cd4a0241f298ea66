import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { crc32c } from '@node-rs/crc32';
import {
  emptyConfState,
  MessageType,
  newMessage,
  nokv,
  type RaftMessage,
  RaftTransportService,
  raftMessageToWire,
  uint64ToWire,
} from '@nokv/proto';
import { freeLoopbackPort } from '@nokv/server-kit';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { createClient, grpcServerOptions, RpcError, rawDeserialize, rawSerialize } from '../grpc/index.js';
import { seededRandom } from './faults.js';
import { raftTransportService } from './server.js';
import { RaftTransport, type RaftTransportOptions } from './transport.js';
import { encodeRaftMessage, frameBatch, withoutSnapshotData } from './wire.js';

// --- fixtures ---------------------------------------------------------------------------------------

const EMPTY = new Uint8Array(0);

function raftMsg(toStore: bigint, index: bigint, type: MessageType = MessageType.App): RaftMessage {
  return {
    regionId: 7n,
    fromPeer: { storeId: 1n, peerId: 11n, learner: false },
    toPeer: { storeId: toStore, peerId: 10n + toStore, learner: false },
    epoch: { version: 1n, confVersion: 1n },
    message: newMessage({ type, from: 11n, to: 10n + toStore, term: 3n, index, commit: index }),
    startKey: EMPTY,
    endKey: EMPTY,
    hibernate: false,
  };
}

function snapMsg(toStore: bigint, data: Uint8Array): RaftMessage {
  const m = raftMsg(toStore, 100n, MessageType.Snap);
  m.message.snapshot = {
    data,
    metadata: { confState: { ...emptyConfState(), voters: [11n, 12n] }, index: 100n, term: 3n },
  };
  return m;
}

interface Receiver {
  server: grpc.Server;
  port: number;
  address: string;
  messages: RaftMessage[];
  batches: number;
  snapshots: RaftMessage[];
  registry: Registry;
  snapshotDelayMs: number;
  maxConcurrentSnapshots: number;
}

const servers = new Set<grpc.Server>();
const transports = new Set<RaftTransport>();
const clients = new Set<{ close(): void }>();

async function startReceiver(port = 0, opts: { snapshotDelayMs?: number } = {}): Promise<Receiver> {
  const server = new grpc.Server(grpcServerOptions({ maxRequestBytes: 64 * 1024 * 1024 }));
  const registry = new Registry();
  let active = 0;
  const r: Receiver = {
    server,
    port: 0,
    address: '',
    messages: [],
    batches: 0,
    snapshots: [],
    registry,
    snapshotDelayMs: opts.snapshotDelayMs ?? 0,
    maxConcurrentSnapshots: 0,
  };
  const svc = raftTransportService(
    {
      onRaftMessages(msgs) {
        r.batches++;
        r.messages.push(...msgs);
      },
      async onSnapshot(msg) {
        active++;
        r.maxConcurrentSnapshots = Math.max(r.maxConcurrentSnapshots, active);
        if (r.snapshotDelayMs > 0) await new Promise((res) => setTimeout(res, r.snapshotDelayMs));
        active--;
        r.snapshots.push(msg);
      },
    },
    { registry },
  );
  server.addService(svc.definition, svc.implementation);
  r.port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    );
  });
  r.address = `127.0.0.1:${r.port}`;
  servers.add(server);
  return r;
}

function stopReceiver(r: Receiver): void {
  r.server.forceShutdown();
  servers.delete(r.server);
}

function newTransport(addresses: Map<bigint, string>, opts: Partial<RaftTransportOptions> = {}) {
  const registry = new Registry();
  const t = new RaftTransport({
    storeId: 1n,
    resolveStoreAddress: (id) => addresses.get(id),
    registry,
    initialBackoffMs: 20,
    maxBackoffMs: 200,
    ...opts,
  });
  transports.add(t);
  return { t, registry };
}

async function waitFor(cond: () => boolean, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function metric(
  registry: Registry,
  name: string,
  labels: Record<string, string> = {},
): Promise<number> {
  const m = registry.getSingleMetric(name);
  if (!m) return 0;
  const got = await m.get();
  let sum = 0;
  for (const v of got.values) {
    if (Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want)) sum += v.value;
  }
  return sum;
}

const indexes = (msgs: RaftMessage[]) => msgs.map((m) => Number(m.message.index));
const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

afterEach(async () => {
  await Promise.all([...transports].map((t) => t.close()));
  transports.clear();
  for (const c of clients) c.close();
  clients.clear();
  for (const s of servers) s.forceShutdown();
  servers.clear();
});

// --- messages ---------------------------------------------------------------------------------------

describe('RaftTransport messages', () => {
  it('delivers messages in order', async () => {
    const rx = await startReceiver();
    const { t, registry } = newTransport(new Map([[2n, rx.address]]));
    let next = 1;
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < 30; i++) t.send(raftMsg(2n, BigInt(next++)));
      await sleep(2);
    }
    await waitFor(() => rx.messages.length === 300, 3000, '300 messages');
    expect(indexes(rx.messages)).toEqual(range(1, 300));
    expect(rx.messages[0]!.toPeer.storeId).toBe(2n);
    expect(rx.messages[0]!.message.type).toBe(MessageType.App);
    expect(await metric(registry, 'nokv_transport_messages_sent_total', { store: '2' })).toBe(300);
    expect(t.stats().stores['2']).toMatchObject({ messagesSent: 300, state: 'connected', queued: 0 });
  });

  it('batches a burst into few batches', async () => {
    const rx = await startReceiver();
    const { t, registry } = newTransport(new Map([[2n, rx.address]]));
    // Connect first, so the burst is not simply queued behind the connection.
    t.send(raftMsg(2n, 0n));
    await waitFor(() => rx.messages.length === 1);
    for (let i = 1; i <= 2000; i++) t.send(raftMsg(2n, BigInt(i)));
    await waitFor(() => rx.messages.length === 2001, 3000, 'the burst');
    expect(indexes(rx.messages)).toEqual(range(0, 2001));
    const batches = await metric(registry, 'nokv_transport_batches_sent_total');
    expect(batches).toBeLessThanOrEqual(1 + Math.ceil(2000 / 256) + 2);
    expect(rx.batches).toBe(batches);
    expect(await metric(registry, 'nokv_transport_bytes_sent_total')).toBeGreaterThan(2000 * 20);
  });

  it('drops with onUnreachable when the queue is full', async () => {
    const port = await freeLoopbackPort(); // nothing listens: messages wait in the queue
    const { t, registry } = newTransport(new Map([[2n, `127.0.0.1:${port}`]]), {
      maxQueueMessages: 10,
      unreachableAfterMs: 60_000,
    });
    const unreachable: RaftMessage[] = [];
    t.onUnreachable = (m) => unreachable.push(m);
    for (let i = 1; i <= 25; i++) t.send(raftMsg(2n, BigInt(i)));
    await sleep(1);
    expect(indexes(unreachable)).toEqual(range(11, 15));
    expect(await metric(registry, 'nokv_transport_messages_dropped_total', { reason: 'queue_full' })).toBe(
      15,
    );
    expect(await metric(registry, 'nokv_transport_queue_messages', { store: '2' })).toBe(10);
    expect(t.stats().stores['2']?.dropped).toEqual({ queue_full: 15 });
  });

  it('drops queued messages with onUnreachable once the store has been unreachable for a while', async () => {
    const port = await freeLoopbackPort();
    const { t, registry } = newTransport(new Map([[2n, `127.0.0.1:${port}`]]), { unreachableAfterMs: 150 });
    const unreachable: RaftMessage[] = [];
    t.onUnreachable = (m) => unreachable.push(m);
    for (let i = 1; i <= 5; i++) t.send(raftMsg(2n, BigInt(i)));
    await sleep(50);
    expect(unreachable).toHaveLength(0); // kept while the link is young
    await waitFor(() => unreachable.length === 5, 2000, 'expiry');
    t.send(raftMsg(2n, 6n)); // the link is known bad: refused at once
    await sleep(1);
    expect(indexes(unreachable)).toEqual(range(1, 6));
    expect(await metric(registry, 'nokv_transport_messages_dropped_total', { reason: 'connection' })).toBe(6);
  });

  it('drops messages for a store without an address', async () => {
    const { t } = newTransport(new Map());
    const unreachable: RaftMessage[] = [];
    t.onUnreachable = (m) => unreachable.push(m);
    t.send(raftMsg(9n, 1n));
    await sleep(1);
    expect(unreachable).toHaveLength(1);
    expect(t.stats().stores['9']?.dropped).toEqual({ no_address: 1 });
  });

  it('reconnects to a receiver restarted on the same port and reports the store down, then up', async () => {
    const rx = await startReceiver();
    const { t, registry } = newTransport(new Map([[2n, rx.address]]), { probeIntervalMs: 50 });
    const statuses: string[] = [];
    t.onStoreStatus = (id, s) => statuses.push(`${id}:${s}`);
    t.watchStores([2n]);
    t.send(raftMsg(2n, 1n));
    await waitFor(() => rx.messages.length === 1);

    stopReceiver(rx);
    await waitFor(() => statuses.length === 1, 2000, 'down');
    expect(statuses).toEqual(['2:down']);
    expect(t.storeStatus(2n)).toBe('down');

    const rx2 = await startReceiver(rx.port);
    await waitFor(() => statuses.length === 2, 3000, 'up');
    expect(statuses).toEqual(['2:down', '2:up']);
    for (let i = 2; i <= 20; i++) t.send(raftMsg(2n, BigInt(i)));
    await waitFor(() => rx2.messages.length === 19, 3000, 'messages after the restart');
    expect(indexes(rx2.messages)).toEqual(range(2, 19));
    expect(await metric(registry, 'nokv_transport_reconnects_total', { store: '2' })).toBeGreaterThanOrEqual(
      1,
    );
  });

  it('notices a quiet watched store dying through probes', async () => {
    const rx = await startReceiver();
    const { t } = newTransport(new Map([[2n, rx.address]]), { probeIntervalMs: 30 });
    const statuses: string[] = [];
    t.onStoreStatus = (id, s) => statuses.push(`${id}:${s}`);
    t.watchStores([2n, 1n]); // its own id is ignored
    await waitFor(() => rx.batches === 0 && t.stats().stores['2']?.state === 'connected');
    expect(Object.keys(t.stats().stores)).toEqual(['2']);
    await sleep(100); // probes are empty batches: nothing is delivered
    expect(rx.messages).toHaveLength(0);
    expect(t.stats().stores['2']!.batchesSent).toBeGreaterThan(0);
    stopReceiver(rx);
    await waitFor(() => statuses.includes('2:down'), 2000, 'down');
  });

  it('carries no callbacks after close and close is idempotent', async () => {
    const rx = await startReceiver();
    const { t } = newTransport(new Map([[2n, rx.address]]));
    t.send(raftMsg(2n, 1n));
    await waitFor(() => rx.messages.length === 1);
    await t.close();
    await t.close();
    t.send(raftMsg(2n, 2n)); // ignored, does not throw
    expect(t.stats().closed).toBe(true);
  });
});

// --- chaos --------------------------------------------------------------------------------------------

describe('RaftTransport chaos hooks', () => {
  it('block drops everything silently until cleared', async () => {
    const rx = await startReceiver();
    const { t, registry } = newTransport(new Map([[2n, rx.address]]));
    const unreachable: RaftMessage[] = [];
    t.onUnreachable = (m) => unreachable.push(m);
    t.setLinkFault(2n, { block: true });
    for (let i = 1; i <= 50; i++) t.send(raftMsg(2n, BigInt(i)));
    await sleep(100);
    expect(rx.messages).toHaveLength(0);
    expect(unreachable).toHaveLength(0);
    expect(await metric(registry, 'nokv_transport_messages_dropped_total', { reason: 'blocked' })).toBe(50);
    t.clearLinkFault(2n);
    t.send(raftMsg(2n, 51n));
    await waitFor(() => rx.messages.length === 1);
    expect(indexes(rx.messages)).toEqual([51]);
  });

  it('drop loses about the given fraction, reproducibly with a seeded random', async () => {
    const runs: number[][] = [];
    for (let run = 0; run < 2; run++) {
      const rx = await startReceiver();
      const { t, registry } = newTransport(new Map([[2n, rx.address]]), { random: seededRandom(42) });
      t.setLinkFault(2n, { drop: 0.3 });
      for (let i = 1; i <= 1000; i++) t.send(raftMsg(2n, BigInt(i)));
      const dropped = await metric(registry, 'nokv_transport_messages_dropped_total', {
        reason: 'fault_drop',
      });
      await waitFor(() => rx.messages.length === 1000 - dropped, 3000, 'the survivors');
      expect(dropped).toBeGreaterThan(240);
      expect(dropped).toBeLessThan(360);
      const got = indexes(rx.messages);
      expect(got).toEqual([...got].sort((a, b) => a - b));
      runs.push(got);
    }
    expect(runs[0]).toEqual(runs[1]);
  });

  it('duplicate delivers messages twice', async () => {
    const rx = await startReceiver();
    const { t } = newTransport(new Map([[2n, rx.address]]));
    t.setLinkFault(2n, { duplicate: 1 });
    for (let i = 1; i <= 10; i++) t.send(raftMsg(2n, BigInt(i)));
    await waitFor(() => rx.messages.length === 20);
    expect(indexes(rx.messages)).toEqual(range(1, 10).flatMap((i) => [i, i]));
  });

  it('delay holds messages and keeps their order', async () => {
    const rx = await startReceiver();
    const { t } = newTransport(new Map([[2n, rx.address]]));
    t.send(raftMsg(2n, 0n));
    await waitFor(() => rx.messages.length === 1);
    t.setLinkFault(2n, { delayMs: 150 });
    const sentAt = Date.now();
    t.send(raftMsg(2n, 1n));
    t.send(raftMsg(2n, 2n));
    t.setLinkFault(2n, { delayMs: 20 }); // shorter now, but must not overtake 1 and 2
    t.send(raftMsg(2n, 3n));
    await sleep(80);
    expect(rx.messages).toHaveLength(1);
    await waitFor(() => rx.messages.length === 4);
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(140);
    expect(indexes(rx.messages)).toEqual([0, 1, 2, 3]);
    expect(t.stats().stores['2']?.fault).toEqual({ delayMs: 20 });
    t.clearAllFaults();
    expect(t.stats().stores['2']?.fault).toBeNull();
  });

  it('rejects a fault that is not a probability', () => {
    const { t } = newTransport(new Map());
    expect(() => t.setLinkFault(2n, { drop: 1.5 })).toThrow(RangeError);
  });
});

// --- snapshots ----------------------------------------------------------------------------------------

describe('RaftTransport snapshots', () => {
  it('sends a ~5 MB snapshot in chunks and it arrives intact', async () => {
    const rx = await startReceiver();
    const { t, registry } = newTransport(new Map([[2n, rx.address]]));
    const statuses: string[] = [];
    t.onSnapshotStatus = (m, s) => statuses.push(`${m.regionId}:${s}`);
    const data = randomBytes(5 * 1024 * 1024 + 123);
    t.send(snapMsg(2n, data));
    await waitFor(() => statuses.length === 1, 5000, 'snapshot status');
    expect(statuses).toEqual(['7:ok']);
    expect(rx.messages).toHaveLength(0); // not on the batch stream
    expect(rx.snapshots).toHaveLength(1);
    const got = rx.snapshots[0]!;
    expect(got.message.type).toBe(MessageType.Snap);
    expect(got.message.snapshot?.metadata).toEqual({
      confState: { ...emptyConfState(), voters: [11n, 12n] },
      index: 100n,
      term: 3n,
    });
    expect(Buffer.compare(Buffer.from(got.message.snapshot!.data), data)).toBe(0);
    expect(await metric(registry, 'nokv_transport_snapshots_sent_total', { store: '2' })).toBe(1);
    expect(await metric(registry, 'nokv_transport_snapshot_bytes_sent_total')).toBe(data.length);
    expect(await metric(rx.registry, 'nokv_transport_snapshots_received_total')).toBe(1);
  });

  it('limits concurrent snapshots and reports failures', async () => {
    const rx = await startReceiver(0, { snapshotDelayMs: 60 });
    const port = await freeLoopbackPort();
    const { t, registry } = newTransport(
      new Map([
        [2n, rx.address],
        [3n, `127.0.0.1:${port}`],
      ]),
      { maxConcurrentSnapshots: 2 },
    );
    const statuses: string[] = [];
    t.onSnapshotStatus = (m, s) => statuses.push(`${m.toPeer.storeId}:${s}`);
    for (let i = 0; i < 5; i++) t.send(snapMsg(2n, randomBytes(1000)));
    t.send(snapMsg(3n, randomBytes(10))); // nobody listens there
    await waitFor(() => statuses.length === 6, 5000, 'six snapshot statuses');
    expect(statuses.filter((s) => s === '2:ok')).toHaveLength(5);
    expect(statuses).toContain('3:failed');
    expect(rx.maxConcurrentSnapshots).toBeLessThanOrEqual(2);
    expect(await metric(registry, 'nokv_transport_snapshots_failed_total', { store: '3' })).toBe(1);
  });

  it('a blocked link fails snapshots', async () => {
    const rx = await startReceiver();
    const { t } = newTransport(new Map([[2n, rx.address]]));
    const statuses: string[] = [];
    t.onSnapshotStatus = (_m, s) => statuses.push(s);
    t.setLinkFault(2n, { block: true });
    t.send(snapMsg(2n, randomBytes(10)));
    await waitFor(() => statuses.length === 1);
    expect(statuses).toEqual(['failed']);
    expect(rx.snapshots).toHaveLength(0);
  });
});

// --- the receiving side, by hand ------------------------------------------------------------------------

describe('raftTransportService', () => {
  type Chunk = nokv.transport.v1.SnapshotChunk.$Properties;

  function header(data: Uint8Array, over: { totalBytes?: number; crc?: number } = {}): Chunk {
    return {
      header: {
        message: raftMessageToWire(withoutSnapshotData(snapMsg(2n, data))),
        totalBytes: uint64ToWire(BigInt(over.totalBytes ?? data.length), 'total'),
        crc32c: over.crc ?? crc32c(data),
      },
    };
  }

  async function sendChunks(rx: Receiver, chunks: Chunk[]): Promise<unknown> {
    const client = createClient(RaftTransportService, rx.address);
    clients.add(client);
    const stream = client.openClientStream(RaftTransportService.SendSnapshot);
    try {
      for (const c of chunks) await stream.write(c);
      return await stream.end();
    } catch (err) {
      return err;
    }
  }

  const data = randomBytes(200_000);
  const chunksOf = (d: Uint8Array) => [d.subarray(0, 70_000), d.subarray(70_000)].map((c) => ({ data: c }));

  it('accepts a hand-written snapshot stream', async () => {
    const rx = await startReceiver();
    const res = await sendChunks(rx, [header(data), ...chunksOf(data)]);
    expect(res).not.toBeInstanceOf(Error);
    expect(rx.snapshots).toHaveLength(1);
    expect(Buffer.compare(Buffer.from(rx.snapshots[0]!.message.snapshot!.data), data)).toBe(0);
  });

  const corrupt = Buffer.from(data);
  corrupt[100_000] = (corrupt[100_000]! + 1) & 0xff;
  const cases: [string, () => Chunk[], RegExp][] = [
    ['a corrupted chunk (CRC mismatch)', () => [header(data), ...chunksOf(corrupt)], /CRC32C/],
    ['a wrong announced CRC', () => [header(data, { crc: 12345 }), ...chunksOf(data)], /CRC32C/],
    ['no header', () => chunksOf(data), /data before the header/],
    ['only a header', () => [header(data)], /0 of the announced/],
    ['a repeated header', () => [header(data), header(data), ...chunksOf(data)], /second header/],
    [
      'more bytes than announced',
      () => [header(data, { totalBytes: 100_000 }), ...chunksOf(data)],
      /more than/,
    ],
    [
      'fewer bytes than announced',
      () => [header(data, { totalBytes: 300_000 }), ...chunksOf(data)],
      /of the announced/,
    ],
    ['an empty stream', () => [], /no header/],
    ['a snapshot over the size limit', () => [header(data, { totalBytes: 2 ** 31 })], /exceed the limit/],
  ];
  for (const [name, chunks, detail] of cases) {
    it(`refuses ${name} with INVALID_ARGUMENT and delivers nothing`, async () => {
      const rx = await startReceiver();
      const err = await sendChunks(rx, chunks());
      expect(err).toBeInstanceOf(RpcError);
      expect((err as RpcError).status).toBe(grpc.status.INVALID_ARGUMENT);
      expect((err as RpcError).details).toMatch(detail);
      expect(rx.snapshots).toHaveLength(0);
    });
  }

  it('answers INTERNAL when the store fails to take a snapshot', async () => {
    const server = new grpc.Server();
    servers.add(server);
    const svc = raftTransportService({
      onRaftMessages() {},
      onSnapshot: async () => {
        throw new Error('disk full');
      },
    });
    server.addService(svc.definition, svc.implementation);
    const port = await new Promise<number>((res, rej) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? rej(e) : res(p),
      ),
    );
    const rx = { address: `127.0.0.1:${port}` } as Receiver;
    const err = await sendChunks(rx, [header(data), ...chunksOf(data)]);
    expect((err as RpcError).status).toBe(grpc.status.INTERNAL);
    expect((err as RpcError).details).toMatch(/disk full/);
  });

  async function sendRawBatches(rx: Receiver, batches: Buffer[]): Promise<grpc.ServiceError | null> {
    const raw = new grpc.Client(rx.address, grpc.credentials.createInsecure());
    clients.add(raw);
    return new Promise((resolve) => {
      const call = raw.makeClientStreamRequest(
        RaftTransportService.Send.path,
        rawSerialize,
        rawDeserialize,
        (err) => resolve(err),
      );
      call.on('error', () => {});
      for (const b of batches) call.write(b);
      call.end();
    });
  }

  it('refuses a malformed batch with INVALID_ARGUMENT and delivers nothing from it', async () => {
    const rx = await startReceiver();
    // field 1 announces 200 bytes, 3 follow
    const err = await sendRawBatches(rx, [Buffer.from([0x0a, 0xc8, 0x01, 0x01, 0x02, 0x03])]);
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(rx.messages).toHaveLength(0);
  });

  it('refuses random bytes on the Send stream', async () => {
    const rx = await startReceiver();
    const bytes = Buffer.concat([Buffer.from([0x0f]), randomBytes(300)]); // field 1, wire type 7: invalid
    const err = await sendRawBatches(rx, [bytes]);
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(rx.messages).toHaveLength(0);
  });

  it('delivers the good batches before a bad one, and nothing of a batch with one bad message', async () => {
    const rx = await startReceiver();
    const good = frameBatch([encodeRaftMessage(raftMsg(2n, 1n)), encodeRaftMessage(raftMsg(2n, 2n))]);
    // A RaftMessage without its raft message: decodes, but is not a valid RaftMessage.
    const bad = frameBatch([
      encodeRaftMessage(raftMsg(2n, 3n)),
      nokv.transport.v1.RaftMessage.encode({ regionId: uint64ToWire(7n, 'r') }).finish(),
    ]);
    const err = await sendRawBatches(rx, [good, Buffer.alloc(0), bad, good]);
    expect(err?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err?.details).toMatch(/without a raft message/);
    expect(indexes(rx.messages)).toEqual([1, 2]);
  });
});
