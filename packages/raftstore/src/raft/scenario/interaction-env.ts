import {
  type ConfChangeSingle,
  ConfChangeTransition,
  ConfChangeType,
  type ConfState,
  decodeConfChangeV2,
  decodeMessage,
  EntryType,
  encodeMessage,
  type Message,
  messageTypeName,
  type Snapshot,
} from '@nokv/proto';
import {
  describeData,
  describeEntry,
  describeHardState,
  describeMessage,
  describeSnapshot,
} from '../describe.js';
import { RaftAssertionError, RaftError } from '../errors.js';
import type { RaftLogger } from '../logger.js';
import { MemoryStorage } from '../memory-storage.js';
import { RawNode, type Ready } from '../raw-node.js';
import { ReadOnlyOption } from '../read-only.js';
import type { CommandArg, TestCase } from './datadriven.js';

const LEVELS = ['debug', 'info', 'warn', 'error', 'none'] as const;
type Level = (typeof LEVELS)[number];

interface EnvNode {
  id: bigint;
  rn: RawNode;
  storage: MemoryStorage;
  /** Applied payloads, the state a snapshot captures. */
  applied: string[];
  config: NodeOptions;
}

interface NodeOptions {
  preVote: boolean;
  checkQuorum: boolean;
  lease: boolean;
  maxInflight: number;
  maxSizePerMsg: number;
  maxCommittedSizePerReady: number;
  maxUncommittedSize: number;
  stepDownOnRemoval: boolean;
  disableForwarding: boolean;
}

/** Thrown for a bad command in a scenario file; reported as the command's output. */
class CommandError extends Error {}

/**
 * Drives a group of RawNodes through scenario-file commands (campaign, propose, process-ready,
 * deliver-msgs, stabilize, ...) and renders what happened as text. Messages travel through the
 * protobuf codec, as on the wire. Randomness is fixed: election timeouts are exactly electionTick.
 */
export class InteractionEnv {
  private readonly nodes = new Map<bigint, EnvNode>();
  /** Messages sent and not yet delivered, in send order. */
  private queue: Message[] = [];
  private out: string[] = [];
  private indent = '';
  private level: Level = 'info';
  /** Node id → partition number; messages between different partitions are dropped. */
  private partition = new Map<bigint, number>();
  readonly electionTick = 3;
  readonly heartbeatTick = 1;

  /** Runs one command and returns its output (never empty: "ok" stands for nothing). */
  run(tc: TestCase): string {
    this.out = [];
    this.indent = '';
    try {
      this.dispatch(tc);
    } catch (err) {
      if (err instanceof CommandError) this.print(`error: ${err.message}`);
      else if (err instanceof RaftError) this.print(`error: ${describeRaftError(err)}`);
      else if (err instanceof RaftAssertionError) this.print(`assertion failed: ${err.message}`);
      else throw err;
    }
    const text = this.out.join('\n').replace(/\n+$/, '');
    return text === '' ? 'ok' : text;
  }

  private print(line: string): void {
    this.out.push(this.indent + line);
  }

  private logger(): RaftLogger {
    const at = (lvl: Level, tag: string) => (line: string) => {
      if (LEVELS.indexOf(lvl) >= LEVELS.indexOf(this.level)) this.print(`${tag} ${line}`);
    };
    return {
      debug: at('debug', 'DEBUG'),
      info: at('info', 'INFO'),
      warn: at('warn', 'WARN'),
      error: at('error', 'ERROR'),
    };
  }

