/**
 * Range tombstones and the index that answers "is this point version hidden?".
 *
 * A tombstone `[start, end)` at version `t` hides a point version `v` of a key `k` in its column
 * family when `start <= k < end` and `v < t`, for readers whose read version is at least `t`
 * (a reader at an older snapshot does not see the tombstone, so it does not hide anything there).
 *
 * The index fragments overlapping tombstones into disjoint spans, each holding the versions of the
 * tombstones that cover it (newest first), so a lookup is a binary search plus a short scan.
 */

import { compareBytes } from '../util/bytes.js';

export interface RangeTombstone {
  cf: number;
  /** Inclusive start user key. */
  start: Buffer;
  /** Exclusive end user key. */
  end: Buffer;
  version: bigint;
}

interface CfFragments {
  starts: Buffer[];
  ends: Buffer[];
  /** Per fragment, covering versions in descending order. */
  versions: bigint[][];
}

const NONE = -1n;

export class TombstoneIndex {
  static readonly EMPTY = new TombstoneIndex(new Map());

  private readonly byCf: Map<number, CfFragments>;

  private constructor(byCf: Map<number, CfFragments>) {
    this.byCf = byCf;
  }

  get isEmpty(): boolean {
    return this.byCf.size === 0;
  }

  static build(tombstones: readonly RangeTombstone[]): TombstoneIndex {
    if (tombstones.length === 0) return TombstoneIndex.EMPTY;
    const groups = new Map<number, RangeTombstone[]>();
    for (const t of tombstones) {
      if (compareBytes(t.start, t.end) >= 0) continue;
      const list = groups.get(t.cf);
      if (list) list.push(t);
      else groups.set(t.cf, [t]);
    }
    const byCf = new Map<number, CfFragments>();
    for (const [cf, list] of groups) byCf.set(cf, fragment(list));
    return new TombstoneIndex(byCf);
  }

  /**
   * Newest tombstone version that covers `userKey` and is visible at `readVersion`, or -1n.
   * A point version `v` is hidden when the result is greater than `v`.
   */
  maxCoveringVersion(cf: number, userKey: Uint8Array, readVersion: bigint): bigint {
    const frags = this.byCf.get(cf);
    if (!frags) return NONE;
    const { starts, ends, versions } = frags;
    let lo = 0;
    let hi = starts.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (compareBytes(starts[mid]!, userKey) <= 0) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    if (found < 0 || compareBytes(userKey, ends[found]!) >= 0) return NONE;
    for (const v of versions[found]!) if (v <= readVersion) return v;
    return NONE;
  }

  /** True when point version `version` of `userKey` is hidden for a reader at `readVersion`. */
  hides(cf: number, userKey: Uint8Array, version: bigint, readVersion: bigint): boolean {
    return this.maxCoveringVersion(cf, userKey, readVersion) > version;
  }
}

function fragment(list: RangeTombstone[]): CfFragments {
  const bounds: Buffer[] = [];
  for (const t of list) bounds.push(t.start, t.end);
  bounds.sort(compareBytes);
  const unique: Buffer[] = [];
  for (const b of bounds) {
    if (unique.length === 0 || compareBytes(unique[unique.length - 1]!, b) !== 0) unique.push(b);
  }
  const covering: bigint[][] = unique.map(() => []);
  for (const t of list) {
    let i = lowerBound(unique, t.start);
    while (i < unique.length - 1 && compareBytes(unique[i]!, t.end) < 0) {
      covering[i]!.push(t.version);
      i++;
    }
  }
  const frags: CfFragments = { starts: [], ends: [], versions: [] };
  for (let i = 0; i < unique.length - 1; i++) {
    const vs = covering[i]!;
    if (vs.length === 0) continue;
    vs.sort((a, b) => (a > b ? -1 : a < b ? 1 : 0));
    frags.starts.push(unique[i]!);
    frags.ends.push(unique[i + 1]!);
    frags.versions.push(vs);
  }
  return frags;
}

function lowerBound(sorted: Buffer[], key: Buffer): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareBytes(sorted[mid]!, key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Combines indexes: the newest covering version over all of them. */
export function maxCoveringVersionOf(
  indexes: readonly TombstoneIndex[],
  cf: number,
  userKey: Uint8Array,
  readVersion: bigint,
): bigint {
  let best = NONE;
  for (const index of indexes) {
    if (index.isEmpty) continue;
    const v = index.maxCoveringVersion(cf, userKey, readVersion);
    if (v > best) best = v;
  }
  return best;
}
