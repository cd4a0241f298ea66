import type { Database } from '@nokv/engine';
import { describe, expect, it } from 'vitest';
import { dataKey } from '../store/keys.js';
import { batchRollback, checkTxnStatus, commit, type Mutation, prewrite, resolveLock } from './commands.js';
import {
  AlreadyExistsError,
  CommitTsExpiredError,
  KeyLockedError,
  TxnAbortedError,
  TxnCommittedError,
  TxnLockNotFoundError,
  TxnNotFoundError,
  WriteConflictError,
} from './errors.js';
import { get, loadLock, scanLocks, txnRecordStatus, writesOf } from './mvcc.js';
import { decodeWrite, LOCK_VERSION } from './records.js';
import { apply, b, withTxnDb } from './test-support.js';
import { composeTs } from './timestamp.js';

const T = (ms: number, logical = 0): bigint => composeTs(1_000_000 + ms, logical);
const put = (key: string, value: string, assertNotExist = false): Mutation => ({
  op: 'put',
  key: b(key),
  value: b(value),
  assertNotExist,
});

async function pw(
  db: Database,
  mutations: Mutation[],
  startTs: bigint,
  primary = mutations[0]!.key,
  ttl = 1000,
) {
  return apply(db, prewrite(db, { mutations, primary, startTs, lockTtl: ttl }));
}

async function cm(db: Database, keys: string[], startTs: bigint, commitTs: bigint) {
  return apply(db, commit(db, { keys: keys.map(b), startTs, commitTs }));
}

/** Prewrite + commit in one go. */
async function txn(db: Database, mutations: Mutation[], startTs: bigint, commitTs: bigint): Promise<void> {
  expect((await pw(db, mutations, startTs)).errors).toEqual([]);
  expect(
    (
      await cm(
        db,
        mutations.map((m) => m.key.toString()),
        startTs,
        commitTs,
      )
    ).error,
  ).toBeUndefined();
}

async function value(db: Database, key: string, ts: bigint): Promise<string | undefined> {
  return (await get(db, b(key), ts))?.value.toString();
}

