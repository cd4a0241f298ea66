import { describe, expect, it } from 'vitest';
import { collect, prng, tempDir, tinyOptions } from '../../test/support.js';
import { ClosedError, InvalidArgumentError, ReadOnlyError } from '../errors.js';
import { open } from './database.js';
import { MAX_KEY_BYTES } from './options.js';

describe('Database basics', () => {
  it('sets, gets, overwrites and deletes', async () => {
    const db = await open({ dir: tempDir() });
    await db.set('a', '1');
    await db.set(Buffer.from('b'), new Uint8Array([2]));
    expect((await db.get('a'))?.toString()).toBe('1');
    expect(await db.get('b')).toEqual(Buffer.from([2]));
    await db.set('a', 'one');
    expect((await db.get('a'))?.toString()).toBe('one');
    await db.delete('a');
    expect(await db.get('a')).toBeUndefined();
    expect(await db.get('missing')).toBeUndefined();
    await db.delete('missing');
    await db.close();
  });

  it('stores empty values and binary keys', async () => {
    const db = await open({ dir: tempDir() });
    const key = Buffer.from([0, 255, 0, 1]);
    await db.set(key, '');
    expect(await db.get(key)).toEqual(Buffer.alloc(0));
    await db.close();
  });

  it('returns copies that later writes or caller mutations cannot change', async () => {
    const db = await open({ dir: tempDir() });
    const value = Buffer.from('abc');
    await db.set('k', value);
    value[0] = 0x7a;
    const got = (await db.get('k'))!;
    expect(got.toString()).toBe('abc');
    got[0] = 0x79;
    expect((await db.get('k'))?.toString()).toBe('abc');
    await db.close();
  });

  it('deleteRange hides [start, end) only', async () => {
    const db = await open({ dir: tempDir() });
    for (const k of ['a', 'b', 'ba', 'c', 'd']) await db.set(k, k);
    await db.deleteRange('b', 'd');
    expect((await collect(db.iterate())).map(([k]) => k)).toEqual(['a', 'd']);
    expect(await db.get('ba')).toBeUndefined();
    await db.set('bb', 'new');
    expect((await db.get('bb'))?.toString()).toBe('new');
    await db.close();
  });

  it('applies batches atomically, from a WriteBatch or an array', async () => {
    const db = await open({ dir: tempDir() });
    await db.set('x', 'old');
    await db.write(db.batch().put('a', '1').put('b', '2').delete('x'));
    await db.write([
      { type: 'put', key: 'c', value: '3' },
      { type: 'deleteRange', start: 'a', end: 'b' },
    ]);
    expect(await collect(db.iterate())).toEqual([
      ['b', '2'],
      ['c', '3'],
    ]);
    await db.close();
  });

  it('expires keys by TTL using the injected clock', async () => {
    let now = 1_000_000;
    const db = await open({ dir: tempDir(), clock: () => now });
    await db.set('t', 'v', { ttlMs: 100 });
    await db.set('p', 'v');
    expect((await db.get('t'))?.toString()).toBe('v');
    now += 99;
    expect((await db.get('t'))?.toString()).toBe('v');
    now += 1;
    expect(await db.get('t')).toBeUndefined();
    expect((await collect(db.iterate())).map(([k]) => k)).toEqual(['p']);
    await db.close();
  });
});

