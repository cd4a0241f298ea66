import { nokv } from '@nokv/proto/gen/nokv';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { ProtoError } from './errors.js';
import {
  ConfChangeTransition,
  ConfChangeType,
  type ConfChangeV2,
  type ConfState,
  decodeConfChangeV2,
  decodeConfState,
  decodeEntry,
  decodeHardState,
  decodeMessage,
  decodeSnapshot,
  type Entry,
  EntryType,
  encodeConfChangeV2,
  encodeConfState,
  encodeEntry,
  encodeHardState,
  encodeMessage,
  encodeSnapshot,
  type Message,
  MessageType,
  messageTypeName,
  newMessage,
  type Snapshot,
} from './raft.js';

const u64 = fc.oneof(
  fc.bigInt({ min: 0n, max: 1000n }),
  fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  fc.constant((1n << 64n) - 1n),
  fc.constant(1n << 53n),
);
const bytes = fc.uint8Array({ maxLength: 40 });
const entry: fc.Arbitrary<Entry> = fc.record({
  term: u64,
  index: u64,
  type: fc.constantFrom(...Object.values(EntryType)),
  data: bytes,
});
const confState: fc.Arbitrary<ConfState> = fc.record({
  voters: fc.array(u64, { maxLength: 5 }),
  learners: fc.array(u64, { maxLength: 3 }),
  votersOutgoing: fc.array(u64, { maxLength: 3 }),
  learnersNext: fc.array(u64, { maxLength: 3 }),
  autoLeave: fc.boolean(),
});
const snapshot: fc.Arbitrary<Snapshot> = fc.record({
  data: bytes,
  metadata: fc.record({ confState, index: u64, term: u64 }),
});
const message: fc.Arbitrary<Message> = fc
  .record({
    type: fc.constantFrom(...Object.values(MessageType)),
    to: u64,
    from: u64,
    term: u64,
    logTerm: u64,
    index: u64,
    entries: fc.array(entry, { maxLength: 4 }),
    commit: u64,
    snapshot: fc.option(snapshot, { nil: undefined }),
    reject: fc.boolean(),
    rejectHint: u64,
    context: bytes,
  })
  .map((m) => {
    const { snapshot: snap, ...rest } = m;
    return snap === undefined ? rest : { ...rest, snapshot: snap };
  });

/** Byte arrays compare by content whatever their class (protobufjs decodes to Buffer in Node). */
function normalize(value: unknown): unknown {
  if (value instanceof Uint8Array) return Array.from(value);
  if (Array.isArray(value)) return value.map(normalize);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalize(v)]));
  }
  return value;
}

describe('raft wire codecs', () => {
  test('every message round-trips exactly, 64-bit values included', () => {
    fc.assert(
      fc.property(message, (m) => {
        expect(normalize(decodeMessage(encodeMessage(m)))).toEqual(normalize(m));
      }),
      { numRuns: 300 },
    );
  });

  test('entries, snapshots, conf states, hard states and conf changes round-trip', () => {
    fc.assert(
      fc.property(entry, snapshot, confState, u64, u64, u64, (e, s, c, a, b, d) => {
        expect(normalize(decodeEntry(encodeEntry(e)))).toEqual(normalize(e));
        expect(normalize(decodeSnapshot(encodeSnapshot(s)))).toEqual(normalize(s));
        expect(normalize(decodeConfState(encodeConfState(c)))).toEqual(normalize(c));
        expect(decodeHardState(encodeHardState({ term: a, vote: b, commit: d }))).toEqual({
          term: a,
          vote: b,
          commit: d,
        });
        const cc: ConfChangeV2 = {
          transition: ConfChangeTransition.JointExplicit,
          changes: [
            { type: ConfChangeType.AddLearnerNode, nodeId: a },
            { type: ConfChangeType.RemoveNode, nodeId: b },
          ],
          context: new Uint8Array([1, 2, 3]),
        };
        expect(normalize(decodeConfChangeV2(encodeConfChangeV2(cc)))).toEqual(normalize(cc));
      }),
      { numRuns: 200 },
    );
  });

  test('a message without a snapshot decodes without one', () => {
    const m = decodeMessage(encodeMessage(newMessage({ type: MessageType.App, to: 2n, from: 1n })));
    expect(m.snapshot).toBeUndefined();
    expect(m.entries).toEqual([]);
  });

  test('values that do not fit a uint64 are refused with a typed error naming the field', () => {
    const tooBig = newMessage({ type: MessageType.App, term: 1n << 64n });
    expect(() => encodeMessage(tooBig)).toThrow(ProtoError);
    expect(() => encodeMessage(tooBig)).toThrow(/Message\.term = 18446744073709551616/);
    const negative = newMessage({ type: MessageType.App, index: -1n });
    try {
      encodeMessage(negative);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ProtoError);
      expect((err as ProtoError).code).toBe('ValueOutOfRange');
    }
    expect(() =>
      encodeMessage({ ...newMessage({ type: MessageType.App }), type: 99 as MessageType }),
    ).toThrow(/Message\.type = 99/);
  });

  test('garbage and truncated bytes are MalformedMessage, never a crash or a partial message', () => {
    const good = encodeMessage(
      newMessage({
        type: MessageType.App,
        to: 2n,
        from: 1n,
        entries: [{ term: 1n, index: 1n, type: 0, data: new Uint8Array(30) }],
      }),
    );
    for (let cut = 1; cut < good.length; cut++) {
      let decoded: Message | undefined;
      try {
        decoded = decodeMessage(good.subarray(0, cut));
      } catch (err) {
        expect(err).toBeInstanceOf(ProtoError);
        expect((err as ProtoError).code).toBe('MalformedMessage');
        continue;
      }
      // A cut at a field boundary is a valid shorter message; it must never claim the entry.
      expect(decoded.entries.length).toBe(0);
    }
    expect(() => decodeMessage(new Uint8Array([0xff, 0xff, 0xff]))).toThrow(ProtoError);
    // An unknown message type (field 1 = 77) is refused rather than handed to Raft.
    expect(() => decodeMessage(new Uint8Array([0x08, 77]))).toThrow(/Message\.type = 77/);
  });

  test('our enum values are the generated ones', () => {
    const gen = nokv.raft.v1;
    expect(MessageType.Hup).toBe(gen.MessageType.MSG_HUP);
    expect(MessageType.AppResp).toBe(gen.MessageType.MSG_APP_RESP);
    expect(MessageType.PreVoteResp).toBe(gen.MessageType.MSG_PRE_VOTE_RESP);
    expect(MessageType.ReadIndexResp).toBe(gen.MessageType.MSG_READ_INDEX_RESP);
    expect(Object.keys(MessageType).length).toBe(Object.keys(gen.MessageType).length);
    expect(EntryType.ConfChangeV2).toBe(gen.EntryType.ENTRY_TYPE_CONF_CHANGE_V2);
    expect(ConfChangeType.AddLearnerNode).toBe(gen.ConfChangeType.CONF_CHANGE_ADD_LEARNER_NODE);
    expect(ConfChangeTransition.JointExplicit).toBe(
      gen.ConfChangeTransition.CONF_CHANGE_TRANSITION_JOINT_EXPLICIT,
    );
    expect(messageTypeName(MessageType.AppResp)).toBe('MsgAppResp');
  });
});
