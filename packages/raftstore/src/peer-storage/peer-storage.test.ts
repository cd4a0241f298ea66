import { isDeleteRecord } from '@nokv/engine';
import { encodeEntry, encodeHardState, encodeRegionLocalState, type Snapshot } from '@nokv/proto';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { RaftError } from '../raft/errors.js';
import { dataKey, raftHardStateKey, raftLogKey, raftRange, regionStateKey } from '../store/keys.js';
import { CorruptRaftStateError, PeerStorageError } from './errors.js';
import { PeerStorage, RAFT_INIT_INDEX, RAFT_INIT_TERM, readRegionStates } from './peer-storage.js';
import { decodeSnapshotPayload } from './snapshot-payload.js';
import { entries, entry, TempEngine, testRegion, waitFor } from './testing/support.js';

const b = (s: string) => Buffer.from(s);

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string | undefined> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

async function allKeys(t: TempEngine, lo: Uint8Array, hi: Uint8Array): Promise<string[]> {
  const out: string[] = [];
  for await (const [k] of t.db.iterate({ gte: lo, lt: hi })) out.push(k.toString('hex'));
  return out;
}

const ids = (es: { index: bigint; term: bigint }[]) => es.map((e) => `${e.index}/${e.term}`);

let engines: TempEngine[] = [];
async function engine(): Promise<TempEngine> {
  const t = await TempEngine.create();
  engines.push(t);
  return t;
}

beforeEach(() => {
  engines = [];
});
afterEach(async () => {
  for (const t of engines) await t.cleanup();
});

describe('bootstrap and open', () => {
  test('bootstrapped region opens at index/term 5 with the region as its configuration', async () => {
    const t = await engine();
    const region = testRegion(1n, { voters: 3, learners: 1 });
    await PeerStorage.bootstrap(t.db, region);
    await t.reopen();
    const s = await PeerStorage.open(t.db, 1n);
    const init = s.initialState();
    expect(init.hardState).toEqual({ term: RAFT_INIT_TERM, vote: 0n, commit: RAFT_INIT_INDEX });
    expect(init.confState.voters).toEqual([11n, 21n, 31n]);
    expect(init.confState.learners).toEqual([41n]);
    expect(s.firstIndex()).toBe(6n);
    expect(s.lastIndex()).toBe(5n);
    expect(s.term(5n)).toBe(5n);
    expect(s.appliedIndex).toBe(5n);
    expect(s.appliedTerm).toBe(5n);
    expect(s.truncatedIndex).toBe(5n);
    expect(s.isInitialized()).toBe(true);
    expect(s.region).toEqual(region);
    expect(await codeOf(() => s.term(4n))).toBe('Compacted');
    expect(await codeOf(() => s.entries(5n, 6n, 100))).toBe('Compacted');
  });

  test('bootstrapping twice is refused; opening an unknown region is RegionNotFound', async () => {
    const t = await engine();
    await PeerStorage.bootstrap(t.db, testRegion(1n));
    const err = await PeerStorage.bootstrap(t.db, testRegion(1n)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PeerStorageError);
    expect((err as PeerStorageError).code).toBe('RegionExists');
    expect(await codeOf(PeerStorage.createUninitialized(t.db, testRegion(1n)))).toBe('RegionExists');
    expect(await codeOf(PeerStorage.open(t.db, 2n))).toBe('RegionNotFound');
  });

  test('an uninitialized peer has no log and no configuration', async () => {
    const t = await engine();
    await PeerStorage.createUninitialized(t.db, testRegion(3n));
    const s = await PeerStorage.open(t.db, 3n);
    expect(s.isInitialized()).toBe(false);
    expect(s.initialState()).toEqual({
      hardState: { term: 0n, vote: 0n, commit: 0n },
      confState: { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false },
    });
    expect(s.firstIndex()).toBe(1n);
    expect(s.lastIndex()).toBe(0n);
    expect(s.appliedIndex).toBe(0n);
  });

  test('readRegionStates lists every region', async () => {
    const t = await engine();
    await PeerStorage.bootstrap(t.db, testRegion(1n, { end: 'm' }));
    await PeerStorage.bootstrap(t.db, testRegion(2n, { start: 'm' }));
    await PeerStorage.createUninitialized(t.db, testRegion(7n));
    const states = await readRegionStates(t.db);
    expect(states.map((s) => [s.region.id, s.appliedIndex])).toEqual([
      [1n, 5n],
      [2n, 5n],
      [7n, 0n],
    ]);
    expect(await readRegionStates((await engine()).db)).toEqual([]);
  });
});