describe('prewrite', () => {
  it('locks keys and writes data; idempotent for the same transaction', async () => {
    await withTxnDb(async (db) => {
      const muts = [
        put('a', '1'),
        { op: 'delete' as const, key: b('b') },
        { op: 'lock' as const, key: b('c') },
      ];
      expect((await pw(db, muts, T(10))).errors).toEqual([]);
      const la = await loadLock(db, b('a'));
      expect(la).toEqual({
        primary: b('a'),
        startTs: T(10),
        ttl: 1000,
        kind: 'put',
        minCommitTs: T(10) + 1n,
      });
      expect((await loadLock(db, b('b')))?.kind).toBe('delete');
      expect((await loadLock(db, b('c')))?.kind).toBe('lock');
      expect((await db.internal.get('data', dataKey(b('a')), T(10)))?.value.toString()).toBe('1');
      expect(await db.internal.get('data', dataKey(b('b')), T(10))).toBeUndefined();
      // the raw key space is untouched
      expect(await db.get(dataKey(b('a')))).toBeUndefined();

      const again = await prewrite(db, { mutations: muts, primary: b('a'), startTs: T(10), lockTtl: 1000 });
      expect(again.response.errors).toEqual([]);
      expect(again.writes).toEqual([]);
    });
  });

  it('reports another transaction lock as Locked and writes nothing', async () => {
    await withTxnDb(async (db) => {
      await pw(db, [put('a', '1')], T(10), b('a'), 500);
      const r = await prewrite(db, {
        mutations: [put('b', '2'), put('a', '3')],
        primary: b('b'),
        startTs: T(20),
        lockTtl: 1000,
      });
      expect(r.writes).toEqual([]);
      expect(r.response.errors).toHaveLength(1);
      const e = r.response.errors[0] as KeyLockedError;
      expect(e).toBeInstanceOf(KeyLockedError);
      expect(e.code).toBe('Locked');
      expect(e.key).toEqual(b('a'));
      expect(e.primary).toEqual(b('a'));
      expect(e.lockTs).toBe(T(10));
      expect(e.ttl).toBe(500);
    });
  });

  it('reports a newer committed write as WriteConflict', async () => {
    await withTxnDb(async (db) => {
      await txn(db, [put('a', '1')], T(20), T(30));
      const r = await apply(
        db,
        prewrite(db, { mutations: [put('a', '2')], primary: b('a'), startTs: T(25), lockTtl: 1 }),
      );
      const e = r.errors[0] as WriteConflictError;
      expect(e).toBeInstanceOf(WriteConflictError);
      expect(e.code).toBe('WriteConflict');
      expect([e.startTs, e.conflictStartTs, e.conflictTs]).toEqual([T(25), T(20), T(30)]);
      expect(await loadLock(db, b('a'))).toBeUndefined();
      // a transaction started after the commit is fine
      expect((await pw(db, [put('a', '2')], T(31))).errors).toEqual([]);
    });
  });

  it('checks assertNotExist against the visible committed value', async () => {
    await withTxnDb(async (db) => {
      await txn(db, [put('a', '1')], T(1), T(2));
      const r = await pw(db, [put('a', 'x', true), put('n', 'y', true)], T(5));
      expect(r.errors).toHaveLength(1);
      expect(r.errors[0]).toBeInstanceOf(AlreadyExistsError);
      expect(r.errors[0]!.code).toBe('AlreadyExists');
      expect(await loadLock(db, b('n'))).toBeUndefined(); // all or nothing
      await txn(db, [{ op: 'delete', key: b('a') }], T(6), T(7));
      // a rollback record after the delete does not bring the put back
      await apply(db, batchRollback(db, { keys: [b('a')], startTs: T(8) }));
      expect((await pw(db, [put('a', 'x', true)], T(9))).errors).toEqual([]);
    });
  });

  it('fails with Aborted after a rollback at its start ts (a late prewrite)', async () => {
    await withTxnDb(async (db) => {
      expect((await apply(db, batchRollback(db, { keys: [b('a')], startTs: T(10) }))).error).toBeUndefined();
      const r = await pw(db, [put('a', '1')], T(10));
      expect(r.errors[0]).toBeInstanceOf(TxnAbortedError);
      expect(r.errors[0]!.code).toBe('Aborted');
      expect(await loadLock(db, b('a'))).toBeUndefined();
      expect(await value(db, 'a', T(100))).toBeUndefined();
    });
  });

  it('treats a retry after commit as done', async () => {
    await withTxnDb(async (db) => {
      await txn(db, [put('a', '1')], T(10), T(11));
      const r = await prewrite(db, {
        mutations: [put('a', '1')],
        primary: b('a'),
        startTs: T(10),
        lockTtl: 10,
      });
      expect(r.response.errors).toEqual([]);
      expect(r.writes).toEqual([]);
    });
  });

  it('refuses malformed requests', async () => {
    await withTxnDb(async (db) => {
      const bad = [
        { mutations: [put('a', '1'), put('a', '2')], primary: b('a'), startTs: T(1), lockTtl: 1 },
        { mutations: [], primary: b('a'), startTs: T(1), lockTtl: 1 },
        { mutations: [put('a', '1')], primary: b('a'), startTs: 0n, lockTtl: 1 },
        { mutations: [put('a', '1')], primary: b('a'), startTs: T(1), lockTtl: -1 },
        { mutations: [{ op: 'put' as const, key: b('a') }], primary: b('a'), startTs: T(1), lockTtl: 1 },
        { mutations: [{ op: 'nope' as 'put', key: b('a') }], primary: b('a'), startTs: T(1), lockTtl: 1 },
        { mutations: [put('', '1')], primary: b('a'), startTs: T(1), lockTtl: 1 },
      ];
      for (const req of bad) {
        const r = await prewrite(db, req);
        expect(r.writes).toEqual([]);
        expect(r.response.errors[0]?.code).toBe('InvalidRequest');
      }
    });
  });

  it('keeps minCommitTs at or above startTs + 1', async () => {
    await withTxnDb(async (db) => {
      await apply(
        db,
        prewrite(db, {
          mutations: [put('a', '1')],
          primary: b('a'),
          startTs: T(5),
          lockTtl: 1,
          minCommitTs: 1n,
        }),
      );
      expect((await loadLock(db, b('a')))?.minCommitTs).toBe(T(5) + 1n);
      await apply(
        db,
        prewrite(db, {
          mutations: [put('b', '1')],
          primary: b('b'),
          startTs: T(5),
          lockTtl: 1,
          minCommitTs: T(9),
        }),
      );
      expect((await loadLock(db, b('b')))?.minCommitTs).toBe(T(9));
    });
  });
});

