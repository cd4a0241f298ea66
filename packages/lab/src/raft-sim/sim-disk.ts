import type { ConfState, Entry, HardState, Snapshot } from '@nokv/proto';
import { MemoryStorage } from '@nokv/raftstore/raft';
import type { Prng } from '../workload/prng.js';

/** A write a node makes while handling a Ready, in the order it reaches the disk. */
type WriteOp =
  | { kind: 'snapshot'; snapshot: Snapshot }
  | { kind: 'entries'; entries: Entry[] }
  | { kind: 'hardState'; hardState: HardState };

/**
 * A node's disk: `live` is what the running node reads (the page cache), `durable` what survives
 * a crash. Writes reach `durable` only when synced; a crash keeps a random prefix of the
 * unsynced writes (a torn tail), as a real log file would.
 */
export class SimDisk {
  durable: MemoryStorage;
  live: MemoryStorage;
  private pending: WriteOp[] = [];

  constructor(initial: MemoryStorage) {
    this.durable = initial;
    this.live = clone(initial);
  }

  write(op: WriteOp): void {
    this.pending.push(op);
    apply(this.live, op);
  }

  /** fsync: everything written so far becomes durable. */
  sync(): void {
    for (const op of this.pending) apply(this.durable, op);
    this.pending = [];
  }

  get unsyncedWrites(): number {
    return this.pending.length;
  }

  /**
   * A snapshot of the state machine made by the node itself, written atomically (temp file,
   * fsync, rename) and followed by log compaction up to `compactTo`.
   */
  saveLocalSnapshot(index: bigint, confState: ConfState, data: Uint8Array, compactTo: bigint): void {
    const snap = this.live.createSnapshot(index, confState, data);
    // Only a harness that skips fsyncs (the skip-sync bug) can lack the entries on disk; the
    // snapshot file is still durable then, the log behind it is not.
    if (index <= this.durable.lastIndex()) this.durable.createSnapshot(index, confState, data);
    else this.durable.applySnapshot(snap);
    if (compactTo > this.live.firstIndex() - 1n && compactTo <= index) {
      this.live.compact(compactTo);
      if (compactTo > this.durable.firstIndex() - 1n) this.durable.compact(compactTo);
    }
  }

  /** Power loss: unsynced writes survive only as a random prefix. Returns how many were kept. */
  crash(rng: Prng): number {
    const keep = rng.below(this.pending.length + 1);
    for (const op of this.pending.slice(0, keep)) apply(this.durable, op);
    this.pending = [];
    this.live = clone(this.durable);
    return keep;
  }
}

function apply(s: MemoryStorage, op: WriteOp): void {
  switch (op.kind) {
    case 'snapshot':
      // Under skip-sync a local snapshot can reach the disk before an older received one that
      // was still unsynced; the newer file supersedes it, as the snapshot directory would.
      if (op.snapshot.metadata.index > s.snapshot().metadata.index) s.applySnapshot(op.snapshot);
      break;
    case 'entries':
      s.append(op.entries);
      break;
    case 'hardState':
      s.setHardState(op.hardState);
      break;
  }
}

/** A copy of a storage (what reading the disk back after a restart yields). */
export function clone(src: MemoryStorage): MemoryStorage {
  const snap = src.snapshot();
  let s: MemoryStorage;
  if (snap.metadata.index === 0n) {
    s = MemoryStorage.withConfState(snap.metadata.confState);
  } else {
    s = new MemoryStorage();
    s.applySnapshot(snap);
  }
  s.append(src.allEntries());
  s.setHardState(src.currentHardState());
  return s;
}