describe('persistReady', () => {
  test('entries and hard state survive a reopen of the engine', async () => {
    const t = await engine();
    await PeerStorage.bootstrap(t.db, testRegion(1n));
    const s = await PeerStorage.open(t.db, 1n);
    await s.persistReady({
      entries: entries(6, 10, 6),
      hardState: { term: 6n, vote: 11n, commit: 8n },
      mustSync: true,
    });
    await s.persistReady({ entries: [], hardState: { term: 6n, vote: 11n, commit: 10n }, mustSync: false });
    expect(s.lastIndex()).toBe(10n);
    await t.reopen();
    const r = await PeerStorage.open(t.db, 1n);
    expect(r.initialState().hardState).toEqual({ term: 6n, vote: 11n, commit: 10n });
    expect(r.entries(6n, 11n, Number.MAX_SAFE_INTEGER)).toEqual(entries(6, 10, 6));
    expect(r.firstIndex()).toBe(6n);
    expect(r.lastIndex()).toBe(10n);
  });

  test('new entries replace a conflicting suffix, on disk too', async () => {
    const t = await engine();
    await PeerStorage.bootstrap(t.db, testRegion(1n));
    const s = await PeerStorage.open(t.db, 1n);
    await s.persistReady({
      entries: entries(6, 10, 6),
      hardState: { term: 6n, vote: 0n, commit: 7n },
      mustSync: true,
    });
    await s.persistReady({
      entries: entries(8, 9, 7),
      hardState: { term: 7n, vote: 0n, commit: 7n },
      mustSync: true,
    });
    expect(ids(s.entries(6n, 10n, 1 << 30))).toEqual(['6/6', '7/6', '8/7', '9/7']);
    expect(await t.db.get(raftLogKey(1n, 10n))).toBeUndefined();
    await t.reopen();
    const r = await PeerStorage.open(t.db, 1n);
    expect(ids(r.entries(6n, 10n, 1 << 30))).toEqual(['6/6', '7/6', '8/7', '9/7']);
    expect(r.lastIndex()).toBe(9n);
    // many entries replaced at once take the range-delete path
    await r.persistReady({ entries: entries(10, 400, 7), mustSync: true });
    await r.persistReady({ entries: entries(8, 8, 8), mustSync: true });
    expect(r.lastIndex()).toBe(8n);
    await t.reopen();
    const r2 = await PeerStorage.open(t.db, 1n);
    expect(ids(r2.entries(6n, 9n, 1 << 30))).toEqual(['6/6', '7/6', '8/8']);
  });

  test('a gap or a commit beyond the log is refused and writes nothing', async () => {
    const t = await engine();
    await PeerStorage.bootstrap(t.db, testRegion(1n));
    const s = await PeerStorage.open(t.db, 1n);
    expect(await codeOf(s.persistReady({ entries: entries(8, 9, 6), mustSync: true }))).toBe(
      'InvalidArgument',
    );
    expect(
      await codeOf(
        s.persistReady({
          entries: entries(6, 6, 6),
          hardState: { term: 6n, vote: 0n, commit: 7n },
          mustSync: true,
        }),
      ),
    ).toBe('InvalidArgument');
    expect(s.lastIndex()).toBe(5n);
    expect(await t.db.get(raftLogKey(1n, 6n))).toBeUndefined();
    // entries at or below the truncated index are skipped
    await s.persistReady({ entries: entries(4, 7, 6), mustSync: true });
    expect(ids(s.entries(6n, 8n, 1 << 30))).toEqual(['6/6', '7/6']);
  });
});

