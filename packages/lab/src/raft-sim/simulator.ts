import {
  type ConfChangeSingle,
  ConfChangeTransition,
  ConfChangeType,
  type ConfState,
  decodeConfChangeV2,
  decodeMessage,
  type Entry,
  EntryType,
  emptyConfState,
  encodeMessage,
  type Message,
  MessageType,
  messageTypeName,
} from '@nokv/proto';
import {
  describeConfState,
  MemoryStorage,
  RaftAssertionError,
  RaftError,
  type RaftLogger,
  RawNode,
  type Ready,
  StateType,
  type Storage,
} from '@nokv/raftstore/raft';
import { Prng } from '../workload/prng.js';
import { InvariantChecker, type Violation } from './invariants.js';
import {
  decodeCommand,
  encodeCommand,
  type KvInput,
  type KvOutput,
  KvStateMachine,
} from './kv-state-machine.js';
import { SimDisk } from './sim-disk.js';

/** Every knob of a simulated run; all derived from the seed unless overridden. */
export interface SimOptions {
  seed: number;
  /** Events to process before the final heal-and-converge phase. */
  steps: number;
  nodes: number;
  clients: number;
  keys: number;
  preVote: boolean;
  checkQuorum: boolean;
  electionTick: number;
  heartbeatTick: number;
  maxInflightMsgs: number;
  maxSizePerMsg: number;
  /** Per-message probabilities. */
  dropRate: number;
  dupRate: number;
  /** Probability a message takes a long detour (reordering it behind later ones). */
  slowRate: number;
  /** Mean time units between fault events (partition changes, crashes). */
  faultEvery: number;
  /** Share of fault events that crash a node (the rest change the partition). */
  crashShare: number;
  /** Probability that handling a Ready is cut short by a crash at a random point. */
  midReadyCrashRate: number;
  /** Applied entries between local snapshots (then the log is compacted). */
  snapshotEvery: number;
  /** Share of reads served by ReadIndex (the rest go through the log). */
  readIndexShare: number;
  /** Mean time units between membership changes (add/remove/promote/demote, joint changes); 0 = none. */
  membershipEvery: number;
  /** Ids beyond the initial voters that membership changes may add (ids are never reused). */
  spareNodes: number;
  /**
   * A deliberate bug in the harness, to show the checks catch it: `skip-sync` never fsyncs (a
   * crash loses acknowledged writes and votes), `stale-read` answers ReadIndex reads from local
   * state without waiting for the read index.
   */
  bug?: 'skip-sync' | 'stale-read';
}

/** Derives a varied but reproducible configuration from a seed. */
export function optionsForSeed(seed: number, overrides: Partial<SimOptions> = {}): SimOptions {
  const r = new Prng(seed ^ 0x5eed);
  const nodes = r.pick([3, 3, 5]);
  const preVote = r.chance(0.7);
  return {
    seed,
    steps: 3000,
    nodes,
    clients: r.int(2, 5),
    keys: r.int(1, 4),
    preVote,
    checkQuorum: r.chance(0.6),
    electionTick: 10,
    heartbeatTick: r.int(1, 3),
    maxInflightMsgs: r.pick([1, 2, 8, 256]),
    maxSizePerMsg: r.pick([1, 200, 1 << 20]),
    dropRate: r.pick([0, 0.01, 0.05, 0.15]),
    dupRate: r.pick([0, 0.02, 0.1]),
    slowRate: r.pick([0, 0.02, 0.1]),
    faultEvery: r.pick([80, 200, 600, 1_000_000]),
    crashShare: r.pick([0, 0.3, 0.6]),
    midReadyCrashRate: r.pick([0, 0.002, 0.01]),
    snapshotEvery: r.pick([5, 20, 100]),
    readIndexShare: r.pick([0, 0.5, 1]),
    membershipEvery: r.pick([0, 0, 150, 400]),
    spareNodes: 4,
    ...overrides,
  };
}

/** One operation of the recorded history, in the checker's format. */
export interface HistoryOp {
  clientId: number;
  input: KvInput;
  output?: KvOutput;
  call: number;
  return: number;
}

export interface SimResult {
  options: SimOptions;
  violations: Violation[];
  history: HistoryOp[];
  stats: {
    time: number;
    events: number;
    messages: number;
    dropped: number;
    crashes: number;
    midReadyCrashes: number;
    tornWritesKept: number;
    snapshotsSent: number;
    snapshotsMade: number;
    leaderChanges: number;
    confChangesApplied: number;
    maxTerm: bigint;
    committed: number;
    opsOk: number;
    opsUnknown: number;
    /** Of those, how many were later found applied (and completed from the applied log). */
    opsResolved: number;
    /** Of those, how many no replica ever applied (left out of the history). */
    opsNeverApplied: number;
  };
  /** The last lines of the trace (all of it with `trace: true`), for failure reports. */
  trace: string[];
}

const TICK_UNITS = 10;
const CLIENT_TIMEOUT = 400;

