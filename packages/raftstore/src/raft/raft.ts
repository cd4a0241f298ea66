import {
  ConfChangeTransition,
  type ConfChangeV2,
  type ConfState,
  decodeConfChangeV2,
  type Entry,
  EntryType,
  encodeConfChangeV2,
  type HardState,
  type Message,
  MessageType,
  messageTypeName,
  newMessage,
  type Snapshot,
} from '@nokv/proto';
import { Changer, type ConfigAndProgress } from './confchange/changer.js';
import { enterJoint, isLeaveJoint } from './confchange/conf-change-v2.js';
import { restoreConfig } from './confchange/restore.js';
import { type RaftConfig, type ResolvedRaftConfig, resolveConfig } from './config.js';
import { describeConfState, describeMessage } from './describe.js';
import { fail, invariant, RaftError } from './errors.js';
import { RaftLog } from './log/raft-log.js';
import { type RaftLogger, silentLogger } from './logger.js';
import { VoteResult } from './quorum/vote-result.js';
import { ReadOnly, ReadOnlyOption } from './read-only.js';
import { payloadSizeBytes } from './storage.js';
import { ProgressState } from './tracker/progress.js';
import { ProgressTracker } from './tracker/progress-tracker.js';

/** Id 0: "no node" (no leader, no vote). */
export const NONE = 0n;

export const StateType = {
  Follower: 'StateFollower',
  Candidate: 'StateCandidate',
  Leader: 'StateLeader',
  PreCandidate: 'StatePreCandidate',
} as const;
export type StateType = (typeof StateType)[keyof typeof StateType];

/** Volatile state worth telling the application about (it is not persisted). */
export interface SoftState {
  lead: bigint;
  raftState: StateType;
}

/**
 * The answer to a ReadIndex request: once the application has applied up to `index`, a read
 * made then is linearizable. `requestCtx` is the context the request carried.
 */
export interface ReadState {
  index: bigint;
  requestCtx: Uint8Array;
}

type CampaignType = 'CampaignPreElection' | 'CampaignElection' | 'CampaignTransfer';

/** Vote context marking an election started by a leader transfer: it overrides leader leases. */
const CAMPAIGN_TRANSFER_CONTEXT = new TextEncoder().encode('CampaignTransfer');

function isCampaignTransfer(ctx: Uint8Array): boolean {
  if (ctx.length !== CAMPAIGN_TRANSFER_CONTEXT.length) return false;
  for (let i = 0; i < ctx.length; i++) if (ctx[i] !== CAMPAIGN_TRANSFER_CONTEXT[i]) return false;
  return true;
}

function voteRespType(t: MessageType): MessageType {
  if (t === MessageType.Vote) return MessageType.VoteResp;
  if (t === MessageType.PreVote) return MessageType.PreVoteResp;
  return fail(`not a vote message: ${messageTypeName(t)}`);
}

const EMPTY = new Uint8Array(0);

/**
 * The Raft state machine of one node. Purely synchronous: it reacts to `tick()` and `step()` by
 * changing state, appending to its in-memory log and queueing outgoing messages in `msgs`; the
 * RawNode wrapper hands those to the application as Ready batches. No timers, I/O or promises.
 */
export class Raft {
  readonly id: bigint;
  term = 0n;
  vote = NONE;
  readStates: ReadState[] = [];
  readonly raftLog: RaftLog;
  readonly trk: ProgressTracker;
  state: StateType = StateType.Follower;
  isLearner = false;
  /** Outgoing messages; the application sends them after persisting the Ready they came in. */
  msgs: Message[] = [];
  lead = NONE;
  /** The node leadership is being handed to, or NONE. */
  leadTransferee = NONE;
  /**
   * Index of the latest membership change the leader has proposed; a new one may be proposed
   * only once it is applied, so at most one change is ever in flight.
   */
  pendingConfIndex = 0n;
  /** Payload bytes of this leader's entries not yet applied (bounded by maxUncommittedEntriesSize). */
  uncommittedSize = 0;
  readOnly: ReadOnly;
  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTimeout = 0;
  /** ReadIndex requests that arrived before this leader committed an entry of its own term. */
  private pendingReadIndexMessages: Message[] = [];

  readonly cfg: ResolvedRaftConfig;
  readonly logger: RaftLogger;
  private readonly random: (n: number) => number;
  private tickFn: () => void;
  private stepFn: (m: Message) => void;

  /**
   * Restores a node from its storage (hard state, configuration, log).
   * @throws RaftError `InvalidConfig` for a bad config or a stored configuration that cannot be restored.
   */
  constructor(config: RaftConfig) {
    this.cfg = resolveConfig(config);
    this.id = this.cfg.id;
    this.logger = this.cfg.logger ?? silentLogger;
    this.random = this.cfg.random ?? ((n) => Math.floor(Math.random() * n));
    this.raftLog = new RaftLog(this.cfg.storage, this.cfg.maxCommittedSizePerReady);
    this.trk = new ProgressTracker(this.cfg.maxInflightMsgs, this.cfg.maxInflightBytes);
    this.readOnly = new ReadOnly(this.cfg.readOnlyOption);
    this.tickFn = () => this.tickElection();
    this.stepFn = (m) => this.stepFollower(m);

    const { hardState, confState } = this.cfg.storage.initialState();
    let restored: ConfigAndProgress;
    try {
      restored = restoreConfig(
        confState,
        this.raftLog.lastIndex(),
        this.cfg.maxInflightMsgs,
        this.cfg.maxInflightBytes,
      );
    } catch (err) {
      throw new RaftError(
        'InvalidConfig',
        `stored configuration ${describeConfState(confState)} cannot be restored: ${(err as Error).message}`,
      );
    }
    const cs = this.switchToConfig(restored);
    assertConfStatesEquivalent(confState, cs);

    if (!isEmptyHardState(hardState)) this.loadState(hardState);
    if (this.cfg.applied > 0n) this.raftLog.appliedTo(this.cfg.applied);
    this.becomeFollower(this.term, NONE);

    const nodes = this.trk.voterNodes().join(',');
    this.logger.info(
      `newRaft ${this.id} [peers: [${nodes}], term: ${this.term}, commit: ${this.raftLog.committed}, applied: ${this.raftLog.applied}, lastindex: ${this.raftLog.lastIndex()}, lastterm: ${this.raftLog.lastTerm()}]`,
    );
  }

  // --- small accessors --------------------------------------------------------------------------

  hasLeader(): boolean {
    return this.lead !== NONE;
  }