describe('commit', () => {
  it('writes a record at commitTs, deletes the lock, and is idempotent', async () => {
    await withTxnDb(async (db) => {
      await pw(db, [put('a', '1'), { op: 'delete', key: b('b') }], T(10));
      expect((await cm(db, ['a', 'b'], T(10), T(12))).error).toBeUndefined();
      expect(await loadLock(db, b('a'))).toBeUndefined();
      const rec = await db.internal.get('write', dataKey(b('a')), LOCK_VERSION);
      expect(rec?.version).toBe(T(12));
      expect(decodeWrite(rec!.value)).toEqual({ kind: 'put', startTs: T(10), overlappedRollback: false });
      expect(await value(db, 'a', T(12))).toBe('1');
      expect(await value(db, 'a', T(11))).toBeUndefined();

      const again = await commit(db, { keys: [b('a'), b('b')], startTs: T(10), commitTs: T(12) });
      expect(again.response.error).toBeUndefined();
      expect(again.writes).toEqual([]);
      // a retry with another commit ts (after the first succeeded) also reports success, writes nothing
      const other = await commit(db, { keys: [b('a')], startTs: T(10), commitTs: T(13) });
      expect(other.response.error).toBeUndefined();
      expect(other.writes).toEqual([]);
    });
  });

  it('TxnLockNotFound without lock or record; Aborted after rollback', async () => {
    await withTxnDb(async (db) => {
      const r = await cm(db, ['a'], T(10), T(11));
      expect(r.error).toBeInstanceOf(TxnLockNotFoundError);
      expect(r.error?.code).toBe('TxnLockNotFound');
      await pw(db, [put('a', '1')], T(10));
      await apply(db, batchRollback(db, { keys: [b('a')], startTs: T(10) }));
      const r2 = await cm(db, ['a'], T(10), T(11));
      expect(r2.error).toBeInstanceOf(TxnAbortedError);
      expect(r2.error?.code).toBe('Aborted');
    });
  });

  it('another transaction lock on the key is not ours', async () => {
    await withTxnDb(async (db) => {
      await pw(db, [put('a', '1')], T(20));
      expect((await cm(db, ['a'], T(10), T(21))).error).toBeInstanceOf(TxnLockNotFoundError);
      expect((await loadLock(db, b('a')))?.startTs).toBe(T(20));
    });
  });

  it('CommitTsExpired below the min commit ts; all or nothing', async () => {
    await withTxnDb(async (db) => {
      await pw(db, [put('a', '1'), put('b', '2')], T(10));
      await apply(
        db,
        checkTxnStatus(db, {
          primaryKey: b('a'),
          lockTs: T(10),
          currentTs: T(11),
          callerStartTs: T(15),
          rollbackIfNotExist: false,
        }),
      );
      const r = await commit(db, { keys: [b('b'), b('a')], startTs: T(10), commitTs: T(14) });
      expect(r.writes).toEqual([]);
      const e = r.response.error as CommitTsExpiredError;
      expect(e).toBeInstanceOf(CommitTsExpiredError);
      expect(e.code).toBe('CommitTsExpired');
      expect(e.minCommitTs).toBe(T(15) + 1n);
      expect((await cm(db, ['a', 'b'], T(10), T(16))).error).toBeUndefined();
      expect(await value(db, 'b', T(16))).toBe('2');
    });
  });

  it('refuses commitTs <= startTs, empty and duplicate keys', async () => {
    await withTxnDb(async (db) => {
      await pw(db, [put('a', '1')], T(10));
      for (const req of [
        { keys: [b('a')], startTs: T(10), commitTs: T(10) },
        { keys: [b('a')], startTs: T(10), commitTs: T(9) },
        { keys: [], startTs: T(10), commitTs: T(11) },
        { keys: [b('a'), b('a')], startTs: T(10), commitTs: T(11) },
      ]) {
        const r = await commit(db, req);
        expect(r.writes).toEqual([]);
        expect(r.response.error?.code).toBe('InvalidRequest');
      }
    });
  });
});

