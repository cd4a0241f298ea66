import { nokv } from '@nokv/proto/gen/nokv';
import type protobuf from 'protobufjs/minimal.js';

// The gRPC services of proto/nokv/**.proto as plain descriptors: path, streaming flags and the
// protobufjs codecs of each side. pbjs's static code carries no service definitions that
// @grpc/grpc-js can use, so they are listed here; services.test.ts checks the list against the
// .proto files so the two cannot drift.

/** What encodes one message type and decodes it back (a pbjs static class). */
export interface MessageCodec<Props, Decoded> {
  encode(message: Props, writer?: protobuf.Writer): protobuf.Writer;
  decode(reader: Uint8Array | protobuf.Reader, length?: number): Decoded;
}

export interface MethodDescriptor<ReqProps = unknown, Req = unknown, ResProps = unknown, Res = unknown> {
  /** e.g. `/nokv.kv.v1.NoKV/RawGet` */
  path: string;
  name: string;
  requestStream: boolean;
  responseStream: boolean;
  request: MessageCodec<ReqProps, Req>;
  response: MessageCodec<ResProps, Res>;
}

function method<ReqProps, Req, ResProps, Res>(
  service: string,
  name: string,
  request: MessageCodec<ReqProps, Req>,
  response: MessageCodec<ResProps, Res>,
  streams: { request?: boolean; response?: boolean } = {},
): MethodDescriptor<ReqProps, Req, ResProps, Res> {
  return {
    path: `/${service}/${name}`,
    name,
    requestStream: streams.request ?? false,
    responseStream: streams.response ?? false,
    request,
    response,
  };
}

const kv = nokv.kv.v1;
const NOKV = 'nokv.kv.v1.NoKV';
/** `service NoKV` (kv.proto): the client-facing KV surface of a store. */
export const NoKVService = {
  RawGet: method(NOKV, 'RawGet', kv.RawGetRequest, kv.RawGetResponse),
  RawPut: method(NOKV, 'RawPut', kv.RawPutRequest, kv.RawPutResponse),
  RawDelete: method(NOKV, 'RawDelete', kv.RawDeleteRequest, kv.RawDeleteResponse),
  RawScan: method(NOKV, 'RawScan', kv.RawScanRequest, kv.RawScanResponse),
  RawBatchPut: method(NOKV, 'RawBatchPut', kv.RawBatchPutRequest, kv.RawBatchPutResponse),
  RawBatchGet: method(NOKV, 'RawBatchGet', kv.RawBatchGetRequest, kv.RawBatchGetResponse),
  KvGet: method(NOKV, 'KvGet', kv.KvGetRequest, kv.KvGetResponse),
  KvBatchGet: method(NOKV, 'KvBatchGet', kv.KvBatchGetRequest, kv.KvBatchGetResponse),
  KvScan: method(NOKV, 'KvScan', kv.KvScanRequest, kv.KvScanResponse),
  KvPrewrite: method(NOKV, 'KvPrewrite', kv.KvPrewriteRequest, kv.KvPrewriteResponse),
  KvCommit: method(NOKV, 'KvCommit', kv.KvCommitRequest, kv.KvCommitResponse),
  KvBatchRollback: method(NOKV, 'KvBatchRollback', kv.KvBatchRollbackRequest, kv.KvBatchRollbackResponse),
  KvResolveLock: method(NOKV, 'KvResolveLock', kv.KvResolveLockRequest, kv.KvResolveLockResponse),
  KvCheckTxnStatus: method(NOKV, 'KvCheckTxnStatus', kv.KvCheckTxnStatusRequest, kv.KvCheckTxnStatusResponse),
} as const;

const tr = nokv.transport.v1;
const TRANSPORT = 'nokv.transport.v1.RaftTransport';
/** `service RaftTransport` (transport.proto): Raft messages and snapshots between stores. */
export const RaftTransportService = {
  Send: method(TRANSPORT, 'Send', tr.RaftMessageBatch, tr.Done, { request: true }),
  SendSnapshot: method(TRANSPORT, 'SendSnapshot', tr.SnapshotChunk, tr.Done, { request: true }),
} as const;

