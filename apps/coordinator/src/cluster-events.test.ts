import { expect, test } from 'vitest';
import { ClusterEventLog } from './cluster-events.js';

test('the event log is a bounded ring with increasing seqs', () => {
  let now = 1000;
  const log = new ClusterEventLog({ capacity: 3, now: () => now });
  expect([log.firstSeq, log.lastSeq, log.since(0)]).toEqual([1, 0, []]);
  for (let i = 1; i <= 5; i++) {
    now++;
    log.append('store-up', { i }, { storeId: BigInt(i) });
  }
  expect(log.size).toBe(3);
  expect([log.firstSeq, log.lastSeq]).toEqual([3, 5]);
  expect(log.since(0).map((e) => e.seq)).toEqual([3, 4, 5]);
  expect(log.since(3).map((e) => e.seq)).toEqual([4, 5]);
  expect(log.since(3, 1).map((e) => e.seq)).toEqual([4]);
  expect(log.since(5)).toEqual([]);
  expect(log.latest(2).map((e) => e.seq)).toEqual([4, 5]);
  expect(log.since(4)[0]).toEqual({ seq: 5, time: 1005, kind: 'store-up', storeId: '5', details: { i: 5 } });
  expect(() => new ClusterEventLog({ capacity: 0 })).toThrow(RangeError);
});

test('follow: kept events after a seq, then new ones in order, until aborted', async () => {
  const log = new ClusterEventLog();
  log.append('store-joined', {});
  log.append('store-joined', {});
  const ac = new AbortController();
  const seen: number[] = [];
  const done = (async () => {
    for await (const e of log.follow(1, ac.signal)) {
      seen.push(e.seq);
      if (seen.length === 2) {
        // Events while the consumer is busy are queued, not lost.
        log.append('store-up', {});
        log.append('store-up', {});
      }
      if (seen.length === 4) ac.abort();
    }
  })();
  await new Promise((r) => setTimeout(r, 10));
  log.append('store-down', {});
  await done;
  expect(seen).toEqual([2, 3, 4, 5]);
  expect(log.subscribers).toBe(0);
});