  private dispatch(tc: TestCase): void {
    const a = new Args(tc.args);
    switch (tc.command) {
      case 'log-level': {
        const lvl = a.positional(0);
        if (!LEVELS.includes(lvl as Level)) throw new CommandError(`unknown log level '${lvl}'`);
        this.level = lvl as Level;
        return;
      }
      case 'add-nodes':
        this.addNodes(a);
        return;
      case 'campaign':
        this.node(a.positionalId(0)).rn.campaign();
        return;
      case 'propose':
        this.node(a.positionalId(0)).rn.propose(Buffer.from(a.positional(1)));
        return;
      case 'propose-conf-change':
        this.proposeConfChange(a);
        return;
      case 'process-ready':
        for (const id of a.positionalIds()) this.processReady(id);
        return;
      case 'deliver-msgs':
        this.deliver(a.positionalIds(), new Set(a.ids('drop')), a.value('type'));
        return;
      case 'stabilize':
        this.stabilize(a.positionalIds());
        return;
      case 'tick-heartbeat':
        this.tick(a.positionalId(0), this.heartbeatTick);
        return;
      case 'tick-election':
        this.tick(a.positionalId(0), this.electionTick);
        return;
      case 'tick':
        this.tick(a.positionalId(0), Number(a.value('n') ?? '1'));
        return;
      case 'raft-log':
        this.raftLog(a.positionalId(0));
        return;
      case 'raft-state':
        this.raftState();
        return;
      case 'status':
        this.status(a.positionalId(0));
        return;
      case 'transfer-leadership':
        this.node(a.id('from')).rn.transferLeader(a.id('to'));
        return;
      case 'read-index':
        this.node(a.positionalId(0)).rn.readIndex(Buffer.from(a.positional(1)));
        return;
      case 'compact':
        this.node(a.positionalId(0)).storage.compact(BigInt(a.positional(1)));
        return;
      case 'snapshot':
        this.snapshot(a.positionalId(0));
        return;
      case 'report-unreachable':
        this.node(a.positionalId(0)).rn.reportUnreachable(a.positionalId(1));
        return;
      case 'report-snapshot':
        this.node(a.positionalId(0)).rn.reportSnapshot(a.positionalId(1), a.has('failed'));
        return;
      case 'restart':
        this.restart(a.positionalId(0));
        return;
      case 'write-log':
        this.writeLog(a);
        return;
      case 'partition':
        this.setPartition(tc.args);
        return;
      case 'heal':
        this.partition.clear();
        return;
      case 'queue':
        for (const m of this.queue) this.print(describeMessage(m));
        return;
      default:
        throw new CommandError(`unknown command '${tc.command}'`);
    }
  }

  private node(id: bigint): EnvNode {
    const n = this.nodes.get(id);
    if (!n) throw new CommandError(`no node ${id}`);
    return n;
  }

  private sortedIds(): bigint[] {
    return [...this.nodes.keys()].sort((x, y) => (x < y ? -1 : 1));
  }

  private addNodes(a: Args): void {
    const count = Number(a.positional(0));
    const voters = a.ids('voters');
    const learners = a.ids('learners');
    const index = BigInt(a.value('index') ?? '0');
    const opts: NodeOptions = {
      preVote: a.bool('prevote', false),
      checkQuorum: a.bool('checkquorum', false),
      lease: a.bool('lease', false),
      maxInflight: Number(a.value('max-inflight') ?? '256'),
      maxSizePerMsg: Number(a.value('max-size') ?? String(1 << 20)),
      maxCommittedSizePerReady: Number(a.value('max-committed-size') ?? String(1 << 26)),
      maxUncommittedSize: Number(a.value('max-uncommitted-size') ?? '0'),
      stepDownOnRemoval: a.bool('step-down-on-removal', true),
      disableForwarding: a.bool('disable-forwarding', false),
    };
    const cs: ConfState = { voters, learners, votersOutgoing: [], learnersNext: [], autoLeave: false };
    for (let i = 0; i < count; i++) {
      const id = BigInt(this.nodes.size + 1);
      const storage = voters.length > 0 || index > 0n ? withConf(cs, index) : new MemoryStorage();
      this.nodes.set(id, { id, rn: this.newRawNode(id, storage, opts), storage, applied: [], config: opts });
    }
  }

  private newRawNode(id: bigint, storage: MemoryStorage, opts: NodeOptions, applied = 0n): RawNode {
    return new RawNode({
      id,
      electionTick: this.electionTick,
      heartbeatTick: this.heartbeatTick,
      storage,
      applied,
      preVote: opts.preVote,
      checkQuorum: opts.checkQuorum,
      readOnlyOption: opts.lease ? ReadOnlyOption.LeaseBased : ReadOnlyOption.Safe,
      maxInflightMsgs: opts.maxInflight,
      maxSizePerMsg: opts.maxSizePerMsg,
      maxCommittedSizePerReady: opts.maxCommittedSizePerReady,
      maxUncommittedEntriesSize: opts.maxUncommittedSize,
      stepDownOnRemoval: opts.stepDownOnRemoval,
      disableProposalForwarding: opts.disableForwarding,
      logger: this.logger(),
      random: () => 0,
    });
  }

