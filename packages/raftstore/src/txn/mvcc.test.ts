import type { Database } from '@nokv/engine';
import { describe, expect, it } from 'vitest';
import { batchRollback, commit, type Mutation, prewrite } from './commands.js';
import { KeyLockedError } from './errors.js';
import { get, scan, scanLocks } from './mvcc.js';
import { apply, b, withTxnDb } from './test-support.js';

const put = (key: string, value: string): Mutation => ({ op: 'put', key: b(key), value: b(value) });
const del = (key: string): Mutation => ({ op: 'delete', key: b(key) });
const lk = (key: string): Mutation => ({ op: 'lock', key: b(key) });

async function pw(db: Database, mutations: Mutation[], startTs: bigint): Promise<void> {
  const r = await apply(db, prewrite(db, { mutations, primary: mutations[0]!.key, startTs, lockTtl: 1000 }));
  expect(r.errors).toEqual([]);
}

async function txn(db: Database, mutations: Mutation[], startTs: bigint, commitTs: bigint): Promise<void> {
  await pw(db, mutations, startTs);
  const r = await apply(db, commit(db, { keys: mutations.map((m) => m.key), startTs, commitTs }));
  expect(r.error).toBeUndefined();
}

async function val(db: Database, key: string, ts: bigint): Promise<string | undefined> {
  return (await get(db, b(key), ts))?.value.toString();
}

async function scanAll(db: Database, ts: bigint, start = '', end = '', limit = 100) {
  const r = await scan(db, b(start), b(end), ts, limit);
  return { pairs: r.pairs.map((p) => `${p.key}=${p.value}`), locked: r.locked };
}

describe('get', () => {
  it('snapshot reads at various timestamps', async () => {
    await withTxnDb(async (db) => {
      await txn(db, [put('k', 'v1')], 10n, 20n);
      await txn(db, [put('k', 'v2')], 30n, 40n);
      await txn(db, [del('k')], 50n, 60n);
      await txn(db, [put('k', 'v3')], 70n, 80n);
      const at = async (ts: bigint) => val(db, 'k', ts);
      expect(await at(19n)).toBeUndefined();
      expect(await at(20n)).toBe('v1');
      expect(await at(39n)).toBe('v1');
      expect(await at(40n)).toBe('v2');
      expect(await at(59n)).toBe('v2');
      expect(await at(60n)).toBeUndefined();
      expect(await at(80n)).toBe('v3');
      expect((await get(db, b('k'), 1000n))?.commitTs).toBe(80n);
      expect(await val(db, 'other', 1000n)).toBeUndefined();
    });
  });

  it('rollback and lock records do not hide older puts', async () => {
    await withTxnDb(async (db) => {
      await txn(db, [put('k', 'v1')], 10n, 20n);
      await apply(db, batchRollback(db, { keys: [b('k')], startTs: 25n }));
      await txn(db, [lk('k')], 30n, 35n);
      await pw(db, [put('k', 'no')], 40n);
      await apply(db, batchRollback(db, { keys: [b('k')], startTs: 40n }));
      expect(await val(db, 'k', 100n)).toBe('v1');
      expect(await val(db, 'k', 36n)).toBe('v1');
    });
  });

  it('is blocked by an older lock, not by a newer one', async () => {
    await withTxnDb(async (db) => {
      await txn(db, [put('k', 'v1')], 10n, 20n);
      await pw(db, [put('k', 'v2')], 30n);
      expect(await val(db, 'k', 29n)).toBe('v1'); // the lock started after the read
      const err = await get(db, b('k'), 31n).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KeyLockedError);
      const e = err as KeyLockedError;
      expect([e.code, e.lockTs, e.key.toString(), e.primary.toString()]).toEqual(['Locked', 30n, 'k', 'k']);
      // the transaction's own start ts: the lock cannot commit at or below it
      expect(await val(db, 'k', 30n)).toBe('v1');
      // a reader that knows the lock commits later may bypass it
      expect((await get(db, b('k'), 31n, { bypassLocks: [30n] }))?.value.toString()).toBe('v1');
      // lock-kind locks never block reads
      await pw(db, [lk('j')], 5n);
      expect(await val(db, 'j', 100n)).toBeUndefined();
      // once committed, newer readers see it
      await apply(db, commit(db, { keys: [b('k')], startTs: 30n, commitTs: 32n }));
      expect(await val(db, 'k', 31n)).toBe('v1');
      expect(await val(db, 'k', 32n)).toBe('v2');
    });
  });
});