describe('batchRollback', () => {
  it('deletes lock and data, leaves a rollback record; idempotent', async () => {
    await withTxnDb(async (db) => {
      await pw(db, [put('a', '1'), put('b', '2')], T(10));
      expect(
        (await apply(db, batchRollback(db, { keys: [b('a'), b('b')], startTs: T(10) }))).error,
      ).toBeUndefined();
      expect(await loadLock(db, b('a'))).toBeUndefined();
      expect((await db.internal.get('data', dataKey(b('a')), T(10)))?.kind).toBe('delete');
      const st = await txnRecordStatus(db, b('a'), T(10));
      expect(st.rolledBack).toBe(true);
      expect(st.atStartTs?.record).toEqual({ kind: 'rollback', startTs: T(10), overlappedRollback: false });
      const again = await batchRollback(db, { keys: [b('a'), b('b')], startTs: T(10) });
      expect(again.response.error).toBeUndefined();
      expect(again.writes).toEqual([]);
    });
  });

  it('fails with Committed for a committed transaction, writing nothing', async () => {
    await withTxnDb(async (db) => {
      await pw(db, [put('a', '1'), put('b', '2')], T(10));
      await cm(db, ['a'], T(10), T(11));
      const r = await batchRollback(db, { keys: [b('b'), b('a')], startTs: T(10) });
      expect(r.writes).toEqual([]);
      const e = r.response.error as TxnCommittedError;
      expect(e).toBeInstanceOf(TxnCommittedError);
      expect(e.code).toBe('Committed');
      expect(e.commitTs).toBe(T(11));
      expect((await loadLock(db, b('b')))?.startTs).toBe(T(10));
    });
  });

  it('leaves another transaction lock alone', async () => {
    await withTxnDb(async (db) => {
      await pw(db, [put('a', '1')], T(20));
      await apply(db, batchRollback(db, { keys: [b('a')], startTs: T(10) }));
      expect((await loadLock(db, b('a')))?.startTs).toBe(T(20));
      expect((await cm(db, ['a'], T(20), T(21))).error).toBeUndefined();
      expect(await value(db, 'a', T(21))).toBe('1');
    });
  });

  it('folds into a commit record at the same ts (overlapped rollback)', async () => {
    await withTxnDb(async (db) => {
      // T(5)'s commit record sits at T(10), which is also the start ts of the rolled back txn
      await txn(db, [put('a', 'v')], T(5), T(10));
      await apply(db, batchRollback(db, { keys: [b('a')], startTs: T(10) }));
      const st = await txnRecordStatus(db, b('a'), T(10));
      expect(st.rolledBack).toBe(true);
      expect(st.atStartTs?.record).toEqual({ kind: 'put', startTs: T(5), overlappedRollback: true });
      expect(await value(db, 'a', T(10))).toBe('v');
      expect((await pw(db, [put('a', 'late')], T(10))).errors[0]).toBeInstanceOf(TxnAbortedError);
    });
  });

  it('a commit landing on another transaction rollback record keeps it as the flag', async () => {
    await withTxnDb(async (db) => {
      await pw(db, [put('a', 'v')], T(5));
      await apply(
        db,
        checkTxnStatus(db, {
          primaryKey: b('a'),
          lockTs: T(10),
          currentTs: T(10),
          callerStartTs: 0n,
          rollbackIfNotExist: true,
        }),
      );
      expect((await cm(db, ['a'], T(5), T(10))).error).toBeUndefined();
      const st = await txnRecordStatus(db, b('a'), T(10));
      expect(st.rolledBack).toBe(true);
      expect(st.atStartTs?.record).toEqual({ kind: 'put', startTs: T(5), overlappedRollback: true });
      expect(await value(db, 'a', T(10))).toBe('v');
    });
  });
});

