// Randomized model test: sequences of transactional commands over a small key set, run against a
// real engine and against a plain in-memory Percolator model; every response and every read must
// agree. Seeded, so a failure names the seed and the operation log to replay.
import type { Database } from '@nokv/engine';
import { describe, expect, it } from 'vitest';
import { batchRollback, checkTxnStatus, commit, type Mutation, prewrite, resolveLock } from './commands.js';
import { KeyLockedError, type TxnError } from './errors.js';
import { get, scan } from './mvcc.js';
import type { LockKind, WriteKind } from './records.js';
import { apply, b, withTxnDb } from './test-support.js';
import { composeTs, tsPhysicalMs } from './timestamp.js';

const KEYS = ['a', 'b', 'c', 'd'];

interface MLock {
  primary: string;
  startTs: bigint;
  ttl: number;
  kind: LockKind;
  minCommitTs: bigint;
}
interface MWrite {
  version: bigint;
  kind: WriteKind;
  startTs: bigint;
  overlapped: boolean;
}

class Model {
  locks = new Map<string, MLock>();
  writes = new Map<string, MWrite[]>(); // sorted by version descending
  data = new Map<string, string>(); // `${key}@${startTs}`

  private ws(key: string): MWrite[] {
    let w = this.writes.get(key);
    if (w === undefined) {
      w = [];
      this.writes.set(key, w);
    }
    return w;
  }
  private putWrite(key: string, w: MWrite): void {
    const list = this.ws(key).filter((x) => x.version !== w.version);
    list.push(w);
    list.sort((x, y) => (x.version > y.version ? -1 : x.version < y.version ? 1 : 0));
    this.writes.set(key, list);
  }
  status(key: string, startTs: bigint) {
    const list = this.ws(key);
    let committed: MWrite | undefined;
    let rolledBack = false;
    let atStart: MWrite | undefined;
    for (const w of list) {
      if (w.version < startTs) break;
      if (w.version === startTs) {
        atStart = w;
        if (w.overlapped) rolledBack = true;
      }
      if (w.startTs === startTs) {
        if (w.kind === 'rollback') rolledBack = true;
        else committed = w;
      }
    }
    return { newest: list[0], committed, rolledBack, atStart };
  }
  visible(key: string, ts: bigint): MWrite | undefined {
    return this.ws(key).find((w) => w.version <= ts && (w.kind === 'put' || w.kind === 'delete'));
  }

  prewrite(
    muts: { op: LockKind; key: string; value?: string; ane: boolean }[],
    primary: string,
    startTs: bigint,
    ttl: number,
  ) {
    const codes: string[] = [];
    const staged: (() => void)[] = [];
    for (const m of muts) {
      const lock = this.locks.get(m.key);
      if (lock) {
        if (lock.startTs !== startTs) codes.push('Locked');
        continue;
      }
      const st = this.status(m.key, startTs);
      if (st.rolledBack) {
        codes.push('Aborted');
        continue;
      }
      if (st.committed) continue;
      if (st.newest && st.newest.version >= startTs) {
        codes.push('WriteConflict');
        continue;
      }
      if (m.ane && this.visible(m.key, startTs)?.kind === 'put') {
        codes.push('AlreadyExists');
        continue;
      }
      staged.push(() => {
        if (m.op === 'put') this.data.set(`${m.key}@${startTs}`, m.value!);
        this.locks.set(m.key, { primary, startTs, ttl, kind: m.op, minCommitTs: startTs + 1n });
      });
    }
    if (codes.length === 0) for (const s of staged) s();
    return codes;
  }

  private commitLocked(key: string, commitTs: bigint): string | undefined {
    const at = this.ws(key).find((w) => w.version === commitTs);
    if (at && (at.kind !== 'rollback' || at.startTs !== commitTs)) return 'InvalidRequest';
    return undefined;
  }
  private doCommitLocked(key: string, lock: MLock, commitTs: bigint): void {
    const at = this.ws(key).find((w) => w.version === commitTs);
    this.putWrite(key, {
      version: commitTs,
      kind: lock.kind,
      startTs: lock.startTs,
      overlapped: at !== undefined,
    });
    this.locks.delete(key);
  }