  private proposeConfChange(a: Args): void {
    const id = a.positionalId(0);
    const changes: ConfChangeSingle[] = [];
    for (const word of a.positionals().slice(1)) {
      const kind = word[0];
      const nodeId = BigInt(word.slice(1));
      const type =
        kind === 'v'
          ? ConfChangeType.AddNode
          : kind === 'l'
            ? ConfChangeType.AddLearnerNode
            : kind === 'r'
              ? ConfChangeType.RemoveNode
              : kind === 'u'
                ? ConfChangeType.UpdateNode
                : undefined;
      if (type === undefined)
        throw new CommandError(`bad conf change '${word}' (want v<id>, l<id>, r<id> or u<id>)`);
      changes.push({ type, nodeId });
    }
    const t = a.value('transition') ?? 'auto';
    const transition =
      t === 'auto'
        ? ConfChangeTransition.Auto
        : t === 'implicit'
          ? ConfChangeTransition.JointImplicit
          : t === 'explicit'
            ? ConfChangeTransition.JointExplicit
            : undefined;
    if (transition === undefined) throw new CommandError(`bad transition '${t}'`);
    this.node(id).rn.proposeConfChange({ transition, changes, context: new Uint8Array(0) });
  }

  /** Handles one Ready of node `id`: print, persist, queue messages, apply, advance. */
  private processReady(id: bigint): void {
    const n = this.node(id);
    this.print(`> ${id} handling Ready`);
    const saved = this.indent;
    this.indent += '  ';
    try {
      if (!n.rn.hasReady()) {
        this.print('<empty Ready>');
        return;
      }
      const rd = n.rn.ready();
      this.printReady(rd);
      if (rd.hardState) n.storage.setHardState(rd.hardState);
      if (rd.snapshot) n.storage.applySnapshot(rd.snapshot);
      n.storage.append(rd.entries);
      for (const m of rd.messages) this.queue.push(m);
      if (rd.snapshot) n.applied = decodeApplied(rd.snapshot);
      for (const e of rd.committedEntries) {
        if (e.type === EntryType.ConfChangeV2) {
          try {
            n.rn.applyConfChange(decodeConfChangeV2(e.data));
          } catch (err) {
            if (err instanceof RaftError) this.print(`conf change rejected: ${err.message}`);
            else throw err;
          }
        } else if (e.data.length > 0) {
          n.applied.push(Buffer.from(e.data).toString('latin1'));
        }
      }
      n.rn.advance();
    } finally {
      this.indent = saved;
    }
  }

  private printReady(rd: Ready): void {
    this.print(`Ready MustSync=${rd.mustSync}:`);
    if (rd.softState) this.print(`State:${rd.softState.raftState} Lead:${rd.softState.lead}`);
    if (rd.hardState) this.print(`HardState ${describeHardState(rd.hardState)}`);
    if (rd.entries.length > 0) {
      this.print('Entries:');
      for (const e of rd.entries) this.print(describeEntry(e));
    }
    if (rd.snapshot) this.print(`Snapshot ${describeSnapshot(rd.snapshot)}`);
    if (rd.committedEntries.length > 0) {
      this.print('CommittedEntries:');
      for (const e of rd.committedEntries) this.print(describeEntry(e));
    }
    if (rd.messages.length > 0) {
      this.print('Messages:');
      for (const m of rd.messages) this.print(describeMessage(m));
    }
    if (rd.readStates.length > 0) {
      this.print('ReadStates:');
      for (const rs of rd.readStates) this.print(`Index:${rs.index} Ctx:${describeData(rs.requestCtx)}`);
    }
  }