type Event =
  | { kind: 'tick'; node: number }
  | { kind: 'deliver'; to: number; bytes: Uint8Array; snapshotFrom?: number }
  | { kind: 'client'; client: number }
  | { kind: 'timeout'; client: number; opKey: string }
  | { kind: 'fault' }
  | { kind: 'membership' }
  | { kind: 'restart'; node: number };

interface Scheduled {
  time: number;
  seq: number;
  event: Event;
}

/** Min-heap of events by (time, seq): equal times run in scheduling order, deterministically. */
class EventQueue {
  private heap: Scheduled[] = [];
  private seq = 0;

  push(time: number, event: Event): void {
    const item = { time, seq: this.seq++, event };
    const h = this.heap;
    h.push(item);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (less(h[p]!, item)) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = item;
  }

  pop(): Scheduled | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (!top || !last || h.length === 0) return top;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && less(h[r]!, h[l]!) ? r : l;
      if (less(last, h[c]!)) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
    return top;
  }

  get size(): number {
    return this.heap.length;
  }
}

function less(a: Scheduled, b: Scheduled): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}

interface PendingOp {
  client: number;
  processId: number;
  opKey: string;
  input: KvInput;
  call: number;
  /** ReadIndex reads: the index to wait for once known. */
  readIndex?: bigint;
  viaReadIndex: boolean;
}

interface SimNode {
  id: bigint;
  /** Running (ticking, receiving). */
  up: boolean;
  /** spare: never started; active: started (up or crashed); retired: removed and shut down for good. */
  role: 'spare' | 'active' | 'retired';
  disk: SimDisk;
  rn: RawNode;
  kv: KvStateMachine;
  applied: bigint;
  prng: Prng;
  pending: Map<string, PendingOp>;
  /** Highest commit index whose entries were reported to the checker. */
  checkedCommit: bigint;
  wasLeader: boolean;
  /** Has been in the group's configuration. */
  wasMember: boolean;
  /** The configuration as of `applied` (what a snapshot at `applied` must record). */
  confState: ConfState;
}

/**
 * The node's log as Raft reads it: the live disk, except that snapshots are made on demand at the
 * applied index (as the store will do), so one sent to a new member includes that member.
 */
class NodeStorage implements Storage {
  constructor(private readonly node: SimNode) {}
  initialState() {
    return this.node.disk.live.initialState();
  }
  entries(lo: bigint, hi: bigint, maxSizeBytes: number) {
    return this.node.disk.live.entries(lo, hi, maxSizeBytes);
  }
  term(index: bigint) {
    return this.node.disk.live.term(index);
  }
  lastIndex() {
    return this.node.disk.live.lastIndex();
  }
  firstIndex() {
    return this.node.disk.live.firstIndex();
  }
  snapshot() {
    const node = this.node;
    const snap = node.disk.live.snapshot();
    if (node.up && node.applied > snap.metadata.index) {
      node.disk.saveLocalSnapshot(node.applied, node.confState, node.kv.snapshot(), 0n);
      return node.disk.live.snapshot();
    }
    return snap;
  }
}

interface ClientState {
  processId: number;
  nextOp: number;
  leaderHint: number;
  waiting: { opKey: string; node: number } | undefined;
}

/**
 * A deterministic Raft cluster: N RawNodes over simulated disks and a simulated network, driven by
 * one seeded PRNG. Faults: message drops, duplicates, delays and reordering, partitions, crashes
 * (with torn unsynced writes) and restarts from persisted state. Clients run a KV workload whose
 * history is returned for a linearizability check; the paper's safety properties are checked as
 * it runs.
 */
export class Simulator {
  private readonly rng: Prng;
  private readonly queue = new EventQueue();
  private readonly nodes: SimNode[] = [];
  private readonly clients: ClientState[] = [];
  private readonly checker = new InvariantChecker();
  private readonly history: HistoryOp[] = [];
  /**
   * Writes whose client gave up, by command key → their history entry. The simulator sees every
   * replica apply, so when one of them is applied the entry gets the output the state machine
   * produced and, as its return time, the first moment any replica applied it (it took effect no
   * later than that). Without this, a handful of pending appends on one key make the checker's
   * search explode; with it, only writes that were never applied stay pending.
   */
  private readonly unresolved = new Map<string, HistoryOp>();
  /** Command key → the output and time of its first application on any replica. */
  private readonly firstApplied = new Map<string, { output: KvOutput; time: number }>();
  private readonly trace: string[] = [];
  private now = 0;
  private nextProcessId = 0;
  /** Node index → partition group; messages between groups are dropped. */
  private partition: number[] = [];
  private faultsEnabled = true;
  /** Index of the newest membership change any replica has applied. */
  private latestConfIndex = 0n;
  private pendingRetirements: { node: SimNode; index: bigint; voters: bigint[] }[] = [];
  private clientsEnabled = true;
  private readonly stats: SimResult['stats'] = {
    time: 0,
    events: 0,
    messages: 0,
    dropped: 0,
    crashes: 0,
    midReadyCrashes: 0,
    tornWritesKept: 0,
    snapshotsSent: 0,
    snapshotsMade: 0,
    leaderChanges: 0,
    confChangesApplied: 0,
    maxTerm: 0n,
    committed: 0,
    opsOk: 0,
    opsUnknown: 0,
    opsResolved: 0,
    opsNeverApplied: 0,
  };

