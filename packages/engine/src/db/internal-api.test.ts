import { describe, expect, it } from 'vitest';
import { tempDir, tinyOptions } from '../../test/support.js';
import type { VersionRecord } from '../iterator/db-iterator.js';
import { open } from './database.js';

async function scanAll(it: AsyncIterable<VersionRecord>) {
  const out: string[] = [];
  for await (const r of it)
    out.push(`${r.key.toString()}@${r.version}:${r.meta === 1 ? 'del' : r.value.toString()}`);
  return out;
}

describe('internal versioned API', () => {
  it('reads the newest version at or below a read version, whatever order versions were written in', async () => {
    const db = await open({ dir: tempDir(), ...tinyOptions });
    await db.internal.write([{ cf: 'write', op: 'put', key: 'k', version: 20n, value: 'v20' }]);
    await db.flush();
    await db.compact();
    // An older version arrives later (a transaction committing with an earlier timestamp).
    await db.internal.write([{ cf: 'write', op: 'put', key: 'k', version: 10n, value: 'v10' }]);
    await db.flush();
    await db.internal.write([{ cf: 'write', op: 'delete', key: 'k', version: 30n }]);
    expect((await db.internal.get('write', 'k', 15n))?.value.toString()).toBe('v10');
    expect((await db.internal.get('write', 'k', 25n))?.value.toString()).toBe('v20');
    expect(await db.internal.get('write', 'k', 35n)).toMatchObject({ kind: 'delete', version: 30n });
    expect(await db.internal.get('write', 'k', 5n)).toBeUndefined();
    expect(await db.internal.get('lock', 'k')).toBeUndefined();
    expect(await scanAll(db.internal.scan({ cf: 'write' }))).toEqual(['k@30:del', 'k@20:v20', 'k@10:v10']);
    expect(await scanAll(db.internal.scan({ cf: 'write', version: 25n }))).toEqual(['k@20:v20', 'k@10:v10']);
    expect(await scanAll(db.internal.scan({ cf: 'write', reverse: true }))).toEqual([
      'k@10:v10',
      'k@20:v20',
      'k@30:del',
    ]);
    await db.close();
  });

  it('keeps column families apart and away from the public API', async () => {
    const db = await open({ dir: tempDir() });
    await db.internal.write([
      { cf: 'lock', op: 'put', key: 'a', version: 5n, value: 'lock' },
      { cf: 'data', op: 'put', key: 'a', version: 5n, value: 'data' },
      { cf: 'default', op: 'put', key: 'a', value: 'public' },
    ]);
    expect((await db.get('a'))?.toString()).toBe('public');
    expect((await db.internal.get('lock', 'a'))?.value.toString()).toBe('lock');
    expect((await db.internal.get('data', 'a'))?.value.toString()).toBe('data');
    await db.internal.write([{ cf: 'data', op: 'deleteRange', key: 'a', end: 'b', version: 6n }]);
    expect(await db.internal.get('data', 'a')).toBeUndefined();
    expect((await db.internal.get('data', 'a', 5n))?.value.toString()).toBe('data');
    expect((await db.internal.get('lock', 'a'))?.value.toString()).toBe('lock');
    await db.close();
  });

  it('keeps all history of explicit-version families until a GC watermark allows dropping it', async () => {
    const db = await open({ dir: tempDir(), ...tinyOptions });
    for (let v = 1n; v <= 5n; v++)
      await db.internal.write([{ cf: 'write', op: 'put', key: 'k', version: v * 10n, value: `v${v}` }]);
    await db.compact();
    expect((await scanAll(db.internal.scan({ cf: 'write' }))).length).toBe(5);
    db.internal.setGcWatermark('write', 35n);
    await db.compact();
    // 50 and 40 are above the watermark; 30 is what a reader at 35 sees; 20 and 10 are gone.
    expect(await scanAll(db.internal.scan({ cf: 'write' }))).toEqual(['k@50:v5', 'k@40:v4', 'k@30:v3']);
    expect(() => db.internal.setGcWatermark('default', 1n)).toThrow(/follows snapshots/);
    await db.close();
  });

  it('validates column families and versions', async () => {
    const db = await open({ dir: tempDir() });
    await expect(
      db.internal.write([{ cf: 'nope' as 'lock', op: 'put', key: 'a', value: 'v' }]),
    ).rejects.toThrow(/unknown column family/);
    await expect(
      db.internal.write([{ cf: 'lock', op: 'put', key: 'a', value: 'v', version: -1n }]),
    ).rejects.toThrow(/version/);
    await expect(
      db.internal.write([{ cf: 'lock', op: 'put', key: 'a', value: 'v', version: 2n ** 64n - 1n }]),
    ).rejects.toThrow(/version/);
    await expect(db.internal.get('lock', 'a', 3 as unknown as bigint)).rejects.toThrow(/version/);
    await db.close();
  });
});
