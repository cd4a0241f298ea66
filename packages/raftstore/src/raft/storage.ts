import type { ConfState, Entry, HardState, Snapshot } from '@nokv/proto';

/** What a node persisted before it stopped: the vote and commit, and the last configuration. */
export interface InitialState {
  hardState: HardState;
  confState: ConfState;
}

/**
 * The stable log as the Raft library reads it. The library never writes through this interface:
 * the caller persists what Ready hands it and then makes it visible here. Implementations throw
 * RaftError `Compacted` for indexes at or below the first index - 1 that are no longer held
 * (except `term(firstIndex - 1)`, which must be answerable), and `Unavailable` above the last.
 */
export interface Storage {
  initialState(): InitialState;
  /** Entries in [lo, hi), at least one even if it exceeds `maxSizeBytes`. */
  entries(lo: bigint, hi: bigint, maxSizeBytes: number): Entry[];
  /** Term of the entry at `index`, for index in [firstIndex - 1, lastIndex]. */
  term(index: bigint): bigint;
  lastIndex(): bigint;
  /** Index of the first entry still held (the one after the latest snapshot). */
  firstIndex(): bigint;
  /** The latest snapshot; may throw `SnapshotTemporarilyUnavailable` while one is being made. */
  snapshot(): Snapshot;
}

/** Size of an entry as the message-size limits count it. */
export function entrySizeBytes(e: Entry): number {
  return e.data.length + 24;
}

/** The longest prefix of `entries` within `maxSizeBytes`, always at least one entry. */
export function limitSize(entries: Entry[], maxSizeBytes: number): Entry[] {
  if (entries.length <= 1) return entries;
  let size = entrySizeBytes(entries[0]!);
  let n = 1;
  for (; n < entries.length; n++) {
    size += entrySizeBytes(entries[n]!);
    if (size > maxSizeBytes) break;
  }
  return n === entries.length ? entries : entries.slice(0, n);
}

/** Sum of entry payload sizes, which the uncommitted-size limit counts. */
export function payloadSizeBytes(entries: readonly Entry[]): number {
  let s = 0;
  for (const e of entries) s += e.data.length;
  return s;
}
