import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { Allocators, composeTs, splitTs } from './allocator.js';
import { DurableState } from './state/durable.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nokv-coord-alloc-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('ids: contiguous batches, monotonic, fence persisted before handing out', async () => {
  const s = await DurableState.open(dir);
  const a = new Allocators(s, { idWindow: 10 });
  const one = await a.allocId(0);
  expect(one).toEqual({ first: 1n, count: 1 });
  const batch = await a.allocId(25);
  expect(batch).toEqual({ first: 2n, count: 25 });
  // The fence covers everything handed out.
  expect(s.catalog.idFence).toBeGreaterThanOrEqual(26n);
  const concurrent = await Promise.all(Array.from({ length: 20 }, () => a.allocId(3)));
  const firsts = concurrent.map((r) => r.first).sort((x, y) => (x < y ? -1 : 1));
  for (let i = 1; i < firsts.length; i++) expect(firsts[i]! - firsts[i - 1]!).toBe(3n);
  const maxSeen = firsts.at(-1)! + 2n;
  // Reopen without a clean close (the process died): above everything handed out.
  const r = await DurableState.open(dir);
  const b = new Allocators(r, { idWindow: 10 });
  expect((await b.allocId(1)).first).toBeGreaterThan(maxSeen);
  await r.close();
  await s.close({ checkpoint: false }).catch(() => {});
});

test('ids skip what the catalog already uses', async () => {
  const s = await DurableState.open(dir);
  await s.append([
    {
      type: 'regionUpsert',
      region: {
        id: 2n,
        startKey: new Uint8Array(),
        endKey: new Uint8Array(),
        epoch: { version: 1n, confVersion: 1n },
        peers: [{ storeId: 1n, peerId: 302n, learner: false }],
        state: 2,
      },
    },
  ]);
  const a = new Allocators(s);
  expect((await a.allocId(1)).first).toBe(303n);
  await s.close();
});

test('tso: physical << 18 | logical, monotonic within a millisecond, contiguous batches', async () => {
  let now = 1_700_000_000_000;
  const s = await DurableState.open(dir);
  const a = new Allocators(s, { now: () => now, tsoWindowMs: 3000 });
  const t1 = await a.tso(1);
  expect(splitTs(t1.first)).toEqual({ physicalMs: BigInt(now), logical: 0n });
  const t2 = await a.tso(10);
  expect(t2.first).toBe(t1.first + 1n);
  const t3 = await a.tso(1);
  expect(t3.first).toBe(t2.first + 10n);
  expect(s.catalog.tsoFence).toBe(composeTs(BigInt(now) + 3000n, 0n));
  const writes = a.tsoFenceWrites;
  now += 1000;
  await a.tso(1);
  expect(a.tsoFenceWrites).toBe(writes); // within the window: no fsync
  now += 5000;
  const t4 = await a.tso(1);
  expect(a.tsoFenceWrites).toBe(writes + 1);
  expect(splitTs(t4.first).physicalMs).toBe(BigInt(now));
  // The clock going backwards does not make timestamps go backwards.
  now -= 60_000;
  const t5 = await a.tso(1);
  expect(t5.first).toBe(t4.first + 1n);
  await s.close({ checkpoint: false });
  // Restart with the clock still behind: resume above the persisted fence.
  const r = await DurableState.open(dir);
  const fence = r.catalog.tsoFence;
  const b = new Allocators(r, { now: () => now });
  const t6 = await b.tso(1);
  expect(t6.first).toBe(fence + 1n);
  expect(t6.first).toBeGreaterThan(t5.first);
  await r.close();
});

test('bad counts are InvalidArgument', async () => {
  const s = await DurableState.open(dir);
  const a = new Allocators(s);
  expect(() => a.tso(-1)).toThrow(expect.objectContaining({ code: 'InvalidArgument' }));
  expect(() => a.allocId(1 << 20)).toThrow(expect.objectContaining({ code: 'InvalidArgument' }));
  await s.close();
});
