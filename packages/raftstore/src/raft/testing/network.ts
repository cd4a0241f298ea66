import {
  type ConfState,
  decodeConfChangeV2,
  type Entry,
  EntryType,
  emptyConfState,
  type HardState,
  type Message,
  MessageType,
} from '@nokv/proto';
import type { RaftConfig } from '../config.js';
import { RaftError } from '../errors.js';
import { MemoryStorage } from '../memory-storage.js';
import { Raft, StateType } from '../raft.js';
import { RawNode } from '../raw-node.js';

// Test support for the Raft library (not part of its API): a seeded random source, one-node
// helpers for driving a bare `Raft`, and a tiny in-memory network of RawNodes that handles Ready
// batches the way an application must (persist, send, apply, advance) and delivers messages with
// optional losses and partitions. Deterministic for a given seed.

/** A deterministic uniform integer source in [0, n) (mulberry32), usable as RaftConfig.random. */
export function seededRandom(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n: number) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

/** A ConfState with the given voters (and learners). */
export function confState(voters: readonly bigint[], learners: readonly bigint[] = []): ConfState {
  return { ...emptyConfState(), voters: [...voters], learners: [...learners] };
}

/** Entries with the given terms at indexes first, first+1, ... (empty payloads). */
export function entriesWithTerms(terms: readonly number[], first = 1n): Entry[] {
  return terms.map((t, i) => ({
    term: BigInt(t),
    index: first + BigInt(i),
    type: EntryType.Normal,
    data: new Uint8Array(0),
  }));
}

/** Config for the paper's plain Raft: no PreVote, no CheckQuorum, election timeout exactly `electionTick`. */
export const PLAIN_RAFT = {
  electionTick: 10,
  heartbeatTick: 1,
  preVote: false,
  checkQuorum: false,
  random: () => 0,
} as const satisfies Partial<RaftConfig>;

/** Extra set-up for newTestRaft / newTestStorage. */
export interface TestStorageOptions {
  /** Terms of the entries the stored log starts with (indexes 1, 2, ...). */
  log?: readonly number[];
  /** The persisted hard state (term, vote, commit) the node restarts with. */
  hardState?: HardState;
}

/** A MemoryStorage bootstrapped with `voters`, optionally holding a log and a hard state. */
export function newTestStorage(voters: readonly bigint[], opts: TestStorageOptions = {}): MemoryStorage {
  const storage = MemoryStorage.withConfState(confState(voters));
  if (opts.log) storage.append(entriesWithTerms(opts.log));
  if (opts.hardState) storage.setHardState(opts.hardState);
  return storage;
}

/**
 * A bare Raft node over newTestStorage(voters, overrides). Defaults to PLAIN_RAFT; `overrides`
 * replace any config field (or give the storage outright).
 */
export function newTestRaft(
  id: bigint,
  voters: readonly bigint[],
  overrides: Partial<RaftConfig> & TestStorageOptions = {},
): Raft {
  const { log, hardState, storage, ...cfg } = overrides;
  return new Raft({
    ...PLAIN_RAFT,
    ...cfg,
    id,
    storage: storage ?? newTestStorage(voters, { log, hardState }),
  });
}

/** Takes and clears the messages a bare Raft has queued. */
export function readMessages(r: Raft): Message[] {
  const msgs = r.msgs;
  r.msgs = [];
  return msgs;
}

/** One member of a Network. */
export interface NetworkNode {
  readonly id: bigint;
  rawNode: RawNode;
  readonly storage: MemoryStorage;
  /** The application's state: every committed entry applied so far, in order (index i+1 at i). */
  applied: Entry[];
  /** Index applied so far (the last applied entry, or an installed snapshot). */
  appliedIndex: bigint;
}

export interface NetworkOptions {
  /** Config shared by all nodes (id and storage are filled in). Defaults to PLAIN_RAFT. */
  config?: Partial<Omit<RaftConfig, 'id' | 'storage'>>;
  /** Pre-built storages (e.g. with preloaded logs); other nodes get a fresh one listing `ids` as voters. */
  storages?: ReadonlyMap<bigint, MemoryStorage>;
  /** Seeds message drops and reordering, and (unless config.random is given) election timeouts. */
  seed?: number;
}

