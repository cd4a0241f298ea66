import type { Entry, Snapshot } from '@nokv/proto';
import { invariant } from '../errors.js';

/**
 * Entries (and possibly a snapshot) the node has accepted but the caller has not yet persisted.
 * `entries[i]` has index `offset + i`; a snapshot, if present, precedes them.
 */
export class Unstable {
  snapshot: Snapshot | undefined;
  entries: Entry[] = [];

  constructor(public offset: bigint) {}

  /** Index of the first entry after a pending snapshot, if there is one. */
  maybeFirstIndex(): bigint | undefined {
    return this.snapshot ? this.snapshot.metadata.index + 1n : undefined;
  }

  /** Last index held here (entries, else the snapshot), if any. */
  maybeLastIndex(): bigint | undefined {
    if (this.entries.length > 0) return this.offset + BigInt(this.entries.length - 1);
    return this.snapshot?.metadata.index;
  }

  /** Term of `index` if this structure knows it. */
  maybeTerm(index: bigint): bigint | undefined {
    if (index < this.offset) {
      const md = this.snapshot?.metadata;
      return md && md.index === index ? md.term : undefined;
    }
    const last = this.maybeLastIndex();
    if (last === undefined || index > last) return undefined;
    return this.entries[Number(index - this.offset)]!.term;
  }

  /**
   * Marks entries up to `index` persisted, if the entry there still has term `term` (a later
   * append may have replaced it while the caller was writing, in which case nothing changes).
   */
  stableTo(index: bigint, term: bigint): void {
    const t = this.maybeTerm(index);
    if (t === undefined || t !== term || index < this.offset) return;
    this.entries = this.entries.slice(Number(index + 1n - this.offset));
    this.offset = index + 1n;
  }

  stableSnapTo(index: bigint): void {
    if (this.snapshot && this.snapshot.metadata.index === index) this.snapshot = undefined;
  }

  restore(snap: Snapshot): void {
    this.offset = snap.metadata.index + 1n;
    this.entries = [];
    this.snapshot = snap;
  }

  /** Appends entries that start at or before the end of what is held, dropping any conflicting suffix. */
  truncateAndAppend(ents: readonly Entry[]): void {
    const after = ents[0]!.index;
    const end = this.offset + BigInt(this.entries.length);
    if (after === end) {
      for (const e of ents) this.entries.push(e);
    } else if (after <= this.offset) {
      // Replaces everything held (and whatever is stable at or after `after`).
      this.offset = after;
      this.entries = [...ents];
    } else {
      invariant(after < end, () => `unstable append at ${after} leaves a gap after ${end - 1n}`);
      this.entries = [...this.entries.slice(0, Number(after - this.offset)), ...ents];
    }
  }

  /** Entries in [lo, hi). */
  slice(lo: bigint, hi: bigint): Entry[] {
    invariant(lo <= hi, () => `invalid unstable.slice ${lo} > ${hi}`);
    const upper = this.offset + BigInt(this.entries.length);
    invariant(
      lo >= this.offset && hi <= upper,
      () => `unstable.slice[${lo},${hi}) out of bound [${this.offset},${upper}]`,
    );
    return this.entries.slice(Number(lo - this.offset), Number(hi - this.offset));
  }
}