  commit(keys: string[], startTs: bigint, commitTs: bigint): string | undefined {
    if (commitTs <= startTs) return 'InvalidRequest';
    const todo: (() => void)[] = [];
    for (const key of keys) {
      const lock = this.locks.get(key);
      if (lock && lock.startTs === startTs) {
        if (lock.minCommitTs > commitTs) return 'CommitTsExpired';
        const e = this.commitLocked(key, commitTs);
        if (e) return e;
        todo.push(() => this.doCommitLocked(key, lock, commitTs));
        continue;
      }
      const st = this.status(key, startTs);
      if (st.committed) continue;
      if (st.rolledBack) return 'Aborted';
      return 'TxnLockNotFound';
    }
    for (const t of todo) t();
    return undefined;
  }

  /** Returns an error code, or the mutation to run. */
  private rollbackKey(key: string, startTs: bigint): string | (() => void) {
    const st = this.status(key, startTs);
    if (st.committed) return 'Committed';
    return () => {
      const lock = this.locks.get(key);
      if (lock && lock.startTs === startTs) {
        this.locks.delete(key);
        this.data.delete(`${key}@${startTs}`);
      }
      if (st.rolledBack) return;
      if (st.atStart) this.putWrite(key, { ...st.atStart, overlapped: true });
      else this.putWrite(key, { version: startTs, kind: 'rollback', startTs, overlapped: false });
    };
  }

  rollback(keys: string[], startTs: bigint): string | undefined {
    const todo: (() => void)[] = [];
    for (const key of keys) {
      const r = this.rollbackKey(key, startTs);
      if (typeof r === 'string') return r;
      todo.push(r);
    }
    for (const t of todo) t();
    return undefined;
  }

  resolve(keys: string[], startTs: bigint, commitTs: bigint): { resolved: number; error?: string } {
    if (commitTs !== 0n && commitTs <= startTs) return { resolved: 0, error: 'InvalidRequest' };
    const todo: (() => void)[] = [];
    for (const key of keys) {
      const lock = this.locks.get(key);
      if (!lock || lock.startTs !== startTs) continue;
      if (commitTs === 0n) {
        const r = this.rollbackKey(key, startTs);
        if (typeof r === 'string') return { resolved: 0, error: r };
        todo.push(r);
      } else {
        const e = this.commitLocked(key, commitTs);
        if (e) return { resolved: 0, error: e };
        todo.push(() => this.doCommitLocked(key, lock, commitTs));
      }
    }
    // each key's writes are independent of the others' (distinct keys), so applying in order is fine
    for (const t of todo) t();
    return { resolved: todo.length };
  }

  check(primary: string, lockTs: bigint, currentTs: bigint, callerStartTs: bigint, rine: boolean) {
    const lock = this.locks.get(primary);
    if (lock && lock.startTs === lockTs) {
      if (tsPhysicalMs(currentTs) >= tsPhysicalMs(lock.startTs) + lock.ttl) {
        const r = this.rollbackKey(primary, lockTs);
        if (typeof r === 'string') throw new Error('unreachable');
        r();
        return { action: 'TtlExpireRollback', lockTtl: 0, commitTs: 0n, status: 'rolledBack' };
      }
      if (callerStartTs > 0n && lock.minCommitTs <= callerStartTs) {
        lock.minCommitTs = callerStartTs + 1n;
        return { action: 'MinCommitTsPushed', lockTtl: lock.ttl, commitTs: 0n, status: 'alive' };
      }
      return { action: 'NoAction', lockTtl: lock.ttl, commitTs: 0n, status: 'alive' };
    }
    const st = this.status(primary, lockTs);
    if (st.committed)
      return { action: 'NoAction', lockTtl: 0, commitTs: st.committed.version, status: 'committed' };
    if (st.rolledBack) return { action: 'NoAction', lockTtl: 0, commitTs: 0n, status: 'rolledBack' };
    if (!rine) return { action: 'NoAction', lockTtl: 0, commitTs: 0n, status: 'alive', error: 'TxnNotFound' };
    const r = this.rollbackKey(primary, lockTs);
    if (typeof r === 'string') throw new Error('unreachable');
    r();
    return { action: 'LockNotExistRollback', lockTtl: 0, commitTs: 0n, status: 'rolledBack' };
  }