const linkKey = (from: bigint, to: bigint) => `${from}->${to}`;

/**
 * RawNodes connected by an in-memory network. Messages sent by a node are queued in `inFlight`
 * once its Ready is handled, and delivered by `deliver`/`stabilize`. Messages to ids that are not
 * members (a "black hole" node), across cut links, or chosen by `dropRate` are lost.
 */
export class Network {
  readonly nodes = new Map<bigint, NetworkNode>();
  /** Sent and not yet delivered, oldest first. */
  inFlight: Message[] = [];
  /** Probability that a delivered message is lost instead. */
  dropRate = 0;
  /** Snapshots delivered so far. */
  snapshotsSent = 0;
  /** Deliver queued messages in random order (Raft must tolerate reordering). */
  shuffle = false;
  readonly rng: (n: number) => number;
  private readonly cut = new Set<string>();
  /** Application states captured by `compact`, by the snapshot data that names them. */
  private readonly snapshotStates = new Map<string, Entry[]>();
  private readonly config: Partial<Omit<RaftConfig, 'id' | 'storage'>>;

  constructor(
    readonly ids: readonly bigint[],
    opts: NetworkOptions = {},
  ) {
    const seed = opts.seed ?? 1;
    this.rng = seededRandom(seed);
    this.config = opts.config ?? PLAIN_RAFT;
    for (const id of ids) {
      const storage = opts.storages?.get(id) ?? MemoryStorage.withConfState(confState(ids));
      const rawNode = this.newRawNode(id, storage, 0n, seed * 7919 + Number(id));
      this.nodes.set(id, { id, storage, applied: [], appliedIndex: 0n, rawNode });
    }
  }

  private newRawNode(id: bigint, storage: MemoryStorage, applied: bigint, seed: number): RawNode {
    const random = this.config.random ?? seededRandom(seed);
    return new RawNode({ ...PLAIN_RAFT, ...this.config, random, id, storage, applied });
  }

