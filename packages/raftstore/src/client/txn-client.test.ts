import { afterEach, describe, expect, test } from 'vitest';
import { sleep, TestCluster } from '../testing/cluster.js';
import { composeTs, get as mvccGet, scanLocks } from '../txn/index.js';
import { ClientError } from './raw-client.js';
import { TxnClient } from './txn-client.js';

// Transactions end to end on a three-store in-process cluster (regions [-, m) and [m, +inf)),
// with a fake TSO: a monotonic counter over the wall clock (physical ms << 18 | logical).

let cluster: TestCluster | undefined;

afterEach(async () => {
  await cluster?.stop();
  cluster = undefined;
});

function fakeTso(): () => Promise<bigint> {
  let last = 0n;
  return async () => {
    const now = composeTs(Date.now(), 0);
    last = now > last ? now : last + 1n;
    return last;
  };
}

async function setup(opts: { lockTtlMs?: number; timeoutMs?: number } = {}) {
  const c = await TestCluster.start();
  cluster = c;
  await c.waitForLeader(1n);
  await c.waitForLeader(2n);
  const tso = fakeTso();
  const newClient = () =>
    new TxnClient({
      raw: c.client({ timeoutMs: opts.timeoutMs ?? 5000 }),
      tso,
      lockTtlMs: opts.lockTtlMs ?? 3000,
    });
  return { c, tso, newClient };
}

const s = (b: Buffer | undefined) => b?.toString();

async function locksOn(c: TestCluster, regionId: bigint): Promise<string[]> {
  const leader = await c.waitForLeader(regionId);
  const region = leader.peer.region;
  // Every region of a store shares its engine: look at this region's range only.
  const locks = await scanLocks(c.store(leader.storeId).db, { start: region.startKey, end: region.endKey });
  return locks.map((l) => l.key.toString());
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    if (err instanceof ClientError) return err.code;
    throw err;
  }
}

