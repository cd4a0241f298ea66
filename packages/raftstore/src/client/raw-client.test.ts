import { afterEach, expect, test } from 'vitest';
import { TestCluster } from '../testing/cluster.js';

// The raw client's coalesced batches against a region that changed under it.

let cluster: TestCluster | undefined;

afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

test('a coalesced batch that a split divides is regrouped by region, for gets and for puts', {
  timeout: 30_000,
}, async () => {
  const c = await TestCluster.start();
  cluster = c;
  await c.waitForLeader(1n);
  const keys = [
    ...Array.from({ length: 20 }, (_, i) => `a${i}`),
    ...Array.from({ length: 20 }, (_, i) => `g${i}`),
  ];
  await Promise.all(keys.map((k) => c.client().put(k, `before-${k}`)));
  const leader = await c.waitForLeader(1n);
  await c.store(leader.storeId).splitRegion(1n, Buffer.from('f'), 3n, [103n, 203n, 303n], 5000);
  await c.waitForLeader(3n);
  // Both clients still route by the regions before the split: each batch holds keys of both halves.
  const reader = c.client({ timeoutMs: 10_000 });
  const got = await Promise.all(keys.map(async (k) => (await reader.get(k))?.toString()));
  expect(got).toEqual(keys.map((k) => `before-${k}`));
  const writer = c.client({ timeoutMs: 10_000 });
  await Promise.all(keys.map((k) => writer.put(k, `after-${k}`)));
  const again = await Promise.all(keys.map(async (k) => (await reader.get(k))?.toString()));
  expect(again).toEqual(keys.map((k) => `after-${k}`));
});