  blocks(key: string, ts: bigint): boolean {
    const l = this.locks.get(key);
    return l !== undefined && l.kind !== 'lock' && l.startTs <= ts && l.minCommitTs <= ts;
  }
  read(key: string, ts: bigint): string | undefined {
    if (this.blocks(key, ts)) return 'LOCKED';
    const w = this.visible(key, ts);
    return w?.kind === 'put' ? this.data.get(`${key}@${w.startTs}`) : undefined;
  }
  scan(ts: bigint, limit: number): { pairs: string[]; locked?: string } {
    const pairs: string[] = [];
    for (const key of KEYS) {
      if (pairs.length >= limit) break;
      if (this.blocks(key, ts)) return { pairs, locked: key };
      const v = this.read(key, ts);
      if (v !== undefined) pairs.push(`${key}=${v}`);
    }
    return { pairs };
  }
}

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

const codeOf = (e: TxnError | undefined): string | undefined => e?.code;

async function runSeed(db: Database, seed: number, steps: number, log: string[]): Promise<void> {
  const rand = seeded(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const subset = (): string[] => {
    const s = KEYS.filter(() => rand() < 0.5);
    return s.length > 0 ? s : [pick(KEYS)];
  };
  const model = new Model();
  let ms = 1_000;
  let logical = 0;
  const seen: bigint[] = [];
  const now = (): bigint => {
    if (rand() < 0.3) {
      ms += Math.floor(rand() * 200);
      logical = 0;
    }
    const ts = composeTs(ms, logical++);
    seen.push(ts);
    return ts;
  };
  /** A timestamp near one already used (reads between a start ts and a pushed min commit ts, ...). */
  const nearSeen = (): bigint => {
    const ts = pick(seen) + pick([-1n, 0n, 0n, 1n]);
    return ts < 1n ? 1n : ts;
  };
  /** Mostly fresh; sometimes another timestamp on purpose (collisions a real TSO never makes). */
  const commitTsFor = (startTs: bigint): bigint => {
    const r = rand();
    if (r < 0.08) return startTs;
    if (r < 0.2) return pick(txns).startTs;
    return now();
  };
  const txns: { startTs: bigint; keys: string[]; primary: string }[] = [];

  for (let step = 0; step < steps; step++) {
    const r = rand();
    if (r < 0.25 || txns.length === 0) {
      const keys = subset();
      const startTs = now();
      // sometimes reuse an old start ts: a late or repeated prewrite
      const reuse = txns.length > 0 && rand() < 0.15 ? pick(txns) : undefined;
      const ts = reuse?.startTs ?? startTs;
      const ks = reuse?.keys ?? keys;
      const primary = reuse?.primary ?? ks[0]!;
      const ttl = Math.floor(rand() * 400);
      const muts = ks.map((key) => {
        const op = pick(['put', 'put', 'delete', 'lock'] as const);
        return { op, key, value: op === 'put' ? `v${ts}${key}` : undefined, ane: rand() < 0.15 };
      });
      log.push(`prewrite ${ts} ${JSON.stringify(muts)}`);
      const expected = model.prewrite(muts, primary, ts, ttl);
      const mutations: Mutation[] = muts.map((m) => ({
        op: m.op,
        key: b(m.key),
        ...(m.value !== undefined ? { value: b(m.value) } : {}),
        assertNotExist: m.ane,
      }));
      const got = await apply(
        db,
        prewrite(db, { mutations, primary: b(primary), startTs: ts, lockTtl: ttl }),
      );
      expect(got.errors.map((e) => e.code)).toEqual(expected);
      if (!reuse) txns.push({ startTs: ts, keys: ks, primary });
    } else if (r < 0.4) {
      const t = pick(txns);
      const keys = rand() < 0.6 ? t.keys : subset();
      const commitTs = commitTsFor(t.startTs);
      log.push(`commit ${t.startTs} ${keys} @${commitTs}`);
      const expected = model.commit(keys, t.startTs, commitTs);
      const got = await apply(db, commit(db, { keys: keys.map(b), startTs: t.startTs, commitTs }));
      expect(codeOf(got.error)).toBe(expected);
    } else if (r < 0.5) {
      const t = rand() < 0.8 ? pick(txns) : { startTs: nearSeen(), keys: subset() };
      const keys = rand() < 0.6 ? t.keys : subset();
      log.push(`rollback ${t.startTs} ${keys}`);
      const expected = model.rollback(keys, t.startTs);
      const got = await apply(db, batchRollback(db, { keys: keys.map(b), startTs: t.startTs }));
      expect(codeOf(got.error)).toBe(expected);
    } else if (r < 0.6) {
      const t = pick(txns);
      const keys = subset();
      const commitTs = rand() < 0.5 ? 0n : commitTsFor(t.startTs);
      log.push(`resolve ${t.startTs} ${keys} @${commitTs}`);
      const expected = model.resolve(keys, t.startTs, commitTs);
      const got = await apply(db, resolveLock(db, { startTs: t.startTs, commitTs, keys: keys.map(b) }));
      expect({ resolved: got.resolved, error: codeOf(got.error) }).toEqual({
        resolved: expected.resolved,
        error: expected.error,
      });
    } else if (r < 0.72) {
      const t = rand() < 0.85 ? pick(txns) : { startTs: nearSeen(), primary: pick(KEYS) };
      const currentTs = now();
      const callerStartTs = rand() < 0.4 ? 0n : rand() < 0.5 ? now() : nearSeen();
      const rine = rand() < 0.5;
      log.push(`check ${t.primary} ${t.startTs} now=${currentTs} caller=${callerStartTs} rine=${rine}`);
      const expected = model.check(t.primary, t.startTs, currentTs, callerStartTs, rine);
      const got = await apply(
        db,
        checkTxnStatus(db, {
          primaryKey: b(t.primary),
          lockTs: t.startTs,
          currentTs,
          callerStartTs,
          rollbackIfNotExist: rine,
        }),
      );
      expect({ ...got, error: codeOf(got.error) }).toEqual({ error: undefined, ...expected });
    } else if (r < 0.9) {
      const key = pick(KEYS);
      const ts = rand() < 0.3 ? now() : rand() < 0.7 ? nearSeen() : composeTs(1 + Math.floor(rand() * ms));
      const expected = model.read(key, ts);
      let got: string | undefined;
      try {
        got = (await get(db, b(key), ts))?.value.toString();
      } catch (e) {
        if (!(e instanceof KeyLockedError)) throw e;
        got = 'LOCKED';
      }
      expect(got, `get ${key} @${ts}`).toBe(expected);
    } else if (r < 0.98) {
      const ts = rand() < 0.3 ? now() : rand() < 0.7 ? nearSeen() : composeTs(1 + Math.floor(rand() * ms));
      const limit = 1 + Math.floor(rand() * 4);
      const expected = model.scan(ts, limit);
      const got = await scan(db, b(''), b(''), ts, limit);
      expect(
        {
          pairs: got.pairs.map((p) => `${p.key}=${p.value}`),
          ...(got.locked ? { locked: got.locked.key.toString() } : {}),
        },
        `scan @${ts} limit ${limit}`,
      ).toEqual(expected);
    } else {
      log.push('flush');
      await db.flush();
    }
  }
}

describe('model', () => {
  it('random transaction sequences agree with an in-memory Percolator model', async () => {
    const seeds = Number(process.env.NOKV_TXN_MODEL_SEEDS ?? 25);
    for (let seed = 1; seed <= seeds; seed++) {
      const log: string[] = [];
      await withTxnDb(async (db) => {
        try {
          await runSeed(db, seed, 200, log);
        } catch (err) {
          throw new Error(`seed ${seed} failed after:\n${log.slice(-15).join('\n')}\n${String(err)}`, {
            cause: err,
          });
        }
      });
    }
  });
});
