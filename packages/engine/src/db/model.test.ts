/**
 * Model-based test: random streams of operations (writes, batches, range deletes, TTLs, reads,
 * scans, snapshots, flush, compaction, clean reopen, simulated power loss) run against the engine
 * and against a plain in-memory model, which must agree at every step. fast-check shrinks a
 * failure to a short command list; replay it exactly with
 *
 *     NOKV_MODEL_SEED=<seed> NOKV_MODEL_PATH=<path> pnpm vitest run packages/engine/src/db/model.test.ts
 *
 * (the failure message prints both). NOKV_MODEL_RUNS raises the number of runs for a soak.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { collect, tempDir } from '../../test/support.js';
import { simulateCrash } from '../testing.js';
import { FaultVfs } from '../vfs/fault-vfs.js';
import { type Database, open } from './database.js';
import type { OpenOptions } from './options.js';
import type { Snapshot } from './snapshots.js';

interface Stored {
  value: string;
  expiresAt: number;
}

interface Model {
  data: Map<string, Stored>;
  snapshots: { data: Map<string, Stored> }[];
  now: number;
}

interface Real {
  db: Database;
  vfs: FaultVfs;
  dir: string;
  options: Omit<OpenOptions, 'dir' | 'vfs'>;
  clock: { now: number };
  snapshots: Snapshot[];
}

type Cmd = fc.AsyncCommand<Model, Real>;

function live(data: Map<string, Stored>, now: number): [string, string][] {
  return [...data.entries()]
    .filter(([, s]) => s.expiresAt === 0 || s.expiresAt > now)
    .map(([k, s]) => [k, s.value] as [string, string])
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function utf8Compare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

class Put implements Cmd {
  constructor(
    readonly key: string,
    readonly value: string,
    readonly ttlMs: number | undefined,
  ) {}
  check = () => true;
  async run(m: Model, r: Real) {
    await r.db.set(this.key, this.value, this.ttlMs === undefined ? undefined : { ttlMs: this.ttlMs });
    m.data.set(this.key, { value: this.value, expiresAt: this.ttlMs === undefined ? 0 : m.now + this.ttlMs });
  }
  toString = () => `put(${this.key}, ${this.value.length}B${this.ttlMs ? `, ttl ${this.ttlMs}` : ''})`;
}

class Del implements Cmd {
  constructor(readonly key: string) {}
  check = () => true;
  async run(m: Model, r: Real) {
    await r.db.delete(this.key);
    m.data.delete(this.key);
  }
  toString = () => `delete(${this.key})`;
}

class DelRange implements Cmd {
  constructor(
    readonly start: string,
    readonly end: string,
  ) {}
  check = () => utf8Compare(this.start, this.end) < 0;
  async run(m: Model, r: Real) {
    await r.db.deleteRange(this.start, this.end);
    for (const k of [...m.data.keys()]) {
      if (utf8Compare(k, this.start) >= 0 && utf8Compare(k, this.end) < 0) m.data.delete(k);
    }
  }
  toString = () => `deleteRange(${this.start}, ${this.end})`;
}

class Batch implements Cmd {
  constructor(readonly ops: { key: string; value: string | null }[]) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const b = r.db.batch();
    for (const op of this.ops) {
      if (op.value === null) b.delete(op.key);
      else b.put(op.key, op.value);
    }
    await r.db.write(b);
    for (const op of this.ops) {
      if (op.value === null) m.data.delete(op.key);
      else m.data.set(op.key, { value: op.value, expiresAt: 0 });
    }
  }
  toString = () => `batch(${this.ops.map((o) => (o.value === null ? `-${o.key}` : `+${o.key}`)).join(' ')})`;
}

class Get implements Cmd {
  constructor(readonly key: string) {}
  check = () => true;
  async run(m: Model, r: Real) {
    const s = m.data.get(this.key);
    const expected = s !== undefined && (s.expiresAt === 0 || s.expiresAt > m.now) ? s.value : undefined;
    expect((await r.db.get(this.key))?.toString()).toBe(expected);
  }
  toString = () => `get(${this.key})`;
}

class Scan implements Cmd {
  constructor(
    readonly gte: string | undefined,
    readonly lt: string | undefined,
    readonly reverse: boolean,
    readonly limit: number | undefined,
  ) {}
  check = () => true;
  async run(m: Model, r: Real) {
    let expected = live(m.data, m.now).filter(
      ([k]) =>
        (this.gte === undefined || utf8Compare(k, this.gte) >= 0) &&
        (this.lt === undefined || utf8Compare(k, this.lt) < 0),
    );
    expected.sort(([a], [b]) => utf8Compare(a, b));
    if (this.reverse) expected.reverse();
    if (this.limit !== undefined) expected = expected.slice(0, this.limit);
    const got = await collect(
      r.db.iterate({
        ...(this.gte === undefined ? {} : { gte: this.gte }),
        ...(this.lt === undefined ? {} : { lt: this.lt }),
        reverse: this.reverse,
        ...(this.limit === undefined ? {} : { limit: this.limit }),
      }),
    );
    expect(got).toEqual(expected);
  }
  toString = () =>
    `scan(${this.gte ?? ''}..${this.lt ?? ''}${this.reverse ? ', reverse' : ''}${this.limit !== undefined ? `, limit ${this.limit}` : ''})`;
}

class TakeSnapshot implements Cmd {
  check = () => true;
  async run(m: Model, r: Real) {
    r.snapshots.push(r.db.snapshot());
    m.snapshots.push({ data: new Map(m.data) });
  }
  toString = () => 'snapshot()';
}

class ReadSnapshot implements Cmd {
  constructor(
    readonly index: number,
    readonly key: string,
  ) {}
  check = (m: Readonly<Model>) => m.snapshots.length > 0;
  async run(m: Model, r: Real) {
    const i = this.index % m.snapshots.length;
    const snapModel = m.snapshots[i]!.data;
    const s = snapModel.get(this.key);
    const expected = s !== undefined && (s.expiresAt === 0 || s.expiresAt > m.now) ? s.value : undefined;
    expect((await r.db.get(this.key, { snapshot: r.snapshots[i]! }))?.toString()).toBe(expected);
    expect(await collect(r.db.iterate({ snapshot: r.snapshots[i]! }))).toEqual(live(snapModel, m.now));
  }
  toString = () => `readSnapshot(#${this.index}, ${this.key})`;
}

class ReleaseSnapshot implements Cmd {
  constructor(readonly index: number) {}
  check = (m: Readonly<Model>) => m.snapshots.length > 0;
  async run(m: Model, r: Real) {
    const i = this.index % m.snapshots.length;
    r.snapshots.splice(i, 1)[0]!.release();
    m.snapshots.splice(i, 1);
  }
  toString = () => `release(#${this.index})`;
}

class AdvanceClock implements Cmd {
  constructor(readonly ms: number) {}
  check = () => true;
  async run(m: Model, r: Real) {
    m.now += this.ms;
    r.clock.now += this.ms;
  }
  toString = () => `clock+${this.ms}`;
}

class Flush implements Cmd {
  check = () => true;
  async run(_m: Model, r: Real) {
    await r.db.flush();
  }
  toString = () => 'flush()';
}

class Compact implements Cmd {
  check = () => true;
  async run(_m: Model, r: Real) {
    await r.db.compact();
  }
  toString = () => 'compact()';
}

async function reopen(m: Model, r: Real): Promise<void> {
  for (const s of r.snapshots) s.release();
  r.snapshots = [];
  m.snapshots = [];
  r.vfs = new FaultVfs();
  r.db = await open({ ...r.options, dir: r.dir, vfs: r.vfs, clock: () => r.clock.now });
}

class ValueLogGc implements Cmd {
  check = () => true;
  async run(_m: Model, r: Real) {
    await r.db.runValueLogGc({ discardRatio: 0.01 });
  }
  toString = () => 'vlogGc()';
}

class Reopen implements Cmd {
  check = () => true;
  async run(m: Model, r: Real) {
    await r.db.close();
    await reopen(m, r);
  }
  toString = () => 'reopen()';
}

/** Power loss: every acknowledged write was fsynced (syncWrites), so the model is unchanged. */
class Crash implements Cmd {
  check = () => true;
  async run(m: Model, r: Real) {
    await simulateCrash(r.db, r.vfs, { loseUnsynced: true });
    await reopen(m, r);
  }
  toString = () => 'crash()';
}

