import { nokv, type RaftMessage, raftMessageToWire } from '@nokv/proto';

// Wire helpers of the transport. Messages are encoded once, when queued (which also gives their
// exact size for the queue's byte limit); a batch is those encodings framed as the repeated field
// `RaftMessageBatch.messages = 1`, so batching never re-encodes.

const pb = nokv.transport.v1;

/** One RaftMessage, encoded. @throws ProtoError `ValueOutOfRange` */
export function encodeRaftMessage(msg: RaftMessage): Uint8Array {
  return pb.RaftMessage.encode(raftMessageToWire(msg)).finish();
}

function varintLength(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

function writeVarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

/** Bytes one encoded message takes inside a batch. */
export function framedLength(encoded: Uint8Array): number {
  return 1 + varintLength(encoded.length) + encoded.length;
}

/** A RaftMessageBatch made of already-encoded RaftMessages. */
export function frameBatch(encoded: readonly Uint8Array[]): Buffer {
  let total = 0;
  for (const e of encoded) total += framedLength(e);
  const buf = Buffer.allocUnsafe(total);
  let pos = 0;
  for (const e of encoded) {
    buf[pos++] = 0x0a; // field 1, wire type 2 (length-delimited)
    pos = writeVarint(buf, pos, e.length);
    buf.set(e, pos);
    pos += e.length;
  }
  return buf;
}

const EMPTY = new Uint8Array(0);

/** The MsgSnap message as the header carries it: the snapshot's data left empty. */
export function withoutSnapshotData(msg: RaftMessage): RaftMessage {
  const snap = msg.message.snapshot;
  if (!snap) return msg;
  return { ...msg, message: { ...msg.message, snapshot: { ...snap, data: EMPTY } } };
}
