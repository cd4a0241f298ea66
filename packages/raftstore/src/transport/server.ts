import type { ServiceDefinition, UntypedServiceImplementation } from '@grpc/grpc-js';
import { status as Status } from '@grpc/grpc-js';
import { crc32c } from '@node-rs/crc32';
import {
  MessageType,
  type nokv,
  type RaftMessage,
  RaftTransportService,
  raftMessageFromWire,
  uint64FromWire,
} from '@nokv/proto';
import { Registry } from 'prom-client';
import { clientStreamHandler, GrpcStatusError, serverDefinition } from '../grpc/index.js';
import type { SnapshotTracker, SnapshotTransfer } from '../store/snapshot-tracker.js';
import { ReceiverMetrics } from './metrics.js';
import type { TransportLogger } from './transport.js';

// The receiving side of RaftTransport. Send: each batch is decoded whole before any of it is
// delivered, so a malformed batch delivers nothing and ends the call with INVALID_ARGUMENT.
// SendSnapshot: the header, then data chunks; the payload is reassembled, its size and CRC32C
// checked, and only an intact snapshot reaches the sink.

export interface RaftMessageSink {
  /** Messages of one batch, in the order sent. Throwing ends the stream with INTERNAL. */
  onRaftMessages(msgs: RaftMessage[]): void;
  /** A received snapshot, its data filled in. Rejecting answers the sender with INTERNAL. */
  onSnapshot(msg: RaftMessage): Promise<void>;
}

export interface RaftTransportServiceOptions {
  /** Largest snapshot payload accepted (default 1 GiB). */
  maxSnapshotBytes?: number;
  /** Largest single batch or snapshot chunk message (default 64 MiB). */
  maxMessageBytes?: number;
  registry?: Registry;
  logger?: TransportLogger;
  /** Where incoming snapshot transfers report their progress (the store's tracker). */
  snapshotTracker?: SnapshotTracker;
}

export interface RaftTransportServiceEntry {
  definition: ServiceDefinition;
  implementation: UntypedServiceImplementation;
}

const GIB = 1024 * 1024 * 1024;
const MIB = 1024 * 1024;

function invalid(message: string, code = 'InvalidArgument'): GrpcStatusError {
  return new GrpcStatusError(Status.INVALID_ARGUMENT, message, { code });
}