const keyArb = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('a', 'b', 'ba', 'bb', 'c', 'd', 'e', 'f', 'k1', 'k10', 'k2', 'z') },
  {
    weight: 1,
    arbitrary: fc.string({
      minLength: 1,
      maxLength: 6,
      unit: fc.constantFrom('a', 'b', 'c', '\u00e9', '\u0000'),
    }),
  },
);
const valueArb = fc.oneof(
  fc.string({ maxLength: 8 }),
  fc.integer({ min: 100, max: 3000 }).map((n) => 'v'.repeat(n)),
);
const putArb = fc
  .tuple(keyArb, valueArb, fc.option(fc.integer({ min: 1, max: 50 }), { nil: undefined }))
  .map(([k, v, t]) => new Put(k, v, t));
const getArb = keyArb.map((k) => new Get(k));
const scanArb = fc
  .tuple(
    fc.option(keyArb, { nil: undefined }),
    fc.option(keyArb, { nil: undefined }),
    fc.boolean(),
    fc.option(fc.nat(5), { nil: undefined }),
  )
  .map(([a, b, rev, lim]) => new Scan(a, b, rev, lim));
// Reads and writes dominate; lifecycle events (each clears caches and memtables) are rarer, so
// that read-after-write chains on the same key are common.
const commands = [
  putArb,
  putArb,
  putArb,
  getArb,
  getArb,
  getArb,
  keyArb.map((k) => new Del(k)),
  keyArb.map((k) => new Del(k)),
  fc.tuple(keyArb, keyArb).map(([a, b]) => new DelRange(a, b)),
  fc
    .array(fc.record({ key: keyArb, value: fc.option(valueArb, { nil: null }) }), {
      minLength: 1,
      maxLength: 5,
    })
    .map((ops) => new Batch(ops)),
  scanArb,
  scanArb,
  fc.constant(new TakeSnapshot()),
  fc.tuple(fc.nat(), keyArb).map(([i, k]) => new ReadSnapshot(i, k)),
  fc.nat().map((i) => new ReleaseSnapshot(i)),
  fc.integer({ min: 1, max: 40 }).map((ms) => new AdvanceClock(ms)),
  fc.oneof(fc.constant(new Flush()), fc.constant(new Compact()), fc.constant(new ValueLogGc())),
  fc.oneof(
    fc.constant(new Flush()),
    fc.constant(new Compact()),
    fc.constant(new Reopen()),
    fc.constant(new Crash()),
  ),
];