const admin = nokv.admin.v1;
const ADMIN = 'nokv.admin.v1.RaftAdmin';
/** `service RaftAdmin` (admin.proto): operator RPCs of a store. */
export const RaftAdminService = {
  RegionStatus: method(ADMIN, 'RegionStatus', admin.RegionStatusRequest, admin.RegionStatus),
  ListRegions: method(ADMIN, 'ListRegions', admin.ListRegionsRequest, admin.ListRegionsResponse),
  TransferLeader: method(ADMIN, 'TransferLeader', admin.TransferLeaderRequest, admin.TransferLeaderResponse),
  ChangePeer: method(ADMIN, 'ChangePeer', admin.ChangePeerRequest, admin.ChangePeerResponse),
  RegionRuntimeStatus: method(
    ADMIN,
    'RegionRuntimeStatus',
    admin.RegionRuntimeStatusRequest,
    admin.RegionRuntimeStatusResponse,
  ),
  AddPeer: method(ADMIN, 'AddPeer', admin.AddPeerRequest, admin.AddPeerResponse),
  RemovePeer: method(ADMIN, 'RemovePeer', admin.RemovePeerRequest, admin.RemovePeerResponse),
  ExportRegionSnapshotStream: method(
    ADMIN,
    'ExportRegionSnapshotStream',
    admin.ExportRegionSnapshotRequest,
    admin.RegionSnapshotChunk,
    { response: true },
  ),
  ImportRegionSnapshotStream: method(
    ADMIN,
    'ImportRegionSnapshotStream',
    admin.RegionSnapshotChunk,
    admin.ImportRegionSnapshotResponse,
    { request: true },
  ),
  SplitRegion: method(ADMIN, 'SplitRegion', admin.SplitRegionRequest, admin.SplitRegionResponse),
  PrepareMerge: method(ADMIN, 'PrepareMerge', admin.PrepareMergeRequest, admin.PrepareMergeResponse),
  CommitMerge: method(ADMIN, 'CommitMerge', admin.CommitMergeRequest, admin.CommitMergeResponse),
  SnapshotProgress: method(
    ADMIN,
    'SnapshotProgress',
    admin.SnapshotProgressRequest,
    admin.SnapshotProgressResponse,
  ),
  SetLinkFault: method(ADMIN, 'SetLinkFault', admin.SetLinkFaultRequest, admin.SetLinkFaultResponse),
} as const;

const coord = nokv.coordinator.v1;
const COORDINATOR = 'nokv.coordinator.v1.Coordinator';
/** `service Coordinator` (coordinator.proto): routing, heartbeats, store discovery, ID and TSO. */
export const CoordinatorService = {
  GetRegionByKey: method(COORDINATOR, 'GetRegionByKey', coord.GetRegionByKeyRequest, coord.GetRegionResponse),
  GetRegionById: method(COORDINATOR, 'GetRegionById', coord.GetRegionByIdRequest, coord.GetRegionResponse),
  ScanRegions: method(COORDINATOR, 'ScanRegions', coord.ScanRegionsRequest, coord.ScanRegionsResponse),
  StoreHeartbeat: method(
    COORDINATOR,
    'StoreHeartbeat',
    coord.StoreHeartbeatRequest,
    coord.StoreHeartbeatResponse,
  ),
  RegionHeartbeat: method(
    COORDINATOR,
    'RegionHeartbeat',
    coord.RegionHeartbeatRequest,
    coord.RegionHeartbeatResponse,
  ),
  RegionHeartbeatBatch: method(
    COORDINATOR,
    'RegionHeartbeatBatch',
    coord.RegionHeartbeatBatchRequest,
    coord.RegionHeartbeatBatchResponse,
  ),
  PutStore: method(COORDINATOR, 'PutStore', coord.PutStoreRequest, coord.PutStoreResponse),
  GetStore: method(COORDINATOR, 'GetStore', coord.GetStoreRequest, coord.GetStoreResponse),
  ListStores: method(COORDINATOR, 'ListStores', coord.ListStoresRequest, coord.ListStoresResponse),
  RemoveRegion: method(COORDINATOR, 'RemoveRegion', coord.RemoveRegionRequest, coord.RemoveRegionResponse),
  AllocId: method(COORDINATOR, 'AllocId', coord.AllocIdRequest, coord.AllocIdResponse),
  Tso: method(COORDINATOR, 'Tso', coord.TsoRequest, coord.TsoResponse),
} as const;

/** Every service, by its full protobuf name. */
export const SERVICES = {
  [NOKV]: NoKVService,
  [TRANSPORT]: RaftTransportService,
  [ADMIN]: RaftAdminService,
  [COORDINATOR]: CoordinatorService,
} as const;