  /** Delivers queued messages addressed to `ids` (all nodes if empty); returns how many. */
  private deliver(ids: bigint[], drop: Set<bigint>, type?: string): number {
    const targets = ids.length > 0 ? ids : this.sortedIds();
    let delivered = 0;
    for (const to of targets) {
      const mine: Message[] = [];
      const rest: Message[] = [];
      for (const m of this.queue) {
        const matches = m.to === to && (type === undefined || messageTypeName(m.type) === type);
        (matches ? mine : rest).push(m);
      }
      this.queue = rest;
      if (mine.length === 0) continue;
      this.print(`> ${to} receiving messages`);
      const saved = this.indent;
      this.indent += '  ';
      for (const m of mine) {
        delivered++;
        const node = this.nodes.get(to);
        const cut =
          this.partition.size > 0 && (this.partition.get(m.from) ?? 0) !== (this.partition.get(to) ?? 0);
        if (drop.has(to) || !node || cut) {
          this.print(`dropped: ${describeMessage(m)}`);
          continue;
        }
        this.print(describeMessage(m));
        this.indent += '  ';
        try {
          // Through the codec, as on the wire (and so no object is shared between nodes).
          node.rn.step(decodeMessage(encodeMessage(m)));
        } catch (err) {
          if (err instanceof RaftError) this.print(`error: ${describeRaftError(err)}`);
          else throw err;
        } finally {
          this.indent = saved + '  ';
        }
      }
      this.indent = saved;
    }
    return delivered;
  }

  private stabilize(ids: bigint[]): void {
    const targets = ids.length > 0 ? ids : this.sortedIds();
    for (let round = 0; round < 200; round++) {
      let busy = false;
      for (const id of targets) {
        if (this.node(id).rn.hasReady()) {
          busy = true;
          this.processReady(id);
        }
      }
      const relevant = this.queue.some((m) => targets.includes(m.to));
      if (relevant && this.deliver(targets, new Set()) > 0) busy = true;
      if (!busy) return;
    }
    this.print('stabilize: did not converge after 200 rounds');
  }

  private tick(id: bigint, n: number): void {
    const node = this.node(id);
    for (let i = 0; i < n; i++) node.rn.tick();
  }

  private raftLog(id: bigint): void {
    const s = this.node(id).storage;
    const ents = s.allEntries();
    if (ents.length === 0) {
      this.print(`log is empty: first index=${s.firstIndex()}, last index=${s.lastIndex()}`);
      return;
    }
    for (const e of ents) this.print(describeEntry(e));
  }

  private raftState(): void {
    for (const id of this.sortedIds()) {
      const r = this.node(id).rn.raft;
      const role = r.trk.progress.get(id)?.isLearner
        ? 'Learner'
        : r.trk.config.voters.has(id)
          ? 'Voter'
          : 'Non-Voter';
      this.print(`${id}: ${r.state} (${role}) Term:${r.term} Lead:${r.lead}`);
    }
  }

  private status(id: bigint): void {
    const st = this.node(id).rn.status();
    if (!st.progress) {
      this.print(`${id} is ${st.softState.raftState}, not the leader; config ${st.config}`);
      return;
    }
    this.node(id).rn.raft.trk.visit((pid, pr) => this.print(`${pid}: ${pr}`));
    if (st.leadTransferee !== 0n) this.print(`transferring leadership to ${st.leadTransferee}`);
  }

  private snapshot(id: bigint): void {
    const n = this.node(id);
    const applied = n.rn.raft.raftLog.applied;
    const snap = n.storage.createSnapshot(applied, n.rn.raft.trk.confState(), encodeApplied(n.applied));
    this.print(`snapshot ${describeSnapshot(snap)}`);
  }

  private restart(id: bigint): void {
    const n = this.node(id);
    // Only what reached storage survives; queued messages to and from the node are lost.
    this.queue = this.queue.filter((m) => m.to !== id && m.from !== id);
    const applied = n.storage.currentHardState().commit;
    const snapIndex = n.storage.snapshot().metadata.index;
    n.applied = decodeApplied(n.storage.snapshot());
    // Re-apply committed entries after the snapshot so the state matches `applied`.
    for (const e of n.storage.allEntries()) {
      if (e.index > snapIndex && e.index <= applied && e.type === EntryType.Normal && e.data.length > 0) {
        n.applied.push(Buffer.from(e.data).toString('latin1'));
      }
    }
    n.rn = this.newRawNode(id, n.storage, n.config, applied > snapIndex ? applied : snapIndex);
    this.print(`restarted ${id} (applied=${applied > snapIndex ? applied : snapIndex})`);
  }

