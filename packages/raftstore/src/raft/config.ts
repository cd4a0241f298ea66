import { RaftError } from './errors.js';
import type { RaftLogger } from './logger.js';
import { ReadOnlyOption } from './read-only.js';
import type { Storage } from './storage.js';

/** Everything a Raft node is started with. Only `id`, the tick counts and `storage` are required. */
export interface RaftConfig {
  /** This node's id; never 0. */
  id: bigint;
  /**
   * Ticks without hearing from a leader before a follower campaigns. The actual timeout is
   * randomized in [electionTick, 2 * electionTick) to keep split votes rare.
   */
  electionTick: number;
  /** Ticks between a leader's heartbeats; must be below electionTick. */
  heartbeatTick: number;
  storage: Storage;
  /** Last applied index at restart: committed entries up to it are not handed out again. */
  applied?: bigint;
  /** Byte limit of the entries in one append message (at least one entry is always sent). Default 1 MiB. */
  maxSizePerMsg?: number;
  /** Byte limit of committed entries in one Ready. Default 64 MiB. */
  maxCommittedSizePerReady?: number;
  /** Byte limit of proposed-but-uncommitted payloads on a leader; 0 = none. Default 0. */
  maxUncommittedEntriesSize?: number;
  /** Appends in flight to one follower in replicate state. Default 256. */
  maxInflightMsgs?: number;
  /** Bytes in flight to one follower; 0 = no byte limit. Default 0. */
  maxInflightBytes?: number;
  /** A leader steps down if it has not heard from a quorum in an election timeout. Default true. */
  checkQuorum?: boolean;
  /**
   * Candidates first ask whether they could win (without raising their term), so a node that was
   * partitioned away does not depose a healthy leader on return. Default true.
   */
  preVote?: boolean;
  /** How ReadIndex confirms leadership; LeaseBased needs checkQuorum. Default Safe. */
  readOnlyOption?: ReadOnlyOption;
  /** Followers drop proposals instead of forwarding them to the leader. Default false. */
  disableProposalForwarding?: boolean;
  /**
   * A leader that applies its own removal (or demotion) steps down at once. Default false: it keeps
   * leading without accepting proposals and hands leadership to a voter of the new configuration,
   * which cannot stall the group the way stepping down can (see Raft.switchToConfig).
   */
  stepDownOnRemoval?: boolean;
  logger?: RaftLogger;
  /** Uniform integer in [0, n): randomizes election timeouts. Inject a seeded one for determinism. */
  random?: (n: number) => number;
}

/** Config with every default filled in. */
export type ResolvedRaftConfig = Required<Omit<RaftConfig, 'logger' | 'random'>> &
  Pick<RaftConfig, 'logger' | 'random'>;

/**
 * Fills defaults and checks the config.
 * @throws RaftError `InvalidConfig` naming the bad field and its value.
 */
export function resolveConfig(c: RaftConfig): ResolvedRaftConfig {
  const bad = (msg: string) => new RaftError('InvalidConfig', msg);
  if (c.id === 0n) throw bad('cannot use id 0 (it means "none")');
  if (!Number.isInteger(c.heartbeatTick) || c.heartbeatTick <= 0) {
    throw bad(`heartbeatTick must be a positive integer, got ${c.heartbeatTick}`);
  }
  if (!Number.isInteger(c.electionTick) || c.electionTick <= c.heartbeatTick) {
    throw bad(
      `electionTick (${c.electionTick}) must be an integer greater than heartbeatTick (${c.heartbeatTick})`,
    );
  }
  const resolved: ResolvedRaftConfig = {
    id: c.id,
    electionTick: c.electionTick,
    heartbeatTick: c.heartbeatTick,
    storage: c.storage,
    applied: c.applied ?? 0n,
    maxSizePerMsg: c.maxSizePerMsg ?? 1024 * 1024,
    maxCommittedSizePerReady: c.maxCommittedSizePerReady ?? 64 * 1024 * 1024,
    maxUncommittedEntriesSize: c.maxUncommittedEntriesSize ?? 0,
    maxInflightMsgs: c.maxInflightMsgs ?? 256,
    maxInflightBytes: c.maxInflightBytes ?? 0,
    checkQuorum: c.checkQuorum ?? true,
    preVote: c.preVote ?? true,
    readOnlyOption: c.readOnlyOption ?? ReadOnlyOption.Safe,
    disableProposalForwarding: c.disableProposalForwarding ?? false,
    stepDownOnRemoval: c.stepDownOnRemoval ?? false,
    logger: c.logger,
    random: c.random,
  };
  if (!Number.isInteger(resolved.maxInflightMsgs) || resolved.maxInflightMsgs <= 0) {
    throw bad(`maxInflightMsgs must be a positive integer, got ${resolved.maxInflightMsgs}`);
  }
  if (resolved.maxInflightBytes < 0)
    throw bad(`maxInflightBytes must be >= 0, got ${resolved.maxInflightBytes}`);
  if (resolved.maxSizePerMsg <= 0) throw bad(`maxSizePerMsg must be positive, got ${resolved.maxSizePerMsg}`);
  if (resolved.readOnlyOption === ReadOnlyOption.LeaseBased && !resolved.checkQuorum) {
    throw bad(
      'readOnlyOption LeaseBased requires checkQuorum (the lease is only sound while quorum is checked)',
    );
  }
  if (resolved.applied < 0n) throw bad(`applied must be >= 0, got ${resolved.applied}`);
  return resolved;
}