  constructor(
    readonly options: SimOptions,
    private readonly fullTrace = false,
  ) {
    this.rng = new Prng(options.seed);
    const ids = Array.from({ length: options.nodes }, (_, i) => BigInt(i + 1));
    const cs: ConfState = {
      voters: ids,
      learners: [],
      votersOutgoing: [],
      learnersNext: [],
      autoLeave: false,
    };
    const slots = options.nodes + (options.membershipEvery > 0 ? options.spareNodes : 0);
    for (let i = 0; i < slots; i++) {
      const initial = i < options.nodes;
      // A spare node starts with an empty disk and no configuration: it learns it from the leader.
      const disk = new SimDisk(initial ? bootstrapStorage(cs) : new MemoryStorage());
      const node: SimNode = {
        id: BigInt(i + 1),
        up: initial,
        role: initial ? 'active' : 'spare',
        disk,
        rn: undefined as unknown as RawNode,
        kv: new KvStateMachine(),
        applied: initial ? 1n : 0n,
        prng: this.rng.fork(),
        pending: new Map(),
        checkedCommit: 0n,
        wasLeader: false,
        wasMember: initial,
        confState: initial ? cs : emptyConfState(),
      };
      node.rn = this.newRawNode(node, node.applied);
      this.nodes.push(node);
      this.partition.push(0);
      // Nodes tick out of phase with each other.
      this.queue.push(1 + this.rng.below(TICK_UNITS), { kind: 'tick', node: i });
    }
    for (let c = 0; c < options.clients; c++) {
      this.clients.push({
        processId: this.nextProcessId++,
        nextOp: 0,
        leaderHint: this.rng.below(options.nodes),
        waiting: undefined,
      });
      this.queue.push(1 + this.rng.below(50), { kind: 'client', client: c });
    }
    this.queue.push(this.faultDelay(), { kind: 'fault' });
    if (options.membershipEvery > 0) this.queue.push(this.membershipDelay(), { kind: 'membership' });
  }

  private membershipDelay(): number {
    return this.now + 1 + this.rng.below(2 * this.options.membershipEvery);
  }

  private log(line: string): void {
    const text = `t=${this.now} ${line}`;
    if (this.fullTrace) {
      this.trace.push(text);
      return;
    }
    this.trace.push(text);
    if (this.trace.length > 400) this.trace.splice(0, this.trace.length - 300);
  }

  private newRawNode(node: SimNode, applied: bigint): RawNode {
    const o = this.options;
    const logger: RaftLogger = {
      debug: () => {},
      info: (l) => this.log(`  [${node.id}] ${l}`),
      warn: (l) => this.log(`  [${node.id}] WARN ${l}`),
      error: (l) => this.log(`  [${node.id}] ERROR ${l}`),
    };
    return new RawNode({
      id: node.id,
      electionTick: o.electionTick,
      heartbeatTick: o.heartbeatTick,
      storage: new NodeStorage(node),
      applied,
      preVote: o.preVote,
      checkQuorum: o.checkQuorum,
      maxInflightMsgs: o.maxInflightMsgs,
      maxSizePerMsg: o.maxSizePerMsg,
      logger,
      random: (n) => node.prng.below(n),
    });
  }

  private faultDelay(): number {
    return this.now + 1 + this.rng.below(2 * this.options.faultEvery);
  }

  /** Runs the workload with faults, then heals everything and checks the cluster converges. */
  run(): SimResult {
    for (let i = 0; i < this.options.steps && this.checker.violations.length === 0; i++) this.processNext();
    this.converge();
    this.stats.time = this.now;
    this.stats.maxTerm = this.checker.maxTerm;
    this.stats.committed = this.checker.committedCount;
    const neverApplied = new Set(this.unresolved.values());
    this.stats.opsNeverApplied = neverApplied.size;
    return {
      options: this.options,
      violations: this.checker.violations,
      // A write still unresolved was applied by no replica before the run ended, so no completed
      // operation can have observed it: it took no effect in this history and is left out.
      history: this.history.filter((op) => !neverApplied.has(op)),
      stats: this.stats,
      trace: this.trace,
    };
  }

  private processNext(): void {
    try {
      this.processNextEvent();
    } catch (err) {
      if (!(err instanceof RaftAssertionError)) throw err;
      this.checker.assertion(err.message);
    }
  }

  private processNextEvent(): void {
    const item = this.queue.pop();
    if (!item) return;
    this.now = item.time;
    this.checker.now = this.now;
    this.stats.events++;
    const ev = item.event;
    switch (ev.kind) {
      case 'tick': {
        const node = this.nodes[ev.node]!;
        if (node.up) node.rn.tick();
        this.queue.push(this.now + TICK_UNITS, ev);
        break;
      }
      case 'deliver':
        this.deliver(ev.to, ev.bytes, ev.snapshotFrom);
        break;
      case 'client':
        this.clientStep(ev.client);
        break;
      case 'timeout':
        this.clientTimeout(ev.client, ev.opKey);
        break;
      case 'fault':
        if (this.faultsEnabled) {
          this.fault();
          this.queue.push(this.faultDelay(), ev);
        }
        break;
      case 'restart':
        this.restart(ev.node);
        break;
      case 'membership':
        if (this.faultsEnabled) {
          this.changeMembership();
          this.queue.push(this.membershipDelay(), ev);
        }
        break;
    }
    this.drainReadies();
    this.retireRemoved();
    this.observeLeaders();
  }