describe('scan', () => {
  it('returns visible pairs in order, honouring bounds, limit, deletes and rollbacks', async () => {
    await withTxnDb(async (db) => {
      await txn(db, [put('a', '1'), put('b', '1'), put('c', '1'), put('d', '1')], 10n, 11n);
      await txn(db, [put('b', '2'), del('c')], 20n, 21n);
      await apply(db, batchRollback(db, { keys: [b('a'), b('e')], startTs: 25n }));
      await txn(db, [lk('d'), put('f', '3')], 30n, 31n);
      expect((await scanAll(db, 5n)).pairs).toEqual([]);
      expect((await scanAll(db, 11n)).pairs).toEqual(['a=1', 'b=1', 'c=1', 'd=1']);
      expect((await scanAll(db, 21n)).pairs).toEqual(['a=1', 'b=2', 'd=1']);
      expect((await scanAll(db, 100n)).pairs).toEqual(['a=1', 'b=2', 'd=1', 'f=3']);
      expect((await scanAll(db, 100n, 'b', 'f')).pairs).toEqual(['b=2', 'd=1']);
      expect((await scanAll(db, 100n, 'a', '', 2)).pairs).toEqual(['a=1', 'b=2']);
      expect((await scanAll(db, 100n, 'c', '', 1)).pairs).toEqual(['d=1']);
      expect((await scanAll(db, 100n, 'g')).pairs).toEqual([]);
      const r = await scan(db, b(''), b(''), 100n, 10);
      expect(r.pairs.map((p) => p.commitTs)).toEqual([11n, 21n, 11n, 31n]);
    });
  });

  it('stops at the first blocking lock, including locks on keys with no writes', async () => {
    await withTxnDb(async (db) => {
      await txn(db, [put('a', '1'), put('c', '1'), put('e', '1')], 10n, 11n);
      await pw(db, [put('b', 'x')], 20n); // b has no committed version
      await pw(db, [put('e', 'y')], 40n);
      let r = await scanAll(db, 30n);
      expect(r.pairs).toEqual(['a=1']);
      expect(r.locked).toBeInstanceOf(KeyLockedError);
      expect(r.locked?.key.toString()).toBe('b');
      // before the lock started it does not matter
      r = await scanAll(db, 15n);
      expect(r.pairs).toEqual(['a=1', 'c=1', 'e=1']);
      expect(r.locked).toBeUndefined();
      // the limit ends the scan before the lock
      expect((await scanAll(db, 30n, '', '', 1)).locked).toBeUndefined();
      // e's lock (start 40) blocks a read at 50 after c
      r = await scanAll(db, 50n, 'c');
      expect(r.pairs).toEqual(['c=1']);
      expect(r.locked?.key.toString()).toBe('e');
      // locks beyond the end are ignored
      r = await scanAll(db, 50n, 'c', 'e');
      expect(r).toEqual({ pairs: ['c=1'], locked: undefined });
      expect((await scanLocks(db, { maxTs: 30n })).map((l) => l.key.toString())).toEqual(['b']);
      expect((await scanLocks(db, { start: b('c') })).map((l) => [l.key.toString(), l.lockTs])).toEqual([
        ['e', 40n],
      ]);
    });
  });

  it('refuses a limit below 1', async () => {
    await withTxnDb(async (db) => {
      await expect(scan(db, b(''), b(''), 1n, 0)).rejects.toMatchObject({ code: 'InvalidRequest' });
    });
  });

  it('reads through flushed tables the same way', async () => {
    await withTxnDb(async (db) => {
      await txn(db, [put('a', '1'), put('b', '1')], 10n, 11n);
      await db.flush();
      await txn(db, [put('a', '2')], 20n, 21n);
      await apply(db, batchRollback(db, { keys: [b('b')], startTs: 22n }));
      await db.flush();
      await pw(db, [put('c', '3')], 30n);
      expect((await scanAll(db, 25n)).pairs).toEqual(['a=2', 'b=1']);
      expect((await scanAll(db, 35n)).locked?.key.toString()).toBe('c');
      await db.compact();
      expect(await val(db, 'a', 15n)).toBe('1');
      expect((await scanAll(db, 25n)).pairs).toEqual(['a=2', 'b=1']);
    });
  });

  it('locks rewritten in place at one version survive flushes and compaction', async () => {
    await withTxnDb(async (db) => {
      await pw(db, [put('k', '1')], 10n);
      await db.flush();
      await apply(db, commit(db, { keys: [b('k')], startTs: 10n, commitTs: 11n }));
      await db.flush();
      expect(await scanLocks(db, {})).toEqual([]);
      await pw(db, [put('k', '2')], 20n);
      await db.flush();
      await db.compact();
      expect((await scanLocks(db, {})).map((l) => l.lockTs)).toEqual([20n]);
      await expect(get(db, b('k'), 25n)).rejects.toBeInstanceOf(KeyLockedError);
      await apply(db, batchRollback(db, { keys: [b('k')], startTs: 20n }));
      await db.compact();
      expect(await scanLocks(db, {})).toEqual([]);
      expect(await val(db, 'k', 25n)).toBe('1');
    });
  });
});
