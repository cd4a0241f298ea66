/**
 * Codes of the operating errors the Raft library reports to its caller. Each is a normal outcome
 * the caller must handle (retry elsewhere, wait, re-propose), not a bug.
 */
export type RaftErrorCode =
  /** The requested index is at or below the storage's first index (it was compacted away). */
  | 'Compacted'
  /** The requested index is above the storage's last index. */
  | 'Unavailable'
  /** A snapshot older than the one already held was offered. */
  | 'SnapOutOfDate'
  /** The storage cannot produce a snapshot right now; the leader retries later. */
  | 'SnapshotTemporarilyUnavailable'
  /** A proposal was not appended; `reason` says why. */
  | 'ProposalDropped'
  /** A message kind that only the local node may generate came from outside. */
  | 'StepLocalMsg'
  /** A response came from a peer this node does not track. */
  | 'StepPeerNotFound'
  /** The configuration passed to the library is unusable. */
  | 'InvalidConfig'
  /** A membership change cannot be applied to the current configuration. */
  | 'InvalidConfChange';

/** Why a proposal was dropped. */
export type ProposalDropReason =
  | 'NoLeader'
  | 'ForwardingDisabled'
  | 'TransferInProgress'
  | 'NotInConfig'
  | 'UncommittedSizeLimit'
  | 'ConfChangePending'
  | 'InvalidConfChange';

/** An operating error of the Raft library, with a typed `code` (and a `reason` for dropped proposals). */
export class RaftError extends Error {
  override readonly name = 'RaftError';
  constructor(
    readonly code: RaftErrorCode,
    message: string,
    readonly reason?: ProposalDropReason,
  ) {
    super(message);
  }
}

/**
 * A broken invariant: the library or its caller did something that must never happen (a commit
 * index beyond the last index, a conflicting committed entry). The message carries the indexes and
 * terms that explain it. Never caught and continued from.
 */
export class RaftAssertionError extends Error {
  override readonly name = 'RaftAssertionError';
  readonly code = 'AssertionFailed';
}

/** Throws a RaftAssertionError with the message built by `explain` when `condition` is false. */
export function invariant(condition: boolean, explain: () => string): asserts condition {
  if (!condition) throw new RaftAssertionError(explain());
}

/** Throws a RaftAssertionError; for unreachable branches. */
export function fail(message: string): never {
  throw new RaftAssertionError(message);
}
