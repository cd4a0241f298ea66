import {
  type ConfChangeV2,
  type ConfState,
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
import type { RaftConfig } from './config.js';
import { invariant, RaftError } from './errors.js';
import { Raft, type ReadState, type SoftState, StateType } from './raft.js';
import { payloadSizeBytes } from './storage.js';
import type { ProgressState } from './tracker/progress.js';

/**
 * One batch of work for the application. Handle it in this order, then call `advance()`:
 * 1. persist `hardState`, `entries` and `snapshot` (fsync if `mustSync`);
 * 2. send `messages`;
 * 3. apply `snapshot`, then `committedEntries` (calling `applyConfChange` for membership entries);
 * 4. serve `readStates` once applied up to their index.
 * Entries may be committed in the same Ready that persists them; applying after persisting keeps
 * that safe.
 */
export interface Ready {
  /** Present when leader or role changed. Not persisted. */
  softState?: SoftState;
  /** Present when term, vote or commit changed. Persist before sending messages. */
  hardState?: HardState;
  readStates: ReadState[];
  /** New log entries to persist (they may replace a conflicting suffix of the stored log). */
  entries: Entry[];
  /** A snapshot from the leader to persist and apply. */
  snapshot?: Snapshot;
  /** Entries committed by a quorum, to apply in order. */
  committedEntries: Entry[];
  /** Messages to send after the entries and hard state are durable. */
  messages: Message[];
  /** Whether the hard state and entries must be fsynced before sending (false: commit index only). */
  mustSync: boolean;
}

/** A follower's progress as the leader sees it. */
export interface ProgressStatus {
  match: bigint;
  next: bigint;
  state: ProgressState;
  isLearner: boolean;
  recentActive: boolean;
  paused: boolean;
  inflight: number;
  pendingSnapshot: bigint;
}

export interface Status {
  id: bigint;
  hardState: HardState;
  softState: SoftState;
  applied: bigint;
  lastIndex: bigint;
  /** Per-member progress; only on the leader. */
  progress?: Map<bigint, ProgressStatus>;
  leadTransferee: bigint;
  /** `voters=(1 2 3) learners=(4)` */
  config: string;
}

const LOCAL_MESSAGES = new Set<MessageType>([
  MessageType.Hup,
  MessageType.Beat,
  MessageType.Unreachable,
  MessageType.SnapStatus,
  MessageType.CheckQuorum,
]);

const RESPONSE_MESSAGES = new Set<MessageType>([
  MessageType.AppResp,
  MessageType.VoteResp,
  MessageType.HeartbeatResp,
  MessageType.PreVoteResp,
]);

/**
 * The application-facing Raft node: drives the state machine and hands out Ready batches.
 * Single-threaded and synchronous; the application owns timers, storage and the network.
 */
export class RawNode {
  readonly raft: Raft;
  private prevSoftState: SoftState;
  private prevHardState: HardState;
  private pending: Ready | undefined;

  /**
   * Restarts (or starts) a node from `config.storage`. A brand-new group's storage holds the
   * initial configuration (e.g. MemoryStorage.withConfState).
   * @throws RaftError `InvalidConfig`.
   */
  constructor(config: RaftConfig) {
    this.raft = new Raft(config);
    this.prevSoftState = this.raft.softState();
    this.prevHardState = this.raft.hardState();
  }

  /** Advances logical time by one tick (election and heartbeat timeouts are counted in ticks). */
  tick(): void {
    this.raft.tick();
  }

  /** Starts an election now (with a pre-vote first if enabled). */
  campaign(): void {
    this.raft.step(newMessage({ type: MessageType.Hup, from: this.raft.id }));
  }

  /**
   * Proposes `data` for the log. Returns once the proposal is appended (leader) or forwarded
   * (follower); it is committed only if a later Ready hands it back in committedEntries.
   * @throws RaftError `ProposalDropped` (with `reason`) if it cannot be appended or forwarded.
   */
  propose(data: Uint8Array): void {
    this.raft.step(
      newMessage({
        type: MessageType.Prop,
        from: this.raft.id,
        entries: [{ term: 0n, index: 0n, type: EntryType.Normal, data }],
      }),
    );
  }

  /**
   * Proposes a membership change. One change may be in flight at a time.
   * @throws RaftError `ProposalDropped` with reason `ConfChangePending` or `InvalidConfChange`, or
   *   any reason `propose` has.
   */
  proposeConfChange(cc: ConfChangeV2): void {
    this.raft.step(
      newMessage({
        type: MessageType.Prop,
        from: this.raft.id,
        entries: [{ term: 0n, index: 0n, type: EntryType.ConfChangeV2, data: encodeConfChangeV2(cc) }],
      }),
    );
  }

  /**
   * Applies a committed membership change (call it for each ConfChangeV2 entry as it is applied).
   * @throws RaftError `InvalidConfChange` if the change is invalid; the configuration is unchanged.
   */
  applyConfChange(cc: ConfChangeV2): ConfState {
    return this.raft.applyConfChange(cc);
  }

  /**
   * Feeds a message received from a peer.
   * @throws RaftError `StepLocalMsg` for kinds only the node itself may create, and
   *   `StepPeerNotFound` for a response from an untracked peer.
   */
  step(m: Message): void {
    if (LOCAL_MESSAGES.has(m.type)) {
      throw new RaftError(
        'StepLocalMsg',
        `${messageTypeName(m.type)} from ${m.from} cannot arrive over the network`,
      );
    }
    if (RESPONSE_MESSAGES.has(m.type) && !this.raft.trk.progress.has(m.from)) {
      throw new RaftError(
        'StepPeerNotFound',
        `${messageTypeName(m.type)} from ${m.from}, which is not a member`,
      );
    }
    try {
      this.raft.step(m);
    } catch (err) {
      // A proposal forwarded by a peer that we cannot take: the peer's client times out and retries.
      if (err instanceof RaftError && err.code === 'ProposalDropped' && m.from !== this.raft.id) {
        this.raft.logger.debug(`${this.raft.id} dropped a proposal forwarded by ${m.from}: ${err.message}`);
        return;
      }
      throw err;
    }
  }

  /**
   * Asks for a linearizable read point. The answer arrives as a ReadState carrying `ctx` in a
   * later Ready (or never, if leadership is lost: time out and retry). Make `ctx` unique.
   */
  readIndex(ctx: Uint8Array): void {
    this.raft.step(
      newMessage({
        type: MessageType.ReadIndex,
        entries: [{ term: 0n, index: 0n, type: EntryType.Normal, data: ctx }],
      }),
    );
  }

  /**
   * Asks the leader to hand leadership to `transferee` (it catches the transferee up, then tells
   * it to campaign at once). Abandoned after an election timeout; proposals are refused meanwhile.
   */
  transferLeader(transferee: bigint): void {
    this.raft.step(newMessage({ type: MessageType.TransferLeader, from: transferee }));
  }

  /** Tells the leader a message to `id` could not be delivered. */
  reportUnreachable(id: bigint): void {
    this.raft.step(newMessage({ type: MessageType.Unreachable, from: id }));
  }

  /** Tells the leader whether the snapshot it sent to `id` was delivered. */
  reportSnapshot(id: bigint, failed: boolean): void {
    this.raft.step(newMessage({ type: MessageType.SnapStatus, from: id, reject: failed }));
  }

  /** True if `ready()` has anything to hand out. */
  hasReady(): boolean {
    const r = this.raft;
    const ss = r.softState();
    if (ss.lead !== this.prevSoftState.lead || ss.raftState !== this.prevSoftState.raftState) return true;
    const hs = r.hardState();
    if (!isEmptyHardState(hs) && !sameHardState(hs, this.prevHardState)) return true;
    if (r.raftLog.hasPendingSnapshot()) return true;
    if (r.msgs.length > 0 || r.raftLog.unstable.entries.length > 0 || r.readStates.length > 0) return true;
    return r.raftLog.hasNextCommittedEntries();
  }

  /**
   * Takes the next batch of work. Call `advance()` once it is handled and before the next ready().
   * @throws RaftAssertionError if the previous Ready was not advanced.
   */
  ready(): Ready {
    invariant(
      this.pending === undefined,
      () => 'ready() called again before advance() of the previous Ready',
    );
    const r = this.raft;
    const rd: Ready = {
      readStates: r.readStates,
      entries: r.raftLog.unstableEntries(),
      committedEntries: r.raftLog.nextCommittedEntries(),
      messages: r.msgs,
      mustSync: false,
    };
    const ss = r.softState();
    if (ss.lead !== this.prevSoftState.lead || ss.raftState !== this.prevSoftState.raftState) {
      rd.softState = ss;
      this.prevSoftState = ss;
    }
    const hs = r.hardState();
    if (!sameHardState(hs, this.prevHardState)) {
      rd.hardState = hs;
      rd.mustSync = hs.term !== this.prevHardState.term || hs.vote !== this.prevHardState.vote;
      this.prevHardState = hs;
    }
    if (rd.entries.length > 0) rd.mustSync = true;
    const snap = r.raftLog.unstable.snapshot;
    if (snap) {
      rd.snapshot = snap;
      rd.mustSync = true;
    }
    r.msgs = [];
    r.readStates = [];
    this.pending = rd;
    return rd;
  }

  /**
   * Records that the last Ready was persisted, sent and applied: its entries become stable and
   * its committed entries applied.
   * @throws RaftAssertionError if there is no Ready to advance.
   */
  advance(): void {
    const rd = this.pending;
    invariant(rd !== undefined, () => 'advance() called without a pending Ready');
    this.pending = undefined;
    const log = this.raft.raftLog;
    if (rd.snapshot) {
      log.stableSnapTo(rd.snapshot.metadata.index);
      log.appliedTo(rd.snapshot.metadata.index);
    }
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1]!;
      log.stableTo(last.index, last.term);
    }
    if (rd.committedEntries.length > 0) {
      log.appliedTo(rd.committedEntries[rd.committedEntries.length - 1]!.index);
      this.raft.reduceUncommittedSize(payloadSizeBytes(rd.committedEntries));
    }
    if (rd.snapshot || rd.committedEntries.length > 0) this.raft.maybeAutoLeaveJoint();
  }

  status(): Status {
    const r = this.raft;
    const s: Status = {
      id: r.id,
      hardState: r.hardState(),
      softState: r.softState(),
      applied: r.raftLog.applied,
      lastIndex: r.raftLog.lastIndex(),
      leadTransferee: r.leadTransferee,
      config: r.trk.config.toString(),
    };
    if (r.state === StateType.Leader) {
      s.progress = new Map();
      r.trk.visit((id, pr) => {
        s.progress!.set(id, {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          isLearner: pr.isLearner,
          recentActive: pr.recentActive,
          paused: pr.isPaused(),
          inflight: pr.inflights.size,
          pendingSnapshot: pr.pendingSnapshot,
        });
      });
    }
    return s;
  }

  /** The leader's id as this node knows it, or NONE (0). */
  leader(): bigint {
    return this.raft.lead;
  }
}

function isEmptyHardState(hs: HardState): boolean {
  return hs.term === 0n && hs.vote === 0n && hs.commit === 0n;
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}
