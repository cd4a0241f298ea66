import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Latches } from './latches.js';
import { b } from './test-support.js';

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('Latches', () => {
  it('excludes holders of the same key and lets disjoint keys through', async () => {
    const latches = new Latches();
    const r1 = await latches.acquire([b('a'), b('b')]);
    let got2 = false;
    const p2 = latches.acquire([b('b')]).then((r) => {
      got2 = true;
      return r;
    });
    const r3 = await latches.acquire([b('c')]); // disjoint (different slot for these keys)
    r3();
    await sleep(5);
    expect(got2).toBe(false);
    r1();
    r1(); // idempotent
    const r2 = await p2;
    expect(got2).toBe(true);
    r2();
    expect(latches.busySlots()).toBe(0);
  });

  it('serves waiters of a slot in arrival order', async () => {
    const latches = new Latches(1);
    const first = await latches.acquire([b('x')]);
    const order: number[] = [];
    const ps = [1, 2, 3, 4].map((i) =>
      latches.acquire([b(`k${i}`)]).then((release) => {
        order.push(i);
        release();
      }),
    );
    await sleep(1);
    expect(order).toEqual([]);
    first();
    await Promise.all(ps);
    expect(order).toEqual([1, 2, 3, 4]);
  });

  it('dedupes keys hashing to one slot and handles empty key lists', async () => {
    const latches = new Latches(1);
    const r = await latches.acquire([b('a'), b('b'), b('a')]);
    expect(latches.busySlots()).toBe(1);
    r();
    const none = await latches.acquire([]);
    none();
    expect(latches.busySlots()).toBe(0);
  });

  it('random concurrent acquisitions: mutual exclusion, no deadlock', async () => {
    for (const slots of [4, 64, 2048]) {
      const latches = new Latches(slots);
      const rand = seeded(slots);
      const holders = new Map<string, number>();
      let completed = 0;
      const workers = Array.from({ length: 40 }, async (_, w) => {
        for (let i = 0; i < 30; i++) {
          const n = 1 + Math.floor(rand() * 5);
          const keys = Array.from({ length: n }, () => `k${Math.floor(rand() * 20)}`);
          const release = await latches.acquire(keys.map(b));
          const unique = [...new Set(keys)];
          for (const k of unique) {
            expect(holders.get(k)).toBeUndefined();
            holders.set(k, w);
          }
          if (rand() < 0.5) await sleep(0);
          else await Promise.resolve();
          for (const k of unique) holders.delete(k);
          release();
          completed++;
        }
      });
      const timer = new AbortController();
      await Promise.race([
        Promise.all(workers).finally(() => timer.abort()),
        sleep(20_000, undefined, { signal: timer.signal }).then(
          () => {
            throw new Error(`deadlock: ${completed} of 1200 done`);
          },
          () => undefined,
        ),
      ]);
      expect(completed).toBe(1200);
      expect(latches.busySlots()).toBe(0);
    }
  });
});
