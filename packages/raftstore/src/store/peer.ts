import type { InternalWrite } from '@nokv/engine';
import {
  ConfChangeType,
  type ConfChangeV2,
  decodeConfChangeV2,
  type Entry,
  EntryType,
  keyInRegion,
  type Message,
  MessageType,
  newMessage,
  type RaftMessage,
  type RegionMeta,
  type RegionPeer,
  RegionState,
} from '@nokv/proto';
import type { PeerStorage } from '../peer-storage/index.js';
import { RaftError, RawNode, type Ready, type SoftState, StateType } from '../raft/index.js';
import type { Latches, TxnDb } from '../txn/index.js';
import {
  type AdminCommand,
  decodeCommand,
  decodeConfChangeContext,
  encodeCommand,
  encodeConfChangeContext,
  type TxnCommand,
  txnCommandKeys,
  type WriteRequest,
} from './command.js';
import { RegionError, StoreError } from './errors.js';
import { tombstoneKey } from './keys.js';
import type { StoreLogger } from './logger.js';
import { joinedRegion } from './region-install.js';
import type { AdminApplier } from './split-merge.js';
import { runTxnCommand } from './txn-apply.js';

/** What a peer needs from the store that hosts it. */
export interface PeerHost {
  readonly storeId: bigint;
  readonly logger: StoreLogger;
  send(msg: RaftMessage): void;
  /** The region's metadata changed (snapshot install, membership change). */
  regionChanged(peer: Peer): void;
  /** This peer applied its own removal, or failed beyond repair: the store drops it. */
  peerRemoved(peer: Peer, reason: string): void;
  /** Counters the store exports. */
  count(event: PeerEvent, n?: number): void;
  /** The store's engine, which transactional commands read when they are applied. */
  readonly db: TxnDb;
  /** The store's key latches, held by a transactional command from its read to its write. */
  readonly latches: Latches;
  /** Applies split and merge entries (without it they are refused). */
  readonly admin?: AdminApplier;
}

export type PeerEvent =
  | 'proposals'
  | 'proposals_superseded'
  | 'reads'
  | 'entries_applied'
  | 'readies'
  | 'snapshots_installed'
  | 'log_compactions'
  | 'hibernations'
  | 'wakeups';

export interface PeerOptions {
  electionTick: number;
  heartbeatTick: number;
  maxSizePerMsg: number;
  maxInflightMsgs: number;
  /** Applied entries kept in the log for lagging followers before it is compacted. */
  logRetainEntries: number;
  /** Compaction happens in steps of at least this many entries. */
  logCompactBatch: number;
  /** Idle ticks after which a leader whose followers are caught up lets the region go quiet. */
  hibernateAfterTicks: number;
  /** Proposals in flight beyond which new ones get ServerBusy. */
  maxPendingProposals: number;
}

interface Waiter {
  /** `value`: what applying the entry produced (a transactional command's response). */
  resolve(value?: unknown): void;
  reject(err: Error): void;
}

interface Proposal extends Waiter {
  /** The term the proposal was appended in: an entry of another term at its index superseded it. */
  term: bigint;
}

interface ReadWaiter extends Waiter {
  /** The read index once the leader confirmed it; the read may run once applied reaches it. */
  index?: bigint;
}

export type PeerRole = 'leader' | 'follower' | 'candidate' | 'pre-candidate';

const ROLES: Record<StateType, PeerRole> = {
  [StateType.Follower]: 'follower',
  [StateType.Candidate]: 'candidate',
  [StateType.Leader]: 'leader',
  [StateType.PreCandidate]: 'pre-candidate',
};

/**
 * One replica of a region: drives its Raft group (Ready loop), persists through its PeerStorage,
 * applies committed entries into the engine, and matches proposals and reads to their outcomes.
 *
 * Proposals are matched to applied entries by (term, index): the index is known the moment a
 * leader appends a proposal, and an entry applied at that index with another term means the
 * proposal was superseded by a new leader's log and did not take effect.
 */
