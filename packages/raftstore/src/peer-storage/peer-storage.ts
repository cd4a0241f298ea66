import { type Database, type InternalWrite, isDeleteRecord } from '@nokv/engine';
import {
  type ConfState,
  decodeEntry,
  decodeHardState,
  decodeRegionLocalState,
  decodeSnapshot,
  type Entry,
  emptyConfState,
  encodeEntry,
  encodeHardState,
  encodeRegionLocalState,
  encodeSnapshot,
  epochEquals,
  type HardState,
  type RegionLocalState,
  type RegionMeta,
  RegionState,
  type Snapshot,
  type SnapshotMetadata,
} from '@nokv/proto';
import { RaftError } from '../raft/errors.js';
import { MemoryStorage } from '../raft/memory-storage.js';
import type { Ready } from '../raft/raw-node.js';
import type { InitialState, Storage } from '../raft/storage.js';
import {
  dataKey,
  dataRange,
  raftHardStateKey,
  raftLogKey,
  raftLogRange,
  raftRange,
  raftSnapshotKey,
  regionIdOfStateKey,
  regionStateKey,
  regionStateRange,
  userKeyOf,
} from '../store/keys.js';
import { CorruptRaftStateError, CorruptSnapshotError, PeerStorageError } from './errors.js';
import {
  decodeSnapshotPayload,
  encodeSnapshotPayload,
  type SnapshotPayload,
  type VersionedRecord,
} from './snapshot-payload.js';

/** Index and term of the state every store writes for a region of the topology file. */
export const RAFT_INIT_INDEX = 5n;
export const RAFT_INIT_TERM = 5n;

const EMPTY = new Uint8Array(0);
/** The transaction layer's column families (src/txn): copied by snapshots with every version. */
const TXN_CFS = ['lock', 'write', 'data'] as const;
const MAX_U64 = (1n << 64n) - 1n;
/** Log deletions of at most this many entries are point deletes; longer ones one range delete. */
const POINT_DELETE_LIMIT = 256n;

export type DataWrite = { op: 'put'; key: Uint8Array; value: Uint8Array } | { op: 'delete'; key: Uint8Array };

/** Where peer storage reports (pino's shape, as the store's logger: fields first, then message). */
export interface PeerStorageLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const silentLogger: PeerStorageLogger = { info() {}, warn() {}, error() {} };

export interface PeerStorageOptions {
  logger?: PeerStorageLogger;
  /** Called when a snapshot asked for by `snapshot()` has been generated; nudge Raft to retry. */
  onSnapshotReady?: () => void;
  /** Replaces the built-in snapshot generation (tests, or a store that streams snapshots). */
  generateSnapshot?: (db: Database, regionId: bigint) => Promise<GeneratedSnapshot>;
}

export interface GeneratedSnapshot {
  snapshot: Snapshot;
  /** The region meta the snapshot was taken with (its epoch decides when it goes stale). */
  region: RegionMeta;
}

/** Voters are the region's non-learner peers, learners its learner peers. */
export function confStateOfRegion(region: RegionMeta): ConfState {
  return {
    ...emptyConfState(),
    voters: region.peers.filter((p) => !p.learner).map((p) => p.peerId),
    learners: region.peers.filter((p) => p.learner).map((p) => p.peerId),
  };
}

function put(key: Uint8Array, value: Uint8Array): InternalWrite {
  return { cf: 'default', op: 'put', key, value };
}

function del(key: Uint8Array): InternalWrite {
  return { cf: 'default', op: 'delete', key };
}

function deleteRange(range: { lo: Uint8Array; hi: Uint8Array }): InternalWrite {
  return { cf: 'default', op: 'deleteRange', key: range.lo, end: range.hi };
}

/** Deletes log entries [from, to) of a region: point deletes when few, else one range delete. */
function deleteLog(ops: InternalWrite[], regionId: bigint, from: bigint, to: bigint): void {
  if (to <= from) return;
  if (to - from <= POINT_DELETE_LIMIT) {
    for (let i = from; i < to; i++) ops.push(del(raftLogKey(regionId, i)));
  } else {
    ops.push(deleteRange(raftLogRange(regionId, from, to)));
  }
}