describe('applyWrites and compactLog', () => {
  test('a leader applying ahead of its hard state writes the commit index with the applied index', async () => {
    const t = await engine();
    await PeerStorage.bootstrap(t.db, testRegion(1n));
    const s = await PeerStorage.open(t.db, 1n);
    await s.persistReady({
      entries: entries(6, 9, 6),
      hardState: { term: 6n, vote: 11n, commit: 6n },
      mustSync: true,
    });
    // Raft knows commit 8; the hard state on disk still says 6.
    expect(await codeOf(s.applyWrites([], 8n, 6n))).toBe('InvalidArgument');
    expect(await codeOf(s.applyWrites([], 8n, 6n, undefined, { commit: 10n }))).toBe('InvalidArgument'); // past the log
    await s.applyWrites([{ op: 'put', key: b('k'), value: b('v') }], 8n, 6n, undefined, { commit: 8n });
    expect(s.hardState).toEqual({ term: 6n, vote: 11n, commit: 8n });
    await t.reopen(); // as if the process died before the Ready's own hard state was written
    const r = await PeerStorage.open(t.db, 1n);
    expect(r.appliedIndex).toBe(8n);
    expect(r.hardState).toEqual({ term: 6n, vote: 11n, commit: 8n });
    expect((await t.db.get(dataKey(b('k'))))?.toString()).toBe('v');
  });

  test('a reopen resumes at the applied index with its data', async () => {
    const t = await engine();
    await PeerStorage.bootstrap(t.db, testRegion(1n));
    const s = await PeerStorage.open(t.db, 1n);
    await s.persistReady({
      entries: entries(6, 9, 6),
      hardState: { term: 6n, vote: 0n, commit: 8n },
      mustSync: true,
    });
    await s.applyWrites(
      [
        { op: 'put', key: b('a'), value: b('1') },
        { op: 'put', key: b('b'), value: b('2') },
      ],
      7n,
      6n,
    );
    const moved = { ...testRegion(1n, { voters: 2 }), epoch: { version: 1n, confVersion: 2n } };
    await s.applyWrites([{ op: 'delete', key: b('a') }], 8n, 6n, moved);
    expect(s.appliedIndex).toBe(8n);
    expect(await codeOf(s.applyWrites([], 9n, 6n))).toBe('InvalidArgument'); // beyond commit
    expect(await codeOf(s.applyWrites([], 7n, 6n))).toBe('InvalidArgument'); // going back
    await t.reopen();
    const r = await PeerStorage.open(t.db, 1n);
    expect(r.appliedIndex).toBe(8n);
    expect(r.appliedTerm).toBe(6n);
    expect(r.region).toEqual(moved);
    expect(r.initialState().confState.voters).toEqual([11n, 21n]);
    expect(await t.db.get(dataKey(b('a')))).toBeUndefined();
    expect((await t.db.get(dataKey(b('b'))))?.toString()).toBe('2');
  });

  test('compactLog deletes applied entries and records the truncated state', async () => {
    const t = await engine();
    await PeerStorage.bootstrap(t.db, testRegion(1n));
    const s = await PeerStorage.open(t.db, 1n);
    await s.persistReady({
      entries: [...entries(6, 7, 6), ...entries(8, 12, 7)],
      hardState: { term: 7n, vote: 0n, commit: 12n },
      mustSync: true,
    });
    await s.applyWrites([], 10n, 7n);
    const err = await s.compactLog(11n).catch((e: unknown) => e);
    expect((err as PeerStorageError).code).toBe('CompactBeyondApplied');
    await s.compactLog(8n);
    expect(s.firstIndex()).toBe(9n);
    expect(s.term(8n)).toBe(7n);
    expect(s.truncatedIndex).toBe(8n);
    expect(await codeOf(() => s.term(7n))).toBe('Compacted');
    await s.compactLog(7n); // already compacted: no-op
    expect(await t.db.get(raftLogKey(1n, 8n))).toBeUndefined();
    await t.reopen();
    const r = await PeerStorage.open(t.db, 1n);
    expect(r.firstIndex()).toBe(9n);
    expect(r.truncatedIndex).toBe(8n);
    expect(r.term(8n)).toBe(7n);
    expect(ids(r.entries(9n, 13n, 1 << 30))).toEqual(['9/7', '10/7', '11/7', '12/7']);
  });

  test('destroy removes the raft state, the region state and (unless kept) the data', async () => {
    const t = await engine();
    await PeerStorage.bootstrap(t.db, testRegion(1n, { end: 'm' }));
    await PeerStorage.bootstrap(t.db, testRegion(2n, { start: 'm' }));
    const s = await PeerStorage.open(t.db, 1n);
    await s.persistReady({
      entries: entries(6, 7, 6),
      hardState: { term: 6n, vote: 0n, commit: 7n },
      mustSync: true,
    });
    await s.applyWrites([{ op: 'put', key: b('a'), value: b('1') }], 7n, 6n);
    const s2 = await PeerStorage.open(t.db, 2n);
    await s2.persistReady({
      entries: entries(6, 6, 6),
      hardState: { term: 6n, vote: 0n, commit: 6n },
      mustSync: true,
    });
    await s2.applyWrites([{ op: 'put', key: b('x'), value: b('2') }], 6n, 6n);
    await s.destroy();
    expect(await codeOf(s.applyWrites([], 7n, 6n))).toBe('Destroyed');
    const range = raftRange(1n);
    expect(await allKeys(t, range.lo, range.hi)).toEqual([]);
    expect(await t.db.get(regionStateKey(1n))).toBeUndefined();
    expect(await t.db.get(dataKey(b('a')))).toBeUndefined();
    expect((await t.db.get(dataKey(b('x'))))?.toString()).toBe('2');
    expect((await readRegionStates(t.db)).map((r) => r.region.id)).toEqual([2n]);
    await s2.destroy({ keepData: true });
    expect((await t.db.get(dataKey(b('x'))))?.toString()).toBe('2');
    expect(await readRegionStates(t.db)).toEqual([]);
  });
  test('mutations run in call order without awaiting each other', async () => {
    const t = await engine();
    await PeerStorage.bootstrap(t.db, testRegion(1n));
    const s = await PeerStorage.open(t.db, 1n);
    const done = [
      s.persistReady({
        entries: entries(6, 12, 6),
        hardState: { term: 6n, vote: 0n, commit: 10n },
        mustSync: true,
      }),
      s.applyWrites([{ op: 'put', key: b('k'), value: b('v') }], 9n, 6n),
      s.compactLog(8n),
      s.persistReady({
        entries: entries(11, 11, 7),
        hardState: { term: 7n, vote: 0n, commit: 11n },
        mustSync: true,
      }),
    ];
    await Promise.all(done);
    await t.reopen();
    const r = await PeerStorage.open(t.db, 1n);
    expect([r.firstIndex(), r.lastIndex(), r.appliedIndex, r.term(11n)]).toEqual([9n, 11n, 9n, 7n]);
  });

  test('after a failed engine write the storage refuses further writes', async () => {
    const t = await engine();
    await PeerStorage.bootstrap(t.db, testRegion(1n));
    const s = await PeerStorage.open(t.db, 1n);
    await t.db.close();
    expect(await codeOf(s.persistReady({ entries: entries(6, 6, 6), mustSync: true }))).toBe('Closed');
    expect(s.lastIndex()).toBe(5n);
    await t.open();
    expect(await codeOf(s.persistReady({ entries: entries(6, 6, 6), mustSync: true }))).toBe('StorageFailed');
  });
});

