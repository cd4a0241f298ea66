import { nokv } from '@nokv/proto/gen/nokv';
import { ProtoError } from './errors.js';
import {
  epochFromWire,
  epochToWire,
  peerFromWire,
  peerToWire,
  type RegionEpoch,
  type RegionPeer,
} from './meta.js';
import { type Message, messageFromWire, messageToWire } from './raft.js';
import { uint64FromWire, uint64ToWire } from './uint64.js';

// bigint view of nokv.transport.v1.RaftMessage: a Raft message addressed to one region's peer.

const pb = nokv.transport.v1;

export interface RaftMessage {
  regionId: bigint;
  fromPeer: RegionPeer;
  toPeer: RegionPeer;
  epoch: RegionEpoch;
  message: Message;
  startKey: Uint8Array;
  endKey: Uint8Array;
  hibernate: boolean;
  /** A reply telling a peer the region's newer configuration no longer lists it (not stepped). */
  tombstone?: boolean;
}

export function raftMessageToWire(m: RaftMessage): nokv.transport.v1.RaftMessage.$Properties {
  return {
    regionId: uint64ToWire(m.regionId, 'RaftMessage.region_id'),
    fromPeer: peerToWire(m.fromPeer),
    toPeer: peerToWire(m.toPeer),
    regionEpoch: epochToWire(m.epoch),
    message: messageToWire(m.message),
    startKey: m.startKey,
    endKey: m.endKey,
    hibernate: m.hibernate,
    ...(m.tombstone === true ? { isTombstone: true } : {}),
  };
}

/** @throws ProtoError `MalformedMessage` when the embedded Raft message is missing or invalid. */
export function raftMessageFromWire(m: nokv.transport.v1.RaftMessage.$Properties): RaftMessage {
  if (!m.message) throw new ProtoError('MalformedMessage', 'RaftMessage without a raft message');
  return {
    regionId: uint64FromWire(m.regionId),
    fromPeer: peerFromWire(m.fromPeer),
    toPeer: peerFromWire(m.toPeer),
    epoch: epochFromWire(m.regionEpoch),
    message: messageFromWire(m.message),
    startKey: m.startKey ?? new Uint8Array(0),
    endKey: m.endKey ?? new Uint8Array(0),
    hibernate: m.hibernate === true,
    ...(m.isTombstone === true ? { tombstone: true } : {}),
  };
}

export function encodeRaftMessageBatch(messages: readonly RaftMessage[]): Uint8Array {
  return pb.RaftMessageBatch.encode({ messages: messages.map(raftMessageToWire) }).finish();
}

/** @throws ProtoError `MalformedMessage` */
export function decodeRaftMessageBatch(bytes: Uint8Array): RaftMessage[] {
  let batch: nokv.transport.v1.RaftMessageBatch;
  try {
    batch = pb.RaftMessageBatch.decode(bytes);
  } catch (err) {
    throw new ProtoError('MalformedMessage', `cannot decode RaftMessageBatch: ${(err as Error).message}`);
  }
  return (batch.messages ?? []).map(raftMessageFromWire);
}
