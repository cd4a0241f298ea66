import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

// Transport metrics. Both sides register on the registry they are given; a metric of the same name
// already registered there (another transport in the same process) is reused, not re-registered.

function getOrCreate<T>(registry: Registry, name: string, create: () => T): T {
  const existing = registry.getSingleMetric(name);
  return existing ? (existing as T) : create();
}

/** Why a message was dropped before it reached the wire. */
export type DropReason =
  | 'queue_full'
  | 'blocked'
  | 'fault_drop'
  | 'connection'
  | 'no_address'
  | 'encode'
  | 'closed';

export class SenderMetrics {
  readonly messagesSent: Counter<'store'>;
  readonly batchesSent: Counter<'store'>;
  readonly bytesSent: Counter<'store'>;
  readonly dropped: Counter<'store' | 'reason'>;
  readonly queueDepth: Gauge<'store'>;
  readonly reconnects: Counter<'store'>;
  readonly snapshotsSent: Counter<'store'>;
  readonly snapshotsFailed: Counter<'store'>;
  readonly snapshotBytesSent: Counter<'store'>;
  readonly batchSeconds: Histogram<'store'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.messagesSent = getOrCreate(
      registry,
      'nokv_transport_messages_sent_total',
      () =>
        new Counter({
          name: 'nokv_transport_messages_sent_total',
          help: 'Raft messages written to a store stream',
          labelNames: ['store'],
          registers,
        }),
    );
    this.batchesSent = getOrCreate(
      registry,
      'nokv_transport_batches_sent_total',
      () =>
        new Counter({
          name: 'nokv_transport_batches_sent_total',
          help: 'RaftMessageBatches written (including empty liveness probes)',
          labelNames: ['store'],
          registers,
        }),
    );
    this.bytesSent = getOrCreate(
      registry,
      'nokv_transport_bytes_sent_total',
      () =>
        new Counter({
          name: 'nokv_transport_bytes_sent_total',
          help: 'Encoded batch bytes written',
          labelNames: ['store'],
          registers,
        }),
    );
    this.dropped = getOrCreate(
      registry,
      'nokv_transport_messages_dropped_total',
      () =>
        new Counter({
          name: 'nokv_transport_messages_dropped_total',
          help: 'Raft messages dropped before reaching the wire, by reason',
          labelNames: ['store', 'reason'],
          registers,
        }),
    );
    this.queueDepth = getOrCreate(
      registry,
      'nokv_transport_queue_messages',
      () =>
        new Gauge({
          name: 'nokv_transport_queue_messages',
          help: 'Raft messages queued for a store',
          labelNames: ['store'],
          registers,
        }),
    );
    this.reconnects = getOrCreate(
      registry,
      'nokv_transport_reconnects_total',
      () =>
        new Counter({
          name: 'nokv_transport_reconnects_total',
          help: 'Connection attempts after a failed attempt or a broken stream',
          labelNames: ['store'],
          registers,
        }),
    );
    this.snapshotsSent = getOrCreate(
      registry,
      'nokv_transport_snapshots_sent_total',
      () =>
        new Counter({
          name: 'nokv_transport_snapshots_sent_total',
          help: 'Snapshots the receiving store accepted',
          labelNames: ['store'],
          registers,
        }),
    );
    this.snapshotsFailed = getOrCreate(
      registry,
      'nokv_transport_snapshots_failed_total',
      () =>
        new Counter({
          name: 'nokv_transport_snapshots_failed_total',
          help: 'Snapshots that could not be sent',
          labelNames: ['store'],
          registers,
        }),
    );
    this.snapshotBytesSent = getOrCreate(
      registry,
      'nokv_transport_snapshot_bytes_sent_total',
      () =>
        new Counter({
          name: 'nokv_transport_snapshot_bytes_sent_total',
          help: 'Snapshot payload bytes written',
          labelNames: ['store'],
          registers,
        }),
    );
    this.batchSeconds = getOrCreate(
      registry,
      'nokv_transport_batch_send_seconds',
      () =>
        new Histogram({
          name: 'nokv_transport_batch_send_seconds',
          help: "From a batch's oldest message being queued until grpc took the batch",
          labelNames: ['store'],
          buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
          registers,
        }),
    );
  }
}

export class ReceiverMetrics {
  readonly messagesReceived: Counter;
  readonly batchesReceived: Counter;
  readonly snapshotsReceived: Counter;
  readonly snapshotsRejected: Counter<'reason'>;
  readonly snapshotBytesReceived: Counter;

  constructor(registry: Registry) {
    const registers = [registry];
    this.messagesReceived = getOrCreate(
      registry,
      'nokv_transport_messages_received_total',
      () =>
        new Counter({
          name: 'nokv_transport_messages_received_total',
          help: 'Raft messages received and delivered',
          registers,
        }),
    );
    this.batchesReceived = getOrCreate(
      registry,
      'nokv_transport_batches_received_total',
      () =>
        new Counter({
          name: 'nokv_transport_batches_received_total',
          help: 'RaftMessageBatches received (including empty probes)',
          registers,
        }),
    );
    this.snapshotsReceived = getOrCreate(
      registry,
      'nokv_transport_snapshots_received_total',
      () =>
        new Counter({
          name: 'nokv_transport_snapshots_received_total',
          help: 'Snapshots received intact and delivered',
          registers,
        }),
    );
    this.snapshotsRejected = getOrCreate(
      registry,
      'nokv_transport_snapshots_rejected_total',
      () =>
        new Counter({
          name: 'nokv_transport_snapshots_rejected_total',
          help: 'Snapshot streams refused (malformed, checksum, size) or failed in the store',
          labelNames: ['reason'],
          registers,
        }),
    );
    this.snapshotBytesReceived = getOrCreate(
      registry,
      'nokv_transport_snapshot_bytes_received_total',
      () =>
        new Counter({
          name: 'nokv_transport_snapshot_bytes_received_total',
          help: 'Snapshot payload bytes received',
          registers,
        }),
    );
  }
}