describe('open validates the stored state', () => {
  async function damaged(mutate: (t: TempEngine) => Promise<void>): Promise<unknown> {
    const t = await engine();
    await PeerStorage.bootstrap(t.db, testRegion(1n));
    const s = await PeerStorage.open(t.db, 1n);
    await s.persistReady({
      entries: entries(6, 9, 6),
      hardState: { term: 6n, vote: 0n, commit: 8n },
      mustSync: true,
    });
    await s.applyWrites([], 7n, 6n);
    await mutate(t);
    await t.reopen();
    return PeerStorage.open(t.db, 1n).catch((e: unknown) => e);
  }

  test.each([
    ['a gap in the log', (t: TempEngine) => t.db.delete(raftLogKey(1n, 7n)), /gap: entry 6 is followed by 8/],
    [
      'a term going back',
      (t: TempEngine) => t.db.set(raftLogKey(1n, 9n), encodeEntry(entry(9, 5))),
      /term goes back: entry 8 has term 6, 9 has 5/,
    ],
    [
      'commit beyond the log',
      (t: TempEngine) => t.db.set(raftHardStateKey(1n), encodeHardState({ term: 6n, vote: 0n, commit: 12n })),
      /commit index 12 is beyond the last log index 9/,
    ],
    [
      'applied beyond commit',
      (t: TempEngine) => t.db.set(raftHardStateKey(1n), encodeHardState({ term: 6n, vote: 0n, commit: 6n })),
      /applied index 7 is beyond the commit index 6/,
    ],
    [
      'first index not after the truncated one',
      (t: TempEngine) => t.db.delete(raftLogKey(1n, 6n)),
      /first log entry is 7, expected truncated index 5 \+ 1/,
    ],
    [
      'an entry under the wrong key',
      (t: TempEngine) => t.db.set(raftLogKey(1n, 10n), encodeEntry(entry(11, 6))),
      /log key 10 holds entry 11/,
    ],
    [
      'undecodable region state',
      (t: TempEngine) => t.db.set(regionStateKey(1n), b('\xff\xff\xff')),
      /RegionLocalState/,
    ],
    [
      'truncated beyond applied',
      (t: TempEngine) =>
        t.db.set(
          regionStateKey(1n),
          encodeRegionLocalState({
            region: testRegion(1n),
            appliedIndex: 7n,
            appliedTerm: 6n,
            truncatedIndex: 8n,
            truncatedTerm: 6n,
          }),
        ),
      /./,
    ],
  ])('%s is CorruptRaftState naming the region and indexes', async (_, mutate, message) => {
    const err = await damaged(mutate as (t: TempEngine) => Promise<void>);
    expect(err).toBeInstanceOf(CorruptRaftStateError);
    expect((err as CorruptRaftStateError).code).toBe('CorruptRaftState');
    expect((err as CorruptRaftStateError).regionId).toBe(1n);
    expect((err as Error).message).toMatch(/region 1/);
    expect((err as Error).message).toMatch(message);
  });
});

