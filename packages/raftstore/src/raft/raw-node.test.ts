import {
  ConfChangeTransition,
  ConfChangeType,
  type ConfChangeV2,
  decodeConfChangeV2,
  EntryType,
  type Message,
  MessageType,
  newMessage,
} from '@nokv/proto';
import { describe, expect, test } from 'vitest';
import type { RaftConfig } from './config.js';
import { type ProposalDropReason, RaftAssertionError, RaftError } from './errors.js';
import type { MemoryStorage } from './memory-storage.js';
import { StateType } from './raft.js';
import { RawNode, type Ready } from './raw-node.js';
import {
  entriesWithTerms,
  Network,
  newTestStorage,
  PLAIN_RAFT,
  type TestStorageOptions,
} from './testing/network.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

function newNode(
  id: bigint,
  voters: bigint[],
  opts: Partial<RaftConfig> & TestStorageOptions = {},
): { rn: RawNode; storage: MemoryStorage } {
  const { log, hardState, ...cfg } = opts;
  const storage = newTestStorage(voters, { log, hardState });
  return { rn: new RawNode({ ...PLAIN_RAFT, ...cfg, id, storage }), storage };
}

/** Handles one Ready the way an application must: persist, then advance. Returns it. */
function handle(rn: RawNode, storage: MemoryStorage): Ready {
  const rd = rn.ready();
  if (rd.entries.length > 0) storage.append(rd.entries);
  if (rd.hardState) storage.setHardState(rd.hardState);
  rn.advance();
  return rd;
}

/** Handles Readies until there are none; returns the messages they carried. */
function drain(rn: RawNode, storage: MemoryStorage): Message[] {
  const msgs: Message[] = [];
  while (rn.hasReady()) msgs.push(...handle(rn, storage).messages);
  return msgs;
}

/** Node 1 as leader of (1 2 3) at term 1, with its Readies handled. */
function leaderOfThree(opts: Partial<RaftConfig> = {}) {
  const n = newNode(1n, [1n, 2n, 3n], opts);
  n.rn.campaign();
  n.rn.step(newMessage({ type: MessageType.VoteResp, from: 2n, to: 1n, term: 1n }));
  expect(n.rn.raft.state).toBe(StateType.Leader);
  drain(n.rn, n.storage);
  return n;
}

function expectDropped(fn: () => void, reason: ProposalDropReason): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(RaftError);
  expect((err as RaftError).code).toBe('ProposalDropped');
  expect((err as RaftError).reason).toBe(reason);
}

const addLearner = (id: bigint): ConfChangeV2 => ({
  transition: ConfChangeTransition.Auto,
  changes: [{ type: ConfChangeType.AddLearnerNode, nodeId: id }],
  context: new Uint8Array(0),
});
const leaveJoint: ConfChangeV2 = {
  transition: ConfChangeTransition.Auto,
  changes: [],
  context: new Uint8Array(0),
};