  // --- network ------------------------------------------------------------------------------------

  private send(from: number, m: Message): void {
    this.stats.messages++;
    const to = Number(m.to) - 1;
    const isSnapshot = m.type === MessageType.Snap;
    if (isSnapshot) this.stats.snapshotsSent++;
    if (to < 0 || to >= this.nodes.length) return;
    if (this.rng.chance(this.options.dropRate)) {
      this.stats.dropped++;
      // The transport knows a snapshot stream failed and says so (the library relies on it).
      if (isSnapshot) this.nodes[from]!.rn.reportSnapshot(m.to, true);
      return;
    }
    const bytes = encodeMessage(m);
    const copies = this.rng.chance(this.options.dupRate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const delay = this.rng.chance(this.options.slowRate) ? 20 + this.rng.below(200) : 1 + this.rng.below(6);
      const ev: Event = isSnapshot
        ? { kind: 'deliver', to, bytes, snapshotFrom: from }
        : { kind: 'deliver', to, bytes };
      this.queue.push(this.now + delay, ev);
    }
  }

  private deliver(to: number, bytes: Uint8Array, snapshotFrom?: number): void {
    const node = this.nodes[to]!;
    const m = decodeMessage(bytes);
    const from = Number(m.from) - 1;
    const reportSnapshot = (failed: boolean) => {
      const sender = snapshotFrom === undefined ? undefined : this.nodes[snapshotFrom];
      if (sender?.up) sender.rn.reportSnapshot(m.to, failed);
    };
    if (!node.up || this.partition[from] !== this.partition[to]) {
      this.stats.dropped++;
      reportSnapshot(true);
      return;
    }
    try {
      node.rn.step(m);
    } catch (err) {
      // A response from a peer this node no longer tracks, e.g. after it restored a snapshot.
      if (!(err instanceof RaftError && err.code === 'StepPeerNotFound')) throw err;
    }
    reportSnapshot(false);
  }

  // --- Ready handling -----------------------------------------------------------------------------

  private drainReadies(): void {
    for (let round = 0; round < 10; round++) {
      let any = false;
      for (let i = 0; i < this.nodes.length; i++) {
        const node = this.nodes[i]!;
        if (node.up && node.rn.hasReady()) {
          any = true;
          this.handleReady(i);
        }
      }
      if (!any) return;
    }
  }

  private handleReady(index: number): void {
    const node = this.nodes[index]!;
    const rd = node.rn.ready();
    const raftLog = node.rn.raft.raftLog;
    // The crash point, if this Ready is cut short: 0 before sync, 1 before send, 2 before apply, 3 before advance.
    const crashAt = this.rng.chance(this.options.midReadyCrashRate) ? this.rng.below(4) : -1;

    if (rd.softState) {
      this.log(`[${node.id}] ${rd.softState.raftState} lead=${rd.softState.lead} term=${node.rn.raft.term}`);
    }
    if (rd.entries.length > 0) {
      const first = rd.entries[0]!;
      const byIndex = new Map<bigint, bigint>(rd.entries.map((e) => [e.index, e.term]));
      this.checker.observeEntries(node.id, rd.entries, (e: Entry) => {
        const prev = e.index - 1n;
        const inBatch = byIndex.get(prev);
        if (inBatch !== undefined && e.index !== first.index) return inBatch;
        try {
          return raftLog.term(prev);
        } catch {
          return undefined;
        }
      });
    }
    // 1. Write (snapshot, entries, hard state), then sync if required.
    if (rd.snapshot) node.disk.write({ kind: 'snapshot', snapshot: rd.snapshot });
    if (rd.entries.length > 0) node.disk.write({ kind: 'entries', entries: rd.entries });
    if (rd.hardState) node.disk.write({ kind: 'hardState', hardState: rd.hardState });
    if (crashAt === 0) {
      this.crash(index, 'before sync');
      return;
    }
    if (rd.mustSync && this.options.bug !== 'skip-sync') {
      node.disk.sync();
      this.checker.observeDurable(node.id, node.disk.durable.currentHardState());
    }
    if (crashAt === 1) {
      this.crash(index, 'before send');
      return;
    }
    // 2. Send.
    for (const m of rd.messages) this.send(index, m);
    if (crashAt === 2) {
      this.crash(index, 'before apply');
      return;
    }
    // 3. Apply.
    this.observeCommit(node, rd);
    this.apply(node, rd);
    if (crashAt === 3) {
      this.crash(index, 'before advance');
      return;
    }
    node.rn.advance();
    this.maybeSnapshot(node);
  }

