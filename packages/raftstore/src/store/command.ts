import {
  epochFromWire,
  epochToWire,
  nokv,
  peerFromWire,
  peerToWire,
  type RegionEpoch,
  type RegionPeer,
  uint64FromWire,
  uint64ToWire,
} from '@nokv/proto';
import { StoreError } from './errors.js';

// The payload of a normal Raft entry (nokv.cmd.v1.RaftCmdRequest) and of a membership change's
// context (ConfChangeContext), as bigint views. Entries are framed with a one-byte tag so that a
// payload of another kind (or garbage) is recognised at apply instead of misread.

const CMD_TAG = 0xce;

export type WriteRequest =
  | { op: 'put'; key: Uint8Array; value: Uint8Array }
  | { op: 'delete'; key: Uint8Array };

export interface RaftCommand {
  regionId: bigint;
  epoch: RegionEpoch;
  peerId: bigint;
  requests: WriteRequest[];
}

export function encodeCommand(cmd: RaftCommand): Uint8Array {
  const body = nokv.cmd.v1.RaftCmdRequest.encode({
    header: {
      regionId: uint64ToWire(cmd.regionId, 'region_id'),
      regionEpoch: epochToWire(cmd.epoch),
      peerId: uint64ToWire(cmd.peerId, 'peer_id'),
    },
    requests: cmd.requests.map((r) =>
      r.op === 'put' ? { put: { key: r.key, value: r.value } } : { delete: { key: r.key } },
    ),
  }).finish();
  const out = new Uint8Array(body.length + 1);
  out[0] = CMD_TAG;
  out.set(body, 1);
  return out;
}

/** @throws StoreError `Internal` for an entry that is not a framed command (a bug or corruption). */
export function decodeCommand(data: Uint8Array): RaftCommand {
  if (data.length === 0 || data[0] !== CMD_TAG) {
    throw new StoreError('Internal', `log entry is not a framed command (first byte ${data[0] ?? 'none'})`);
  }
  let m: nokv.cmd.v1.RaftCmdRequest;
  try {
    m = nokv.cmd.v1.RaftCmdRequest.decode(data.subarray(1));
  } catch (err) {
    throw new StoreError('Internal', `log entry does not decode as a command: ${(err as Error).message}`);
  }
  const requests: WriteRequest[] = [];
  for (const r of m.requests ?? []) {
    if (r.put)
      requests.push({
        op: 'put',
        key: r.put.key ?? new Uint8Array(0),
        value: r.put.value ?? new Uint8Array(0),
      });
    else if (r.delete) requests.push({ op: 'delete', key: r.delete.key ?? new Uint8Array(0) });
    else throw new StoreError('Internal', 'command holds a request of no known kind');
  }
  return {
    regionId: uint64FromWire(m.header?.regionId),
    epoch: epochFromWire(m.header?.regionEpoch),
    peerId: uint64FromWire(m.header?.peerId),
    requests,
  };
}

/** The peers a membership change adds (with their stores), carried in ConfChangeV2.context. */
export function encodeConfChangeContext(peers: RegionPeer[]): Uint8Array {
  return nokv.cmd.v1.ConfChangeContext.encode({ peers: peers.map(peerToWire) }).finish();
}

export function decodeConfChangeContext(data: Uint8Array): RegionPeer[] {
  try {
    return (nokv.cmd.v1.ConfChangeContext.decode(data).peers ?? []).map(peerFromWire);
  } catch (err) {
    throw new StoreError('Internal', `conf change context does not decode: ${(err as Error).message}`);
  }
}