describe('snapshots', () => {
  async function leaderWithData(t: TempEngine): Promise<{ s: PeerStorage; ready: () => number }> {
    const region = testRegion(1n, { start: 'b', end: 'y', voters: 2, learners: 1 });
    await PeerStorage.bootstrap(t.db, region);
    let readyCalls = 0;
    const s = await PeerStorage.open(t.db, 1n, { onSnapshotReady: () => readyCalls++ });
    await s.persistReady({
      entries: entries(6, 20, 6),
      hardState: { term: 6n, vote: 11n, commit: 20n },
      mustSync: true,
    });
    const writes = [];
    for (let i = 0; i < 50; i++)
      writes.push({ op: 'put' as const, key: b(`key${i}`), value: b(`value${i}`) });
    await s.applyWrites(writes, 12n, 6n);
    await s.applyWrites([{ op: 'delete', key: b('key7') }], 15n, 6n);
    // outside the region: never in its snapshot
    await t.db.set(dataKey(b('a-outside')), 'x');
    await t.db.set(dataKey(b('z-outside')), 'x');
    return { s, ready: () => readyCalls };
  }

  test('generation: first call throws, the callback fires, the next call returns it', async () => {
    const t = await engine();
    const { s, ready } = await leaderWithData(t);
    let err: unknown;
    try {
      s.snapshot();
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RaftError);
    expect((err as RaftError).code).toBe('SnapshotTemporarilyUnavailable');
    // a second request while generating does not start another one
    expect(() => s.snapshot()).toThrow(RaftError);
    // writes after generation started are not in it: the engine snapshot was taken first
    await waitFor(() => ready() === 1);
    const snap = s.snapshot();
    expect(ready()).toBe(1);
    expect(snap.metadata.index).toBe(15n);
    expect(snap.metadata.term).toBe(6n);
    expect(snap.metadata.confState.voters).toEqual([11n, 21n]);
    expect(snap.metadata.confState.learners).toEqual([31n]);
    const p = decodeSnapshotPayload(snap.data);
    expect(p.appliedIndex).toBe(15n);
    expect(p.region).toEqual(s.region);
    expect(p.pairs.length).toBe(49);
    expect(p.pairs.map(([k]) => Buffer.from(k).toString())).not.toContain('key7');
    expect(p.pairs.every(([k]) => Buffer.from(k).toString().startsWith('key'))).toBe(true);
    expect(s.snapshot()).toBe(snap); // cached
  });

  test('a cached snapshot is replaced once the log is compacted past it or the epoch changes', async () => {
    const t = await engine();
    const { s, ready } = await leaderWithData(t);
    expect(() => s.snapshot()).toThrow(RaftError);
    await waitFor(() => ready() === 1);
    expect(s.snapshot().metadata.index).toBe(15n);
    await s.applyWrites([], 18n, 6n);
    await s.compactLog(15n);
    expect(s.snapshot().metadata.index).toBe(15n); // still covers the log
    await s.compactLog(17n);
    expect(() => s.snapshot()).toThrow(RaftError);
    await waitFor(() => ready() === 2);
    expect(s.snapshot().metadata.index).toBe(18n);
    const region = { ...s.region, epoch: { version: 1n, confVersion: 2n } };
    await s.applyWrites([], 19n, 6n, region);
    expect(() => s.snapshot()).toThrow(RaftError);
    await waitFor(() => ready() === 3);
    expect(s.snapshot().metadata.index).toBe(19n);
  });

  async function generated(s: PeerStorage, ready: () => number): Promise<Snapshot> {
    const before = ready();
    try {
      return s.snapshot();
    } catch {
      await waitFor(() => ready() > before);
      return s.snapshot();
    }
  }

  test('installing it into an uninitialized peer on another engine gives the same data and state', async () => {
    const t = await engine();
    const { s, ready } = await leaderWithData(t);
    const snap = await generated(s, ready);

    const f = await engine();
    // The follower knows the region only from the message; it holds stale data in the range and
    // other data outside it.
    await PeerStorage.createUninitialized(f.db, { ...testRegion(1n), startKey: b('b'), endKey: b('y') });
    await f.db.set(dataKey(b('key7')), 'stale');
    await f.db.set(dataKey(b('stale')), 'stale');
    await f.db.set(dataKey(b('a-other')), 'keep');
    const fs = await PeerStorage.open(f.db, 1n);
    const res = await fs.persistReady({
      snapshot: snap,
      entries: entries(16, 17, 6),
      hardState: { term: 6n, vote: 0n, commit: 15n },
      mustSync: true,
    });
    expect(res.snapshotRegion).toEqual(s.region);
    const check = async (p: PeerStorage) => {
      expect(p.isInitialized()).toBe(true);
      expect(p.appliedIndex).toBe(15n);
      expect(p.appliedTerm).toBe(6n);
      expect(p.truncatedIndex).toBe(15n);
      expect(p.firstIndex()).toBe(16n);
      expect(p.lastIndex()).toBe(17n);
      expect(p.term(15n)).toBe(6n);
      expect(p.region).toEqual(s.region);
      expect(p.initialState()).toEqual({
        hardState: { term: 6n, vote: 0n, commit: 15n },
        confState: snap.metadata.confState,
      });
      const range = { gte: dataKey(b('b')), lt: dataKey(b('y')) };
      const leaderData: string[] = [];
      for await (const [k, v] of t.db.iterate(range)) leaderData.push(`${k}=${v}`);
      const followerData: string[] = [];
      for await (const [k, v] of f.db.iterate(range)) followerData.push(`${k}=${v}`);
      expect(followerData).toEqual(leaderData);
      expect((await f.db.get(dataKey(b('a-other'))))?.toString()).toBe('keep');
    };
    await check(fs);
    await f.reopen();
    await check(await PeerStorage.open(f.db, 1n));
  });

  test('snapshots carry every version of the transaction column families, and installing one replaces them', async () => {
    const t = await engine();
    const { s, ready } = await leaderWithData(t);
    // Percolator's families: several versions of a key, a deleted lock, a key outside the region.
    await t.db.internal.write([
      { cf: 'write', op: 'put', key: dataKey(b('key1')), version: 20n, value: b('w20') },
      { cf: 'write', op: 'put', key: dataKey(b('key1')), version: 30n, value: b('w30') },
      { cf: 'data', op: 'put', key: dataKey(b('key1')), version: 19n, value: b('d19') },
      { cf: 'data', op: 'put', key: dataKey(b('key1')), version: 29n, value: b('d29') },
      { cf: 'lock', op: 'put', key: dataKey(b('key2')), version: 7n, value: b('lock') },
      { cf: 'lock', op: 'put', key: dataKey(b('key3')), version: 7n, value: b('gone') },
      { cf: 'lock', op: 'delete', key: dataKey(b('key3')), version: 7n },
      { cf: 'write', op: 'put', key: dataKey(b('zz-outside')), version: 5n, value: b('x') },
    ]);
    await s.applyWrites([], 16n, 6n);
    const snap = await generated(s, ready);
    const p = decodeSnapshotPayload(snap.data);
    const show = (cf: string, key: Uint8Array, version: bigint, value: Uint8Array) =>
      `${cf}:${Buffer.from(key)}@${version}=${Buffer.from(value)}`;
    expect(p.records?.map((r) => show(r.cf, r.key, r.version, r.value)).sort()).toEqual(
      [
        'data:key1@19=d19',
        'data:key1@29=d29',
        'lock:key2@7=lock',
        'write:key1@20=w20',
        'write:key1@30=w30',
      ].sort(),
    );

    // A follower with stale transactional state in the range gets exactly the leader's.
    const f = await engine();
    await PeerStorage.createUninitialized(f.db, { ...testRegion(1n), startKey: b('b'), endKey: b('y') });
    await f.db.internal.write([
      { cf: 'lock', op: 'put', key: dataKey(b('key9')), version: 7n, value: b('stale') },
      { cf: 'write', op: 'put', key: dataKey(b('key1')), version: 99n, value: b('stale') },
    ]);
    const fs = await PeerStorage.open(f.db, 1n);
    await fs.persistReady({
      snapshot: snap,
      entries: [],
      hardState: { term: 6n, vote: 0n, commit: 16n },
      mustSync: true,
    });
    const dump = async (db: typeof t.db) => {
      const out: string[] = [];
      for (const cf of ['lock', 'write', 'data'] as const) {
        for await (const r of db.internal.scan({ cf, gte: dataKey(b('b')), lt: dataKey(b('y')) })) {
          if (!isDeleteRecord(r)) out.push(show(cf, r.key, r.version, r.value));
        }
      }
      return out;
    };
    expect(await dump(f.db)).toEqual(await dump(t.db));
  });

  test('installing over an initialized peer drops its whole log', async () => {
    const t = await engine();
    const { s, ready } = await leaderWithData(t);
    const snap = await generated(s, ready);
    const f = await engine();
    await PeerStorage.bootstrap(f.db, s.region);
    const fs = await PeerStorage.open(f.db, 1n);
    await fs.persistReady({
      entries: entries(6, 30, 5),
      hardState: { term: 5n, vote: 0n, commit: 5n },
      mustSync: true,
    });
    // the hard state's term must reach the snapshot's (Raft's always does: it comes from the message)
    expect(await codeOf(fs.persistReady({ snapshot: snap, entries: [], mustSync: true }))).toBe(
      'InvalidArgument',
    );
    expect(fs.lastIndex()).toBe(30n);
    await fs.persistReady({
      snapshot: snap,
      entries: [],
      hardState: { term: 6n, vote: 0n, commit: 5n },
      mustSync: true,
    });
    expect(fs.firstIndex()).toBe(16n);
    expect(fs.lastIndex()).toBe(15n);
    expect(fs.initialState().hardState.commit).toBe(15n); // commit follows the snapshot
    const range = raftRange(1n);
    const keys = await allKeys(f, range.lo, range.hi);
    expect(keys.filter((k) => k.startsWith(raftLogKey(1n, 0n).subarray(0, 11).toString('hex')))).toEqual([]);
    await f.reopen();
    const r = await PeerStorage.open(f.db, 1n);
    expect(r.lastIndex()).toBe(15n);
    // a snapshot not newer than the applied state is refused
    expect(await codeOf(r.persistReady({ snapshot: snap, entries: [], mustSync: true }))).toBe(
      'SnapshotOutOfDate',
    );
  });

  test('a corrupt payload is rejected with CorruptSnapshot and changes nothing', async () => {
    const t = await engine();
    const { s, ready } = await leaderWithData(t);
    const snap = await generated(s, ready);
    const f = await engine();
    await PeerStorage.createUninitialized(f.db, testRegion(1n));
    const fs = await PeerStorage.open(f.db, 1n);
    const flipped = Buffer.from(snap.data);
    flipped[flipped.length >> 1]! ^= 0x01;
    const bad: Uint8Array[] = [flipped, snap.data.subarray(0, snap.data.length - 7), new Uint8Array(0)];
    for (const data of bad) {
      const err = await fs
        .persistReady({ snapshot: { ...snap, data }, entries: [], mustSync: true })
        .catch((e: unknown) => e);
      expect((err as PeerStorageError).code).toBe('CorruptSnapshot');
      expect((err as PeerStorageError).regionId).toBe(1n);
    }
    // metadata that disagrees with the payload
    const mismatch = { ...snap, metadata: { ...snap.metadata, index: 16n } };
    expect(await codeOf(fs.persistReady({ snapshot: mismatch, entries: [], mustSync: true }))).toBe(
      'CorruptSnapshot',
    );
    expect(fs.isInitialized()).toBe(false);
    expect(fs.lastIndex()).toBe(0n);
    const all: string[] = [];
    for await (const [k] of f.db.iterate({})) all.push(k.toString('hex'));
    expect(all).toEqual([regionStateKey(1n).toString('hex')]);
    // still usable: the good one installs
    await fs.persistReady({
      snapshot: snap,
      entries: [],
      hardState: { term: 6n, vote: 0n, commit: 0n },
      mustSync: true,
    });
    expect(fs.appliedIndex).toBe(15n);
  });
});
