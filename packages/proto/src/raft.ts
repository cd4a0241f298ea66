import { nokv } from '@nokv/proto/gen/nokv';
import type Long from 'long';
import { ProtoError } from './errors.js';
import { uint64FromWire, uint64ToWire } from './uint64.js';

// The Raft library works on these plain, bigint-typed views of nokv.raft.v1 (raft.proto); the
// codecs below are the only place they meet protobufjs, so ids never pass through a double.

const pb = nokv.raft.v1;

/** Kinds of log entry (raft.proto `EntryType`). */
export const EntryType = { Normal: 0, ConfChange: 1, ConfChangeV2: 2 } as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

/** Raft message kinds (raft.proto `MessageType`). Local-only kinds never cross the wire. */
export const MessageType = {
  Hup: 0,
  Beat: 1,
  Prop: 2,
  App: 3,
  AppResp: 4,
  Vote: 5,
  VoteResp: 6,
  Snap: 7,
  Heartbeat: 8,
  HeartbeatResp: 9,
  Unreachable: 10,
  SnapStatus: 11,
  CheckQuorum: 12,
  TransferLeader: 13,
  TimeoutNow: 14,
  ReadIndex: 15,
  ReadIndexResp: 16,
  PreVote: 17,
  PreVoteResp: 18,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

const messageTypeNames = new Map<number, string>(
  Object.entries(MessageType).map(([name, value]) => [value, `Msg${name}`]),
);

/** `MsgApp`, `MsgVoteResp`, ...: the names scenario tests and logs print. */
export function messageTypeName(type: MessageType): string {
  return messageTypeNames.get(type) ?? `MsgUnknown(${type})`;
}

/** Membership change kinds (raft.proto `ConfChangeType`). */
export const ConfChangeType = { AddNode: 0, RemoveNode: 1, UpdateNode: 2, AddLearnerNode: 3 } as const;
export type ConfChangeType = (typeof ConfChangeType)[keyof typeof ConfChangeType];

/** How a ConfChangeV2 enters and leaves a joint configuration (raft.proto `ConfChangeTransition`). */
export const ConfChangeTransition = { Auto: 0, JointImplicit: 1, JointExplicit: 2 } as const;
export type ConfChangeTransition = (typeof ConfChangeTransition)[keyof typeof ConfChangeTransition];

export interface Entry {
  term: bigint;
  index: bigint;
  type: EntryType;
  data: Uint8Array;
}

export interface ConfState {
  voters: bigint[];
  learners: bigint[];
  votersOutgoing: bigint[];
  learnersNext: bigint[];
  autoLeave: boolean;
}

export interface SnapshotMetadata {
  confState: ConfState;
  index: bigint;
  term: bigint;
}

export interface Snapshot {
  data: Uint8Array;
  metadata: SnapshotMetadata;
}

export interface Message {
  type: MessageType;
  to: bigint;
  from: bigint;
  term: bigint;
  logTerm: bigint;
  index: bigint;
  entries: Entry[];
  commit: bigint;
  snapshot?: Snapshot;
  reject: boolean;
  rejectHint: bigint;
  context: Uint8Array;
}

export interface HardState {
  term: bigint;
  vote: bigint;
  commit: bigint;
}

export interface ConfChangeSingle {
  type: ConfChangeType;
  nodeId: bigint;
}

export interface ConfChangeV2 {
  transition: ConfChangeTransition;
  changes: ConfChangeSingle[];
  context: Uint8Array;
}

const EMPTY_BYTES = new Uint8Array(0);

/** A message with every field defaulted except those given. */
export function newMessage(fields: Partial<Message> & Pick<Message, 'type'>): Message {
  return {
    to: 0n,
    from: 0n,
    term: 0n,
    logTerm: 0n,
    index: 0n,
    entries: [],
    commit: 0n,
    reject: false,
    rejectHint: 0n,
    context: EMPTY_BYTES,
    ...fields,
  };
}

/** An empty ConfState. */
export function emptyConfState(): ConfState {
  return { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
}

/** An empty snapshot (index 0), the "no snapshot" value of Storage.snapshot(). */
export function emptySnapshot(): Snapshot {
  return { data: EMPTY_BYTES, metadata: { confState: emptyConfState(), index: 0n, term: 0n } };
}

// --- encoding ---------------------------------------------------------------------------------

function ids(values: bigint[], field: string) {
  return values.map((v) => uint64ToWire(v, field));
}

function entryToWire(e: Entry): nokv.raft.v1.Entry.$Properties {
  return {
    term: uint64ToWire(e.term, 'Entry.term'),
    index: uint64ToWire(e.index, 'Entry.index'),
    type: checkEnum(e.type, 2, 'Entry.type'),
    data: e.data,
  };
}

function confStateToWire(c: ConfState): nokv.raft.v1.ConfState.$Properties {
  return {
    voters: ids(c.voters, 'ConfState.voters'),
    learners: ids(c.learners, 'ConfState.learners'),
    votersOutgoing: ids(c.votersOutgoing, 'ConfState.votersOutgoing'),
    learnersNext: ids(c.learnersNext, 'ConfState.learnersNext'),
    autoLeave: c.autoLeave,
  };
}

function snapshotToWire(s: Snapshot): nokv.raft.v1.Snapshot.$Properties {
  return {
    data: s.data,
    metadata: {
      confState: confStateToWire(s.metadata.confState),
      index: uint64ToWire(s.metadata.index, 'SnapshotMetadata.index'),
      term: uint64ToWire(s.metadata.term, 'SnapshotMetadata.term'),
    },
  };
}

/** Encodes a log entry. @throws ProtoError `ValueOutOfRange` for a value that does not fit its field. */
export function encodeEntry(e: Entry): Uint8Array {
  return pb.Entry.encode(entryToWire(e)).finish();
}

/** Encodes a Raft message. @throws ProtoError `ValueOutOfRange` for a value that does not fit its field. */
export function encodeMessage(m: Message): Uint8Array {
  return pb.Message.encode(messageToWire(m)).finish();
}

/** The protobufjs form of a Raft message, for embedding in other messages. */
export function messageToWire(m: Message): nokv.raft.v1.Message.$Properties {
  return {
    type: checkEnum(m.type, 18, 'Message.type'),
    to: uint64ToWire(m.to, 'Message.to'),
    from: uint64ToWire(m.from, 'Message.from'),
    term: uint64ToWire(m.term, 'Message.term'),
    logTerm: uint64ToWire(m.logTerm, 'Message.logTerm'),
    index: uint64ToWire(m.index, 'Message.index'),
    entries: m.entries.map(entryToWire),
    commit: uint64ToWire(m.commit, 'Message.commit'),
    snapshot: m.snapshot === undefined ? null : snapshotToWire(m.snapshot),
    reject: m.reject,
    rejectHint: uint64ToWire(m.rejectHint, 'Message.rejectHint'),
    context: m.context,
  };
}

/** Encodes a hard state. @throws ProtoError `ValueOutOfRange` for a value that does not fit its field. */
export function encodeHardState(h: HardState): Uint8Array {
  return pb.HardState.encode({
    term: uint64ToWire(h.term, 'HardState.term'),
    vote: uint64ToWire(h.vote, 'HardState.vote'),
    commit: uint64ToWire(h.commit, 'HardState.commit'),
  }).finish();
}

/** Encodes a snapshot. @throws ProtoError `ValueOutOfRange` for a value that does not fit its field. */
export function encodeSnapshot(s: Snapshot): Uint8Array {
  return pb.Snapshot.encode(snapshotToWire(s)).finish();
}

/** Encodes a ConfState. @throws ProtoError `ValueOutOfRange` for a value that does not fit its field. */
export function encodeConfState(c: ConfState): Uint8Array {
  return pb.ConfState.encode(confStateToWire(c)).finish();
}

/** Encodes a membership change. @throws ProtoError `ValueOutOfRange` for a value that does not fit its field. */
export function encodeConfChangeV2(cc: ConfChangeV2): Uint8Array {
  return pb.ConfChangeV2.encode({
    transition: checkEnum(cc.transition, 2, 'ConfChangeV2.transition'),
    changes: cc.changes.map((c) => ({
      type: checkEnum(c.type, 3, 'ConfChangeSingle.type'),
      nodeId: uint64ToWire(c.nodeId, 'ConfChangeSingle.nodeId'),
    })),
    context: cc.context,
  }).finish();
}

// --- decoding ---------------------------------------------------------------------------------

function checkEnum<T extends number>(value: T, max: number, field: string): T {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new ProtoError('ValueOutOfRange', `${field} = ${value} is not a known value (0..${max})`);
  }
  return value;
}

function decodeEnum<T extends number>(value: number | null | undefined, max: number, field: string): T {
  const v = value ?? 0;
  if (!Number.isInteger(v) || v < 0 || v > max) {
    throw new ProtoError('MalformedMessage', `${field} = ${v} is not a known value (0..${max})`);
  }
  return v as T;
}

function bytes(value: Uint8Array | null | undefined): Uint8Array {
  return value ?? EMPTY_BYTES;
}

function idsFromWire(values: readonly Long[] | null | undefined): bigint[] {
  return (values ?? []).map(uint64FromWire);
}

function entryFromWire(e: nokv.raft.v1.Entry.$Properties): Entry {
  return {
    term: uint64FromWire(e.term),
    index: uint64FromWire(e.index),
    type: decodeEnum<EntryType>(e.type, 2, 'Entry.type'),
    data: bytes(e.data),
  };
}

function confStateFromWire(c: nokv.raft.v1.ConfState.$Properties | null | undefined): ConfState {
  if (!c) return emptyConfState();
  return {
    voters: idsFromWire(c.voters),
    learners: idsFromWire(c.learners),
    votersOutgoing: idsFromWire(c.votersOutgoing),
    learnersNext: idsFromWire(c.learnersNext),
    autoLeave: c.autoLeave ?? false,
  };
}

function snapshotFromWire(s: nokv.raft.v1.Snapshot.$Properties): Snapshot {
  const md = s.metadata;
  return {
    data: bytes(s.data),
    metadata: {
      confState: confStateFromWire(md?.confState),
      index: uint64FromWire(md?.index),
      term: uint64FromWire(md?.term),
    },
  };
}

function decodeWith<T>(what: string, buf: Uint8Array, decode: (b: Uint8Array) => T): T {
  try {
    return decode(buf);
  } catch (err) {
    if (err instanceof ProtoError) throw err;
    const reason = err instanceof Error ? err.message : String(err);
    throw new ProtoError('MalformedMessage', `cannot decode ${what} (${buf.length} bytes): ${reason}`, {
      cause: err,
    });
  }
}

/** Decodes a log entry. @throws ProtoError `MalformedMessage` if the bytes are not one. */
export function decodeEntry(buf: Uint8Array): Entry {
  return decodeWith('nokv.raft.v1.Entry', buf, (b) => entryFromWire(pb.Entry.decode(b)));
}

/** Decodes a Raft message. @throws ProtoError `MalformedMessage` if the bytes are not one. */
export function decodeMessage(buf: Uint8Array): Message {
  return decodeWith('nokv.raft.v1.Message', buf, (b) => messageFromWire(pb.Message.decode(b)));
}

/**
 * The bigint view of a decoded Raft message (embedded in another message).
 * @throws ProtoError `MalformedMessage` for an unknown message or entry type.
 */
export function messageFromWire(m: nokv.raft.v1.Message.$Properties): Message {
  const out: Message = {
    type: decodeEnum<MessageType>(m.type, 18, 'Message.type'),
    to: uint64FromWire(m.to),
    from: uint64FromWire(m.from),
    term: uint64FromWire(m.term),
    logTerm: uint64FromWire(m.logTerm),
    index: uint64FromWire(m.index),
    entries: (m.entries ?? []).map(entryFromWire),
    commit: uint64FromWire(m.commit),
    reject: m.reject ?? false,
    rejectHint: uint64FromWire(m.rejectHint),
    context: bytes(m.context),
  };
  if (m.snapshot) out.snapshot = snapshotFromWire(m.snapshot);
  return out;
}

/** Decodes a hard state. @throws ProtoError `MalformedMessage` if the bytes are not one. */
export function decodeHardState(buf: Uint8Array): HardState {
  return decodeWith('nokv.raft.v1.HardState', buf, (b) => {
    const h = pb.HardState.decode(b);
    return { term: uint64FromWire(h.term), vote: uint64FromWire(h.vote), commit: uint64FromWire(h.commit) };
  });
}

/** Decodes a snapshot. @throws ProtoError `MalformedMessage` if the bytes are not one. */
export function decodeSnapshot(buf: Uint8Array): Snapshot {
  return decodeWith('nokv.raft.v1.Snapshot', buf, (b) => snapshotFromWire(pb.Snapshot.decode(b)));
}

/** Decodes a ConfState. @throws ProtoError `MalformedMessage` if the bytes are not one. */
export function decodeConfState(buf: Uint8Array): ConfState {
  return decodeWith('nokv.raft.v1.ConfState', buf, (b) => confStateFromWire(pb.ConfState.decode(b)));
}

/** Decodes a membership change. @throws ProtoError `MalformedMessage` if the bytes are not one. */
export function decodeConfChangeV2(buf: Uint8Array): ConfChangeV2 {
  return decodeWith('nokv.raft.v1.ConfChangeV2', buf, (b) => {
    const cc = pb.ConfChangeV2.decode(b);
    return {
      transition: decodeEnum<ConfChangeTransition>(cc.transition, 2, 'ConfChangeV2.transition'),
      changes: (cc.changes ?? []).map((c) => ({
        type: decodeEnum<ConfChangeType>(c.type, 3, 'ConfChangeSingle.type'),
        nodeId: uint64FromWire(c.nodeId),
      })),
      context: bytes(cc.context),
    };
  });
}