  /** Reports entries newly covered by the node's commit index to the checker. */
  private observeCommit(node: SimNode, rd: Ready): void {
    const commit = rd.hardState?.commit;
    if (commit === undefined || commit <= node.checkedCommit) return;
    const log = node.rn.raft.raftLog;
    const from = node.checkedCommit + 1n > log.firstIndex() ? node.checkedCommit + 1n : log.firstIndex();
    if (from <= commit) {
      this.checker.observeCommitted(
        node.id,
        log.slice(from, commit + 1n, Number.MAX_SAFE_INTEGER),
        node.rn.raft.term,
      );
    }
    node.checkedCommit = commit;
  }

  private apply(node: SimNode, rd: Ready): void {
    if (rd.snapshot) {
      node.kv = KvStateMachine.fromSnapshot(rd.snapshot.data);
      node.applied = rd.snapshot.metadata.index;
      node.confState = rd.snapshot.metadata.confState;
      this.checker.observeApplied(node.id, node.applied, this.digest(node), 'snapshot');
      this.log(`[${node.id}] installed snapshot at ${node.applied}`);
    }
    for (const e of rd.committedEntries) {
      if (e.type === EntryType.Normal && e.data.length > 0) {
        const cmd = decodeCommand(e.data);
        const output = node.kv.apply(cmd.input);
        const key = `${cmd.clientId}:${cmd.opId}`;
        const op = node.pending.get(key);
        if (op && !op.viaReadIndex) this.complete(node, op, output);
        if (!this.firstApplied.has(key)) this.firstApplied.set(key, { output, time: this.now });
        const limbo = this.unresolved.get(key);
        if (limbo !== undefined) {
          this.unresolved.delete(key);
          limbo.output = output;
          limbo.return = this.now;
          this.stats.opsResolved++;
        }
      } else if (e.type === EntryType.ConfChangeV2) {
        this.applyConfChange(node, e);
      }
      node.applied = e.index;
      this.checker.observeApplied(node.id, e.index, this.digest(node), 'entry');
    }
    for (const rs of rd.readStates) {
      const key = Buffer.from(rs.requestCtx).toString();
      const op = node.pending.get(key);
      if (op?.viaReadIndex) op.readIndex = rs.index;
    }
    for (const op of [...node.pending.values()]) {
      if (op.viaReadIndex && op.readIndex !== undefined && op.readIndex <= node.applied) {
        this.complete(node, op, node.kv.get(op.input.key));
      }
    }
  }

  /** The replica's state at its applied index: data and configuration. */
  private digest(node: SimNode): string {
    return `${node.kv.digest()} ${describeConfState(node.confState)}`;
  }

  private maybeSnapshot(node: SimNode): void {
    const snapIndex = node.disk.live.snapshot().metadata.index;
    if (node.applied - snapIndex < BigInt(this.options.snapshotEvery)) return;
    const keep = BigInt(this.rng.below(5));
    const compactTo = node.applied - keep;
    node.disk.saveLocalSnapshot(node.applied, node.confState, node.kv.snapshot(), compactTo);
    this.stats.snapshotsMade++;
  }

  private observeLeaders(): void {
    for (const node of this.nodes) {
      if (!node.up) continue;
      const r = node.rn.raft;
      const leader = r.state === StateType.Leader;
      if (leader) {
        this.checker.observeLeader(node.id, r.term);
        if (!node.wasLeader) {
          this.stats.leaderChanges++;
          const snap = node.disk.live.snapshot().metadata.index;
          const fi = r.raftLog.firstIndex();
          this.checker.checkLeaderCompleteness(
            node.id,
            r.term,
            (i) => {
              try {
                return r.raftLog.term(i);
              } catch {
                return undefined;
              }
            },
            fi - 1n > snap ? fi - 1n : snap,
          );
        }
      }
      node.wasLeader = leader;
    }
  }

  // --- faults ---------------------------------------------------------------------------------------

  private fault(): void {
    const n = this.nodes.length;
    const leader = this.nodes.findIndex((x) => x.up && x.rn.raft.state === StateType.Leader);
    if (this.rng.chance(this.options.crashShare)) {
      const up = this.nodes.map((x, i) => (x.up ? i : -1)).filter((i) => i >= 0);
      const down = this.nodes.filter((x) => x.role === 'active' && !x.up).length;
      const active = up.length + down;
      // Usually keep a quorum alive so the run makes progress; sometimes take it away. Leaders are
      // the interesting victims (in-flight entries, elections over divergent logs).
      if (up.length > 0 && (down < Math.floor((active - 1) / 2) || this.rng.chance(0.1))) {
        this.crash(leader >= 0 && this.rng.chance(0.5) ? leader : this.rng.pick(up), 'fault');
      }
      return;
    }
    const kind = this.rng.below(4);
    if (kind === 0) {
      this.partition = this.partition.map(() => 0);
      this.log('network healed');
    } else if (kind === 1) {
      const victim = leader >= 0 && this.rng.chance(0.5) ? leader : this.rng.below(n);
      this.partition = this.partition.map((_, i) => (i === victim ? 1 : 0));
      this.log(`node ${victim + 1} isolated`);
    } else {
      this.partition = this.partition.map(() => this.rng.below(2));
      this.log(`partition ${this.partition.join('')}`);
    }
  }