describe('iterate', () => {
  async function filled() {
    const db = await open({ dir: tempDir() });
    for (const k of ['a', 'ab', 'b', 'ba', 'bb', 'c']) await db.set(k, k.toUpperCase());
    return db;
  }
  const keys = async (it: AsyncIterable<[Buffer, Buffer]>) => (await collect(it)).map(([k]) => k);

  it('honours bounds, prefix, reverse and limit', async () => {
    const db = await filled();
    expect(await keys(db.iterate())).toEqual(['a', 'ab', 'b', 'ba', 'bb', 'c']);
    expect(await keys(db.iterate({ gte: 'ab', lt: 'bb' }))).toEqual(['ab', 'b', 'ba']);
    expect(await keys(db.iterate({ gt: 'ab', lte: 'bb' }))).toEqual(['b', 'ba', 'bb']);
    expect(await keys(db.iterate({ prefix: 'b' }))).toEqual(['b', 'ba', 'bb']);
    expect(await keys(db.iterate({ prefix: 'b', reverse: true }))).toEqual(['bb', 'ba', 'b']);
    expect(await keys(db.iterate({ reverse: true, limit: 2 }))).toEqual(['c', 'bb']);
    expect(await keys(db.iterate({ gte: 'b', lt: 'b' }))).toEqual([]);
    expect(await keys(db.iterate({ limit: 0 }))).toEqual([]);
    expect(await keys(db.iterate({ lt: 'a' }))).toEqual([]);
    await db.close();
  });

  it('sees a consistent view: writes after it starts are invisible', async () => {
    const db = await filled();
    const seen: string[] = [];
    for await (const [k] of db.iterate()) {
      seen.push(k.toString());
      await db.set(`${k.toString()}z`, 'new');
      await db.delete('c');
    }
    expect(seen).toEqual(['a', 'ab', 'b', 'ba', 'bb', 'c']);
    expect(await keys(db.iterate({ prefix: 'a' }))).toEqual(['a', 'abz', 'ab', 'az'].sort());
    await db.close();
  });

  it('releases its pin when the loop breaks early', async () => {
    const db = await filled();
    for await (const _ of db.iterate()) break;
    expect(db.stats().versions.snapshots).toBe(0);
    await db.close();
  });

  it('merges memtable and tables across levels, forward and reverse', async () => {
    const db = await open({ dir: tempDir(), ...tinyOptions });
    const model = new Map<string, string>();
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 400; i++) {
        const k = `k${String((i * 7 + round * 13) % 500).padStart(4, '0')}`;
        if ((i + round) % 9 === 0) {
          await db.delete(k);
          model.delete(k);
        } else {
          const v = `${round}-${i}-${'x'.repeat(40)}`;
          await db.set(k, v);
          model.set(k, v);
        }
      }
      if (round === 1) await db.flush();
      if (round === 2) await db.compact();
    }
    const expected = [...model.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
    expect(await collect(db.iterate())).toEqual(expected);
    expect(await collect(db.iterate({ reverse: true }))).toEqual([...expected].reverse());
    expect(await collect(db.iterate({ gte: 'k0100', lt: 'k0200', reverse: true }))).toEqual(
      expected.filter(([k]) => k >= 'k0100' && k < 'k0200').reverse(),
    );
    await db.close();
  });
});

describe('table boundaries', () => {
  it('finds keys that start a table after a range tombstone was clipped at the cut', async () => {
    const db = await open({ dir: tempDir(), ...tinyOptions, targetFileBytes: 1024 });
    const snap = db.snapshot(); // keeps the tombstone from being dropped at the bottom level
    await db.deleteRange('k000', 'k999');
    const rand = prng(3);
    const value = (i: number) =>
      `${i}:${Array.from({ length: 120 }, () => Math.floor(rand() * 36).toString(36)).join('')}`;
    const values = Array.from({ length: 60 }, (_, i) => value(i));
    for (let i = 0; i < 60; i++) await db.set(`k${String(i).padStart(3, '0')}`, values[i]!);
    await db.compact();
    expect(db.stats().lsm.levels[6]!.tables).toBeGreaterThan(3);
    for (let i = 0; i < 60; i++)
      expect((await db.get(`k${String(i).padStart(3, '0')}`))?.toString()).toBe(values[i]);
    snap.release();
    await db.close();
  });
});

describe('snapshots', () => {
  it('read the state as of their creation, across flush and compaction', async () => {
    const db = await open({ dir: tempDir(), ...tinyOptions });
    await db.set('a', '1');
    await db.set('b', '1');
    const snap = db.snapshot();
    await db.set('a', '2');
    await db.delete('b');
    await db.deleteRange('a', 'z');
    await db.set('c', '2');
    await db.compact();
    expect((await db.get('a', { snapshot: snap }))?.toString()).toBe('1');
    expect((await db.get('b', { snapshot: snap }))?.toString()).toBe('1');
    expect(await db.get('c', { snapshot: snap })).toBeUndefined();
    expect(await collect(db.iterate({ snapshot: snap }))).toEqual([
      ['a', '1'],
      ['b', '1'],
    ]);
    expect(await collect(db.iterate())).toEqual([['c', '2']]);
    snap.release();
    await expect(db.get('a', { snapshot: snap })).rejects.toThrow(/released/);
    await db.compact();
    const stats = db.stats();
    expect(stats.lsm.levels[6]!.entries).toBe(1);
    expect(stats.lsm.levels[6]!.rangeDeletions).toBe(0);
    await db.close();
  });
});