  node(id: bigint): NetworkNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id} in the network`);
    return n;
  }

  raft(id: bigint): Raft {
    return this.node(id).rawNode.raft;
  }

  /** Handles `id`'s Ready if it has one: persist, queue messages, apply, advance. */
  processReady(id: bigint): boolean {
    const n = this.node(id);
    if (!n.rawNode.hasReady()) return false;
    const rd = n.rawNode.ready();
    if (rd.snapshot) {
      n.storage.applySnapshot(rd.snapshot);
      n.applied = [...this.snapshotState(rd.snapshot.data)];
      n.appliedIndex = rd.snapshot.metadata.index;
    }
    if (rd.entries.length > 0) n.storage.append(rd.entries);
    if (rd.hardState) n.storage.setHardState(rd.hardState);
    this.inFlight.push(...rd.messages);
    for (const e of rd.committedEntries) {
      n.applied.push(e);
      n.appliedIndex = e.index;
      if (e.type === EntryType.ConfChangeV2) n.rawNode.applyConfChange(decodeConfChangeV2(e.data));
    }
    n.rawNode.advance();
    return true;
  }

  /** Handles every node's Ready; true if any had one. */
  processReadies(): boolean {
    let any = false;
    for (const id of this.nodes.keys()) any = this.processReady(id) || any;
    return any;
  }

  /** Delivers (or loses) every message queued now; ones sent meanwhile wait. Returns how many arrived. */
  deliver(): number {
    const batch = this.inFlight;
    this.inFlight = [];
    if (this.shuffle) {
      for (let i = batch.length - 1; i > 0; i--) {
        const j = this.rng(i + 1);
        [batch[i], batch[j]] = [batch[j]!, batch[i]!];
      }
    }
    let arrived = 0;
    for (const m of batch) if (this.deliverOne(m)) arrived++;
    return arrived;
  }

  /**
   * Steps one message into its recipient unless the network loses it. Like a real transport, it
   * tells the sender whether a snapshot got through (RawNode.reportSnapshot).
   */
  deliverOne(m: Message): boolean {
    const arrived = this.tryDeliver(m);
    if (m.type === MessageType.Snap) {
      if (arrived) this.snapshotsSent++;
      this.nodes.get(m.from)?.rawNode.reportSnapshot(m.to, !arrived);
    }
    return arrived;
  }

  private tryDeliver(m: Message): boolean {
    const n = this.nodes.get(m.to);
    if (!n || this.cut.has(linkKey(m.from, m.to))) return false;
    if (this.dropRate > 0 && this.rng(1_000_000) < this.dropRate * 1_000_000) return false;
    try {
      n.rawNode.step(m);
    } catch (err) {
      // A real transport drops responses from peers the node no longer tracks.
      if (err instanceof RaftError && err.code === 'StepPeerNotFound') return false;
      throw err;
    }
    return true;
  }

  /**
   * Takes a snapshot of `id`'s applied state and compacts its log up to it, so followers that
   * lag behind must be sent the snapshot. Returns false if there is nothing new to compact.
   */
  compact(id: bigint): boolean {
    const n = this.node(id);
    if (n.appliedIndex <= n.storage.snapshot().metadata.index || n.appliedIndex < n.storage.firstIndex()) {
      return false;
    }
    const key = `${id}@${n.appliedIndex}#${this.snapshotStates.size}`;
    this.snapshotStates.set(key, [...n.applied]);
    const cs = n.rawNode.raft.trk.confState();
    n.storage.createSnapshot(n.appliedIndex, cs, new TextEncoder().encode(key));
    n.storage.compact(n.appliedIndex);
    return true;
  }

  /** Alternates Ready handling and delivery until nothing is left to do. */
  stabilize(maxRounds = 1000): void {
    for (let i = 0; i < maxRounds; i++) {
      const worked = this.processReadies();
      if (!worked && this.inFlight.length === 0) return;
      this.deliver();
    }
    throw new Error(`network did not stabilize within ${maxRounds} rounds`);
  }

  /** Injects messages (as if received from the network) and stabilizes. */
  send(...msgs: Message[]): void {
    this.processReadies();
    this.inFlight.push(...msgs);
    this.stabilize();
  }

  /** Ticks one node `n` times. */
  tick(id: bigint, n = 1): void {
    for (let i = 0; i < n; i++) this.node(id).rawNode.tick();
  }

  /** Makes `id` campaign and stabilizes. */
  elect(id: bigint): void {
    this.node(id).rawNode.campaign();
    this.stabilize();
  }

  /** Loses every message between `a` and `b`, both ways. */
  cutLink(a: bigint, b: bigint): void {
    this.cut.add(linkKey(a, b));
    this.cut.add(linkKey(b, a));
  }

  /** Cuts `id` off from every other member. */
  isolate(id: bigint): void {
    for (const other of this.ids) if (other !== id) this.cutLink(id, other);
  }

  /** Restores every link (the drop rate is unchanged). */
  heal(): void {
    this.cut.clear();
  }

  /**
   * Simulates a crash and restart of `id`: its unpersisted state (unstable entries, volatile
   * state) is lost and it reloads from its storage. The application's state machine is volatile
   * too: it is rebuilt from the latest snapshot and the committed entries after it are applied
   * again (re-applying membership changes, which the stored ConfState predates).
   */
  restart(id: bigint): void {
    const n = this.node(id);
    const snap = n.storage.snapshot();
    n.applied = snap.metadata.index === 0n ? [] : [...this.snapshotState(snap.data)];
    n.appliedIndex = snap.metadata.index;
    n.rawNode = this.newRawNode(id, n.storage, n.appliedIndex, this.rng(1 << 30));
  }

  private snapshotState(data: Uint8Array): Entry[] {
    const state = this.snapshotStates.get(new TextDecoder().decode(data));
    if (!state) throw new Error('a snapshot the network did not take');
    return state;
  }

  /** Ids of the nodes that currently believe they lead, with their terms. */
  leaders(): { id: bigint; term: bigint }[] {
    const out: { id: bigint; term: bigint }[] = [];
    for (const [id, n] of this.nodes) {
      if (n.rawNode.raft.state === StateType.Leader) out.push({ id, term: n.rawNode.raft.term });
    }
    return out;
  }
}
