// PeerStorage against the reference MemoryStorage under random sequences of persisted Readies
// (appends that may replace an uncommitted suffix, hard states), applies, log compactions and
// reopens of the engine: after every step the two must answer the Raft-facing queries alike.

import { EntryType } from '@nokv/proto';
import fc from 'fast-check';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { MemoryStorage } from '../raft/memory-storage.js';
import { dataKey } from '../store/keys.js';
import { PeerStorage, RAFT_INIT_INDEX, RAFT_INIT_TERM } from './peer-storage.js';
import { entry, TempEngine, testRegion } from './testing/support.js';

type Step =
  | { t: 'append'; back: number; count: number; bump: number; commit: number; sync: boolean }
  | { t: 'commit'; commit: number }
  | { t: 'apply'; n: number }
  | { t: 'compact'; n: number }
  | { t: 'reopen' };

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      t: fc.constant('append' as const),
      back: fc.nat({ max: 6 }),
      count: fc.integer({ min: 1, max: 5 }),
      bump: fc.nat({ max: 2 }),
      commit: fc.nat({ max: 100 }),
      sync: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('commit' as const), commit: fc.nat({ max: 100 }) }) },
  {
    weight: 3,
    arbitrary: fc.record({ t: fc.constant('apply' as const), n: fc.integer({ min: 1, max: 6 }) }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ t: fc.constant('compact' as const), n: fc.integer({ min: 1, max: 8 }) }),
  },
  { weight: 1, arbitrary: fc.constant({ t: 'reopen' as const }) },
);

let t: TempEngine;
let regionId = 0n;
beforeAll(async () => {
  t = await TempEngine.create('nokv-peer-storage-model-');
});
afterAll(async () => {
  await t.cleanup();
});

function compare(s: PeerStorage, m: MemoryStorage): void {
  expect(s.firstIndex()).toBe(m.firstIndex());
  expect(s.lastIndex()).toBe(m.lastIndex());
  expect(s.initialState().hardState).toEqual(m.initialState().hardState);
  for (let i = m.firstIndex() - 1n; i <= m.lastIndex(); i++) expect(s.term(i)).toBe(m.term(i));
  if (m.lastIndex() >= m.firstIndex()) {
    const hi = m.lastIndex() + 1n;
    expect(s.entries(m.firstIndex(), hi, 1 << 30)).toEqual(m.entries(m.firstIndex(), hi, 1 << 30));
    expect(s.entries(m.firstIndex(), hi, 100)).toEqual(m.entries(m.firstIndex(), hi, 100));
  }
  let memErr: string | undefined;
  let peerErr: string | undefined;
  try {
    m.term(m.firstIndex() - 2n);
  } catch (e) {
    memErr = (e as { code: string }).code;
  }
  try {
    s.term(s.firstIndex() - 2n);
  } catch (e) {
    peerErr = (e as { code: string }).code;
  }
  expect(peerErr).toBe(memErr);
}

test('PeerStorage matches MemoryStorage under random persist / apply / compact / reopen', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 40 }), async (steps) => {
      const id = ++regionId;
      await PeerStorage.bootstrap(t.db, testRegion(id));
      let s = await PeerStorage.open(t.db, id);
      const m = new MemoryStorage();
      m.applySnapshot({
        data: new Uint8Array(0),
        metadata: { index: RAFT_INIT_INDEX, term: RAFT_INIT_TERM, confState: s.initialState().confState },
      });
      m.setHardState({ term: RAFT_INIT_TERM, vote: 0n, commit: RAFT_INIT_INDEX });
      let term = RAFT_INIT_TERM;
      let applied = RAFT_INIT_INDEX;
      const data = new Map<string, string>();
      for (const st of steps) {
        const hs = m.currentHardState();
        switch (st.t) {
          case 'append': {
            // Never rewrite committed entries; start anywhere from commit + 1 to last + 1.
            const last = m.lastIndex();
            const lowest = hs.commit + 1n > m.firstIndex() ? hs.commit + 1n : m.firstIndex();
            let start = last + 1n - BigInt(st.back);
            if (start < lowest) start = lowest;
            term += BigInt(st.bump);
            if (start <= last) term += 1n; // a conflicting suffix comes from a newer leader
            const es = [];
            for (let i = 0n; i < BigInt(st.count); i++)
              es.push(entry(start + i, term, `d${id}-${start + i}-${term}`));
            const newLast = start + BigInt(st.count) - 1n;
            const span = newLast - hs.commit;
            const commit = hs.commit + (span > 0n ? BigInt(st.commit) % (span + 1n) : 0n);
            const newHs = { term, vote: 1n, commit };
            await s.persistReady({ entries: es, hardState: newHs, mustSync: st.sync });
            m.append(es);
            m.setHardState(newHs);
            break;
          }
          case 'commit': {
            const span = m.lastIndex() - hs.commit;
            if (span <= 0n) break;
            const newHs = { ...hs, commit: hs.commit + 1n + (BigInt(st.commit) % span) };
            await s.persistReady({ entries: [], hardState: newHs, mustSync: false });
            m.setHardState(newHs);
            break;
          }
          case 'apply': {
            if (applied >= hs.commit) break;
            let to = applied + BigInt(st.n);
            if (to > hs.commit) to = hs.commit;
            const key = `k${to}`;
            await s.applyWrites(
              [{ op: 'put', key: Buffer.from(key), value: Buffer.from(`v${to}`) }],
              to,
              m.term(to),
            );
            data.set(key, `v${to}`);
            applied = to;
            break;
          }
          case 'compact': {
            const truncated = m.firstIndex() - 1n;
            if (truncated >= applied) break;
            let to = truncated + BigInt(st.n);
            if (to > applied) to = applied;
            await s.compactLog(to);
            m.compact(to);
            break;
          }
          case 'reopen': {
            await t.reopen();
            s = await PeerStorage.open(t.db, id);
            expect(s.appliedIndex).toBe(applied);
            break;
          }
        }
        compare(s, m);
      }
      expect(s.appliedIndex).toBe(applied);
      expect(s.truncatedIndex).toBe(m.firstIndex() - 1n);
      for (const [k, v] of data) expect((await t.db.get(dataKey(Buffer.from(k))))?.toString()).toBe(v);
      await s.destroy();
    }),
    { numRuns: Number(process.env.NOKV_MODEL_RUNS ?? 60) },
  );
});

test('entry types survive the round trip', async () => {
  const id = ++regionId;
  await PeerStorage.bootstrap(t.db, testRegion(id));
  const s = await PeerStorage.open(t.db, id);
  const es = [
    { ...entry(6, 6), type: EntryType.ConfChangeV2 },
    { ...entry(7, 6), data: new Uint8Array(0) },
  ];
  await s.persistReady({ entries: es, mustSync: true });
  await t.reopen();
  const r = await PeerStorage.open(t.db, id);
  expect(r.entries(6n, 8n, 1 << 30)).toEqual(es.map((e) => ({ ...e, data: Buffer.from(e.data) })));
});