describe('the Ready contract', () => {
  test('ready() twice without advance(), or advance() without ready(), is a broken invariant', () => {
    const { rn } = newNode(1n, [1n]);
    rn.campaign();
    rn.ready();
    expect(() => rn.ready()).toThrow(RaftAssertionError);
    rn.advance();
    expect(() => rn.advance()).toThrow(RaftAssertionError);
  });

  test('a single voter elects itself and commits its empty entry in one Ready', () => {
    const { rn, storage } = newNode(1n, [1n]);
    expect(rn.hasReady()).toBe(false);
    rn.campaign();
    expect(rn.hasReady()).toBe(true);
    const rd = handle(rn, storage);
    expect(rd.softState).toEqual({ lead: 1n, raftState: StateType.Leader });
    expect(rd.hardState).toEqual({ term: 1n, vote: 1n, commit: 1n });
    expect(rd.entries.map((e) => [e.index, e.term])).toEqual([[1n, 1n]]);
    expect(rd.committedEntries.map((e) => [e.index, e.term])).toEqual([[1n, 1n]]);
    expect(rd.messages).toEqual([]);
    expect(rd.mustSync).toBe(true);
    expect(rn.hasReady()).toBe(false);
  });

  test('mustSync: new entries or a new term/vote must be synced, a commit-only change need not', () => {
    const { rn, storage } = newNode(1n, [1n, 2n, 3n]);
    const entries = entriesWithTerms([1]).map((e) => ({ ...e, data: enc.encode('a') }));
    rn.step(newMessage({ type: MessageType.App, from: 2n, to: 1n, term: 1n, entries }));
    let rd = handle(rn, storage);
    expect(rd.hardState).toEqual({ term: 1n, vote: 0n, commit: 0n });
    expect(rd.entries).toHaveLength(1);
    expect(rd.mustSync).toBe(true);

    // Only the commit index moves.
    rn.step(newMessage({ type: MessageType.Heartbeat, from: 2n, to: 1n, term: 1n, commit: 1n }));
    rd = handle(rn, storage);
    expect(rd.hardState).toEqual({ term: 1n, vote: 0n, commit: 1n });
    expect(rd.entries).toEqual([]);
    expect(rd.committedEntries.map((e) => dec.decode(e.data))).toEqual(['a']);
    expect(rd.messages.map((m) => m.type)).toEqual([MessageType.HeartbeatResp]);
    expect(rd.mustSync).toBe(false);

    // Messages alone: nothing to persist.
    rn.step(newMessage({ type: MessageType.Heartbeat, from: 2n, to: 1n, term: 1n, commit: 1n }));
    rd = handle(rn, storage);
    expect(rd.hardState).toBeUndefined();
    expect(rd.mustSync).toBe(false);

    // A vote in a new term, without any entry.
    rn.step(newMessage({ type: MessageType.Vote, from: 3n, to: 1n, term: 2n, index: 1n, logTerm: 1n }));
    rd = handle(rn, storage);
    expect(rd.hardState).toEqual({ term: 2n, vote: 3n, commit: 1n });
    expect(rd.entries).toEqual([]);
    expect(rd.mustSync).toBe(true);
  });

  test('entries become stable on advance and are never handed out twice, even if more arrive meanwhile', () => {
    const { rn, storage } = newNode(1n, [1n]);
    rn.campaign();
    handle(rn, storage);
    rn.propose(enc.encode('a'));
    const first = rn.ready();
    expect(first.entries.map((e) => dec.decode(e.data))).toEqual(['a']);
    expect(first.committedEntries.map((e) => dec.decode(e.data))).toEqual(['a']);
    // A proposal between ready() and advance() belongs to the next Ready.
    rn.propose(enc.encode('b'));
    storage.append(first.entries);
    rn.advance();
    expect(rn.raft.raftLog.unstableEntries().map((e) => dec.decode(e.data))).toEqual(['b']);
    const second = handle(rn, storage);
    expect(second.entries.map((e) => dec.decode(e.data))).toEqual(['b']);
    expect(second.committedEntries.map((e) => dec.decode(e.data))).toEqual(['b']);
    expect(rn.raft.raftLog.unstableEntries()).toEqual([]);
    expect(rn.raft.raftLog.applied).toBe(3n);
    expect(rn.hasReady()).toBe(false);
    // The log now reads from storage.
    expect(rn.raft.raftLog.allEntries().map((e) => dec.decode(e.data))).toEqual(['', 'a', 'b']);
  });

  test('softState is reported only when it changes', () => {
    const { rn, storage } = newNode(1n, [1n, 2n, 3n]);
    rn.step(newMessage({ type: MessageType.Heartbeat, from: 2n, to: 1n, term: 1n }));
    expect(handle(rn, storage).softState).toEqual({ lead: 2n, raftState: StateType.Follower });
    rn.step(newMessage({ type: MessageType.Heartbeat, from: 2n, to: 1n, term: 1n }));
    expect(handle(rn, storage).softState).toBeUndefined();
  });

  test('readIndex answers arrive as readStates', () => {
    const { rn, storage } = newNode(1n, [1n]);
    rn.campaign();
    handle(rn, storage);
    rn.readIndex(enc.encode('ctx'));
    const rd = handle(rn, storage);
    expect(rd.readStates).toEqual([{ index: 1n, requestCtx: enc.encode('ctx') }]);
    expect(rn.hasReady()).toBe(false);
  });
});