describe('bad input is refused and writes nothing', () => {
  it('rejects empty, oversized and mistyped keys and values with typed codes', async () => {
    const db = await open({ dir: tempDir() });
    const code = async (p: Promise<unknown>) => {
      const err = await p.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(InvalidArgumentError);
      return (err as InvalidArgumentError).code;
    };
    expect(await code(db.set('', 'v'))).toBe('EmptyKey');
    expect(await code(db.set(Buffer.alloc(0), 'v'))).toBe('EmptyKey');
    expect(await code(db.set('k', undefined as unknown as string))).toBe('NilValue');
    expect(await code(db.set('k', null as unknown as string))).toBe('NilValue');
    expect(await code(db.set(42 as unknown as string, 'v'))).toBe('InvalidArgument');
    expect(await code(db.set('x'.repeat(MAX_KEY_BYTES + 1), 'v'))).toBe('KeyTooLarge');
    expect(await code(db.set('k', 'v', { ttlMs: -5 }))).toBe('InvalidArgument');
    expect(await code(db.set('k', 'v', { ttlMs: Number.MAX_SAFE_INTEGER }))).toBe('InvalidArgument');
    expect(await code(db.set('k', 'v', { ttlMs: Number.POSITIVE_INFINITY }))).toBe('InvalidArgument');
    expect(await code(db.get('k', { snapshot: {} as never }))).toBe('InvalidArgument');
    expect(() => db.iterate({ snapshot: 5 as never })).toThrow(InvalidArgumentError);
    expect(() => db.iterate(null as never)).toThrow(InvalidArgumentError);
    expect(await code(db.internal.write(null as never))).toBe('InvalidArgument');
    expect(await code(db.internal.write([null] as never))).toBe('InvalidArgument');
    expect(() => db.internal.scan({ cf: 'lock', limit: -1 })).toThrow(InvalidArgumentError);
    expect(await code(db.get(''))).toBe('EmptyKey');
    expect(await code(db.deleteRange('b', 'a'))).toBe('InvalidArgument');
    expect(await code(db.deleteRange('a', 'a'))).toBe('InvalidArgument');
    expect(
      await code(
        db.write([
          { type: 'put', key: 'ok', value: 'v' },
          { type: 'put', key: '', value: 'v' },
        ]),
      ),
    ).toBe('EmptyKey');
    expect(await code(db.write([{ type: 'nope' } as unknown as { type: 'delete'; key: string }]))).toBe(
      'InvalidArgument',
    );
    expect(() => db.iterate({ gte: 'a', gt: 'b' })).toThrow(InvalidArgumentError);
    expect(() => db.iterate({ limit: -1 })).toThrow(InvalidArgumentError);
    expect(db.stats().write.requests).toBe(0);
    expect(await collect(db.iterate())).toEqual([]);
    await db.close();
  });

  it('rejects a write larger than one memtable (large values go to the value log instead)', async () => {
    const db = await open({ dir: tempDir(), memtableBytes: 64 * 1024 });
    const batch = db.batch();
    for (let i = 0; i < 2000; i++) batch.put(`key-${i}`, 'v'.repeat(40));
    await expect(db.write(batch)).rejects.toMatchObject({ code: 'BatchTooLarge' });
    expect(await db.get('key-1')).toBeUndefined();
    await db.set('big', Buffer.alloc(70 * 1024, 1));
    expect((await db.get('big'))?.length).toBe(70 * 1024);
    await db.close();
    const inline = await open({ dir: tempDir(), memtableBytes: 64 * 1024, valueThreshold: 1 << 30 });
    await expect(inline.set('big', Buffer.alloc(70 * 1024))).rejects.toMatchObject({ code: 'BatchTooLarge' });
    await inline.close();
  });

  it('refuses use after close with ClosedError; close is idempotent', async () => {
    const db = await open({ dir: tempDir() });
    await db.set('a', '1');
    const first = db.close();
    expect(db.close()).toBe(first);
    await first;
    expect(db.isClosed).toBe(true);
    await expect(db.set('a', '2')).rejects.toBeInstanceOf(ClosedError);
    await expect(db.get('a')).rejects.toBeInstanceOf(ClosedError);
    expect(() => db.iterate()).toThrow(ClosedError);
    expect(() => db.snapshot()).toThrow(ClosedError);
  });

  it('refuses bad options', async () => {
    await expect(open({ dir: '' })).rejects.toMatchObject({ code: 'InvalidArgument' });
    await expect(open({ dir: tempDir(), memtableBytes: 10 })).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
    await expect(open({ dir: tempDir(), compression: 'zstd' as 'lz4' })).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
    await expect(open(undefined as unknown as { dir: string })).rejects.toMatchObject({
      code: 'InvalidArgument',
    });
  });
});