export class Peer {
  readonly regionId: bigint;
  readonly peerId: bigint;
  private readonly rn: RawNode;
  private readonly proposals = new Map<bigint, Proposal>();
  private readonly confChanges = new Map<bigint, Proposal & { onRegion: (r: RegionMeta) => void }>();
  private readonly reads = new Map<string, ReadWaiter>();
  /** Waiters to answer once the Ready being handled is advanced. */
  private readonly afterAdvance: (() => void)[] = [];
  private readSeq = 0n;
  /** Reads waiting for the next ReadIndex round. */
  private nextReads: Waiter[] = [];
  /** A ReadIndex round is out and has not been answered yet. */
  private readInFlight = false;
  private handling = false;
  /** The running Ready loop, if any (stop() waits for it before the engine may close). */
  private loop: Promise<void> = Promise.resolve();
  private stopped = false;
  private idleTicks = 0;
  /** Not ticked by the store: nothing changes and every follower is caught up. */
  hibernating = false;
  private markHibernate = false;
  role: PeerRole = 'follower';

  constructor(
    private readonly host: PeerHost,
    readonly storage: PeerStorage,
    private readonly options: PeerOptions,
  ) {
    this.regionId = storage.region.id;
    const self = storage.region.peers.find((p) => p.storeId === host.storeId);
    if (!self) {
      throw new StoreError('Internal', `region ${this.regionId} lists no peer on store ${host.storeId}`);
    }
    this.peerId = self.peerId;
    this.rn = new RawNode({
      id: this.peerId,
      electionTick: options.electionTick,
      heartbeatTick: options.heartbeatTick,
      storage,
      applied: storage.appliedIndex,
      maxSizePerMsg: options.maxSizePerMsg,
      maxInflightMsgs: options.maxInflightMsgs,
      checkQuorum: true,
      preVote: true,
      logger: {
        debug: () => {},
        info: (msg: string) =>
          host.logger.debug({ region: String(this.regionId), peer: String(this.peerId) }, msg),
        warn: (msg: string) =>
          host.logger.warn({ region: String(this.regionId), peer: String(this.peerId) }, msg),
        error: (msg: string) =>
          host.logger.error({ region: String(this.regionId), peer: String(this.peerId) }, msg),
      },
    });
  }

  get region(): RegionMeta {
    return this.storage.region;
  }