describe('dropped proposals', () => {
  test('a candidate, or a follower that knows no leader, has nowhere to send a proposal', () => {
    const { rn } = newNode(1n, [1n, 2n, 3n]);
    expectDropped(() => rn.propose(enc.encode('x')), 'NoLeader');
    rn.campaign();
    expect(rn.raft.state).toBe(StateType.Candidate);
    expectDropped(() => rn.propose(enc.encode('x')), 'NoLeader');
    expectDropped(() => rn.proposeConfChange(addLearner(4n)), 'NoLeader');
  });

  test('a follower forwards proposals to the leader unless forwarding is disabled', () => {
    for (const disableProposalForwarding of [false, true]) {
      const { rn, storage } = newNode(1n, [1n, 2n, 3n], { disableProposalForwarding });
      rn.step(newMessage({ type: MessageType.Heartbeat, from: 2n, to: 1n, term: 1n }));
      drain(rn, storage);
      if (disableProposalForwarding) {
        expectDropped(() => rn.propose(enc.encode('x')), 'ForwardingDisabled');
        expect(rn.hasReady()).toBe(false);
      } else {
        rn.propose(enc.encode('x'));
        const [fwd] = drain(rn, storage);
        expect([fwd!.type, fwd!.to, fwd!.term, dec.decode(fwd!.entries[0]!.data)]).toEqual([
          MessageType.Prop,
          2n,
          0n,
          'x',
        ]);
      }
    }
  });

  test('a leader refuses proposals while transferring leadership', () => {
    const { rn } = leaderOfThree();
    rn.transferLeader(3n);
    expect(rn.raft.leadTransferee).toBe(3n);
    expectDropped(() => rn.propose(enc.encode('x')), 'TransferInProgress');
  });

  test('a leader accepts one membership change at a time, and only valid ones', () => {
    const { rn, storage } = leaderOfThree();
    expectDropped(() => rn.proposeConfChange(leaveJoint), 'InvalidConfChange');
    rn.proposeConfChange(addLearner(4n));
    expectDropped(() => rn.proposeConfChange(addLearner(5n)), 'ConfChangePending');
    // Ordinary proposals are unaffected.
    rn.propose(enc.encode('x'));
    // Once the change is committed and applied, the next one is accepted.
    const last = rn.raft.raftLog.lastIndex();
    for (const from of [2n, 3n]) {
      rn.step(newMessage({ type: MessageType.AppResp, from, to: 1n, term: 1n, index: last }));
    }
    while (rn.hasReady()) {
      const rd = rn.ready();
      storage.append(rd.entries);
      for (const e of rd.committedEntries) {
        if (e.type === EntryType.ConfChangeV2) rn.applyConfChange(decodeConfChangeV2(e.data));
      }
      rn.advance();
    }
    expect(rn.raft.trk.config.toString()).toBe('voters=(1 2 3) learners=(4)');
    rn.proposeConfChange(addLearner(5n));
  });

  test('a leader drops proposals beyond maxUncommittedEntriesSize until entries are applied', () => {
    const { rn, storage } = leaderOfThree({ maxUncommittedEntriesSize: 10 });
    rn.propose(new Uint8Array(8));
    expectDropped(() => rn.propose(new Uint8Array(8)), 'UncommittedSizeLimit');
    rn.propose(new Uint8Array(0)); // empty proposals are always accepted
    const last = rn.raft.raftLog.lastIndex();
    rn.step(newMessage({ type: MessageType.AppResp, from: 2n, to: 1n, term: 1n, index: last }));
    expect(rn.raft.raftLog.committed).toBe(last);
    drain(rn, storage);
    rn.propose(new Uint8Array(8));
    // With nothing uncommitted, one proposal of any size gets through.
    const fresh = leaderOfThree({ maxUncommittedEntriesSize: 10 });
    fresh.rn.propose(new Uint8Array(100));
    expectDropped(() => fresh.rn.propose(new Uint8Array(1)), 'UncommittedSizeLimit');
  });

  test('a forwarded proposal the leader cannot take is dropped silently', () => {
    const { rn } = newNode(1n, [1n, 2n, 3n]);
    rn.campaign();
    expect(() =>
      rn.step(
        newMessage({
          type: MessageType.Prop,
          from: 2n,
          to: 1n,
          entries: entriesWithTerms([0]),
        }),
      ),
    ).not.toThrow();
  });
});