describe('resolveLock', () => {
  it('commits or rolls back the listed keys, skipping others', async () => {
    await withTxnDb(async (db) => {
      await pw(db, [put('a', '1'), put('b', '2'), put('c', '3')], T(10));
      await pw(db, [put('d', '4')], T(11));
      const r = await apply(
        db,
        resolveLock(db, { startTs: T(10), commitTs: T(20), keys: [b('b'), b('c'), b('d'), b('z')] }),
      );
      expect(r).toEqual({ resolved: 2 });
      expect(await value(db, 'b', T(20))).toBe('2');
      expect((await loadLock(db, b('d')))?.startTs).toBe(T(11));
      expect((await loadLock(db, b('a')))?.startTs).toBe(T(10));
      const r2 = await apply(db, resolveLock(db, { startTs: T(11), commitTs: 0n, keys: [b('d')] }));
      expect(r2).toEqual({ resolved: 1 });
      expect(await loadLock(db, b('d'))).toBeUndefined();
      expect((await txnRecordStatus(db, b('d'), T(11))).rolledBack).toBe(true);
    });
  });

  it('without keys resolves every lock of the transaction in the range', async () => {
    await withTxnDb(async (db) => {
      await pw(db, [put('a', '1'), put('b', '2'), put('m', '3'), put('x', '4')], T(10));
      await pw(db, [put('c', '5')], T(12));
      expect(
        await apply(db, resolveLock(db, { startTs: T(10), commitTs: 0n, start: b('a'), end: b('n') })),
      ).toEqual({
        resolved: 3,
      });
      expect((await scanLocks(db, {})).map((l) => l.key.toString())).toEqual(['c', 'x']);
      expect(await apply(db, resolveLock(db, { startTs: T(10), commitTs: T(13) }))).toEqual({ resolved: 1 });
      expect(await value(db, 'x', T(13))).toBe('4');
    });
  });

  it('ignores the min commit ts (the primary decided) and refuses a bad commit ts', async () => {
    await withTxnDb(async (db) => {
      await apply(
        db,
        prewrite(db, {
          mutations: [put('a', '1')],
          primary: b('p'),
          startTs: T(10),
          lockTtl: 1,
          minCommitTs: T(30),
        }),
      );
      expect(await apply(db, resolveLock(db, { startTs: T(10), commitTs: T(20), keys: [b('a')] }))).toEqual({
        resolved: 1,
      });
      const r = await resolveLock(db, { startTs: T(10), commitTs: T(9), keys: [b('a')] });
      expect(r.response.error?.code).toBe('InvalidRequest');
    });
  });
});