  private crash(index: number, why: string): void {
    const node = this.nodes[index]!;
    if (!node.up) return;
    node.up = false;
    this.stats.crashes++;
    if (why.startsWith('before')) this.stats.midReadyCrashes++;
    const kept = node.disk.crash(this.rng);
    this.stats.tornWritesKept += kept;
    this.log(`[${node.id}] CRASH (${why}); kept ${kept} unsynced writes`);
    for (const op of [...node.pending.values()]) this.giveUp(node, op);
    this.queue.push(this.now + 20 + this.rng.below(400), { kind: 'restart', node: index });
  }

  private restart(index: number): void {
    const node = this.nodes[index]!;
    if (node.up || node.role !== 'active') return;
    const snap = node.disk.live.snapshot();
    node.kv = KvStateMachine.fromSnapshot(snap.data);
    node.applied = snap.metadata.index;
    node.confState = snap.metadata.confState;
    node.checkedCommit = snap.metadata.index;
    node.rn = this.newRawNode(node, node.applied);
    node.up = true;
    node.wasLeader = false;
    this.checker.observeApplied(node.id, node.applied, this.digest(node), 'snapshot');
    this.log(
      `[${node.id}] RESTART from snapshot ${node.applied}, term ${node.rn.raft.term}, last ${node.rn.raft.raftLog.lastIndex()}`,
    );
  }

  // --- membership ---------------------------------------------------------------------------------

  private applyConfChange(node: SimNode, e: Entry): void {
    const cc = decodeConfChangeV2(e.data);
    let cs: ConfState;
    try {
      cs = node.rn.applyConfChange(cc);
    } catch (err) {
      // Rejected alike by every replica; the configuration is unchanged.
      if (err instanceof RaftError && err.code === 'InvalidConfChange') {
        this.log(`[${node.id}] conf change at ${e.index} rejected: ${err.message}`);
        return;
      }
      throw err;
    }
    this.stats.confChangesApplied++;
    node.confState = cs;
    // The first replica to apply a change proves it committed; later replicas replaying it (or a
    // restarted one) change nothing here.
    if (e.index <= this.latestConfIndex) return;
    this.latestConfIndex = e.index;
    const members = new Set([...cs.voters, ...cs.votersOutgoing, ...cs.learners, ...cs.learnersNext]);
    for (const other of this.nodes) {
      if (other.role === 'active' && other.wasMember && !members.has(other.id)) {
        this.pendingRetirements.push({ node: other, index: e.index, voters: cs.voters });
      }
    }
    for (const id of members) {
      const n = this.nodes[Number(id) - 1];
      if (n) n.wasMember = true;
    }
  }

  /**
   * The control plane shuts down a removed member once every voter of the new configuration
   * durably knows the removal committed (its persisted commit index or snapshot covers it).
   * Earlier is unsafe for liveness: a voter that has not learned the removal committed - or
   * forgot it in a crash, commit-only hard states not being synced - still needs the removed
   * node's vote. A removed node left running forever would keep campaigning and disrupt the group.
   */
  private retireRemoved(): void {
    if (this.pendingRetirements.length === 0) return;
    this.pendingRetirements = this.pendingRetirements.filter((p) => {
      if (p.node.role !== 'active') return false;
      // Re-added since (a later change made it a member again)?
      const ready = p.voters.every((id) => {
        const v = this.nodes[Number(id) - 1]!;
        const durable = v.disk.durable;
        const commit = durable.currentHardState().commit;
        const snap = durable.snapshot().metadata.index;
        return v.role !== 'active' || (commit > snap ? commit : snap) >= p.index;
      });
      if (ready) this.retire(p.node, p.index);
      return !ready;
    });
  }

  private retire(node: SimNode, index: bigint): void {
    node.role = 'retired';
    node.up = false;
    this.log(`[${node.id}] RETIRED (removed at index ${index})`);
    for (const op of [...node.pending.values()]) this.giveUp(node, op);
  }