async function hasAnyState(db: Database, regionId: bigint): Promise<boolean> {
  if ((await db.get(regionStateKey(regionId))) !== undefined) return true;
  const range = raftRange(regionId);
  for await (const _ of db.iterate({ gte: range.lo, lt: range.hi, limit: 1 })) return true;
  return false;
}

/**
 * Generates a snapshot of a region at one engine snapshot: the RegionLocalState read at it gives
 * the index, term and region; the data is the region's key range at it. The apply batch writes
 * data and applied index together, so the two always match.
 */
export async function generateRegionSnapshot(db: Database, regionId: bigint): Promise<GeneratedSnapshot> {
  const view = db.snapshot();
  try {
    const raw = await db.get(regionStateKey(regionId), { snapshot: view });
    if (raw === undefined) {
      throw new PeerStorageError('RegionNotFound', `region ${regionId}: no state to snapshot`, regionId);
    }
    const st = decodeRegionLocalState(raw);
    if (st.appliedIndex === 0n) {
      throw new PeerStorageError(
        'InvalidArgument',
        `region ${regionId}: uninitialized (applied index 0), nothing to snapshot`,
        regionId,
      );
    }
    const { lo, hi } = dataRange(st.region.startKey, st.region.endKey);
    const pairs: Array<[Uint8Array, Uint8Array]> = [];
    for await (const [k, v] of db.iterate({ gte: lo, lt: hi, snapshot: view })) pairs.push([userKeyOf(k), v]);
    // The transaction column families carry caller-chosen versions, which a sequence snapshot
    // does not cover: the caller holds the storage's write lock while this runs (see
    // startGeneration), so no apply can change the region meanwhile.
    const records: VersionedRecord[] = [];
    for (const cf of TXN_CFS) {
      for await (const rec of db.internal.scan({ cf, gte: lo, lt: hi })) {
        if (isDeleteRecord(rec)) continue;
        records.push({
          cf,
          key: Buffer.from(userKeyOf(rec.key)),
          version: rec.version,
          expiresAt: rec.expiresAt,
          value: Buffer.from(rec.value),
        });
      }
    }
    const data = encodeSnapshotPayload({
      region: st.region,
      appliedIndex: st.appliedIndex,
      appliedTerm: st.appliedTerm,
      pairs,
      records,
    });
    return {
      snapshot: {
        data,
        metadata: { index: st.appliedIndex, term: st.appliedTerm, confState: confStateOfRegion(st.region) },
      },
      region: st.region,
    };
  } finally {
    view.release();
  }
}

/**
 * The engine writes that replace a region's data range with a snapshot payload's data: the range
 * and every stored transaction-CF version in it deleted, then the payload's pairs and records.
 */
export async function snapshotDataWrites(db: Database, payload: SnapshotPayload): Promise<InternalWrite[]> {
  const ops: InternalWrite[] = [];
  const range = dataRange(payload.region.startKey, payload.region.endKey);
  ops.push(deleteRange(range));
  for (const [k, v] of payload.pairs) ops.push(put(dataKey(k), v));
  ops.push(...(await txnRangeDeletes(db, range)));
  for (const r of payload.records ?? []) {
    ops.push({
      cf: r.cf,
      op: 'put',
      key: dataKey(r.key),
      version: r.version,
      value: r.value,
      ...(r.expiresAt > 0 ? { expiresAt: r.expiresAt } : {}),
    });
  }
  return ops;
}

/**
 * Deletes of every stored transaction-CF version in an engine key range. Versions in these
 * families are the transaction layer's timestamps, which a range tombstone (itself versioned)
 * cannot cover wholesale without also hiding older versions written after it: they go version by
 * version.
 */
export async function txnRangeDeletes(
  db: Database,
  range: { lo: Uint8Array; hi: Uint8Array },
): Promise<InternalWrite[]> {
  const ops: InternalWrite[] = [];
  for (const cf of TXN_CFS) {
    for await (const rec of db.internal.scan({ cf, gte: range.lo, lt: range.hi })) {
      if (!isDeleteRecord(rec))
        ops.push({ cf, op: 'delete', key: Buffer.from(rec.key), version: rec.version });
    }
  }
  return ops;
}