describe('RawNode.step filtering', () => {
  test.each([
    MessageType.Hup,
    MessageType.Beat,
    MessageType.Unreachable,
    MessageType.SnapStatus,
    MessageType.CheckQuorum,
  ])('refuses local message type %i from the network', (type) => {
    const { rn } = newNode(1n, [1n, 2n, 3n]);
    let err: unknown;
    try {
      rn.step(newMessage({ type, from: 2n, to: 1n, term: 1n }));
    } catch (e) {
      err = e;
    }
    expect((err as RaftError).code).toBe('StepLocalMsg');
    expect(rn.raft.state).toBe(StateType.Follower);
    expect(rn.raft.term).toBe(0n);
  });

  test.each([MessageType.AppResp, MessageType.VoteResp, MessageType.HeartbeatResp, MessageType.PreVoteResp])(
    'refuses response type %i from a peer it does not track',
    (type) => {
      const { rn } = newNode(1n, [1n, 2n, 3n]);
      rn.campaign();
      let err: unknown;
      try {
        rn.step(newMessage({ type, from: 9n, to: 1n, term: 1n }));
      } catch (e) {
        err = e;
      }
      expect((err as RaftError).code).toBe('StepPeerNotFound');
      expect(rn.raft.state).toBe(StateType.Candidate);
    },
  );

  test('requests from an unknown peer are stepped (a new leader may not be in our config yet)', () => {
    const { rn } = newNode(1n, [1n, 2n, 3n]);
    rn.step(newMessage({ type: MessageType.Heartbeat, from: 9n, to: 1n, term: 3n }));
    expect(rn.raft.term).toBe(3n);
    expect(rn.leader()).toBe(9n);
  });
});

describe('restart and status', () => {
  test('a restarted node recovers term, vote, commit and log from storage', () => {
    const net = new Network([1n, 2n, 3n]);
    net.elect(1n);
    for (const p of ['a', 'b', 'c']) net.node(1n).rawNode.propose(enc.encode(p));
    net.stabilize();
    for (const id of [1n, 2n]) {
      const before = net.raft(id);
      const node = net.node(id);
      const rn = new RawNode({ ...PLAIN_RAFT, id, storage: node.storage });
      const r = rn.raft;
      expect([r.term, r.vote, r.raftLog.committed]).toEqual([
        before.term,
        before.vote,
        before.raftLog.committed,
      ]);
      expect(r.raftLog.allEntries()).toEqual(before.raftLog.allEntries());
      expect(r.state).toBe(StateType.Follower);
      expect(r.lead).toBe(0n);
      expect(r.trk.config.toString()).toBe('voters=(1 2 3)');
      // Without `applied`, committed entries are handed out again from the start.
      const rd = rn.ready();
      expect(rd.committedEntries.map((e) => e.index)).toEqual([1n, 2n, 3n, 4n]);
      expect(rd.hardState).toBeUndefined(); // nothing changed since it was persisted
    }
  });

  test('`applied` skips entries the application already applied', () => {
    const hardState = { term: 1n, vote: 0n, commit: 5n };
    const log = [1, 1, 1, 1, 1];
    expect(
      newNode(1n, [1n], { log, hardState })
        .rn.ready()
        .committedEntries.map((e) => e.index),
    ).toEqual([1n, 2n, 3n, 4n, 5n]);
    const { rn } = newNode(1n, [1n], { log, hardState, applied: 3n });
    expect(rn.ready().committedEntries.map((e) => e.index)).toEqual([4n, 5n]);
    rn.advance();
    expect(rn.status().applied).toBe(5n);
    // An applied index beyond the commit index is a broken invariant.
    expect(() => newNode(1n, [1n], { log, hardState, applied: 6n })).toThrow(RaftAssertionError);
  });

  test('status reports progress only on the leader', () => {
    const follower = newNode(2n, [1n, 2n, 3n]).rn.status();
    expect(follower.progress).toBeUndefined();
    expect(follower.config).toBe('voters=(1 2 3)');
    expect(follower.softState.raftState).toBe(StateType.Follower);

    const { rn } = leaderOfThree();
    rn.step(newMessage({ type: MessageType.AppResp, from: 2n, to: 1n, term: 1n, index: 1n }));
    const s = rn.status();
    expect(s.softState).toEqual({ lead: 1n, raftState: StateType.Leader });
    expect(s.hardState).toEqual({ term: 1n, vote: 1n, commit: 1n });
    expect([...s.progress!.keys()]).toEqual([1n, 2n, 3n]);
    expect(s.progress!.get(1n)!.match).toBe(1n);
    expect(s.progress!.get(2n)).toMatchObject({
      match: 1n,
      next: 2n,
      state: 'StateReplicate',
      recentActive: true,
    });
    expect(s.progress!.get(3n)).toMatchObject({ match: 0n, state: 'StateProbe', paused: true });
    expect(s.lastIndex).toBe(1n);
    expect(s.leadTransferee).toBe(0n);
  });
});