  softState(): SoftState {
    return { lead: this.lead, raftState: this.state };
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.raftLog.committed };
  }

  /** A node may campaign only as a voter that is not waiting on a snapshot. */
  promotable(): boolean {
    const pr = this.trk.progress.get(this.id);
    return pr !== undefined && !pr.isLearner && !this.raftLog.hasPendingSnapshot();
  }

  private loadState(hs: HardState): void {
    // A commit index past the log means entries the node acknowledged were lost: refuse to run.
    invariant(
      hs.commit <= this.raftLog.lastIndex(),
      () =>
        `${this.id} state.commit ${hs.commit} is out of range [${this.raftLog.committed}, ${this.raftLog.lastIndex()}]`,
    );
    // A commit index below the snapshot is fine: commit-only hard state changes need not be synced,
    // while a local snapshot (of applied, hence committed, entries) is; the snapshot is the proof.
    if (hs.commit > this.raftLog.committed) this.raftLog.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  // --- sending ------------------------------------------------------------------------------------

  /** Queues a message, stamping the sender and (for everything but local forwards) the term. */
  send(m: Message): void {
    if (m.from === NONE) m.from = this.id;
    if (
      m.type === MessageType.Vote ||
      m.type === MessageType.VoteResp ||
      m.type === MessageType.PreVote ||
      m.type === MessageType.PreVoteResp
    ) {
      // Campaign messages carry the term they are about, which may differ from ours (PreVote).
      invariant(m.term !== 0n, () => `term should be set when sending ${messageTypeName(m.type)}`);
    } else {
      invariant(
        m.term === 0n,
        () => `term should not be set when sending ${messageTypeName(m.type)} (was ${m.term})`,
      );
      // Proposals and read requests forwarded to the leader keep term 0: they are local messages
      // of the leader, handled whatever its term.
      if (m.type !== MessageType.Prop && m.type !== MessageType.ReadIndex) m.term = this.term;
    }
    this.msgs.push(m);
  }

  /** Sends an append to `to` with whatever it is missing (an empty one if it is up to date). */
  sendAppend(to: bigint): void {
    this.maybeSendAppend(to, true);
  }

  /**
   * Sends an append (or a snapshot if the needed entries are compacted) to `to` unless its
   * progress is paused. With `sendIfEmpty` false, an append without entries is not sent.
   * Returns whether a message was sent.
   */
  maybeSendAppend(to: bigint, sendIfEmpty: boolean): boolean {
    const pr = this.trk.progress.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = pr.next - 1n;
    let prevTerm: bigint;
    let ents: Entry[];
    try {
      prevTerm = this.raftLog.term(prevIndex);
      ents = this.raftLog.entries(pr.next, this.cfg.maxSizePerMsg);
    } catch (err) {
      if (err instanceof RaftError && (err.code === 'Compacted' || err.code === 'Unavailable')) {
        return this.maybeSendSnapshot(to);
      }
      throw err;
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    this.send(
      newMessage({
        type: MessageType.App,
        to,
        index: prevIndex,
        logTerm: prevTerm,
        entries: ents,
        commit: this.raftLog.committed,
      }),
    );
    const last = ents.length > 0 ? ents[ents.length - 1]!.index : prevIndex;
    pr.sentEntries(ents.length, last, payloadSizeBytes(ents));
    return true;
  }

  private maybeSendSnapshot(to: bigint): boolean {
    const pr = this.trk.progress.get(to)!;
    if (!pr.recentActive) {
      this.logger.debug(`ignore sending snapshot to ${to} since it is not recently active`);
      return false;
    }
    let snapshot: Snapshot;
    try {
      snapshot = this.raftLog.snapshot();
    } catch (err) {
      if (err instanceof RaftError && err.code === 'SnapshotTemporarilyUnavailable') {
        this.logger.debug(
          `${this.id} failed to send snapshot to ${to} because snapshot is temporarily unavailable`,
        );
        return false;
      }
      throw err;
    }
    invariant(snapshot.metadata.index !== 0n, () => `need non-empty snapshot to send to ${to}`);
    const { index, term, confState: cs } = snapshot.metadata;
    if (![cs.voters, cs.learners, cs.votersOutgoing, cs.learnersNext].some((ids) => ids.includes(to))) {
      // Taken before `to` joined: the follower would refuse it, and we would resend it forever.
      // Wait for Storage to offer a newer snapshot (the application should make one on demand).
      this.logger.warn(
        `${this.id} not sending snapshot [index: ${index}] to ${to}: it predates ${to} joining the configuration`,
      );
      return false;
    }
    this.logger.debug(
      `${this.id} [firstindex: ${this.raftLog.firstIndex()}, commit: ${this.raftLog.committed}] sent snapshot[index: ${index}, term: ${term}] to ${to} [${pr}]`,
    );
    pr.becomeSnapshot(index);
    this.send(newMessage({ type: MessageType.Snap, to, snapshot }));
    return true;
  }

  /** Heartbeats carry a commit index the follower is known to hold, never beyond its match. */
  private sendHeartbeat(to: bigint, ctx: Uint8Array): void {
    const pr = this.trk.progress.get(to)!;
    const commit = pr.match < this.raftLog.committed ? pr.match : this.raftLog.committed;
    this.send(newMessage({ type: MessageType.Heartbeat, to, commit, context: ctx }));
  }

  bcastAppend(): void {
    this.trk.visit((id) => {
      if (id !== this.id) this.sendAppend(id);
    });
  }

  bcastHeartbeat(): void {
    const ctx = this.readOnly.lastPendingRequestCtx();
    this.bcastHeartbeatWithCtx(ctx ?? EMPTY);
  }

  private bcastHeartbeatWithCtx(ctx: Uint8Array): void {
    this.trk.visit((id) => {
      if (id !== this.id) this.sendHeartbeat(id, ctx);
    });
  }

  // --- committing ---------------------------------------------------------------------------------

  /** Advances the commit index to what a quorum has acknowledged, if that entry is of our term. */
  maybeCommit(): boolean {
    return this.raftLog.maybeCommit(this.trk.committed(), this.term);
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.raftLog.zeroTermOnOutOfBounds(this.raftLog.committed) === this.term;
  }

  // --- state transitions --------------------------------------------------------------------------

  private reset(term: bigint): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.trk.resetVotes();
    const last = this.raftLog.lastIndex();
    this.trk.visit((id, pr) => {
      pr.match = id === this.id ? last : 0n;
      pr.next = last + 1n;
      pr.becomeProbe();
      pr.next = last + 1n;
      pr.recentActive = false;
      pr.msgAppFlowPaused = false;
      pr.pendingSnapshot = 0n;
    });
    this.pendingConfIndex = 0n;
    this.uncommittedSize = 0;
    this.readOnly = new ReadOnly(this.cfg.readOnlyOption);
    this.pendingReadIndexMessages = [];
  }

  private resetRandomizedElectionTimeout(): void {
    const t = this.cfg.electionTick;
    this.randomizedElectionTimeout = t + this.random(t);
  }

  becomeFollower(term: bigint, lead: bigint): void {
    this.stepFn = (m) => this.stepFollower(m);
    this.reset(term);
    this.tickFn = () => this.tickElection();
    this.lead = lead;
    this.state = StateType.Follower;
    this.logger.info(`${this.id} became follower at term ${this.term}`);
  }

  becomeCandidate(): void {
    invariant(this.state !== StateType.Leader, () => `${this.id} invalid transition [leader -> candidate]`);
    this.stepFn = (m) => this.stepCandidate(m);
    this.reset(this.term + 1n);
    this.tickFn = () => this.tickElection();
    this.vote = this.id;
    this.state = StateType.Candidate;
    this.logger.info(`${this.id} became candidate at term ${this.term}`);
  }

  becomePreCandidate(): void {
    invariant(
      this.state !== StateType.Leader,
      () => `${this.id} invalid transition [leader -> pre-candidate]`,
    );
    // A pre-candidate changes neither its term nor its vote: it only asks.
    this.stepFn = (m) => this.stepCandidate(m);
    this.trk.resetVotes();
    this.tickFn = () => this.tickElection();
    this.lead = NONE;
    this.state = StateType.PreCandidate;
    this.logger.info(`${this.id} became pre-candidate at term ${this.term}`);
  }

  becomeLeader(): void {
    invariant(this.state !== StateType.Follower, () => `${this.id} invalid transition [follower -> leader]`);
    this.stepFn = (m) => this.stepLeader(m);
    this.reset(this.term);
    this.tickFn = () => this.tickHeartbeat();
    this.lead = this.id;
    this.state = StateType.Leader;
    const self = this.trk.progress.get(this.id)!;
    self.becomeReplicate();
    self.recentActive = true;
    // Any uncommitted tail may hold a membership change; refuse new ones until it is applied.
    this.pendingConfIndex = this.raftLog.lastIndex();
    // An empty entry of the new term: committing it commits everything before it (§5.4.2).
    const appended = this.appendEntry([{ term: 0n, index: 0n, type: EntryType.Normal, data: EMPTY }]);
    invariant(appended, () => `${this.id} could not append the empty entry on becoming leader`);
    this.logger.info(`${this.id} became leader at term ${this.term}`);
  }

  /** Appends proposals to the leader's log; false if the uncommitted-size limit refuses them. */
  appendEntry(es: Entry[]): boolean {
    let li = this.raftLog.lastIndex();
    // Copies: the caller's entry objects (perhaps a message delivered twice) are never mutated.
    es = es.map((e) => ({ term: this.term, index: ++li, type: e.type, data: e.data }));
    if (!this.increaseUncommittedSize(es)) {
      this.logger.warn(
        `${this.id} appending new entries to log would exceed uncommitted entry size limit; dropping proposal`,
      );
      return false;
    }
    const last = this.raftLog.append(es);
    // The leader counts itself as holding the entries: the Ready contract makes it persist them
    // before any message that could lead to them being committed leaves this node.
    this.trk.progress.get(this.id)?.maybeUpdate(last);
    this.maybeCommit();
    return true;
  }

  private increaseUncommittedSize(es: Entry[]): boolean {
    const s = payloadSizeBytes(es);
    const limit = this.cfg.maxUncommittedEntriesSize;
    // One proposal is always allowed through an empty pipeline, however big.
    if (limit > 0 && this.uncommittedSize > 0 && s > 0 && this.uncommittedSize + s > limit) return false;
    this.uncommittedSize += s;
    return true;
  }

  /** Forgets the payload of entries that were applied (called by RawNode.advance). */
  reduceUncommittedSize(sizeBytes: number): void {
    this.uncommittedSize = sizeBytes > this.uncommittedSize ? 0 : this.uncommittedSize - sizeBytes;
  }

  // --- ticking ------------------------------------------------------------------------------------

  tick(): void {
    this.tickFn();
  }

  private pastElectionTimeout(): boolean {
    return this.electionElapsed >= this.randomizedElectionTimeout;
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.pastElectionTimeout()) {
      this.electionElapsed = 0;
      this.step(newMessage({ type: MessageType.Hup, from: this.id }));
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.cfg.electionTick) {
      this.electionElapsed = 0;
      if (this.cfg.checkQuorum) this.step(newMessage({ type: MessageType.CheckQuorum, from: this.id }));
      // A transfer that did not finish within an election timeout is abandoned.
      if (this.state === StateType.Leader && this.leadTransferee !== NONE) this.abortLeaderTransfer();
    }
    if (this.state !== StateType.Leader) return;
    const self = this.trk.progress.get(this.id);
    if ((!self || self.isLearner) && !this.cfg.stepDownOnRemoval) this.handOffLeadership();
    if (this.heartbeatElapsed >= this.cfg.heartbeatTick) {
      this.heartbeatElapsed = 0;
      this.step(newMessage({ type: MessageType.Beat, from: this.id }));
    }
  }

  // --- elections ----------------------------------------------------------------------------------

  private hup(t: CampaignType): void {
    if (this.state === StateType.Leader) {
      this.logger.debug(`${this.id} ignoring MsgHup because already leader`);
      return;
    }
    if (!this.promotable()) {
      this.logger.warn(`${this.id} is unpromotable and can not campaign`);
      return;
    }
    if (this.raftLog.hasUnappliedConfChanges()) {
      this.logger.warn(
        `${this.id} cannot campaign at term ${this.term} since there are still pending configuration changes to apply`,
      );
      return;
    }
    this.logger.info(`${this.id} is starting a new election at term ${this.term}`);
    this.campaign(t);
  }

  /** Starts an election (or a pre-election) and asks every voter. */
  private campaign(t: CampaignType): void {
    let voteMsg: MessageType;
    let term: bigint;
    if (t === 'CampaignPreElection') {
      this.becomePreCandidate();
      voteMsg = MessageType.PreVote;
      // Ask for the term we would move to, without moving there yet.
      term = this.term + 1n;
    } else {
      this.becomeCandidate();
      voteMsg = MessageType.Vote;
      term = this.term;
    }
    const { result } = this.poll(this.id, voteRespType(voteMsg), true);
    if (result === VoteResult.Won) {
      // A single-voter group wins at once.
      if (t === 'CampaignPreElection') this.campaign('CampaignElection');
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.raftLog.lastIndex();
    const lastTerm = this.raftLog.lastTerm();
    for (const id of this.trk.voterNodes()) {
      if (id === this.id) continue;
      this.logger.info(
        `${this.id} [logterm: ${lastTerm}, index: ${lastIndex}] sent ${messageTypeName(voteMsg)} request to ${id} at term ${this.term}`,
      );
      this.send(
        newMessage({
          type: voteMsg,
          to: id,
          term,
          index: lastIndex,
          logTerm: lastTerm,
          context: t === 'CampaignTransfer' ? CAMPAIGN_TRANSFER_CONTEXT : EMPTY,
        }),
      );
    }
  }

  private poll(
    id: bigint,
    t: MessageType,
    granted: boolean,
  ): { granted: number; rejected: number; result: VoteResult } {
    if (granted)
      this.logger.info(`${this.id} received ${messageTypeName(t)} from ${id} at term ${this.term}`);
    else
      this.logger.info(`${this.id} received ${messageTypeName(t)} rejection from ${id} at term ${this.term}`);
    this.trk.recordVote(id, granted);
    return this.trk.tallyVotes();
  }

  // --- stepping -----------------------------------------------------------------------------------

  /**
   * Feeds a message to the state machine. Messages from older terms are mostly ignored; messages
   * from newer terms make this node a follower first (with the PreVote and lease exceptions).
   * @throws RaftError `ProposalDropped` for a local proposal that cannot be appended.
   */
  step(m: Message): void {
    if (m.term === 0n) {
      // local message
    } else if (m.term > this.term) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        const force = isCampaignTransfer(m.context);
        const inLease =
          this.cfg.checkQuorum && this.lead !== NONE && this.electionElapsed < this.cfg.electionTick;
        if (!force && inLease) {
          // We heard from a leader within the minimum election timeout: a vote request now is
          // from a node that was cut off, and must not disrupt a healthy leader.
          this.logger.info(
            `${this.id} [logterm: ${this.raftLog.lastTerm()}, index: ${this.raftLog.lastIndex()}, vote: ${this.vote}] ignored ${messageTypeName(m.type)} from ${m.from} [logterm: ${m.logTerm}, index: ${m.index}] at term ${this.term}: lease is not expired (remaining ticks: ${this.cfg.electionTick - this.electionElapsed})`,
          );
          return;
        }
      }
      if (m.type === MessageType.PreVote) {
        // Never change our term in response to a PreVote.
      } else if (m.type === MessageType.PreVoteResp && !m.reject) {
        // A granted pre-vote is for a term we will move to only once a quorum grants it.
      } else {
        this.logger.info(
          `${this.id} [term: ${this.term}] received a ${messageTypeName(m.type)} message with higher term from ${m.from} [term: ${m.term}]`,
        );
        if (m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap) {
          this.becomeFollower(m.term, m.from);
        } else {
          this.becomeFollower(m.term, NONE);
        }
      }
    } else if (m.term < this.term) {
      if (
        (this.cfg.checkQuorum || this.cfg.preVote) &&
        (m.type === MessageType.Heartbeat || m.type === MessageType.App)
      ) {
        // A stale leader is talking to us. Tell it about our term so it steps down; with
        // CheckQuorum or PreVote we would otherwise never raise its term (our vote requests may
        // be ignored), and it could stay leader forever on its side of a healed partition.
        this.send(newMessage({ type: MessageType.AppResp, to: m.from }));
      } else if (m.type === MessageType.PreVote) {
        this.logger.info(
          `${this.id} [logterm: ${this.raftLog.lastTerm()}, index: ${this.raftLog.lastIndex()}, vote: ${this.vote}] rejected ${messageTypeName(m.type)} from ${m.from} [logterm: ${m.logTerm}, index: ${m.index}] at term ${this.term}`,
        );
        this.send(newMessage({ type: MessageType.PreVoteResp, to: m.from, term: this.term, reject: true }));
      } else {
        this.logger.info(
          `${this.id} [term: ${this.term}] ignored a ${messageTypeName(m.type)} message with lower term from ${m.from} [term: ${m.term}]`,
        );
      }
      return;
    }

    switch (m.type) {
      case MessageType.Hup:
        this.hup(this.cfg.preVote ? 'CampaignPreElection' : 'CampaignElection');
        break;
      case MessageType.Vote:
      case MessageType.PreVote: {
        // We can vote if this is a repeat of a vote we cast, or if we have not voted and know of no
        // leader, or if it is a PreVote for a future term (pre-votes bind nothing).
        const canVote =
          this.vote === m.from ||
          (this.vote === NONE && this.lead === NONE) ||
          (m.type === MessageType.PreVote && m.term > this.term);
        if (canVote && this.raftLog.isUpToDate(m.index, m.logTerm)) {
          this.logger.info(
            `${this.id} [logterm: ${this.raftLog.lastTerm()}, index: ${this.raftLog.lastIndex()}, vote: ${this.vote}] cast ${messageTypeName(m.type)} for ${m.from} [logterm: ${m.logTerm}, index: ${m.index}] at term ${this.term}`,
          );
          // Answer with the term of the request: a granted PreVote must not look stale to a
          // pre-candidate still at the lower term.
          this.send(newMessage({ type: voteRespType(m.type), to: m.from, term: m.term }));
          if (m.type === MessageType.Vote) {
            this.electionElapsed = 0;
            this.vote = m.from;
          }
        } else {
          this.logger.info(
            `${this.id} [logterm: ${this.raftLog.lastTerm()}, index: ${this.raftLog.lastIndex()}, vote: ${this.vote}] rejected ${messageTypeName(m.type)} from ${m.from} [logterm: ${m.logTerm}, index: ${m.index}] at term ${this.term}`,
          );
          this.send(newMessage({ type: voteRespType(m.type), to: m.from, term: this.term, reject: true }));
        }
        break;
      }
      default:
        this.stepFn(m);
    }
  }

  private dropProposal(reason: ConstructorParameters<typeof RaftError>[2], message: string): never {
    throw new RaftError('ProposalDropped', message, reason);
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case MessageType.Beat:
        this.bcastHeartbeat();
        return;
      case MessageType.CheckQuorum:
        if (!this.trk.quorumActive()) {
          this.logger.warn(`${this.id} stepped down to follower since quorum is not active`);
          this.becomeFollower(this.term, NONE);
        }
        // Start a fresh round: everyone must be heard from again before the next check.
        this.trk.visit((id, pr) => {
          if (id !== this.id) pr.recentActive = false;
        });
        return;
      case MessageType.Prop:
        this.leaderPropose(m);
        return;
      case MessageType.ReadIndex:
        this.leaderReadIndex(m);
        return;
    }

    const pr = this.trk.progress.get(m.from);
    if (!pr) {
      this.logger.debug(`${this.id} no progress available for ${m.from}`);
      return;
    }
    switch (m.type) {
      case MessageType.AppResp: {
        pr.recentActive = true;
        if (m.reject) {
          this.logger.debug(
            `${this.id} received MsgAppResp(rejected, hint: (index ${m.rejectHint}, term ${m.logTerm})) from ${m.from} for index ${m.index}`,
          );
          let nextProbeIdx = m.rejectHint;
          if (m.logTerm > 0n) {
            // Skip every entry of ours whose term is above the follower's term at the hint: they
            // cannot match, so each round trip skips a whole term instead of one entry.
            nextProbeIdx = this.raftLog.findConflictByTerm(m.rejectHint, m.logTerm).index;
          }
          if (pr.maybeDecrTo(m.index, nextProbeIdx)) {
            this.logger.debug(`${this.id} decreased progress of ${m.from} to [${pr}]`);
            if (pr.state === ProgressState.Replicate) pr.becomeProbe();
            this.sendAppend(m.from);
          }
          return;
        }
        const oldPaused = pr.isPaused();
        if (pr.maybeUpdate(m.index) || (pr.match === m.index && pr.state === ProgressState.Probe)) {
          if (pr.state === ProgressState.Probe) {
            pr.becomeReplicate();
          } else if (pr.state === ProgressState.Snapshot && pr.match + 1n >= this.raftLog.firstIndex()) {
            // The follower caught up through the snapshot (or the log): back to appends.
            this.logger.debug(
              `${this.id} recovered from needing snapshot, resumed sending replication messages to ${m.from} [${pr}]`,
            );
            pr.becomeProbe();
            pr.becomeReplicate();
          } else if (pr.state === ProgressState.Replicate) {
            pr.inflights.freeLE(m.index);
          }
          if (this.maybeCommit()) {
            this.releasePendingReadIndexMessages();
            this.bcastAppend();
          } else if (oldPaused) {
            // The follower was paused and the window opened: send what it is missing.
            this.sendAppend(m.from);
          }
          // Keep the pipeline full while the window allows.
          for (let i = 0; i < this.cfg.maxInflightMsgs && this.maybeSendAppend(m.from, false); i++) {}
          if (m.from === this.leadTransferee && pr.match === this.raftLog.lastIndex()) {
            this.logger.info(`${this.id} sent MsgTimeoutNow to ${m.from} after received MsgAppResp`);
            this.sendTimeoutNow(m.from);
          }
        }
        return;
      }
      case MessageType.HeartbeatResp: {
        pr.recentActive = true;
        pr.msgAppFlowPaused = false;
        // Lost appends would otherwise keep a full window full forever.
        if (pr.state === ProgressState.Replicate && pr.inflights.full()) pr.inflights.freeFirstOne();
        if (pr.match < this.raftLog.lastIndex()) this.sendAppend(m.from);
        if (this.readOnly.option !== ReadOnlyOption.Safe || m.context.length === 0) return;
        const acks = this.readOnly.recvAck(m.from, m.context);
        if (!acks || this.trk.config.voters.voteResult(acks) !== VoteResult.Won) return;
        for (const rs of this.readOnly.advance(m.context)) {
          const resp = this.responseToReadIndexReq(rs.request, rs.index);
          if (resp) this.send(resp);
        }
        return;
      }
      case MessageType.SnapStatus:
        if (pr.state !== ProgressState.Snapshot) return;
        if (!m.reject) {
          pr.becomeProbe();
          this.logger.debug(
            `${this.id} snapshot succeeded, resumed sending replication messages to ${m.from} [${pr}]`,
          );
        } else {
          // The snapshot never arrived: forget it so the next probe can send a new one.
          pr.pendingSnapshot = 0n;
          pr.becomeProbe();
          this.logger.debug(
            `${this.id} snapshot failed, resumed sending replication messages to ${m.from} [${pr}]`,
          );
        }
        // Wait for a heartbeat response before probing, so a failed send is not retried in a loop.
        pr.msgAppFlowPaused = true;
        return;
      case MessageType.Unreachable:
        // Optimistic replication to an unreachable node would only pile up lost messages.
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        this.logger.debug(`${this.id} failed to send message to ${m.from} because it is unreachable [${pr}]`);
        return;
      case MessageType.TransferLeader: {
        if (pr.isLearner) {
          this.logger.debug(`${this.id} is learner. Ignored transferring leadership`);
          return;
        }
        const transferee = m.from;
        const last = this.leadTransferee;
        if (last !== NONE) {
          if (last === transferee) {
            this.logger.info(
              `${this.id} [term ${this.term}] transfer leadership to ${transferee} is in progress, ignores request to same node ${transferee}`,
            );
            return;
          }
          this.abortLeaderTransfer();
          this.logger.info(
            `${this.id} [term ${this.term}] abort previous transferring leadership to ${last}`,
          );
        }
        if (transferee === this.id) {
          this.logger.debug(`${this.id} is already leader. Ignored transferring leadership to self`);
          return;
        }
        this.logger.info(`${this.id} [term ${this.term}] starts to transfer leadership to ${transferee}`);
        // The transfer must finish within an election timeout, counted from now.
        this.electionElapsed = 0;
        this.leadTransferee = transferee;
        if (pr.match === this.raftLog.lastIndex()) {
          this.sendTimeoutNow(transferee);
          this.logger.info(
            `${this.id} sends MsgTimeoutNow to ${transferee} immediately as ${transferee} already has up-to-date log`,
          );
        } else {
          this.sendAppend(transferee);
        }
        return;
      }
    }
  }

  private leaderPropose(m: Message): void {
    invariant(m.entries.length > 0, () => `${this.id} stepped empty MsgProp`);
    if (!this.trk.progress.has(this.id)) {
      // Removed from the configuration while still leader (stepDownOnRemoval off): refuse work.
      this.dropProposal('NotInConfig', `${this.id} is not in the configuration; proposal dropped`);
    }
    if (this.leadTransferee !== NONE) {
      this.logger.debug(
        `${this.id} [term ${this.term}] transfer leadership to ${this.leadTransferee} is in progress; dropping proposal`,
      );
      this.dropProposal('TransferInProgress', `leadership transfer to ${this.leadTransferee} is in progress`);
    }
    const entries = m.entries.slice();
    let confIndex = 0n;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      if (e.type !== EntryType.ConfChangeV2 && e.type !== EntryType.ConfChange) continue;
      const at = this.raftLog.lastIndex() + BigInt(i) + 1n;
      const refusal = confIndex !== 0n ? pendingRefusal(confIndex) : this.checkConfChangeProposal(e);
      if (refusal) {
        this.logger.info(`${this.id} ignoring conf change at index ${at}: ${refusal.message}`);
        if (m.from === this.id && entries.length === 1) this.dropProposal(refusal.reason, refusal.message);
        // Part of a batch or forwarded: keep the slot (so indexes stay predictable) but make it a no-op.
        entries[i] = { term: 0n, index: 0n, type: EntryType.Normal, data: EMPTY };
      } else {
        confIndex = at;
      }
    }
    if (!this.appendEntry(entries)) {
      this.dropProposal('UncommittedSizeLimit', 'uncommitted entries exceed maxUncommittedEntriesSize');
    }
    if (confIndex !== 0n) this.pendingConfIndex = confIndex;
    this.bcastAppend();
  }

  /** Why a proposed membership change cannot be accepted now, or undefined if it can. */
  private checkConfChangeProposal(
    e: Entry,
  ): { reason: 'ConfChangePending' | 'InvalidConfChange'; message: string } | undefined {
    let cc: ConfChangeV2;
    try {
      cc = decodeConfChangeV2(e.data);
    } catch (err) {
      return { reason: 'InvalidConfChange', message: `undecodable conf change: ${(err as Error).message}` };
    }
    if (this.pendingConfIndex > this.raftLog.applied) {
      return {
        reason: 'ConfChangePending',
        message: `possible unapplied conf change at index ${this.pendingConfIndex} (applied to ${this.raftLog.applied})`,
      };
    }
    const alreadyJoint = this.trk.config.voters.isJoint();
    const wantsLeaveJoint = isLeaveJoint(cc);
    if (alreadyJoint && !wantsLeaveJoint) {
      return { reason: 'InvalidConfChange', message: 'must transition out of joint config first' };
    }
    if (!alreadyJoint && wantsLeaveJoint) {
      return { reason: 'InvalidConfChange', message: 'not in joint state; refusing empty conf change' };
    }
    // With at most one change in flight, the configuration it will apply to is the current one,
    // so a change that would be rejected at apply time can be refused now.
    let next: ConfigAndProgress;
    try {
      next = this.computeConfChange(cc);
    } catch (err) {
      if (err instanceof RaftError) return { reason: 'InvalidConfChange', message: err.message };
      throw err;
    }
    // The leader may not remove or demote itself: if it failed before the remaining voters learned
    // the change committed, they would still need its vote, which it refuses while its log is
    // longer, and it would no longer campaign - the group would stall. Transfer leadership first.
    // (Leaving a joint config is exempt: it must always be possible; see handOffLeadership.)
    if (!wantsLeaveJoint && !next.config.voters.incoming.has(this.id)) {
      return {
        reason: 'InvalidConfChange',
        message: `the change removes or demotes the leader ${this.id}; transfer leadership first`,
      };
    }
    return undefined;
  }

  private leaderReadIndex(m: Message): void {
    invariant(
      m.entries.length === 1,
      () => `MsgReadIndex must carry exactly one entry (the context), got ${m.entries.length}`,
    );
    if (this.trk.isSingleton()) {
      // Alone in the group: our commit index is the group's.
      const resp = this.responseToReadIndexReq(m, this.raftLog.committed);
      if (resp) this.send(resp);
      return;
    }
    // Until an entry of our term commits, our commit index may lag what an earlier leader
    // committed; answering now could return a stale index (§6.4 of the Raft thesis).
    if (!this.committedEntryInCurrentTerm()) {
      this.pendingReadIndexMessages.push(m);
      return;
    }
    this.sendMsgReadIndexResponse(m);
  }

  private sendMsgReadIndexResponse(m: Message): void {
    if (this.readOnly.option === ReadOnlyOption.Safe) {
      this.readOnly.addRequest(this.raftLog.committed, m);
      // The leader's own ack counts toward the quorum.
      this.readOnly.recvAck(this.id, m.entries[0]!.data);
      this.bcastHeartbeatWithCtx(m.entries[0]!.data);
      return;
    }
    const resp = this.responseToReadIndexReq(m, this.raftLog.committed);
    if (resp) this.send(resp);
  }

  private releasePendingReadIndexMessages(): void {
    if (this.pendingReadIndexMessages.length === 0) return;
    if (!this.committedEntryInCurrentTerm()) {
      this.logger.error(
        `${this.id} pending MsgReadIndex should be released only after first commit in current term`,
      );
      return;
    }
    const msgs = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of msgs) this.sendMsgReadIndexResponse(m);
  }

  /** A local request becomes a ReadState; a forwarded one gets a MsgReadIndexResp (undefined: nothing to send). */
  private responseToReadIndexReq(req: Message, readIndex: bigint): Message | undefined {
    if (req.from === NONE || req.from === this.id) {
      this.readStates.push({ index: readIndex, requestCtx: req.entries[0]!.data });
      return undefined;
    }
    return newMessage({
      type: MessageType.ReadIndexResp,
      to: req.from,
      index: readIndex,
      entries: req.entries,
    });
  }

  private stepCandidate(m: Message): void {
    // A pre-candidate only counts pre-vote answers, a candidate only real ones: a stale answer
    // of the other kind must not be miscounted.
    const myVoteResp = this.state === StateType.PreCandidate ? MessageType.PreVoteResp : MessageType.VoteResp;
    switch (m.type) {
      case MessageType.Prop:
        this.logger.info(`${this.id} no leader at term ${this.term}; dropping proposal`);
        this.dropProposal('NoLeader', `no leader at term ${this.term}`);
        break;
      case MessageType.App:
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        break;
      case MessageType.Heartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        break;
      case MessageType.Snap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        break;
      case myVoteResp: {
        const { granted, rejected, result } = this.poll(m.from, m.type, !m.reject);
        this.logger.info(
          `${this.id} has received ${granted} ${messageTypeName(m.type)} votes and ${rejected} vote rejections`,
        );
        if (result === VoteResult.Won) {
          if (this.state === StateType.PreCandidate) {
            this.campaign('CampaignElection');
          } else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (result === VoteResult.Lost) {
          // A lost pre-vote leaves the term unchanged; a lost vote keeps the raised term.
          this.becomeFollower(this.term, NONE);
        }
        break;
      }
      case MessageType.TimeoutNow:
        this.logger.debug(
          `${this.id} [term ${this.term} state ${this.state}] ignored MsgTimeoutNow from ${m.from}`,
        );
        break;
      case MessageType.ReadIndex:
        this.logger.info(`${this.id} no leader at term ${this.term}; dropping index reading msg`);
        break;
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.Prop:
        if (this.lead === NONE) {
          this.logger.info(`${this.id} no leader at term ${this.term}; dropping proposal`);
          this.dropProposal('NoLeader', `no leader at term ${this.term}`);
        }
        if (this.cfg.disableProposalForwarding) {
          this.logger.info(
            `${this.id} not forwarding to leader ${this.lead} at term ${this.term}; dropping proposal`,
          );
          this.dropProposal('ForwardingDisabled', `proposal forwarding is disabled (leader is ${this.lead})`);
        }
        this.send({ ...m, to: this.lead });
        break;
      case MessageType.App:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        break;
      case MessageType.Heartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        break;
      case MessageType.Snap:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        break;
      case MessageType.TransferLeader:
        if (this.lead === NONE) {
          this.logger.info(`${this.id} no leader at term ${this.term}; dropping leader transfer msg`);
          return;
        }
        this.send({ ...m, to: this.lead });
        break;
      case MessageType.TimeoutNow:
        this.logger.info(
          `${this.id} [term ${this.term}] received MsgTimeoutNow from ${m.from} and starts an election to get leadership`,
        );
        // The leader asked us to take over: skip the pre-vote, and override leases.
        this.hup('CampaignTransfer');
        break;
      case MessageType.ReadIndex:
        if (this.lead === NONE) {
          this.logger.info(`${this.id} no leader at term ${this.term}; dropping index reading msg`);
          return;
        }
        this.send({ ...m, to: this.lead });
        break;
      case MessageType.ReadIndexResp:
        if (m.entries.length !== 1) {
          this.logger.error(
            `${this.id} invalid format of MsgReadIndexResp from ${m.from}, entries count: ${m.entries.length}`,
          );
          return;
        }
        this.readStates.push({ index: m.index, requestCtx: m.entries[0]!.data });
        break;
    }
  }

  handleAppendEntries(m: Message): void {
    if (m.index < this.raftLog.committed) {
      // Everything up to our commit index matches by definition; tell the leader where we are.
      this.send(newMessage({ type: MessageType.AppResp, to: m.from, index: this.raftLog.committed }));
      return;
    }
    const lastNew = this.raftLog.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      this.send(newMessage({ type: MessageType.AppResp, to: m.from, index: lastNew }));
      return;
    }
    // Rejected: point the leader at the largest index where our logs might agree, with its term,
    // so it can skip every entry of a term we cannot hold.
    const last = this.raftLog.lastIndex();
    const hintIndex = m.index < last ? m.index : last;
    const hint = this.raftLog.findConflictByTerm(hintIndex, m.logTerm);
    this.logger.debug(
      `${this.id} [logterm: ${this.raftLog.zeroTermOnOutOfBounds(m.index)}, index: ${m.index}] rejected MsgApp [logterm: ${m.logTerm}, index: ${m.index}] from ${m.from}`,
    );
    this.send(
      newMessage({
        type: MessageType.AppResp,
        to: m.from,
        index: m.index,
        reject: true,
        rejectHint: hint.index,
        logTerm: hint.term,
      }),
    );
  }

  handleHeartbeat(m: Message): void {
    this.raftLog.commitTo(m.commit);
    this.send(newMessage({ type: MessageType.HeartbeatResp, to: m.from, context: m.context }));
  }

  handleSnapshot(m: Message): void {
    const snap = m.snapshot;
    if (!snap) {
      this.logger.error(`${this.id} received MsgSnap without a snapshot from ${m.from}`);
      return;
    }
    const { index, term } = snap.metadata;
    if (this.restore(snap)) {
      this.logger.info(
        `${this.id} [commit: ${this.raftLog.committed}] restored snapshot [index: ${index}, term: ${term}]`,
      );
      this.send(newMessage({ type: MessageType.AppResp, to: m.from, index: this.raftLog.lastIndex() }));
    } else {
      this.logger.info(
        `${this.id} [commit: ${this.raftLog.committed}] ignored snapshot [index: ${index}, term: ${term}]`,
      );
      this.send(newMessage({ type: MessageType.AppResp, to: m.from, index: this.raftLog.committed }));
    }
  }

  /**
   * Installs a snapshot into the log and configuration. Returns false if it was ignored (older
   * than our commit index, already matching our log, or not listing us as a member).
   */
  restore(s: Snapshot): boolean {
    const { index, term, confState: cs } = s.metadata;
    if (index <= this.raftLog.committed) return false;
    if (this.state !== StateType.Follower) {
      // Only a leader of our term could have sent this; something is badly wrong. Step down and
      // let the next election sort it out rather than act on it.
      this.logger.warn(`${this.id} attempted to restore snapshot as leader; should never happen`);
      this.becomeFollower(this.term + 1n, NONE);
      return false;
    }
    const member = [cs.voters, cs.learners, cs.votersOutgoing].some((ids) => ids.includes(this.id));
    if (!member) {
      this.logger.warn(
        `${this.id} attempted to restore snapshot but it is not in the ConfState ${describeConfState(cs)}; should never happen`,
      );
      return false;
    }
    if (this.raftLog.matchTerm(index, term)) {
      // We already hold the entries the snapshot covers: just move the commit index.
      this.logger.info(
        `${this.id} [commit: ${this.raftLog.committed}, lastindex: ${this.raftLog.lastIndex()}, lastterm: ${this.raftLog.lastTerm()}] fast-forwarded commit to snapshot [index: ${index}, term: ${term}]`,
      );
      this.raftLog.commitTo(index);
      return false;
    }
    this.raftLog.restore(s);
    let restored: ConfigAndProgress;
    try {
      restored = restoreConfig(
        cs,
        this.raftLog.lastIndex(),
        this.cfg.maxInflightMsgs,
        this.cfg.maxInflightBytes,
      );
    } catch (err) {
      return fail(`unable to restore config ${describeConfState(cs)}: ${(err as Error).message}`);
    }
    assertConfStatesEquivalent(cs, this.switchToConfig(restored));
    this.logger.info(
      `${this.id} [commit: ${this.raftLog.committed}, lastindex: ${this.raftLog.lastIndex()}, lastterm: ${this.raftLog.lastTerm()}] restored snapshot [index: ${index}, term: ${term}]`,
    );
    return true;
  }

  // --- membership ---------------------------------------------------------------------------------

  private computeConfChange(cc: ConfChangeV2): ConfigAndProgress {
    const changer = new Changer(
      { config: this.trk.config, progress: this.trk.progress },
      this.raftLog.lastIndex(),
      this.cfg.maxInflightMsgs,
      this.cfg.maxInflightBytes,
    );
    if (isLeaveJoint(cc)) return changer.leaveJoint();
    const { joint, autoLeave } = enterJoint(cc);
    return joint ? changer.enterJoint(autoLeave, cc.changes) : changer.simple(cc.changes);
  }

  /**
   * Applies a committed membership change and returns the resulting configuration.
   * @throws RaftError `InvalidConfChange` if the change is not valid for the current
   *   configuration; the configuration is then unchanged (every replica rejects it alike).
   */
  applyConfChange(cc: ConfChangeV2): ConfState {
    return this.switchToConfig(this.computeConfChange(cc));
  }

  /** Installs a configuration; a leader then commits or replicates what the change allows. */
  switchToConfig(next: ConfigAndProgress): ConfState {
    this.trk.config = next.config;
    this.trk.progress = next.progress;
    this.logger.info(`${this.id} switched to configuration ${this.trk.config}`);
    const cs = this.trk.confState();
    const pr = this.trk.progress.get(this.id);
    this.isLearner = pr?.isLearner ?? false;
    if ((pr === undefined || this.isLearner) && this.state === StateType.Leader) {
      // We were removed or demoted while leading. By default we keep leading, accepting no
      // proposals, so the remaining voters learn that the change committed, and hand leadership
      // to one of them. Stepping down at once (stepDownOnRemoval) can stall the group: a voter
      // that has not learned the change committed still needs our vote, which we refuse while
      // our log is longer, and we no longer campaign.
      if (this.cfg.stepDownOnRemoval) this.becomeFollower(this.term, NONE);
      else this.handOffLeadership();
      return cs;
    }
    if (this.state !== StateType.Leader || cs.voters.length === 0) return cs;
    if (this.maybeCommit()) {
      // A smaller quorum may already have acknowledged more.
      this.bcastAppend();
    } else {
      this.trk.visit((id) => {
        if (id !== this.id) this.maybeSendAppend(id, false);
      });
    }
    if (this.leadTransferee !== NONE && !this.trk.config.voters.has(this.leadTransferee))
      this.abortLeaderTransfer();
    return cs;
  }

  /**
   * Called after entries were applied (RawNode.advance). A leader in a joint configuration that is
   * to be left automatically proposes leaving it once the change that entered it is applied. If
   * the proposal is refused (a leader transfer is in progress), the next apply retries.
   */
  maybeAutoLeaveJoint(): void {
    if (!this.trk.config.autoLeave || this.state !== StateType.Leader) return;
    if (this.raftLog.applied < this.pendingConfIndex) return;
    // The empty ConfChangeV2 leaves the joint config; with no payload, no size limit refuses it.
    const leave: ConfChangeV2 = { transition: ConfChangeTransition.Auto, changes: [], context: EMPTY };
    const entry: Entry = {
      term: 0n,
      index: 0n,
      type: EntryType.ConfChangeV2,
      data: encodeConfChangeV2(leave),
    };
    try {
      this.step(newMessage({ type: MessageType.Prop, from: this.id, entries: [entry] }));
    } catch (err) {
      if (!(err instanceof RaftError && err.code === 'ProposalDropped')) throw err;
      this.logger.debug(
        `${this.id} not initiating automatic transition out of joint configuration ${this.trk.config}: ${err.message}`,
      );
      return;
    }
    this.logger.info(
      `${this.id} initiating automatic transition out of joint configuration ${this.trk.config}`,
    );
  }

  // --- leader transfer ----------------------------------------------------------------------------

  /**
   * A leader that is no longer a voter transfers leadership to the voter of the configuration
   * whose log is most complete (lowest id on ties). Retried every heartbeat until one takes over.
   */
  private handOffLeadership(): void {
    if (this.state !== StateType.Leader || this.leadTransferee !== NONE) return;
    let best = NONE;
    let bestMatch = -1n;
    for (const id of this.trk.config.voters.incoming.sorted()) {
      const pr = this.trk.progress.get(id);
      if (id === this.id || !pr || pr.isLearner) continue;
      if (pr.match > bestMatch) {
        best = id;
        bestMatch = pr.match;
      }
    }
    if (best === NONE) return;
    this.logger.info(`${this.id} is no longer a voter; handing leadership to ${best}`);
    this.stepLeader(newMessage({ type: MessageType.TransferLeader, from: best }));
  }

  private sendTimeoutNow(to: bigint): void {
    this.send(newMessage({ type: MessageType.TimeoutNow, to }));
  }

  abortLeaderTransfer(): void {
    this.leadTransferee = NONE;
  }

  /** Describes a message for logs. */
  describe(m: Message): string {
    return describeMessage(m);
  }
}

/** A second membership change in one batch waits for the first, like any pending change. */
function pendingRefusal(confIndex: bigint): { reason: 'ConfChangePending'; message: string } {
  return {
    reason: 'ConfChangePending',
    message: `conf change at index ${confIndex} in the same batch is pending`,
  };
}

function isEmptyHardState(hs: HardState): boolean {
  return hs.term === 0n && hs.vote === 0n && hs.commit === 0n;
}

function sameIds(a: readonly bigint[], b: readonly bigint[]): boolean {
  const x = [...a].sort();
  const y = [...b].sort();
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/** The configuration rebuilt from a ConfState must be that ConfState. */
function assertConfStatesEquivalent(expected: ConfState, actual: ConfState): void {
  invariant(
    sameIds(expected.voters, actual.voters) &&
      sameIds(expected.votersOutgoing, actual.votersOutgoing) &&
      sameIds(expected.learners, actual.learners) &&
      sameIds(expected.learnersNext, actual.learnersNext) &&
      expected.autoLeave === actual.autoLeave,
    () =>
      `ConfStates not equivalent after restore: expected ${describeConfState(expected)}, got ${describeConfState(actual)}`,
  );
}
