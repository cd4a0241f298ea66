import { createHash } from 'node:crypto';
import type * as grpc from '@grpc/grpc-js';
import { status as Status } from '@grpc/grpc-js';
import { type nokv, RaftAdminService, regionToWire, uint64FromWire, uint64ToWire } from '@nokv/proto';
import { clientStreamHandler, GrpcStatusError, serverStreamHandler, unaryHandler } from '../grpc/index.js';
import { CorruptSnapshotError } from '../peer-storage/index.js';
import { RegionError } from './errors.js';
import {
  FROM_STORE_METADATA,
  type RegionRuntimeStatus,
  snapshotChunks,
  snapshotHeaderFromWire,
  snapshotHeaderToWire,
} from './region-admin.js';
import type { RegionSnapshotHeader } from './region-install.js';
import type { SnapshotTransfer, SnapshotTransferView } from './snapshot-tracker.js';
import type { Store } from './store.js';

// The RaftAdmin RPCs about region snapshots and membership with snapshots: RegionRuntimeStatus,
// AddPeer, RemovePeer, ExportRegionSnapshotStream, ImportRegionSnapshotStream, SnapshotProgress.
// services.ts merges these handlers into the RaftAdmin service.

/** Largest region snapshot an import accepts. */
export const MAX_IMPORT_SNAPSHOT_BYTES = 1024 * 1024 * 1024;
/** Largest single message of an import stream (chunks are 64 KiB). */
const MAX_IMPORT_MESSAGE_BYTES = 8 * 1024 * 1024;

type Long = Parameters<typeof uint64FromWire>[0];

function invalid(message: string, code?: string): GrpcStatusError {
  return new GrpcStatusError(Status.INVALID_ARGUMENT, message, code === undefined ? undefined : { code });
}

/** A damaged snapshot is the caller's bad input: INVALID_ARGUMENT, with its own code. */
function statusOf(err: unknown): unknown {
  if (err instanceof CorruptSnapshotError) return invalid(err.message, 'CorruptSnapshot');
  return err;
}

function remainingMs(call: { getDeadline(): grpc.Deadline }): number | undefined {
  const d = call.getDeadline();
  const at = d instanceof Date ? d.getTime() : d;
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

async function withRegionError<R extends object>(
  fn: () => Promise<R>,
): Promise<R | { regionError: nokv.errors.v1.RegionError.$Properties }> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof RegionError) return { regionError: err.wire };
    throw err;
  }
}

export function runtimeStatusToWire(
  s: RegionRuntimeStatus,
): nokv.admin.v1.RegionRuntimeStatusResponse.$Properties {
  return {
    known: s.known,
    hosted: s.hosted,
    localPeerId: uint64ToWire(s.localPeerId, 'local_peer_id'),
    leaderPeerId: uint64ToWire(s.leaderPeerId, 'leader_peer_id'),
    leader: s.leader,
    region: s.region ? regionToWire(s.region) : null,
    appliedIndex: uint64ToWire(s.appliedIndex, 'applied_index'),
    appliedTerm: uint64ToWire(s.appliedTerm, 'applied_term'),
    member: s.member,
    tombstone: s.tombstone,
  };
}

export function transferToWire(t: SnapshotTransferView): nokv.admin.v1.SnapshotTransfer.$Properties {
  return {
    regionId: uint64ToWire(t.regionId, 'region_id'),
    direction: t.direction,
    peerStoreId: uint64ToWire(t.peerStoreId, 'peer_store_id'),
    stage: t.stage,
    bytesDone: uint64ToWire(BigInt(t.bytesDone), 'bytes_done'),
    bytesTotal: uint64ToWire(BigInt(t.bytesTotal), 'bytes_total'),
    startedUnixMs: uint64ToWire(BigInt(t.startedAtMs), 'started_unix_ms'),
    finishedUnixMs: uint64ToWire(BigInt(t.finishedAtMs), 'finished_unix_ms'),
    error: t.error,
    kind: t.kind,
  };
}