describe('checkTxnStatus', () => {
  const req = (over: Partial<Parameters<typeof checkTxnStatus>[1]> = {}) => ({
    primaryKey: b('p'),
    lockTs: T(10),
    currentTs: T(11),
    callerStartTs: 0n,
    rollbackIfNotExist: false,
    ...over,
  });

  it('alive lock: NoAction with the TTL; expired (ms of physical time) → rolled back', async () => {
    await withTxnDb(async (db) => {
      await pw(db, [put('p', '1'), put('s', '2')], T(10), b('p'), 100);
      let r = await apply(db, checkTxnStatus(db, req({ currentTs: T(109, 999) })));
      expect(r).toEqual({ action: 'NoAction', lockTtl: 100, commitTs: 0n, status: 'alive' });
      r = await apply(db, checkTxnStatus(db, req({ currentTs: T(110) })));
      expect(r).toEqual({ action: 'TtlExpireRollback', lockTtl: 0, commitTs: 0n, status: 'rolledBack' });
      expect(await loadLock(db, b('p'))).toBeUndefined();
      expect((await cm(db, ['p'], T(10), T(200))).error).toBeInstanceOf(TxnAbortedError);
      // again: already rolled back
      r = await apply(db, checkTxnStatus(db, req({ currentTs: T(500) })));
      expect(r).toEqual({ action: 'NoAction', lockTtl: 0, commitTs: 0n, status: 'rolledBack' });
      // the secondary is then rolled back by resolveLock
      expect(await apply(db, resolveLock(db, { startTs: T(10), commitTs: 0n, keys: [b('s')] }))).toEqual({
        resolved: 1,
      });
    });
  });

  it('pushes the min commit ts past a reader', async () => {
    await withTxnDb(async (db) => {
      await pw(db, [put('p', '1')], T(10), b('p'), 1000);
      const r = await apply(db, checkTxnStatus(db, req({ callerStartTs: T(20) })));
      expect(r).toEqual({ action: 'MinCommitTsPushed', lockTtl: 1000, commitTs: 0n, status: 'alive' });
      expect((await loadLock(db, b('p')))?.minCommitTs).toBe(T(20) + 1n);
      // the reader now passes the lock
      expect(await get(db, b('p'), T(20))).toBeUndefined();
      await expect(get(db, b('p'), T(21) + 1n)).rejects.toBeInstanceOf(KeyLockedError);
      // an older reader does not push again
      const r2 = await checkTxnStatus(db, req({ callerStartTs: T(15) }));
      expect(r2.response.action).toBe('NoAction');
      expect(r2.writes).toEqual([]);
    });
  });

  it('reports a committed transaction', async () => {
    await withTxnDb(async (db) => {
      await txn(db, [put('p', '1')], T(10), T(12));
      const r = await apply(db, checkTxnStatus(db, req({ currentTs: T(100_000), rollbackIfNotExist: true })));
      expect(r).toEqual({ action: 'NoAction', lockTtl: 0, commitTs: T(12), status: 'committed' });
      // even when another transaction now holds the primary's lock
      await pw(db, [put('p', '2')], T(20));
      const r2 = await apply(db, checkTxnStatus(db, req({ rollbackIfNotExist: true })));
      expect(r2.status).toBe('committed');
      expect(r2.commitTs).toBe(T(12));
    });
  });

  it('rollbackIfNotExist writes a rollback record; without it TxnNotFound', async () => {
    await withTxnDb(async (db) => {
      const nf = await checkTxnStatus(db, req());
      expect(nf.writes).toEqual([]);
      expect(nf.response.error).toBeInstanceOf(TxnNotFoundError);
      expect(nf.response.error?.code).toBe('TxnNotFound');
      const r = await apply(db, checkTxnStatus(db, req({ rollbackIfNotExist: true })));
      expect(r).toEqual({ action: 'LockNotExistRollback', lockTtl: 0, commitTs: 0n, status: 'rolledBack' });
      // the prewrite that was in flight now fails
      expect((await pw(db, [put('p', '1')], T(10))).errors[0]).toBeInstanceOf(TxnAbortedError);
    });
  });

  it('ignores another transaction lock on the primary', async () => {
    await withTxnDb(async (db) => {
      await pw(db, [put('p', '1')], T(5), b('p'), 1);
      const r = await apply(db, checkTxnStatus(db, req({ currentTs: T(10_000), rollbackIfNotExist: true })));
      expect(r.action).toBe('LockNotExistRollback');
      expect((await loadLock(db, b('p')))?.startTs).toBe(T(5));
      const ws = [];
      for await (const w of writesOf(db, b('p'))) ws.push(w);
      expect(ws).toEqual([
        { version: T(10), record: { kind: 'rollback', startTs: T(10), overlappedRollback: false } },
      ]);
    });
  });
});