  /** Proposes a random membership change through the current leader. */
  private changeMembership(): void {
    const leader = this.nodes.find((n) => n.up && n.rn.raft.state === StateType.Leader);
    if (!leader) return;
    const cs = leader.rn.raft.trk.confState();
    const joint = cs.votersOutgoing.length > 0;
    const voters = cs.voters;
    const learners = cs.learners;
    const spare = this.nodes.find((n) => n.role === 'spare');
    const changes: ConfChangeSingle[] = [];
    let transition: ConfChangeTransition = ConfChangeTransition.Auto;
    const add = (type: ConfChangeType, nodeId: bigint) => changes.push({ type, nodeId });
    if (joint) {
      // Only leaving is allowed; an auto-leave config leaves by itself.
      if (cs.autoLeave) return;
    } else {
      // The leader may not remove or demote itself (the library refuses): like a real control
      // plane, move leadership away first; a later change can then remove the old leader.
      const others = voters.filter((id) => id !== leader.id);
      const roll = this.rng.below(8);
      if (roll === 0 && spare) add(ConfChangeType.AddLearnerNode, this.start(spare));
      else if (roll === 1 && learners.length > 0) add(ConfChangeType.AddNode, this.rng.pick(learners));
      else if (roll === 2 && spare) add(ConfChangeType.AddNode, this.start(spare));
      else if (roll === 3 && others.length > 0) add(ConfChangeType.RemoveNode, this.rng.pick(others));
      else if (roll === 4 && learners.length > 0) add(ConfChangeType.RemoveNode, this.rng.pick(learners));
      else if (roll === 5 && others.length > 0) add(ConfChangeType.AddLearnerNode, this.rng.pick(others));
      else if (roll === 6 && others.length > 0) {
        const to = this.rng.pick(others);
        leader.rn.transferLeader(to);
        this.log(`[${leader.id}] transferring leadership to ${to}`);
        return;
      } else if (roll === 7 && others.length > 0) {
        // Replace a voter through a joint configuration, left automatically or explicitly.
        add(ConfChangeType.RemoveNode, this.rng.pick(others));
        if (learners.length > 0 && this.rng.chance(0.5)) add(ConfChangeType.AddNode, this.rng.pick(learners));
        else if (spare) add(ConfChangeType.AddNode, this.start(spare));
        transition = this.rng.pick([
          ConfChangeTransition.Auto,
          ConfChangeTransition.JointImplicit,
          ConfChangeTransition.JointExplicit,
        ]);
      } else return;
    }
    try {
      leader.rn.proposeConfChange({ transition, changes, context: new Uint8Array(0) });
      this.log(`[${leader.id}] proposed conf change ${describeChanges(changes)} transition=${transition}`);
    } catch (err) {
      if (!(err instanceof RaftError)) throw err;
      this.log(`[${leader.id}] conf change refused: ${err.message}`);
    }
  }

  /** Starts a spare node with an empty disk; it joins once the leader reaches it. */
  private start(node: SimNode): bigint {
    node.role = 'active';
    node.up = true;
    node.rn = this.newRawNode(node, 0n);
    this.log(`[${node.id}] STARTED (empty)`);
    return node.id;
  }

  // --- clients --------------------------------------------------------------------------------------

  private clientStep(c: number): void {
    const client = this.clients[c]!;
    if (!this.clientsEnabled || client.waiting) return;
    const o = this.options;
    const target = this.nodes[client.leaderHint]!;
    const retry = () => this.queue.push(this.now + 5 + this.rng.below(20), { kind: 'client', client: c });
    if (!target.up || target.rn.raft.state !== StateType.Leader) {
      const hint = target.up ? Number(target.rn.leader()) - 1 : -1;
      client.leaderHint = hint >= 0 ? hint : this.rng.below(this.nodes.length);
      retry();
      return;
    }
    const key = `k${this.rng.below(o.keys)}`;
    const opId = client.nextOp++;
    const value = `${client.processId}.${opId}`;
    const roll = this.rng.next();
    const input: KvInput =
      roll < 0.4
        ? { op: 'get', key }
        : roll < 0.65
          ? { op: 'put', key, value }
          : roll < 0.9
            ? { op: 'append', key, value: `${value},` }
            : this.casInput(target, key, value);
    const opKey = `${client.processId}:${opId}`;
    const viaReadIndex = input.op === 'get' && this.rng.chance(o.readIndexShare);
    const op: PendingOp = {
      client: c,
      processId: client.processId,
      opKey,
      input,
      call: this.now,
      viaReadIndex,
    };
    try {
      if (viaReadIndex) target.rn.readIndex(Buffer.from(opKey));
      else target.rn.propose(encodeCommand({ clientId: client.processId, opId, input }));
    } catch (err) {
      if (err instanceof RaftError && err.code === 'ProposalDropped') {
        // Never appended: it has no effect and is left out of the history.
        retry();
        return;
      }
      throw err;
    }
    target.pending.set(opKey, op);
    client.waiting = { opKey, node: client.leaderHint };
    if (viaReadIndex && o.bug === 'stale-read') {
      this.complete(target, op, target.kv.get(key));
      return;
    }
    this.queue.push(this.now + CLIENT_TIMEOUT, { kind: 'timeout', client: c, opKey });
  }

  /** A compare-and-set that sometimes expects the current value (as this replica sees it). */
  private casInput(node: SimNode, key: string, value: string): KvInput {
    const current = node.kv.get(key).value;
    if (this.rng.chance(0.7))
      return current === undefined ? { op: 'cas', key, value } : { op: 'cas', key, value, expected: current };
    return { op: 'cas', key, value, expected: 'nope' };
  }

  private complete(node: SimNode, op: PendingOp, output: KvOutput): void {
    node.pending.delete(op.opKey);
    const client = this.clients[op.client]!;
    if (client.waiting?.opKey !== op.opKey) return;
    client.waiting = undefined;
    this.history.push({ clientId: op.processId, input: op.input, output, call: op.call, return: this.now });
    this.stats.opsOk++;
    this.queue.push(this.now + this.rng.below(30), { kind: 'client', client: op.client });
  }