  /**
   * `write-log <id> terms=(1,1,4) [term=N]`: replaces node `id`'s storage with a log holding one
   * empty entry per listed term at indexes 1..n, the hard state term N (default: the largest
   * listed term), no vote and commit 0, and restarts the node from it. The configuration is kept.
   * Sets up the divergent logs of the Raft paper's figures, which no run of the protocol would
   * reach in a few steps.
   */
  private writeLog(a: Args): void {
    const id = a.positionalId(0);
    const n = this.node(id);
    if (!a.has('terms')) throw new CommandError('missing terms=(...)');
    const terms = a.values('terms').map((t) => {
      if (!/^\d+$/.test(t) || t === '0') throw new CommandError(`'${t}' is not a term`);
      return BigInt(t);
    });
    let maxTerm = 0n;
    for (let i = 0; i < terms.length; i++) {
      if (i > 0 && terms[i]! < terms[i - 1]!) throw new CommandError('terms must not decrease');
      if (terms[i]! > maxTerm) maxTerm = terms[i]!;
    }
    const termArg = a.value('term');
    if (termArg !== undefined && !/^\d+$/.test(termArg)) throw new CommandError(`'${termArg}' is not a term`);
    const term = termArg === undefined ? maxTerm : BigInt(termArg);
    if (term < maxTerm) throw new CommandError(`term=${term} is below the log's last term ${maxTerm}`);
    const storage = MemoryStorage.withConfState(n.rn.raft.trk.confState());
    storage.append(
      terms.map((t, i) => ({
        term: t,
        index: BigInt(i + 1),
        type: EntryType.Normal,
        data: new Uint8Array(0),
      })),
    );
    storage.setHardState({ term, vote: 0n, commit: 0n });
    this.queue = this.queue.filter((m) => m.to !== id && m.from !== id);
    n.storage = storage;
    n.applied = [];
    n.rn = this.newRawNode(id, storage, n.config);
  }

  private setPartition(args: CommandArg[]): void {
    this.partition.clear();
    let group = 1;
    for (const arg of args) {
      const ids = arg.key.replace(/[()]/g, '').split(',').filter(Boolean);
      for (const v of ids) this.partition.set(BigInt(v), group);
      group++;
    }
    const desc = args.map((x) => x.key).join(' ');
    this.print(`partitioned ${desc}`);
  }
}

/** A storage whose snapshot at `index` (term 1 if index > 0) records `cs`. */
function withConf(cs: ConfState, index: bigint): MemoryStorage {
  const s = MemoryStorage.withConfState(cs);
  if (index > 0n) s.applySnapshot({ data: new Uint8Array(0), metadata: { confState: cs, index, term: 1n } });
  return s;
}

/** `ProposalDropped (NoLeader): no leader at term 1`: the code, the reason if any, the message. */
function describeRaftError(err: RaftError): string {
  return `${err.code}${err.reason ? ` (${err.reason})` : ''}: ${err.message}`;
}

function encodeApplied(applied: string[]): Uint8Array {
  return Buffer.from(JSON.stringify(applied));
}

function decodeApplied(snap: Snapshot): string[] {
  if (snap.data.length === 0) return [];
  return JSON.parse(Buffer.from(snap.data).toString()) as string[];
}

/** Typed access to a command's arguments; bad ones become CommandErrors. */
class Args {
  constructor(private readonly args: CommandArg[]) {}

  positionals(): string[] {
    return this.args.filter((a) => a.values.length === 0 && !a.key.includes('=')).map((a) => a.key);
  }

  positional(i: number): string {
    const v = this.positionals()[i];
    if (v === undefined) throw new CommandError(`missing argument ${i + 1}`);
    return v;
  }

  positionalId(i: number): bigint {
    return toId(this.positional(i));
  }

  positionalIds(): bigint[] {
    return this.positionals().map(toId);
  }

  has(key: string): boolean {
    return this.args.some((a) => a.key === key);
  }

  value(key: string): string | undefined {
    return this.args.find((a) => a.key === key)?.values[0];
  }

  id(key: string): bigint {
    const v = this.value(key);
    if (v === undefined) throw new CommandError(`missing ${key}=`);
    return toId(v);
  }

  ids(key: string): bigint[] {
    return this.values(key).map(toId);
  }

  values(key: string): string[] {
    return this.args.find((a) => a.key === key)?.values ?? [];
  }

  bool(key: string, dflt: boolean): boolean {
    const v = this.value(key);
    if (v === undefined) return dflt;
    if (v !== 'true' && v !== 'false') throw new CommandError(`${key} must be true or false, got '${v}'`);
    return v === 'true';
  }
}

function toId(s: string): bigint {
  if (!/^\d+$/.test(s)) throw new CommandError(`'${s}' is not a node id`);
  return BigInt(s);
}