/** Every RegionLocalState in the engine, by region id: the store's catalog. */
export async function readRegionStates(db: Database): Promise<RegionLocalState[]> {
  const out: RegionLocalState[] = [];
  for await (const [k, v] of db.iterate({ gte: regionStateRange.lo, lt: regionStateRange.hi })) {
    const id = regionIdOfStateKey(k);
    try {
      out.push(decodeRegionLocalState(v));
    } catch (err) {
      throw new CorruptRaftStateError(id, `RegionLocalState does not decode: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
  return out;
}

/**
 * A region's durable Raft state in the store's engine (key layout in `store/keys.ts`), served to
 * the Raft library from an in-memory mirror (a MemoryStorage) that every durable change is copied
 * into once its engine write has resolved. Mutating calls run one at a time, in call order.
 */
export class PeerStorage implements Storage {
  private mem: MemoryStorage;
  private state: RegionLocalState;
  private readonly logger: PeerStorageLogger;
  private readonly generate: (db: Database, regionId: bigint) => Promise<GeneratedSnapshot>;
  /** Called when a requested snapshot is ready. */
  onSnapshotReady: (() => void) | undefined;

  private cached: GeneratedSnapshot | undefined;
  /** The snapshot's configuration of a PENDING peer (see `open`). */
  private pendingConf: ConfState | undefined;
  private generating = false;
  private tail: Promise<unknown> = Promise.resolve();
  private failed: unknown;
  private destroyed = false;

  private constructor(
    readonly db: Database,
    readonly regionId: bigint,
    state: RegionLocalState,
    mem: MemoryStorage,
    opts: PeerStorageOptions,
  ) {
    this.state = state;
    this.mem = mem;
    this.logger = opts.logger ?? silentLogger;
    this.onSnapshotReady = opts.onSnapshotReady;
    this.generate = opts.generateSnapshot ?? generateRegionSnapshot;
  }

  // --- creation -------------------------------------------------------------------------------

  /**
   * Writes the initial state of a region from the topology file, identical on every store that
   * hosts it: applied and truncated at RAFT_INIT_INDEX/TERM, hard state {term 5, vote 0, commit 5},
   * snapshot metadata at 5/5 with the region's peers as the configuration. Synced.
   * @throws PeerStorageError `RegionExists` if the region already has state.
   */
  static async bootstrap(db: Database, region: RegionMeta): Promise<void> {
    if (await hasAnyState(db, region.id)) {
      throw new PeerStorageError(
        'RegionExists',
        `region ${region.id} already has state; not bootstrapping`,
        region.id,
      );
    }
    const state: RegionLocalState = {
      region,
      appliedIndex: RAFT_INIT_INDEX,
      appliedTerm: RAFT_INIT_TERM,
      truncatedIndex: RAFT_INIT_INDEX,
      truncatedTerm: RAFT_INIT_TERM,
    };
    const meta: SnapshotMetadata = {
      index: RAFT_INIT_INDEX,
      term: RAFT_INIT_TERM,
      confState: confStateOfRegion(region),
    };
    await db.internal.write(
      [
        put(regionStateKey(region.id), encodeRegionLocalState(state)),
        put(
          raftHardStateKey(region.id),
          encodeHardState({ term: RAFT_INIT_TERM, vote: 0n, commit: RAFT_INIT_INDEX }),
        ),
        put(raftSnapshotKey(region.id), encodeSnapshot({ data: EMPTY, metadata: meta })),
      ],
      { sync: true },
    );
  }

  /**
   * Records a peer created because a leader contacted this store for a region it does not host:
   * the region as the message knows it, applied 0, no log, no configuration. Raft sends it a
   * snapshot.
   * @throws PeerStorageError `RegionExists` if the region already has state.
   */
  static async createUninitialized(db: Database, region: RegionMeta): Promise<void> {
    if (await hasAnyState(db, region.id)) {
      throw new PeerStorageError('RegionExists', `region ${region.id} already has state`, region.id);
    }
    const state: RegionLocalState = {
      region,
      appliedIndex: 0n,
      appliedTerm: 0n,
      truncatedIndex: 0n,
      truncatedTerm: 0n,
    };
    await db.internal.write([put(regionStateKey(region.id), encodeRegionLocalState(state))]);
  }

  /**
   * Loads and validates a region's state.
   * @throws PeerStorageError `RegionNotFound`; CorruptRaftStateError for state breaking an invariant.
   */
  static async open(db: Database, regionId: bigint, opts: PeerStorageOptions = {}): Promise<PeerStorage> {
    const corrupt = (msg: string, cause?: unknown) =>
      new CorruptRaftStateError(regionId, msg, cause === undefined ? undefined : { cause });
    const rawState = await db.get(regionStateKey(regionId));
    if (rawState === undefined) {
      throw new PeerStorageError('RegionNotFound', `region ${regionId} has no state on this store`, regionId);
    }
    let state: RegionLocalState;
    try {
      state = decodeRegionLocalState(rawState);
    } catch (err) {
      throw corrupt(`RegionLocalState does not decode: ${(err as Error).message}`, err);
    }
    if (state.region.id !== regionId) {
      throw corrupt(`RegionLocalState names region ${state.region.id}`);
    }
    let hardState: HardState = { term: 0n, vote: 0n, commit: 0n };
    const rawHs = await db.get(raftHardStateKey(regionId));
    if (rawHs !== undefined) {
      try {
        hardState = decodeHardState(rawHs);
      } catch (err) {
        throw corrupt(`hard state does not decode: ${(err as Error).message}`, err);
      }
    }
    let snapMeta: SnapshotMetadata | undefined;
    const rawSnap = await db.get(raftSnapshotKey(regionId));
    if (rawSnap !== undefined) {
      try {
        snapMeta = decodeSnapshot(rawSnap).metadata;
      } catch (err) {
        throw corrupt(`snapshot metadata does not decode: ${(err as Error).message}`, err);
      }
    }

    const { truncatedIndex, truncatedTerm, appliedIndex } = state;
    const entries: Entry[] = [];
    const logRange = raftLogRange(regionId, 0n, MAX_U64);
    for await (const [k, v] of db.iterate({ gte: logRange.lo, lt: logRange.hi })) {
      const keyIndex = Buffer.from(k.buffer, k.byteOffset, k.length).readBigUInt64BE(11);
      let e: Entry;
      try {
        e = decodeEntry(v);
      } catch (err) {
        throw corrupt(`log entry ${keyIndex} does not decode: ${(err as Error).message}`, err);
      }
      if (e.index !== keyIndex) throw corrupt(`log key ${keyIndex} holds entry ${e.index}`);
      const prev = entries[entries.length - 1];
      if (prev === undefined) {
        if (e.index !== truncatedIndex + 1n) {
          throw corrupt(`first log entry is ${e.index}, expected truncated index ${truncatedIndex} + 1`);
        }
        if (e.term < truncatedTerm) {
          throw corrupt(`entry ${e.index} has term ${e.term} below truncated term ${truncatedTerm}`);
        }
      } else {
        if (e.index !== prev.index + 1n)
          throw corrupt(`log gap: entry ${prev.index} is followed by ${e.index}`);
        if (e.term < prev.term) {
          throw corrupt(
            `term goes back: entry ${prev.index} has term ${prev.term}, ${e.index} has ${e.term}`,
          );
        }
      }
      entries.push(e);
    }
    const lastIndex = truncatedIndex + BigInt(entries.length);
    if (hardState.commit > lastIndex) {
      throw corrupt(`commit index ${hardState.commit} is beyond the last log index ${lastIndex}`);
    }
    if (appliedIndex > hardState.commit) {
      throw corrupt(`applied index ${appliedIndex} is beyond the commit index ${hardState.commit}`);
    }
    if (truncatedIndex > appliedIndex) {
      throw corrupt(`truncated index ${truncatedIndex} is beyond the applied index ${appliedIndex}`);
    }
    if (snapMeta !== undefined && snapMeta.index > truncatedIndex) {
      throw corrupt(
        `snapshot metadata index ${snapMeta.index} is beyond the truncated index ${truncatedIndex}`,
      );
    }
    if (truncatedIndex > 0n && hardState.term < truncatedTerm) {
      throw corrupt(`hard state term ${hardState.term} is below the truncated term ${truncatedTerm}`);
    }

    // A peer installed from an admin snapshot (PENDING) lists itself in its region meta, but is
    // not in the configuration until the leader's membership change reaches it: Raft starts from
    // the snapshot's configuration, so the new peer can neither campaign nor count in a quorum.
    const pendingConf =
      state.region.state === RegionState.Pending && snapMeta !== undefined ? snapMeta.confState : undefined;
    const mem = new MemoryStorage();
    if (truncatedIndex > 0n) {
      mem.applySnapshot({
        data: EMPTY,
        metadata: {
          index: truncatedIndex,
          term: truncatedTerm,
          confState: pendingConf ?? confStateOfRegion(state.region),
        },
      });
    }
    mem.append(entries);
    mem.setHardState(hardState);
    const storage = new PeerStorage(db, regionId, state, mem, opts);
    storage.pendingConf = pendingConf;
    return storage;
  }

  // --- Storage (served from memory) ---------------------------------------------------------------

  initialState(): InitialState {
    return { hardState: this.mem.currentHardState(), confState: this.confState() };
  }

  entries(lo: bigint, hi: bigint, maxSizeBytes: number): Entry[] {
    return this.mem.entries(lo, hi, maxSizeBytes);
  }

  term(index: bigint): bigint {
    return this.mem.term(index);
  }

  firstIndex(): bigint {
    return this.mem.firstIndex();
  }

  lastIndex(): bigint {
    return this.mem.lastIndex();
  }

  /**
   * The latest generated snapshot of the region while it is still usable (taken at or after the
   * truncated index, with the current region epoch). Otherwise starts generating one and throws
   * RaftError `SnapshotTemporarilyUnavailable`; `onSnapshotReady` fires when it is ready.
   */
  snapshot(): Snapshot {
    const c = this.cached;
    if (
      c !== undefined &&
      c.snapshot.metadata.index >= this.state.truncatedIndex &&
      epochEquals(c.region.epoch, this.state.region.epoch)
    ) {
      return c.snapshot;
    }
    this.startGeneration();
    throw new RaftError(
      'SnapshotTemporarilyUnavailable',
      `region ${this.regionId}: snapshot is being generated`,
    );
  }

  /**
   * Generates a snapshot of the region now, under the write lock (no apply changes the region
   * while its column families are read), for an admin export. Does not touch Raft's cached one.
   */
  generateSnapshotNow(): Promise<GeneratedSnapshot> {
    return this.exclusive(() => this.generate(this.db, this.regionId));
  }

  // --- state ----------------------------------------------------------------------------------

  get region(): RegionMeta {
    return this.state.region;
  }

  get appliedIndex(): bigint {
    return this.state.appliedIndex;
  }

  get appliedTerm(): bigint {
    return this.state.appliedTerm;
  }

  get truncatedIndex(): bigint {
    return this.state.truncatedIndex;
  }

  get truncatedTerm(): bigint {
    return this.state.truncatedTerm;
  }

  /** A copy of the RegionLocalState as last written. */
  get localState(): RegionLocalState {
    return { ...this.state };
  }

  /** The persisted hard state. */
  get hardState(): HardState {
    return this.mem.currentHardState();
  }

  /** Whether the region holds data: bootstrapped, or a snapshot was installed. */
  isInitialized(): boolean {
    return this.state.appliedIndex > 0n || this.state.truncatedIndex > 0n;
  }

  /**
   * The configuration as of the applied index: from the region's peers (empty if uninitialized),
   * or for a PENDING peer the installed snapshot's configuration, which does not include it.
   */
  confState(): ConfState {
    if (this.pendingConf !== undefined && this.state.region.state === RegionState.Pending) {
      return this.pendingConf;
    }
    return this.isInitialized() ? confStateOfRegion(this.state.region) : emptyConfState();
  }

  // --- writes ---------------------------------------------------------------------------------

  /**
   * Persists a Ready's snapshot, entries and hard state in one engine batch, fsynced when the
   * Ready says so or carries a snapshot or entries, and then makes them visible to Raft. Entries
   * replace any stored suffix above the last new one. A snapshot replaces the region's data range
   * with the payload's pairs and the whole log, and sets applied/truncated to its index.
   * @returns the region meta of an installed snapshot.
   * @throws CorruptSnapshotError (nothing written) for a bad payload;
   *   PeerStorageError `SnapshotOutOfDate` / `InvalidArgument`.
   */
  persistReady(
    rd: Pick<Ready, 'hardState' | 'entries' | 'snapshot' | 'mustSync'>,
  ): Promise<{ snapshotRegion?: RegionMeta }> {
    return this.exclusive(async () => {
      const id = this.regionId;
      const ops: InternalWrite[] = [];
      let truncated = this.state.truncatedIndex;
      let last = this.mem.lastIndex();
      let hs = rd.hardState;
      let installed: { state: RegionLocalState; meta: SnapshotMetadata } | undefined;

      const snap = rd.snapshot;
      if (snap !== undefined && snap.metadata.index > 0n) {
        const md = snap.metadata;
        if (md.index <= this.state.appliedIndex) {
          throw new PeerStorageError(
            'SnapshotOutOfDate',
            `region ${id}: snapshot at ${md.index} is not newer than applied index ${this.state.appliedIndex}`,
            id,
          );
        }
        let payload: SnapshotPayload;
        try {
          payload = decodeSnapshotPayload(snap.data);
        } catch (err) {
          if (err instanceof CorruptSnapshotError)
            throw new CorruptSnapshotError(err.reason, id, { cause: err });
          throw err;
        }
        checkPayloadMatches(id, md, payload);
        ops.push(...(await snapshotDataWrites(this.db, payload)));
        deleteLog(ops, id, this.mem.firstIndex(), last + 1n);
        const state: RegionLocalState = {
          region: payload.region,
          appliedIndex: md.index,
          appliedTerm: md.term,
          truncatedIndex: md.index,
          truncatedTerm: md.term,
        };
        const meta: SnapshotMetadata = { index: md.index, term: md.term, confState: md.confState };
        ops.push(put(regionStateKey(id), encodeRegionLocalState(state)));
        ops.push(put(raftSnapshotKey(id), encodeSnapshot({ data: EMPTY, metadata: meta })));
        installed = { state, meta };
        truncated = md.index;
        last = md.index;
        const base = hs ?? this.mem.currentHardState();
        // Raft sets commit to the snapshot index when restoring; never persist less.
        hs = { ...base, commit: base.commit > md.index ? base.commit : md.index };
      }

      let entries = rd.entries;
      if (entries.length > 0 && entries[0]!.index <= truncated) {
        entries = entries.filter((e) => e.index > truncated);
      }
      if (entries.length > 0) {
        const first = entries[0]!.index;
        if (first > last + 1n) {
          throw new PeerStorageError(
            'InvalidArgument',
            `region ${id}: entries from ${first} leave a gap after last index ${last}`,
            id,
          );
        }
        let expect = first;
        for (const e of entries) {
          if (e.index !== expect) {
            throw new PeerStorageError(
              'InvalidArgument',
              `region ${id}: entries are not contiguous at ${e.index}`,
              id,
            );
          }
          expect++;
          ops.push(put(raftLogKey(id, e.index), encodeEntry(e)));
        }
        const newLast = expect - 1n;
        // A conflicting suffix: stored entries above the new last one are gone.
        deleteLog(ops, id, newLast + 1n, last + 1n);
        last = newLast;
      }
      if (hs !== undefined) {
        if (hs.commit > last) {
          throw new PeerStorageError(
            'InvalidArgument',
            `region ${id}: hard state commit ${hs.commit} is beyond the last index ${last}`,
            id,
          );
        }
        ops.push(put(raftHardStateKey(id), encodeHardState(hs)));
      }
      if (installed !== undefined && (hs?.term ?? 0n) < installed.state.truncatedTerm) {
        throw new PeerStorageError(
          'InvalidArgument',
          `region ${id}: hard state term ${hs?.term} is below the term ${installed.state.truncatedTerm} of the snapshot`,
          id,
        );
      }
      if (ops.length === 0) return {};

      const sync = rd.mustSync || installed !== undefined || entries.length > 0;
      await this.write(ops, sync);

      if (installed !== undefined) {
        const prevHs = this.mem.currentHardState();
        const mem = new MemoryStorage();
        mem.applySnapshot({
          data: EMPTY,
          metadata: { ...installed.meta, confState: confStateOfRegion(installed.state.region) },
        });
        mem.setHardState(prevHs);
        this.mem = mem;
        this.state = installed.state;
        this.cached = undefined;
      }
      this.mem.append(entries);
      if (hs !== undefined) this.mem.setHardState(hs);
      return installed === undefined ? {} : { snapshotRegion: installed.state.region };
    });
  }

  /**
   * Applies committed data writes and advances the applied index/term (and, after a membership
   * change or split, the region meta) in one unsynced batch.
   * `opts.commit`: a commit index Raft knows but the hard state does not hold yet (a leader applying
   * ahead of its Ready's hard state); it is written in the same batch, so the applied index never
   * passes the persisted commit. It must not pass the persisted log.
   * `opts.sync`: fsync the batch (a split or merge step, whose effect other stores rely on).
   * @throws PeerStorageError `InvalidArgument` if the applied index goes back or passes commit.
   */
  applyWrites(
    writes: ReadonlyArray<DataWrite | InternalWrite>,
    appliedIndex: bigint,
    appliedTerm: bigint,
    region?: RegionMeta,
    opts?: { commit?: bigint; sync?: boolean },
  ): Promise<void> {
    return this.exclusive(async () => {
      const id = this.regionId;
      if (appliedIndex < this.state.appliedIndex) {
        throw new PeerStorageError(
          'InvalidArgument',
          `region ${id}: applied index ${appliedIndex} is below the current ${this.state.appliedIndex}`,
          id,
        );
      }
      const persisted = this.mem.currentHardState();
      let newHardState: HardState | undefined;
      if (opts?.commit !== undefined && opts.commit > persisted.commit) {
        if (opts.commit > this.mem.lastIndex()) {
          throw new PeerStorageError(
            'InvalidArgument',
            `region ${id}: commit index ${opts.commit} is beyond the persisted log (last index ${this.mem.lastIndex()})`,
            id,
          );
        }
        newHardState = { ...persisted, commit: opts.commit };
      }
      const commit = newHardState?.commit ?? persisted.commit;
      if (appliedIndex > commit) {
        throw new PeerStorageError(
          'InvalidArgument',
          `region ${id}: applied index ${appliedIndex} is beyond the persisted commit index ${commit}`,
          id,
        );
      }
      if (region !== undefined && region.id !== id) {
        throw new PeerStorageError(
          'InvalidArgument',
          `region ${id}: new region meta names region ${region.id}`,
          id,
        );
      }
      const ops: InternalWrite[] = [];
      for (const w of writes) {
        // Engine writes with a column family (a transactional command's) go in as they are.
        if ('cf' in w) ops.push(w);
        else ops.push(w.op === 'put' ? put(dataKey(w.key), w.value) : del(dataKey(w.key)));
      }
      const state: RegionLocalState = {
        ...this.state,
        region: region ?? this.state.region,
        appliedIndex,
        appliedTerm,
      };
      ops.push(put(regionStateKey(id), encodeRegionLocalState(state)));
      if (newHardState !== undefined) ops.push(put(raftHardStateKey(id), encodeHardState(newHardState)));
      await this.write(ops, opts?.sync === true);
      this.state = state;
      if (newHardState !== undefined) this.mem.setHardState(newHardState);
    });
  }

  /**
   * Deletes log entries up to `toIndex` and records the new truncated index/term. A no-op at or
   * below the current truncated index.
   * @throws PeerStorageError `CompactBeyondApplied` if `toIndex` is not applied yet.
   */
  compactLog(toIndex: bigint): Promise<void> {
    return this.exclusive(async () => {
      const id = this.regionId;
      if (toIndex > this.state.appliedIndex) {
        throw new PeerStorageError(
          'CompactBeyondApplied',
          `region ${id}: cannot compact the log to ${toIndex}: applied index is ${this.state.appliedIndex}`,
          id,
        );
      }
      if (toIndex <= this.state.truncatedIndex) return;
      const term = this.mem.term(toIndex);
      const ops: InternalWrite[] = [];
      deleteLog(ops, id, this.state.truncatedIndex + 1n, toIndex + 1n);
      const state: RegionLocalState = { ...this.state, truncatedIndex: toIndex, truncatedTerm: term };
      ops.push(put(regionStateKey(id), encodeRegionLocalState(state)));
      await this.write(ops, false);
      this.mem.compact(toIndex);
      this.state = state;
    });
  }

  /**
   * Removes the region's raft state and RegionLocalState (and its data range, unless `keepData`)
   * in one synced batch. The storage is unusable afterwards.
   */
  destroy(opts: { keepData?: boolean } = {}): Promise<void> {
    return this.exclusive(async () => {
      const id = this.regionId;
      const ops: InternalWrite[] = [deleteRange(raftRange(id)), del(regionStateKey(id))];
      if (opts.keepData !== true && this.isInitialized()) {
        const range = dataRange(this.state.region.startKey, this.state.region.endKey);
        ops.push(deleteRange(range));
        // The transaction column families too: a later replica of the range must not find them.
        ops.push(...(await txnRangeDeletes(this.db, range)));
      }
      await this.write(ops, true);
      this.destroyed = true;
      this.cached = undefined;
    });
  }

  // --- internals ------------------------------------------------------------------------------

  /** Runs mutations one at a time in call order, refusing them once destroyed or failed. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      if (this.destroyed) {
        throw new PeerStorageError(
          'Destroyed',
          `region ${this.regionId}: peer storage was destroyed`,
          this.regionId,
        );
      }
      if (this.failed !== undefined) {
        throw new PeerStorageError(
          'StorageFailed',
          `region ${this.regionId}: an earlier write failed; reopen the store`,
          this.regionId,
          { cause: this.failed },
        );
      }
      return fn();
    };
    const p = this.tail.then(run, run);
    this.tail = p.catch(() => undefined);
    return p;
  }

  private async write(ops: InternalWrite[], sync: boolean): Promise<void> {
    try {
      await this.db.internal.write(ops, { sync });
    } catch (err) {
      // Whether the batch reached the WAL is unknown: memory can no longer be trusted to match.
      this.failed = err;
      throw err;
    }
  }

  private startGeneration(): void {
    if (this.generating || this.destroyed) return;
    this.generating = true;
    // Under the write lock: no apply can change the region while its column families are read.
    this.exclusive(() => this.generate(this.db, this.regionId))
      .then(
        (g) => {
          if (this.destroyed) return;
          this.cached = g;
          const md = g.snapshot.metadata;
          this.logger.info(
            {
              region: String(this.regionId),
              index: String(md.index),
              term: String(md.term),
              bytes: g.snapshot.data.length,
            },
            'generated snapshot',
          );
          try {
            this.onSnapshotReady?.();
          } catch (err) {
            this.logger.error({ region: String(this.regionId), err: String(err) }, 'onSnapshotReady threw');
          }
        },
        (err: unknown) => {
          this.logger.warn({ region: String(this.regionId), err: String(err) }, 'snapshot generation failed');
        },
      )
      .finally(() => {
        this.generating = false;
      });
  }
}

function checkPayloadMatches(
  regionId: bigint,
  md: SnapshotMetadata,
  p: { region: RegionMeta; appliedIndex: bigint; appliedTerm: bigint },
): void {
  const fail = (msg: string) => new CorruptSnapshotError(msg, regionId);
  if (p.region.id !== regionId) throw fail(`payload is of region ${p.region.id}`);
  if (p.appliedIndex !== md.index || p.appliedTerm !== md.term) {
    throw fail(
      `payload is at ${p.appliedIndex}/${p.appliedTerm} but the metadata says ${md.index}/${md.term}`,
    );
  }
}