const optionSets: Record<string, Omit<OpenOptions, 'dir' | 'vfs'>> = {
  'tiny tables, lz4': {
    syncWrites: true,
    memtableBytes: 64 * 1024,
    blockBytes: 256,
    l0CompactionTrigger: 2,
    levelBaseBytes: 32 * 1024,
    targetFileBytes: 4 * 1024,
    maxManifestBytes: 2048,
  },
  'default shapes, no compression': { syncWrites: true, compression: 'none', blockCacheBytes: 0 },
  'value log for values over 64 bytes': {
    syncWrites: true,
    valueThreshold: 64,
    vlogSegmentBytes: 64 * 1024,
    vlogGcIntervalMs: 0,
    memtableBytes: 64 * 1024,
    l0CompactionTrigger: 2,
    targetFileBytes: 4 * 1024,
    rowCacheBytes: 0,
  },
};

const runs = Number(process.env.NOKV_MODEL_RUNS ?? 30);
const seed = process.env.NOKV_MODEL_SEED === undefined ? undefined : Number(process.env.NOKV_MODEL_SEED);
const path = process.env.NOKV_MODEL_PATH;

describe('engine agrees with an in-memory model', () => {
  for (const [name, options] of Object.entries(optionSets)) {
    it(`under random operation streams (${name})`, async () => {
      await fc.assert(
        fc.asyncProperty(fc.commands(commands, { maxCommands: 80, size: 'large' }), async (cmds) => {
          const dir = tempDir();
          const clock = { now: 1_700_000_000_000 };
          const vfs = new FaultVfs();
          const real: Real = {
            db: await open({ ...options, dir, vfs, clock: () => clock.now }),
            vfs,
            dir,
            options,
            clock,
            snapshots: [],
          };
          const model: Model = { data: new Map(), snapshots: [], now: clock.now };
          try {
            await fc.asyncModelRun(() => ({ model, real }), cmds);
            expect(await collect(real.db.iterate())).toEqual(live(model.data, model.now));
          } finally {
            await real.db.close().catch(() => undefined);
          }
        }),
        {
          numRuns: runs,
          ...(seed === undefined ? {} : { seed }),
          ...(path === undefined ? {} : { path }),
          endOnFailure: false,
        },
      );
    }, 300_000);
  }
});