  get isLeader(): boolean {
    return this.rn.raft.state === StateType.Leader;
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  /** The leader as this peer knows it, with its store, if the region's metadata lists it. */
  leader(): RegionPeer | undefined {
    const id = this.rn.leader();
    return this.region.peers.find((p) => p.peerId === id);
  }

  /** One logical clock tick (the store ticks every awake peer on one timer). */
  tick(): void {
    if (this.stopped) return;
    this.rn.tick();
    this.considerHibernating();
    this.kick();
  }

  /** A Raft message for this peer from another store. */
  step(msg: RaftMessage): void {
    if (this.stopped) return;
    const m = msg.message;
    const quietHint = msg.hibernate && m.type === MessageType.Heartbeat;
    // Heartbeats and their answers are the idle chatter hibernation removes, not activity;
    // anything else (appends, votes, a restarted follower's pre-vote) wakes the peer.
    if (m.type !== MessageType.Heartbeat && m.type !== MessageType.HeartbeatResp) this.wake();
    try {
      this.rn.step(m);
    } catch (err) {
      if (err instanceof RaftError) {
        this.host.logger.debug(
          { region: String(this.regionId), peer: String(this.peerId), err: err.message },
          'raft refused a message',
        );
        return;
      }
      throw err;
    }
    if (quietHint && m.from === this.rn.leader() && !this.isLeader) this.hibernate();
    this.kick();
  }

  /** Proposes writes; resolves once they are committed and applied here. */
  async proposeWrites(requests: WriteRequest[]): Promise<void> {
    await this.propose(
      requests.map((r) => r.key),
      undefined,
      requests,
    );
  }

  /**
   * Proposes a transactional command; resolves with its response once its entry is committed and
   * applied here (the command runs against the engine at apply time, on every replica alike).
   */
  proposeTxn(cmd: TxnCommand): Promise<unknown> {
    return this.propose(txnCommandKeys(cmd), cmd, []);
  }

  private propose(
    keys: Uint8Array[],
    txn: TxnCommand | undefined,
    requests: WriteRequest[],
  ): Promise<unknown> {
    this.ensureLeaderAndCapacity();
    if (this.region.state === RegionState.Merging) {
      // Its data must stay as PrepareMerge left it; once merged, the target takes these keys.
      throw RegionError.serverBusy(`region ${this.regionId} is merging into its neighbour`, 100);
    }
    for (const k of keys) {
      if (!keyInRegion(k, this.region)) throw RegionError.keyNotInRegion(k, this.region);
    }
    const data = encodeCommand({
      regionId: this.regionId,
      epoch: this.region.epoch,
      peerId: this.peerId,
      requests,
      ...(txn ? { txn } : {}),
    });
    const { index, term } = this.appendProposal(() => this.rn.propose(data));
    this.host.count('proposals');
    return new Promise((resolve, reject) => {
      this.proposals.set(index, { term, resolve, reject });
    });
  }

  /**
   * A linearizable read barrier: resolves once this leader's applied state covers every write
   * acknowledged before the call. Reads share ReadIndex rounds: reads that arrive while a round is
   * out join the next one (never the one already sent, whose index may predate them).
   */
  readBarrier(): Promise<void> {
    if (this.stopped)
      return Promise.reject(new StoreError('Unavailable', `region ${this.regionId}: peer stopped`));
    if (!this.isLeader) return Promise.reject(RegionError.notLeader(this.regionId, this.leader()));
    this.wake();
    const epoch = this.region.epoch;
    const promise = new Promise<void>((resolve, reject) => this.nextReads.push({ resolve, reject }));
    this.host.count('reads');
    if (!this.readInFlight) this.issueReadIndex();
    // A split or merge applied meanwhile moved keys the caller checked against the old range.
    return promise.then(() => {
      if (this.region.epoch.version !== epoch.version) {
        throw RegionError.epochNotMatch(
          epoch,
          this.host.admin?.currentRegions(this.region, []) ?? [this.region],
        );
      }
    });
  }

  /**
   * Proposes a split or merge step (split-merge.ts). `applied` settles with what applying the entry
   * at `index` produced.
   */
  proposeAdmin(admin: AdminCommand): { index: bigint; applied: Promise<unknown> } {
    this.ensureLeaderAndCapacity();
    const data = encodeCommand({
      regionId: this.regionId,
      epoch: this.region.epoch,
      peerId: this.peerId,
      requests: [],
      admin,
    });
    const { index, term } = this.appendProposal(() => this.rn.propose(data));
    this.host.count('proposals');
    const applied = new Promise<unknown>((resolve, reject) => {
      this.proposals.set(index, { term, resolve, reject });
    });
    return { index, applied };
  }

  private issueReadIndex(): void {
    const batch = this.nextReads;
    this.nextReads = [];
    if (batch.length === 0) return;
    const ctx = Buffer.alloc(16);
    ctx.writeBigUInt64BE(this.peerId, 0);
    ctx.writeBigUInt64BE(++this.readSeq, 8);
    const key = ctx.toString('hex');
    this.reads.set(key, {
      resolve: () => {
        for (const w of batch) w.resolve();
      },
      reject: (err) => {
        for (const w of batch) w.reject(err);
      },
    });
    this.readInFlight = true;
    this.rn.readIndex(ctx);
    this.kick();
  }

  /** Adds a voter or learner, or removes a peer; resolves with the region once applied. */
  changePeer(kind: 'add-voter' | 'add-learner' | 'remove', peer: RegionPeer): Promise<RegionMeta> {
    this.ensureLeaderAndCapacity();
    if (this.region.state === RegionState.Merging) {
      // CommitMerge expects the source on the stores PrepareMerge saw.
      throw new StoreError('FailedPrecondition', `region ${this.regionId} is merging; membership is frozen`);
    }
    const type =
      kind === 'add-voter'
        ? ConfChangeType.AddNode
        : kind === 'add-learner'
          ? ConfChangeType.AddLearnerNode
          : ConfChangeType.RemoveNode;
    const cc: ConfChangeV2 = {
      transition: 0,
      changes: [{ type, nodeId: peer.peerId }],
      context: encodeConfChangeContext([{ ...peer, learner: kind === 'add-learner' }]),
    };
    const { index, term } = this.appendProposal(() => this.rn.proposeConfChange(cc));
    return new Promise((resolve, reject) => {
      this.confChanges.set(index, { term, resolve: () => {}, reject, onRegion: resolve });
    });
  }

  transferLeader(toPeerId: bigint): void {
    if (!this.isLeader) throw RegionError.notLeader(this.regionId, this.leader());
    if (!this.region.peers.some((p) => p.peerId === toPeerId && !p.learner)) {
      throw new StoreError('InvalidArgument', `region ${this.regionId} has no voter peer ${toPeerId}`);
    }
    this.wake();
    this.rn.transferLeader(toPeerId);
    this.kick();
  }

  /** Starts an election now (tests and operator tools). */
  campaign(): void {
    this.wake();
    this.rn.campaign();
    this.kick();
  }

  reportUnreachable(peerId: bigint): void {
    if (this.stopped) return;
    this.rn.reportUnreachable(peerId);
    this.kick();
  }

  reportSnapshot(peerId: bigint, failed: boolean): void {
    if (this.stopped) return;
    this.rn.reportSnapshot(peerId, failed);
    this.kick();
  }

  /** Leaves hibernation: the store ticks this peer again. */
  wake(): void {
    this.idleTicks = 0;
    if (!this.hibernating) return;
    this.hibernating = false;
    this.host.count('wakeups');
  }

  status() {
    const s = this.rn.status();
    return {
      regionId: this.regionId,
      peerId: this.peerId,
      role: this.role,
      leaderPeerId: s.softState.lead,
      term: s.hardState.term,
      commitIndex: s.hardState.commit,
      appliedIndex: this.storage.appliedIndex,
      lastIndex: s.lastIndex,
      region: this.region,
      hibernating: this.hibernating,
      pendingProposals: this.proposals.size + this.confChanges.size,
      pendingReads: this.reads.size + this.nextReads.length,
    };
  }

  /** Resolves once no Ready is being written (after stop(), nothing more will be). */
  async idle(): Promise<void> {
    while (this.handling) await this.loop;
  }

  /** Stops the peer: waiters fail with `Stopped`; nothing more is written. */
  stop(reason = 'peer stopped'): void {
    if (this.stopped) return;
    this.stopped = true;
    const err = new StoreError('Unavailable', `region ${this.regionId}: ${reason}`);
    for (const p of this.proposals.values()) p.reject(err);
    for (const p of this.confChanges.values()) p.reject(err);
    // Applied already (durably): their answers stand even though Raft will not advance again.
    for (const settle of this.afterAdvance.splice(0)) settle();
    for (const r of this.reads.values()) r.reject(err);
    for (const r of this.nextReads) r.reject(err);
    this.nextReads = [];
    this.proposals.clear();
    this.confChanges.clear();
    this.reads.clear();
  }

  // --- internals ----------------------------------------------------------------------------------

  private ensureLeaderAndCapacity(): void {
    if (this.stopped) throw new StoreError('Unavailable', `region ${this.regionId}: peer stopped`);
    if (!this.isLeader) throw RegionError.notLeader(this.regionId, this.leader());
    if (this.proposals.size + this.confChanges.size >= this.options.maxPendingProposals) {
      throw RegionError.serverBusy(
        `region ${this.regionId} has ${this.proposals.size} proposals in flight`,
        20,
      );
    }
    this.wake();
  }

  /** Runs a propose call on the leader and returns where its entry landed. */
  private appendProposal(propose: () => void): { index: bigint; term: bigint } {
    const before = this.rn.raft.raftLog.lastIndex();
    try {
      propose();
    } catch (err) {
      if (err instanceof RaftError && err.code === 'ProposalDropped') {
        if (!this.isLeader) throw RegionError.notLeader(this.regionId, this.leader());
        throw RegionError.serverBusy(err.message, 50);
      }
      throw err;
    }
    const index = this.rn.raft.raftLog.lastIndex();
    if (index !== before + 1n) {
      throw new StoreError('Internal', `proposal landed at ${index}, expected ${before + 1n}`);
    }
    this.kick();
    return { index, term: this.rn.raft.term };
  }

  private considerHibernating(): void {
    if (!this.isLeader || this.hibernating) return;
    const busy = this.proposals.size > 0 || this.reads.size > 0 || this.nextReads.length > 0;
    if (busy || this.confChanges.size > 0 || !this.caughtUp()) {
      this.idleTicks = 0;
      return;
    }
    if (++this.idleTicks < this.options.hibernateAfterTicks) return;
    // One last heartbeat tells the followers to stop ticking too.
    this.markHibernate = true;
    // MsgBeat is local (RawNode.step refuses it from the network): step the state machine directly.
    this.rn.raft.step(newMessage({ type: MessageType.Beat, from: this.peerId, to: this.peerId }));
    this.hibernate();
  }

  private hibernate(): void {
    if (this.hibernating) return;
    this.hibernating = true;
    this.idleTicks = 0;
    this.host.count('hibernations');
  }

  /** Every member has the whole log, it is all committed and applied, and nothing is changing. */
  private caughtUp(): boolean {
    const s = this.rn.status();
    if (s.leadTransferee !== 0n || s.progress === undefined) return false;
    const last = s.lastIndex;
    if (s.hardState.commit !== last || this.storage.appliedIndex !== last) return false;
    for (const pr of s.progress.values()) if (pr.match !== last) return false;
    return !this.rn.raft.trk.config.voters.isJoint();
  }

  /** Schedules the Ready loop (at most one runs at a time; it drains everything there is). */
  private kick(): void {
    if (this.handling || this.stopped) return;
    if (!this.rn.hasReady()) return;
    this.handling = true;
    this.loop = this.handleReadies().finally(() => {
      this.handling = false;
      // Work that arrived while the last Ready was being written.
      if (!this.stopped && this.rn.hasReady()) this.kick();
    });
  }

  private async handleReadies(): Promise<void> {
    try {
      while (!this.stopped && this.rn.hasReady()) {
        const rd = this.rn.ready();
        this.host.count('readies');
        await this.handleReady(rd);
        if (this.stopped) return;
        this.rn.advance();
        for (const settle of this.afterAdvance.splice(0)) settle();
        await this.maybeCompactLog();
      }
    } catch (err) {
      // Persistence failed (the engine refuses further writes) or a committed entry is corrupt:
      // this replica cannot go on safely. Stop it; a restart recovers from what is durable.
      this.host.logger.error(
        { region: String(this.regionId), peer: String(this.peerId), err: (err as Error).message },
        'peer failed; stopping it',
      );
      this.stop(`failed: ${(err as Error).message}`);
      this.host.peerRemoved(this, `failed: ${(err as Error).message}`);
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    if (rd.softState) this.onSoftState(rd.softState);
    for (const rs of rd.readStates) {
      const w = this.reads.get(Buffer.from(rs.requestCtx).toString('hex'));
      if (w) {
        w.index = rs.index;
        this.readInFlight = false;
      }
    }
    if (!this.readInFlight && this.nextReads.length > 0) this.issueReadIndex();
    const quiet = this.markHibernate;
    this.markHibernate = false;
    // A leader may send while this Ready's entries are being written (Raft thesis §10.2.1; etcd's
    // Ready contract): what its messages carry beyond the previous Readies, all durable by now
    // since Readies are handled in turn, is only these entries, and the commit index they carry
    // cannot yet count them. Not when the term or vote changed (that must be durable first), and
    // never for a follower, whose acknowledgement promises the entries are on disk.
    const sendFirst = this.isLeader && rd.snapshot === undefined && !this.termOrVoteChanges(rd);
    if (sendFirst) for (const m of rd.messages) this.sendRaft(m, quiet);
    // A leader's committed entries come from earlier Readies, already durable: apply them (and
    // answer their clients) before this Ready's new entries are fsynced, writing the commit index
    // with the applied index so a restart never finds applied beyond commit. Not when they could
    // include this Ready's own entries (a single-voter group commits at once).
    const commit = rd.hardState?.commit ?? this.storage.hardState.commit;
    const durable = this.storage.lastIndex();
    const applyFirst =
      sendFirst &&
      rd.committedEntries.length > 0 &&
      commit <= durable &&
      rd.committedEntries[rd.committedEntries.length - 1]!.index <= durable;
    if (applyFirst) await this.apply(rd.committedEntries, commit);
    const { snapshotRegion } = await this.storage.persistReady(rd);
    if (snapshotRegion) {
      this.host.count('snapshots_installed');
      this.host.regionChanged(this);
    }
    if (!sendFirst) for (const m of rd.messages) this.sendRaft(m, quiet);
    if (!applyFirst && rd.committedEntries.length > 0) await this.apply(rd.committedEntries);
    this.finishReads();
  }

  private termOrVoteChanges(rd: Ready): boolean {
    const hs = rd.hardState;
    if (hs === undefined) return false;
    const before = this.storage.hardState;
    return hs.term !== before.term || hs.vote !== before.vote;
  }

  private onSoftState(ss: SoftState): void {
    const was = this.role;
    this.role = ROLES[ss.raftState];
    if (was === 'leader' && this.role !== 'leader') {
      // Outstanding ReadIndex requests die with the leadership; proposals may still commit under
      // the next leader and are settled when their index is applied.
      const err = RegionError.notLeader(this.regionId, this.leader());
      for (const r of this.reads.values()) r.reject(err);
      this.reads.clear();
      for (const r of this.nextReads) r.reject(err);
      this.nextReads = [];
      this.readInFlight = false;
    }
    if (was !== this.role) {
      this.host.logger.info(
        {
          region: String(this.regionId),
          peer: String(this.peerId),
          role: this.role,
          leader: String(ss.lead),
        },
        'role changed',
      );
    }
  }

  private sendRaft(m: Message, quiet: boolean): void {
    const to = this.region.peers.find((p) => p.peerId === m.to);
    if (!to) return; // not (or no longer) a member: nothing to address it to
    const from = this.region.peers.find((p) => p.peerId === this.peerId) ?? {
      storeId: this.host.storeId,
      peerId: this.peerId,
      learner: false,
    };
    this.host.send({
      regionId: this.regionId,
      fromPeer: from,
      toPeer: to,
      epoch: this.region.epoch,
      message: m,
      startKey: this.region.startKey,
      endKey: this.region.endKey,
      hibernate: quiet && m.type === MessageType.Heartbeat,
    });
  }

  /**
   * Applies committed entries. Raw writes of consecutive entries go into one batch; a
   * transactional command reads the engine, so before it runs the pending batch is written, and
   * its own writes are written (with its index) before the next entry is looked at.
   */
  /**
   * @param commit when set, the commit index Raft knows, written in the same engine batch as the
   *   applied index (applying ahead of this Ready's hard state).
   */
  private async apply(entries: Entry[], commit?: bigint): Promise<void> {
    let writes: WriteRequest[] = [];
    const outcomes: { index: bigint; term: bigint; error?: Error; value?: unknown }[] = [];
    let region = this.region;
    let regionChanged = false;
    let removedSelf = false;
    /** Follow-ups of split and merge entries, run once their batches are written. */
    const afterAdmin: (() => Promise<void>)[] = [];
    /** The last entry looked at: a flush of the pending batch records it as applied. */
    let prev: { index: bigint; term: bigint } | undefined;
    const flush = async (
      data: ReadonlyArray<WriteRequest | InternalWrite>,
      index: bigint,
      term: bigint,
      sync = false,
    ) => {
      await this.storage.applyWrites(data, index, term, regionChanged ? region : undefined, {
        ...(commit === undefined ? {} : { commit }),
        ...(sync ? { sync } : {}),
      });
      writes = [];
    };
    for (const e of entries) {
      if (e.type === EntryType.Normal) {
        if (e.data.length > 0) {
          const cmd = decodeCommand(e.data);
          const keys = cmd.txn ? txnCommandKeys(cmd.txn) : cmd.requests.map((r) => r.key);
          const refusal = cmd.admin
            ? undefined
            : checkCommand(cmd.epoch.version, keys, region, this.host.admin);
          if (refusal) outcomes.push({ index: e.index, term: e.term, error: refusal });
          else if (cmd.admin) {
            // A split or merge: what came before is written first, then its own batch (synced,
            // with the new region meta and its index) before the next entry is looked at.
            if (writes.length > 0 && prev) await flush(writes, prev.index, prev.term);
            const out = this.host.admin
              ? await this.host.admin.applyAdmin(this, cmd, cmd.admin, region, e.index)
              : { error: new StoreError('Internal', 'this store cannot apply admin commands') };
            if ('error' in out) outcomes.push({ index: e.index, term: e.term, error: out.error });
            else {
              region = out.region;
              regionChanged = true;
              await flush(out.writes, e.index, e.term, true);
              afterAdmin.push(out.after);
              outcomes.push({ index: e.index, term: e.term, value: out.value });
            }
          } else if (cmd.txn) {
            if (writes.length > 0 && prev) await flush(writes, prev.index, prev.term);
            // Latches on the keys the command must own; a range resolve (no keys listed) reads the
            // lock family over the region's range, which this region alone applies, in log order.
            const release = await this.host.latches.acquire(keys);
            try {
              const result = await runTxnCommand(this.host.db, cmd.txn);
              if (result.writes.length > 0) await flush(result.writes, e.index, e.term);
              outcomes.push({ index: e.index, term: e.term, value: result.response });
            } finally {
              release();
            }
          } else {
            writes.push(...cmd.requests);
            outcomes.push({ index: e.index, term: e.term });
          }
        } // else: a new leader's empty entry
      } else if (e.type === EntryType.ConfChangeV2) {
        const cc = decodeConfChangeV2(e.data);
        const conf = this.rn.applyConfChange(cc);
        // A PENDING peer (admin snapshot install) that is now in the configuration has joined.
        region = joinedRegion(applyMembership(region, cc), conf, this.peerId);
        regionChanged = true;
        if (!region.peers.some((p) => p.peerId === this.peerId)) removedSelf = true;
        outcomes.push({ index: e.index, term: e.term });
      } else {
        throw new StoreError(
          'Internal',
          `region ${this.regionId}: unexpected entry type ${e.type} at ${e.index}`,
        );
      }
      prev = { index: e.index, term: e.term };
    }
    const last = entries[entries.length - 1]!;
    // A peer that applies its own removal records its tombstone in the same batch, so a crash
    // before the store destroys it can neither revive it nor leave its state unexplained.
    await flush(
      removedSelf ? [...writes, tombstoneWrite(this.regionId, this.peerId)] : writes,
      last.index,
      last.term,
    );
    this.host.count('entries_applied', entries.length);
    for (const after of afterAdmin) await after();
    if (regionChanged) this.host.regionChanged(this);
    for (const o of outcomes) this.settle(o.index, o.term, o.error, o.value);
    // Proposals at indexes now applied without a matching entry were overwritten.
    for (const [index, p] of this.proposals) {
      if (index > last.index) continue;
      this.proposals.delete(index);
      this.host.count('proposals_superseded');
      p.reject(RegionError.notLeader(this.regionId, this.leader()));
    }
    if (removedSelf) this.host.peerRemoved(this, 'removed from the region by a membership change');
  }

  private settle(index: bigint, term: bigint, error: Error | undefined, value?: unknown): void {
    const p = this.proposals.get(index);
    if (p) {
      this.proposals.delete(index);
      if (p.term !== term) {
        this.host.count('proposals_superseded');
        p.reject(RegionError.notLeader(this.regionId, this.leader()));
      } else if (error) p.reject(error);
      else p.resolve(value);
    }
    const c = this.confChanges.get(index);
    if (c) {
      this.confChanges.delete(index);
      // Answered only once Raft has advanced past it too: the caller's next membership change
      // would otherwise be refused as "a conf change is still pending".
      const region = this.region;
      this.afterAdvance.push(() => {
        if (c.term !== term) c.reject(RegionError.notLeader(this.regionId, this.leader()));
        else c.onRegion(region);
      });
    }
  }

  private finishReads(): void {
    const applied = this.storage.appliedIndex;
    for (const [key, r] of this.reads) {
      if (r.index !== undefined && r.index <= applied) {
        this.reads.delete(key);
        r.resolve();
      }
    }
  }

  private async maybeCompactLog(): Promise<void> {
    const applied = this.storage.appliedIndex;
    const target = applied - BigInt(this.options.logRetainEntries);
    if (target - this.storage.truncatedIndex < BigInt(this.options.logCompactBatch)) return;
    await this.storage.compactLog(target);
    this.host.count('log_compactions');
  }
}

function tombstoneWrite(regionId: bigint, peerId: bigint): InternalWrite {
  const value = Buffer.alloc(8);
  value.writeBigUInt64BE(peerId);
  return { cf: 'default', op: 'put', key: tombstoneKey(regionId), value };
}

/** Why a committed command must not take effect here (its epoch or keys no longer fit), if so. */
function checkCommand(
  version: bigint,
  keys: Uint8Array[],
  region: RegionMeta,
  admin: AdminApplier | undefined,
): Error | undefined {
  if (version !== region.epoch.version) {
    // After a split, name the regions that took keys away too (the caller routes by the answer).
    return RegionError.epochNotMatch(
      { version, confVersion: 0n },
      admin?.currentRegions(region, keys) ?? [region],
    );
  }
  for (const k of keys) if (!keyInRegion(k, region)) return RegionError.keyNotInRegion(k, region);
  return undefined;
}

/** The region after a membership change: peers added, promoted, demoted or removed; conf version bumped. */
export function applyMembership(region: RegionMeta, cc: ConfChangeV2): RegionMeta {
  const context = cc.context.length > 0 ? decodeConfChangeContext(cc.context) : [];
  let peers = [...region.peers];
  for (const change of cc.changes) {
    const known = context.find((p) => p.peerId === change.nodeId);
    const existing = peers.find((p) => p.peerId === change.nodeId);
    if (change.type === ConfChangeType.RemoveNode) {
      peers = peers.filter((p) => p.peerId !== change.nodeId);
      continue;
    }
    const learner = change.type === ConfChangeType.AddLearnerNode;
    const storeId = existing?.storeId ?? known?.storeId;
    if (storeId === undefined) {
      throw new StoreError('Internal', `conf change adds peer ${change.nodeId} without naming its store`);
    }
    peers = peers.filter((p) => p.peerId !== change.nodeId);
    peers.push({ storeId, peerId: change.nodeId, learner });
  }
  peers.sort((a, b) => (a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0));
  return {
    ...region,
    peers,
    epoch: {
      ...region.epoch,
      confVersion: region.epoch.confVersion + BigInt(Math.max(1, cc.changes.length)),
    },
  };
}