describe('read-only opens', () => {
  it('read everything, refuse writes and leave the workdir untouched', async () => {
    const dir = tempDir();
    const db = await open({ dir, ...tinyOptions });
    for (let i = 0; i < 300; i++) await db.set(`k${i}`, 'v'.repeat(50));
    await db.flush();
    await db.set('late', 'in the wal');
    await db.close();
    const ro = await open({ dir, readOnly: true });
    expect((await ro.get('late'))?.toString()).toBe('in the wal');
    expect((await collect(ro.iterate())).length).toBe(301);
    await expect(ro.set('x', 'y')).rejects.toBeInstanceOf(ReadOnlyError);
    await ro.close();
  });

  it('fail clearly on a directory without a database', async () => {
    await expect(open({ dir: tempDir(), readOnly: true })).rejects.toThrow(/holds no NoKV database/);
    await expect(open({ dir: '/nonexistent/nokv', readOnly: true })).rejects.toThrow(/does not exist/);
  });
});

describe('persistence', () => {
  it('keeps everything across close and reopen, through flushes and compactions', async () => {
    const dir = tempDir();
    let db = await open({ dir, ...tinyOptions });
    for (let i = 0; i < 2000; i++) await db.set(`k${String(i).padStart(5, '0')}`, `v${i}`.repeat(10));
    await db.deleteRange('k00100', 'k00200');
    await db.close();
    db = await open({ dir, ...tinyOptions });
    expect((await collect(db.iterate())).length).toBe(1900);
    expect((await db.get('k01999'))?.toString()).toBe('v1999'.repeat(10));
    expect(await db.get('k00150')).toBeUndefined();
    const stats = db.stats();
    expect(stats.lsm.tables).toBeGreaterThan(0);
    await db.close();
  });

  it('keeps version counters monotonic across reopen so snapshots stay meaningful', async () => {
    const dir = tempDir();
    let db = await open({ dir });
    await db.set('a', '1');
    await db.set('a', '2');
    const before = db.snapshot().version;
    await db.close();
    db = await open({ dir });
    await db.set('a', '3');
    const after = db.snapshot().version;
    expect(after).toBeGreaterThan(before);
    await db.close();
  });
});

describe('backpressure', () => {
  it('slows writes down while level 0 is past the slowdown trigger, and says so in stats', async () => {
    const db = await open({
      dir: tempDir(),
      memtableBytes: 64 * 1024,
      l0CompactionTrigger: 10,
      l0SlowdownWritesTrigger: 2,
      l0StopWritesTrigger: 30,
    });
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 50; i++) await db.set(`k${round}-${i}`, 'v'.repeat(100));
      await db.flush();
    }
    expect(db.stats().lsm.levels[0]!.tables).toBe(3);
    await db.set('slowed', 'down');
    const w = db.stats().write;
    expect(w.slowdowns).toBeGreaterThan(0);
    expect(w.slowdownMsTotal).toBeGreaterThan(0);
    expect(w.stallReason).toBe('slowdown');
    await db.close();
  });

  it('many concurrent writers share commits (group commit, one fsync per group)', async () => {
    const db = await open({ dir: tempDir(), syncWrites: true });
    await Promise.all(Array.from({ length: 64 }, (_, i) => db.set(`k${i}`, `v${i}`)));
    const w = db.stats().write;
    expect(w.requests).toBe(64);
    expect(w.groups).toBeLessThan(64);
    expect(db.stats().wal.syncs).toBe(w.groups);
    await db.close();
  });
});

describe('stats', () => {
  it('is JSON-safe and reflects the LSM shape', async () => {
    const db = await open({ dir: tempDir(), ...tinyOptions });
    for (let i = 0; i < 1500; i++) await db.set(`k${i}`, 'v'.repeat(64));
    await db.flush();
    const s = db.stats();
    expect(() => JSON.stringify(s)).not.toThrow();
    expect(s.entries).toBeGreaterThanOrEqual(1500);
    expect(s.flush.completed).toBeGreaterThan(0);
    expect(s.lsm.levels).toHaveLength(7);
    expect(s.write.requests).toBe(1500);
    expect(s.wal.bytesWritten).toBeGreaterThan(1500 * 64);
    await db.close();
  });
});