/** The RaftTransport service for `server.addService(definition, implementation)`. */
export function raftTransportService(
  sink: RaftMessageSink,
  opts: RaftTransportServiceOptions = {},
): RaftTransportServiceEntry {
  const maxSnapshotBytes = opts.maxSnapshotBytes ?? GIB;
  const maxMessageBytes = opts.maxMessageBytes ?? 64 * MIB;
  const metrics = new ReceiverMetrics(opts.registry ?? new Registry());
  const logger = opts.logger;
  const handlerOpts = { maxRequestBytes: maxMessageBytes };

  const send = clientStreamHandler(
    RaftTransportService.Send,
    async (batches) => {
      for await (const batch of batches) {
        metrics.batchesReceived.inc();
        const wire = batch.messages ?? [];
        if (wire.length === 0) continue; // a liveness probe
        let msgs: RaftMessage[];
        try {
          msgs = wire.map(raftMessageFromWire);
        } catch (err) {
          throw invalid(`malformed RaftMessageBatch: ${(err as Error).message}`, 'MalformedMessage');
        }
        try {
          sink.onRaftMessages(msgs);
        } catch (err) {
          logger?.error({ err }, 'transport: delivering raft messages failed');
          throw new GrpcStatusError(Status.INTERNAL, `delivering raft messages: ${(err as Error).message}`);
        }
        metrics.messagesReceived.inc(msgs.length);
      }
      return {};
    },
    handlerOpts,
  );

  const sendSnapshot = clientStreamHandler(
    RaftTransportService.SendSnapshot,
    async (chunks) => {
      let header: { msg: RaftMessage; total: number; crc: number } | undefined;
      let progress: SnapshotTransfer | undefined;
      try {
        const parts: Uint8Array[] = [];
        let received = 0;
        let crc = 0;
        const reject = (reason: string, message: string): GrpcStatusError => {
          metrics.snapshotsRejected.inc({ reason });
          logger?.warn({ reason }, `transport: snapshot refused: ${message}`);
          return invalid(`snapshot refused: ${message}`);
        };
        for await (const chunk of chunks) {
          if (chunk.header) {
            if (header) throw reject('repeated_header', 'a second header');
            header = parseHeader(chunk.header, maxSnapshotBytes, reject);
            progress = opts.snapshotTracker?.begin({
              kind: 'raft',
              direction: 'receive',
              regionId: header.msg.regionId,
              peerStoreId: header.msg.fromPeer.storeId,
              bytesTotal: header.total,
            });
            continue;
          }
          const data = chunk.data;
          if (!data) throw reject('empty_chunk', 'a chunk with neither header nor data');
          if (!header) throw reject('data_before_header', 'data before the header');
          if (received + data.length > header.total) {
            throw reject('too_long', `more than the announced ${header.total} bytes`);
          }
          crc = crc32c(data, crc);
          received += data.length;
          parts.push(data);
          progress?.advance(data.length);
        }
        progress?.stage('verify');
        if (!header) throw reject('missing_header', 'no header');
        if (received !== header.total) {
          throw reject('truncated', `${received} of the announced ${header.total} bytes`);
        }
        if (crc !== header.crc) {
          throw reject('checksum', `CRC32C ${hex(crc)} of the data, ${hex(header.crc)} announced`);
        }
        const data = parts.length === 1 ? parts[0]! : Buffer.concat(parts, received);
        const msg = header.msg;
        const snapshot = msg.message.snapshot!;
        const full: RaftMessage = { ...msg, message: { ...msg.message, snapshot: { ...snapshot, data } } };
        // The store takes the snapshot to its peer here; the install itself happens in the peer's
        // next Ready.
        progress?.stage('install');
        try {
          await sink.onSnapshot(full);
        } catch (err) {
          metrics.snapshotsRejected.inc({ reason: 'store' });
          logger?.error(
            { err, region: String(msg.regionId) },
            'transport: applying a received snapshot failed',
          );
          throw new GrpcStatusError(Status.INTERNAL, `snapshot not taken: ${(err as Error).message}`);
        }
        metrics.snapshotsReceived.inc();
        metrics.snapshotBytesReceived.inc(received);
        progress?.done();
        return {};
      } catch (err) {
        progress?.fail(err);
        throw err;
      }
    },
    handlerOpts,
  );

  return {
    definition: serverDefinition(RaftTransportService) as ServiceDefinition,
    implementation: { Send: send, SendSnapshot: sendSnapshot },
  };
}

function parseHeader(
  h: nokv.transport.v1.SnapshotHeader.$Properties,
  maxSnapshotBytes: number,
  reject: (reason: string, message: string) => GrpcStatusError,
): { msg: RaftMessage; total: number; crc: number } {
  if (!h.message) throw reject('malformed', 'header without a message');
  let msg: RaftMessage;
  try {
    msg = raftMessageFromWire(h.message);
  } catch (err) {
    throw reject('malformed', `header message: ${(err as Error).message}`);
  }
  if (msg.message.type !== MessageType.Snap || !msg.message.snapshot) {
    throw reject('malformed', 'header message is not a MsgSnap with a snapshot');
  }
  const total = uint64FromWire(h.totalBytes);
  if (total > BigInt(maxSnapshotBytes)) {
    throw reject('too_large', `${total} bytes exceed the limit of ${maxSnapshotBytes}`);
  }
  return { msg, total: Number(total), crc: (h.crc32c ?? 0) >>> 0 };
}

function hex(n: number): string {
  return `0x${(n >>> 0).toString(16).padStart(8, '0')}`;
}
