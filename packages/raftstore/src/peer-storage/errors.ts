/**
 * Errors of a region's durable Raft state. Every one carries a `code`; the store runtime decides
 * from it whether to stop the peer (corruption, a failed write) or to report a caller bug.
 */
export type PeerStorageErrorCode =
  /** The region's stored Raft state breaks an invariant (log gaps, commit past the log, ...). */
  | 'CorruptRaftState'
  /** A snapshot payload is damaged or does not match its metadata or region. */
  | 'CorruptSnapshot'
  /** bootstrap / createUninitialized found state already stored for the region. */
  | 'RegionExists'
  /** open found no RegionLocalState for the region. */
  | 'RegionNotFound'
  /** compactLog asked to delete entries that are not applied yet. */
  | 'CompactBeyondApplied'
  /** A snapshot not newer than the applied state was handed in to install. */
  | 'SnapshotOutOfDate'
  /** Arguments that break the storage's rules (applied index going back, a gap in the log, ...). */
  | 'InvalidArgument'
  /** An earlier engine write failed: memory and disk may differ, so the peer must be reopened. */
  | 'StorageFailed'
  /** The peer's state was removed with destroy(). */
  | 'Destroyed';

export class PeerStorageError extends Error {
  override readonly name: string = 'PeerStorageError';
  constructor(
    readonly code: PeerStorageErrorCode,
    message: string,
    /** The region concerned, when there is one. */
    readonly regionId?: bigint,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Stored Raft state of a region that cannot be trusted; the message names the region and indexes. */
export class CorruptRaftStateError extends PeerStorageError {
  override readonly name = 'CorruptRaftStateError';
  declare readonly code: 'CorruptRaftState';
  constructor(regionId: bigint, message: string, options?: { cause?: unknown }) {
    super('CorruptRaftState', `region ${regionId}: corrupt raft state: ${message}`, regionId, options);
  }
}

/** A snapshot payload that fails its checks (magic, version, checksum, framing, contents). */
export class CorruptSnapshotError extends PeerStorageError {
  override readonly name = 'CorruptSnapshotError';
  declare readonly code: 'CorruptSnapshot';
  constructor(
    /** What is wrong, without the region prefix. */
    readonly reason: string,
    regionId?: bigint,
    options?: { cause?: unknown },
  ) {
    super(
      'CorruptSnapshot',
      `${regionId === undefined ? '' : `region ${regionId}: `}corrupt snapshot: ${reason}`,
      regionId,
      options,
    );
  }
}

export function isPeerStorageError(err: unknown, code?: PeerStorageErrorCode): err is PeerStorageError {
  return err instanceof PeerStorageError && (code === undefined || err.code === code);
}