describe('transactions on the replicated store', () => {
  test('two transactional commands in one apply batch: the second reads what the first wrote', {
    timeout: 20_000,
  }, async () => {
    const { c } = await setup();
    const leader = await c.waitForLeader(1n);
    const a = Buffer.from('a');
    // Proposed back to back: they land in the same Ready and are applied in one batch.
    const p1 = leader.peer.proposeTxn({
      type: 'prewrite',
      req: {
        mutations: [{ op: 'put', key: a, value: Buffer.from('v') }],
        primary: a,
        startTs: 10n,
        lockTtl: 1000,
      },
    });
    const p2 = leader.peer.proposeTxn({ type: 'commit', req: { keys: [a], startTs: 10n, commitTs: 11n } });
    expect(await p1).toEqual({ errors: [] });
    expect(await p2).toEqual({});
    await c.waitFor('every replica to apply', async () => {
      for (const id of c.storeIds()) {
        const v = await mvccGet(c.store(id).db, a, 11n).catch(() => undefined); // locked until the commit applies
        if (v?.value.toString() !== 'v' || v.commitTs !== 11n) return false;
      }
      return true;
    });
  });

  test('a transaction across both regions commits atomically and reads see its own writes', {
    timeout: 20_000,
  }, async () => {
    const { c, newClient } = await setup();
    const client = newClient();
    await client.put('a', 'a0');
    await client.put('z', 'z0');
    const result = await client.transaction(async (txn) => {
      expect(s(await txn.get('a'))).toBe('a0');
      txn.put('a', 'a1');
      txn.put('z', 'z1');
      txn.put('n', 'n1');
      txn.delete('missing');
      expect(s(await txn.get('a'))).toBe('a1'); // its own buffered write
      const rows = await txn.scan('', '', 10);
      expect(rows.map((r) => `${r.key}=${r.value}`)).toEqual(['a=a1', 'n=n1', 'z=z1']);
      return 'done';
    });
    expect(result).toBe('done');
    expect(s(await client.get('a'))).toBe('a1');
    expect(s(await client.get('z'))).toBe('z1');
    const rows = await client.scan('', '', 10);
    expect(rows.map((r) => `${r.key}=${r.value}`)).toEqual(['a=a1', 'n=n1', 'z=z1']);
    await client.delete('n');
    expect(await client.get('n')).toBeUndefined();
    expect(await locksOn(c, 1n)).toEqual([]);
    expect(await locksOn(c, 2n)).toEqual([]);
    // A transaction whose function throws writes nothing.
    await expect(
      client.transaction(async (txn) => {
        txn.put('a', 'never');
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    expect(s(await client.get('a'))).toBe('a1');
  });

  test('conflicting transactions: one commits, the other gets Conflict and leaves nothing behind', {
    timeout: 20_000,
  }, async () => {
    const { c, newClient } = await setup();
    const c1 = newClient();
    const c2 = newClient();
    await c1.put('a', '0');
    // Sequential: t2 started before t1 committed → write conflict on commit.
    const t1 = await c1.begin();
    const t2 = await c2.begin();
    t1.put('a', 't1');
    t1.put('z', 't1');
    t2.put('a', 't2');
    t2.put('z', 't2');
    await t1.commit();
    expect(await codeOf(t2.commit())).toBe('Conflict');
    expect([s(await c1.get('a')), s(await c1.get('z'))]).toEqual(['t1', 't1']);

    // Concurrent, many rounds: exactly one of each pair wins and its writes are whole.
    for (let round = 0; round < 5; round++) {
      const x = await c1.begin();
      const y = await c2.begin();
      for (const [t, name] of [
        [x, 'x'],
        [y, 'y'],
      ] as const) {
        t.put('a', `${name}${round}`);
        t.put('m', `${name}${round}`);
        t.put('z', `${name}${round}`);
      }
      const codes = await Promise.all([codeOf(x.commit()), codeOf(y.commit())]);
      expect(codes.filter((code) => code === 'ok').length).toBeLessThanOrEqual(1);
      for (const code of codes) expect(['ok', 'Conflict']).toContain(code);
      const values = [s(await c1.get('a')), s(await c1.get('m')), s(await c1.get('z'))];
      expect(new Set(values).size).toBe(1);
      const winner = codes[0] === 'ok' ? `x${round}` : codes[1] === 'ok' ? `y${round}` : undefined;
      if (winner) expect(values[0]).toBe(winner);
    }
    expect(await locksOn(c, 1n)).toEqual([]);
    expect(await locksOn(c, 2n)).toEqual([]);
  });

  test('lock(): a watched key conflicts with a concurrent writer either way, never changes its value and never blocks readers', {
    timeout: 20_000,
  }, async () => {
    const { c, newClient } = await setup();
    const c1 = newClient();
    const c2 = newClient();
    await c1.put('w', 'w0');
    await c1.put('zw', 'z0');

    // The writer commits first: the watcher's commit (it wrote 'a' and locked 'w') fails whole.
    const watcher = await c1.begin();
    expect(s(await watcher.get('w'))).toBe('w0');
    watcher.lock('w');
    watcher.put('a', 'from-watcher');
    await c2.put('w', 'w1');
    expect(await codeOf(watcher.commit())).toBe('Conflict');
    expect(await c1.get('a')).toBeUndefined();
    expect(await locksOn(c, 1n)).toEqual([]);

    // The watcher commits first: a writer that started before it fails.
    const writer = await c2.begin();
    const watcher2 = await c1.begin();
    watcher2.lock('zw');
    watcher2.put('a', 'ok');
    writer.put('zw', 'z-lost');
    await watcher2.commit();
    expect(await codeOf(writer.commit())).toBe('Conflict');
    expect(s(await c1.get('zw'))).toBe('z0'); // the lock record kept the value
    expect(s(await c1.get('a'))).toBe('ok');

    // A prewritten lock-only mutation does not block a reader (it cannot change the value).
    const t = await c1.begin();
    t.lock('w');
    t.put('b', 'x');
    await t.prewrite();
    const reader = await c2.begin();
    expect(s(await reader.get('w'))).toBe('w1');
    expect((await reader.getMany(['w', 'zw'])).map(s)).toEqual(['w1', 'z0']);
    // A writer does conflict with it while it lives.
    expect(await codeOf(c2.put('w', 'w2'))).toBe('Conflict');
    await t.commitPrimary();
    await t.commitSecondaries();
    // lock() does not downgrade a write of the same transaction; its reads see its own writes.
    const both = await c1.begin();
    both.put('w', 'w3');
    both.lock('w');
    expect(s(await both.get('w'))).toBe('w3');
    await both.commit();
    expect(s(await c1.get('w'))).toBe('w3');
    expect(await locksOn(c, 1n)).toEqual([]);
    expect(await locksOn(c, 2n)).toEqual([]);
  });

  test('getMany reads several keys across regions at the snapshot, with own writes and through locks', {
    timeout: 20_000,
  }, async () => {
    const { newClient } = await setup();
    const client = newClient();
    await client.transaction(async (txn) => {
      for (const k of ['a', 'b', 'n', 'z']) txn.put(k, `${k}0`);
    });
    const stuck = await client.begin();
    stuck.put('b', 'never-read');
    stuck.put('z', 'never-read');
    await stuck.prewrite(); // live locks in both regions: readers push past them
    const txn = await newClient().begin();
    txn.put('n', 'mine');
    txn.delete('a');
    const got = await txn.getMany(['z', 'missing', 'a', 'n', 'b', 'z']);
    expect(got.map(s)).toEqual(['z0', undefined, undefined, 'mine', 'b0', 'z0']);
    expect(await txn.getMany([])).toEqual([]);
  });

  test('a transaction with more values than one request may carry is prewritten in several', {
    timeout: 30_000,
  }, async () => {
    const { newClient } = await setup();
    const client = newClient();
    const big = (c: string) => Buffer.alloc(3 * 1024 * 1024, c); // 3 × 3 MiB in one region: over 8 MiB
    await client.transaction(async (txn) => {
      txn.put('big-a', big('a'));
      txn.put('big-b', big('b'));
      txn.put('big-c', big('c'));
    });
    const got = await client.transaction((txn) => txn.getMany(['big-a', 'big-b', 'big-c']));
    expect(got.map((v) => `${v?.length}:${v?.[0]}`)).toEqual(
      ['a', 'b', 'c'].map((c) => `${3 * 1024 * 1024}:${c.charCodeAt(0)}`),
    );
  });

  test('reads never see uncommitted data; a snapshot read at an older ts sees the older value', {
    timeout: 20_000,
  }, async () => {
    const { tso, newClient } = await setup();
    const writer = newClient();
    const reader = newClient();
    await writer.put('a', 'old');
    await writer.put('z', 'old');
    const before = await tso();
    const t = await writer.begin();
    t.put('a', 'new');
    t.put('z', 'new');
    await t.prewrite();
    // Locked but not committed: readers pass the live lock (its commit is pushed past them).
    expect(s(await reader.get('a'))).toBe('old');
    expect(s(await reader.get('z'))).toBe('old');
    expect((await reader.scan('', '', 10)).map((r) => s(r.value))).toEqual(['old', 'old']);
    await t.commitPrimary();
    await t.commitSecondaries();
    expect(t.commitTs).toBeGreaterThan(t.startTs);
    expect(s(await reader.get('a'))).toBe('new');
    expect(s(await reader.get('z'))).toBe('new');
    // Snapshot reads at the older timestamp.
    expect(s(await reader.getAt(Buffer.from('a'), before))).toBe('old');
    expect(
      (await reader.scanAt(Buffer.from(''), Buffer.from(''), 10, before)).map((r) => s(r.value)),
    ).toEqual(['old', 'old']);
  });

  test('a client that dies after prewrite: its locks are rolled back once their TTL ran out', {
    timeout: 20_000,
  }, async () => {
    const ttl = 400;
    const { c, newClient } = await setup({ lockTtlMs: ttl });
    const dead = newClient();
    const other = newClient();
    await other.put('a', 'a0');
    await other.put('z', 'z0');
    const t = await dead.begin();
    t.put('a', 'dead');
    t.put('z', 'dead');
    await t.prewrite(); // … and the client dies
    expect(await locksOn(c, 1n)).toEqual(['a']);
    expect(await locksOn(c, 2n)).toEqual(['z']);
    // A writer meets the live lock and fails instead of waiting.
    expect(await codeOf(other.put('z', 'z1'))).toBe('Conflict');
    await sleep(ttl + 50);
    // A reader now finds the TTL expired: rolled back on the primary, then on the key.
    expect(s(await other.get('z'))).toBe('z0');
    expect(s(await other.get('a'))).toBe('a0');
    expect(await locksOn(c, 1n)).toEqual([]);
    expect(await locksOn(c, 2n)).toEqual([]);
    // The dead client cannot commit any more, and the others write freely.
    expect(await codeOf(t.commitPrimary())).toBe('Conflict');
    await other.put('z', 'z1');
    expect(s(await other.get('z'))).toBe('z1');
  });

  test('a client that dies after committing the primary: readers roll the secondaries forward', {
    timeout: 20_000,
  }, async () => {
    const { c, newClient } = await setup();
    const dead = newClient();
    const reader = newClient();
    const t = await dead.begin();
    t.put('a', 'A');
    t.put('b', 'B');
    t.put('z', 'Z');
    await t.prewrite();
    await t.commitPrimary(); // committed; the secondaries 'b' and 'z' are still locked
    expect(await locksOn(c, 1n)).toEqual(['b']);
    expect(await locksOn(c, 2n)).toEqual(['z']);
    expect(s(await reader.get('z'))).toBe('Z');
    expect((await reader.scan('', '', 10)).map((r) => `${r.key}=${r.value}`)).toEqual(['a=A', 'b=B', 'z=Z']);
    expect(await locksOn(c, 1n)).toEqual([]);
    expect(await locksOn(c, 2n)).toEqual([]);
  });

  test('bank transfers with a leader store stopped and restarted keep the total in every snapshot', {
    timeout: 40_000,
  }, async () => {
    const { c, newClient } = await setup({ lockTtlMs: 1000, timeoutMs: 4000 });
    const accounts = ['acct-0', 'acct-1', 'acct-2', 'acct-3', 'zacct-4', 'zacct-5', 'zacct-6', 'zacct-7'];
    const initial = 100;
    const total = initial * accounts.length;
    const setupClient = newClient();
    await setupClient.transaction(async (txn) => {
      for (const a of accounts) txn.put(a, String(initial));
    });

    const stats = { committed: 0, conflicts: 0, aborted: 0, unknown: 0, snapshots: 0, other: 0 };
    let stop = false;
    let seed = 42;
    const random = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x80000000;
    };
    const sumOf = (rows: { key: Buffer; value: Buffer }[]) => {
      expect(rows.map((r) => r.key.toString())).toEqual(accounts);
      return rows.reduce((acc, r) => acc + Number(r.value.toString()), 0);
    };

    const worker = async () => {
      const client = newClient();
      while (!stop) {
        const from = accounts[Math.floor(random() * accounts.length)]!;
        let to = accounts[Math.floor(random() * accounts.length)]!;
        if (to === from) to = accounts[(accounts.indexOf(from) + 1) % accounts.length]!;
        const amount = 1 + Math.floor(random() * 20);
        try {
          await client.transaction(async (txn) => {
            const a = Number(s(await txn.get(from)));
            const b = Number(s(await txn.get(to)));
            if (a < amount) return;
            txn.put(from, String(a - amount));
            txn.put(to, String(b + amount));
          });
          stats.committed++;
        } catch (err) {
          const code = err instanceof ClientError ? err.code : 'other';
          if (code === 'Conflict') stats.conflicts++;
          else if (code === 'Unknown') stats.unknown++;
          else if (code === 'Aborted' || code === 'Timeout' || code === 'NoRoute') stats.aborted++;
          else {
            stats.other++;
            throw err;
          }
          await sleep(5 + random() * 20);
        }
      }
    };
    const checker = async () => {
      const client = newClient();
      while (!stop) {
        try {
          const rows = await client.scan('', '', 100);
          expect(sumOf(rows)).toBe(total);
          stats.snapshots++;
        } catch (err) {
          if (!(err instanceof ClientError)) throw err; // a read may time out while no leader serves
        }
        await sleep(20);
      }
    };

    const started = Date.now();
    const running = [worker(), worker(), worker(), worker(), checker()];
    const nemesis = (async () => {
      await sleep(1500);
      const victim = await c.waitForLeader(1n);
      await c.stopStore(victim.storeId);
      await sleep(1500);
      await c.startStore(victim.storeId);
      await sleep(2000);
      stop = true;
    })();
    await Promise.all([...running, nemesis]);
    const finalRows = await newClient().scan('', '', 100);
    expect(sumOf(finalRows)).toBe(total);
    console.log(
      `bank: ${JSON.stringify(stats)} in ${Date.now() - started} ms; balances ${finalRows.map((r) => r.value.toString()).join(',')}`,
    );
    expect(stats.committed).toBeGreaterThan(10);
    expect(stats.snapshots).toBeGreaterThan(5);
  });
});