  /** The client stops waiting: a write's outcome is unknown, a read is simply dropped. */
  private giveUp(node: SimNode, op: PendingOp): void {
    node.pending.delete(op.opKey);
    const client = this.clients[op.client]!;
    if (client.waiting?.opKey !== op.opKey) return;
    client.waiting = undefined;
    if (op.input.op !== 'get') {
      const entry: HistoryOp = {
        clientId: op.processId,
        input: op.input,
        call: op.call,
        return: Number.POSITIVE_INFINITY,
      };
      const applied = this.firstApplied.get(op.opKey);
      if (applied !== undefined) {
        // Some replica applied it already; only the replica the client waited on is gone.
        entry.output = applied.output;
        entry.return = applied.time;
        this.stats.opsResolved++;
      } else {
        this.unresolved.set(op.opKey, entry);
      }
      this.history.push(entry);
      this.stats.opsUnknown++;
      // A process with an operation in limbo never issues another: continue as a new process.
      client.processId = this.nextProcessId++;
    }
    this.queue.push(this.now + this.rng.below(30), { kind: 'client', client: op.client });
  }

  private clientTimeout(c: number, opKey: string): void {
    const client = this.clients[c]!;
    if (client.waiting?.opKey !== opKey) return;
    const node = this.nodes[client.waiting.node]!;
    // The node it talked to may be a deposed leader cut off from the rest: try another.
    client.leaderHint = this.rng.below(this.nodes.length);
    const op = node.pending.get(opKey);
    if (op) this.giveUp(node, op);
    else client.waiting = undefined;
  }

  // --- the end --------------------------------------------------------------------------------------

  /**
   * Heals the network, restarts every node and stops the faults; a leader must then emerge, a
   * fresh write must commit, and every replica must reach the same applied state.
   */
  private converge(): void {
    if (this.checker.violations.length > 0) return;
    this.faultsEnabled = false;
    this.clientsEnabled = false;
    this.partition = this.partition.map(() => 0);
    for (let i = 0; i < this.nodes.length; i++) this.queue.push(this.now + 1, { kind: 'restart', node: i });
    const saved = { ...this.options };
    Object.assign(this.options, { dropRate: 0, dupRate: 0, slowRate: 0, midReadyCrashRate: 0 });
    const deadline = this.now + 100 * TICK_UNITS * this.options.electionTick;
    let proposedAt = Number.NEGATIVE_INFINITY;
    while (this.now < deadline && this.queue.size > 0 && this.checker.violations.length === 0) {
      this.processNext();
      const leader = this.nodes.find((n) => n.up && n.rn.raft.state === StateType.Leader);
      if (!leader) continue;
      const cs = leader.rn.raft.trk.confState();
      const members = [...cs.voters, ...cs.votersOutgoing, ...cs.learners, ...cs.learnersNext].map(
        (id) => this.nodes[Number(id) - 1]!,
      );
      const done = members.every((n) => n.up && n.kv.get('final').value === 'x');
      if (!done || cs.votersOutgoing.length > 0) {
        // Re-propose now and then: a proposal can be lost with a leader change (it is idempotent).
        if (this.now - proposedAt > 30 * TICK_UNITS) {
          proposedAt = this.now;
          try {
            if (cs.votersOutgoing.length > 0 && !cs.autoLeave) {
              leader.rn.proposeConfChange({
                transition: ConfChangeTransition.Auto,
                changes: [],
                context: new Uint8Array(0),
              });
            }
            leader.rn.propose(
              encodeCommand({ clientId: -1, opId: 0, input: { op: 'put', key: 'final', value: 'x' } }),
            );
          } catch (err) {
            if (!(err instanceof RaftError)) throw err;
          }
        }
        continue;
      }
      const target = leader.applied;
      if (
        members.every((n) => n.applied === target) &&
        new Set(members.map((n) => n.kv.digest())).size === 1
      ) {
        Object.assign(this.options, saved);
        return;
      }
    }
    Object.assign(this.options, saved);
    const state = this.nodes
      .filter((n) => n.role !== 'spare')
      .map(
        (n) =>
          `${n.id}:${n.role === 'retired' ? 'retired' : n.up ? n.rn.raft.state : 'down'} term=${n.up ? n.rn.raft.term : '-'} applied=${n.applied} config=${n.up ? n.rn.raft.trk.config.toString() : '-'}`,
      )
      .join(', ');
    this.checker.liveness(`cluster did not converge within ${deadline} after healing: ${state}`);
  }
}

/**
 * The initial members' disk: a snapshot at index 1 (term 1) holding the initial configuration and
 * an empty state. Members added later start empty and must be sent a snapshot, which carries the
 * configuration they join.
 */
function bootstrapStorage(cs: ConfState): MemoryStorage {
  const s = new MemoryStorage();
  s.applySnapshot({
    data: new KvStateMachine().snapshot(),
    metadata: { confState: cs, index: 1n, term: 1n },
  });
  return s;
}

function describeChanges(changes: readonly ConfChangeSingle[]): string {
  const letter = ['v', 'r', 'u', 'l'];
  return changes.map((c) => `${letter[c.type]}${c.nodeId}`).join(' ') || '(leave joint)';
}

export { messageTypeName };