/** The handlers, to merge into the RaftAdmin service implementation. */
export function adminSnapshotHandlers(store: Store): grpc.UntypedServiceImplementation {
  const opts = { maxRequestBytes: 64 * 1024 };
  const id = (v: Long) => uint64FromWire(v);
  return {
    RegionRuntimeStatus: unaryHandler(
      RaftAdminService.RegionRuntimeStatus,
      async (req) => runtimeStatusToWire(await store.regionRuntimeStatus(id(req.regionId))),
      opts,
    ),
    AddPeer: unaryHandler(
      RaftAdminService.AddPeer,
      (req, call) =>
        withRegionError(async () => {
          const deadlineMs = remainingMs(call);
          const r = await store.addPeer({
            regionId: id(req.regionId),
            storeId: id(req.storeId),
            peerId: id(req.peerId),
            learner: req.learner ?? false,
            ...(req.targetAddr ? { targetAddr: req.targetAddr } : {}),
            ...(deadlineMs === undefined ? {} : { deadlineMs }),
          });
          return {
            region: regionToWire(r.region),
            snapshotBytes: uint64ToWire(BigInt(r.snapshotBytes), 'snapshot_bytes'),
          };
        }),
      opts,
    ),
    RemovePeer: unaryHandler(
      RaftAdminService.RemovePeer,
      (req, call) =>
        withRegionError(async () => {
          const region = await store.removePeer(id(req.regionId), id(req.peerId), remainingMs(call));
          return { region: regionToWire(region) };
        }),
      opts,
    ),
    SnapshotProgress: unaryHandler(
      RaftAdminService.SnapshotProgress,
      async () => ({ transfers: store.snapshotProgress().map(transferToWire) }),
      opts,
    ),
    ExportRegionSnapshotStream: serverStreamHandler(
      RaftAdminService.ExportRegionSnapshotStream,
      async (req, send) => {
        const regionId = id(req.regionId);
        if (regionId === 0n) throw invalid('region_id is required');
        const transfer = store.snapshots.begin({ kind: 'admin', direction: 'send', regionId });
        await transfer.run(async (t) => {
          const snap = await store.exportRegionSnapshot(regionId);
          t.total(snap.data.length).stage('stream');
          for (const chunk of snapshotChunks(snap, 0n)) {
            if (chunk.header) await send({ header: snapshotHeaderToWire(chunk.header) });
            else if (chunk.data) {
              await send({ data: chunk.data });
              t.advance(chunk.data.length);
            }
          }
        });
      },
      opts,
    ),
    ImportRegionSnapshotStream: clientStreamHandler(
      RaftAdminService.ImportRegionSnapshotStream,
      async (chunks, call) => {
        let header: RegionSnapshotHeader | undefined;
        let transfer: SnapshotTransfer | undefined;
        try {
          const parts: Uint8Array[] = [];
          const hash = createHash('sha256');
          let received = 0;
          for await (const chunk of chunks) {
            if (header === undefined) {
              if (!chunk.header) throw invalid('the first message of the stream must carry the header');
              header = snapshotHeaderFromWire(chunk.header, MAX_IMPORT_SNAPSHOT_BYTES);
              const from = call.metadata.get(FROM_STORE_METADATA)[0];
              transfer = store.snapshots.begin({
                kind: 'admin',
                direction: 'receive',
                regionId: header.region.id,
                peerStoreId: typeof from === 'string' && /^[0-9]{1,20}$/.test(from) ? BigInt(from) : 0n,
                bytesTotal: header.totalBytes,
              });
            } else if (chunk.header) {
              throw invalid('a second header: the header goes in the first message only');
            }
            const data = chunk.data;
            if (data && data.length > 0) {
              if (received + data.length > header.totalBytes) {
                throw invalid(`more than the announced ${header.totalBytes} bytes`, 'CorruptSnapshot');
              }
              hash.update(data);
              parts.push(data);
              received += data.length;
              transfer?.advance(data.length);
            }
          }
          if (header === undefined) throw invalid('an empty stream: no header, no snapshot');
          if (received !== header.totalBytes) {
            throw invalid(`${received} of the announced ${header.totalBytes} bytes`, 'CorruptSnapshot');
          }
          if (!hash.digest().equals(Buffer.from(header.sha256))) {
            throw invalid('the payload does not match the SHA-256 in the header', 'CorruptSnapshot');
          }
          const data = Buffer.concat(parts, received);
          const region = await store.importRegionSnapshot(header, data, transfer);
          transfer?.done();
          return { region: regionToWire(region), bytes: uint64ToWire(BigInt(received), 'bytes') };
        } catch (err) {
          transfer?.fail(err);
          throw statusOf(err);
        }
      },
      { maxRequestBytes: MAX_IMPORT_MESSAGE_BYTES },
    ),
  };
}
