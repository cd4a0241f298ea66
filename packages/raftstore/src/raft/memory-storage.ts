import {
  type ConfState,
  type Entry,
  EntryType,
  emptyConfState,
  emptySnapshot,
  type HardState,
  type Snapshot,
} from '@nokv/proto';
import { invariant, RaftError } from './errors.js';
import { type InitialState, limitSize, type Storage } from './storage.js';

const EMPTY = new Uint8Array(0);

/**
 * A Storage held in memory: the reference implementation, used by tests and the simulator.
 * `entries[0]` is a placeholder carrying the index and term of the latest snapshot.
 */
export class MemoryStorage implements Storage {
  private hardState: HardState = { term: 0n, vote: 0n, commit: 0n };
  private snap: Snapshot = emptySnapshot();
  private ents: Entry[] = [{ term: 0n, index: 0n, type: EntryType.Normal, data: EMPTY }];

  /** A storage whose (empty) snapshot at index 0 records `confState`: a freshly bootstrapped group. */
  static withConfState(confState: ConfState): MemoryStorage {
    const s = new MemoryStorage();
    s.snap = { data: EMPTY, metadata: { confState, index: 0n, term: 0n } };
    return s;
  }

  initialState(): InitialState {
    return { hardState: { ...this.hardState }, confState: this.snap.metadata.confState };
  }

  setHardState(hs: HardState): void {
    this.hardState = { ...hs };
  }

  entries(lo: bigint, hi: bigint, maxSizeBytes: number): Entry[] {
    const offset = this.ents[0]!.index;
    if (lo <= offset) throw new RaftError('Compacted', `entries from ${lo}: compacted up to ${offset}`);
    invariant(
      hi <= this.lastIndex() + 1n,
      () => `entries' hi(${hi}) is out of bound lastIndex(${this.lastIndex()})`,
    );
    if (this.ents.length === 1) throw new RaftError('Unavailable', `entries [${lo}, ${hi}): log is empty`);
    return limitSize(this.ents.slice(Number(lo - offset), Number(hi - offset)), maxSizeBytes);
  }

  term(index: bigint): bigint {
    const offset = this.ents[0]!.index;
    if (index < offset) throw new RaftError('Compacted', `term of ${index}: compacted up to ${offset}`);
    const i = Number(index - offset);
    if (i >= this.ents.length)
      throw new RaftError('Unavailable', `term of ${index}: last index is ${this.lastIndex()}`);
    return this.ents[i]!.term;
  }

  lastIndex(): bigint {
    return this.ents[0]!.index + BigInt(this.ents.length - 1);
  }

  firstIndex(): bigint {
    return this.ents[0]!.index + 1n;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /**
   * Replaces the log with a snapshot (a follower installing one the leader sent).
   * @throws RaftError `SnapOutOfDate` if it is not newer than the one held.
   */
  applySnapshot(snap: Snapshot): void {
    const have = this.snap.metadata.index;
    if (have >= snap.metadata.index) {
      throw new RaftError('SnapOutOfDate', `snapshot at ${snap.metadata.index} is not newer than ${have}`);
    }
    this.snap = snap;
    this.ents = [
      { term: snap.metadata.term, index: snap.metadata.index, type: EntryType.Normal, data: EMPTY },
    ];
  }

  /**
   * Records a snapshot of the state machine at applied index `index` (the log is not compacted;
   * call compact for that).
   * @throws RaftError `SnapOutOfDate` if `index` is not above the current snapshot.
   */
  createSnapshot(index: bigint, confState: ConfState | undefined, data: Uint8Array): Snapshot {
    if (index <= this.snap.metadata.index) {
      throw new RaftError(
        'SnapOutOfDate',
        `snapshot at ${index} is not newer than ${this.snap.metadata.index}`,
      );
    }
    const offset = this.ents[0]!.index;
    invariant(
      index <= this.lastIndex(),
      () => `snapshot ${index} is out of bound lastindex(${this.lastIndex()})`,
    );
    this.snap = {
      data,
      metadata: {
        index,
        term: this.ents[Number(index - offset)]!.term,
        confState: confState ?? this.snap.metadata.confState ?? emptyConfState(),
      },
    };
    return this.snap;
  }

  /**
   * Discards entries up to and including `compactIndex` (which must be covered by a snapshot for
   * lagging followers to catch up).
   * @throws RaftError `Compacted` if already compacted that far.
   */
  compact(compactIndex: bigint): void {
    const offset = this.ents[0]!.index;
    if (compactIndex <= offset)
      throw new RaftError('Compacted', `compact ${compactIndex}: compacted up to ${offset}`);
    invariant(
      compactIndex <= this.lastIndex(),
      () => `compact ${compactIndex} is out of bound lastindex(${this.lastIndex()})`,
    );
    const i = Number(compactIndex - offset);
    const head = this.ents[i]!;
    this.ents = [
      { term: head.term, index: head.index, type: EntryType.Normal, data: EMPTY },
      ...this.ents.slice(i + 1),
    ];
  }

  /**
   * Appends entries (persisted from a Ready), replacing any conflicting suffix. Entries already
   * compacted away are skipped.
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    let es = entries;
    const last = es[0]!.index + BigInt(es.length - 1);
    if (last < first) return;
    if (first > es[0]!.index) es = es.slice(Number(first - es[0]!.index));
    const offset = Number(es[0]!.index - this.ents[0]!.index);
    invariant(
      offset <= this.ents.length,
      () => `missing log entry [last: ${this.lastIndex()}, append at: ${es[0]!.index}]`,
    );
    // Truncate any conflicting suffix in place; appends are the common case and stay O(entries).
    this.ents.length = offset;
    for (const e of es) this.ents.push(e);
  }

  /** The persisted hard state (tests and the simulator inspect it). */
  currentHardState(): HardState {
    return { ...this.hardState };
  }

  /** Copies of every held entry after the snapshot placeholder. */
  allEntries(): Entry[] {
    return this.ents.slice(1);
  }
}
