import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BackendError } from './backend.js';
import { EmbeddedBackend } from './embedded.js';
import { decodeEnvelope, encodeEnvelope, isExpired } from './envelope.js';

const b = (s: string): Buffer => Buffer.from(s);
const str = (v: Buffer | undefined): string | undefined => v?.toString();

describe('EmbeddedBackend', () => {
  let dir: string;
  let backend: EmbeddedBackend;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nokv-redis-embedded-'));
    backend = await EmbeddedBackend.open({ workdir: dir });
  });

  afterEach(async () => {
    await backend.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('commits a transaction atomically and reads its own writes', async () => {
    const seen = await backend.transact(async (tx) => {
      tx.put(b('a'), b('1'));
      tx.put(b('b'), b('2'));
      tx.delete(b('a'));
      return [str(await tx.get(b('a'))), str(await tx.get(b('b')))];
    });
    expect(seen).toEqual([undefined, '2']);
    expect(await backend.transact(async (tx) => (await tx.getMany([b('a'), b('b')])).map(str))).toEqual([
      undefined,
      '2',
    ]);
  });

  it('writes nothing when the function throws', async () => {
    await expect(
      backend.transact(async (tx) => {
        tx.put(b('x'), b('1'));
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(await backend.transact((tx) => tx.get(b('x')))).toBeUndefined();
  });

  it('serialises concurrent read-modify-write transactions (no lost updates)', async () => {
    await Promise.all(
      Array.from({ length: 200 }, () =>
        backend.transact(async (tx) => {
          const cur = Number(str(await tx.get(b('n'))) ?? '0');
          tx.put(b('n'), b(String(cur + 1)));
        }),
      ),
    );
    expect(str(await backend.transact((tx) => tx.get(b('n'))))).toBe('200');
  });

  it('later transactions win in a commit group, and the state survives reopening', async () => {
    await Promise.all(
      Array.from({ length: 50 }, (_, i) => backend.transact(async (tx) => tx.put(b('k'), b(String(i))))),
    );
    expect(str(await backend.transact((tx) => tx.get(b('k'))))).toBe('49');
    await backend.close();
    backend = await EmbeddedBackend.open({ workdir: dir });
    expect(str(await backend.transact((tx) => tx.get(b('k'))))).toBe('49');
  });

  it('scan merges own and in-flight writes with the engine, in order and up to the limit', async () => {
    await backend.transact(async (tx) => {
      for (let i = 0; i < 20; i++) tx.put(b(`k${String(i).padStart(2, '0')}`), b('e'));
    });
    // Not awaited: in flight while the next transaction scans.
    const pending = backend.transact(async (tx) => {
      tx.delete(b('k03'));
      tx.put(b('k05'), b('inflight'));
      tx.put(b('k055'), b('new'));
    });
    const rows = await backend.transact(async (tx) => {
      tx.delete(b('k00'));
      tx.put(b('k01'), b('own'));
      return tx.scan(b('k'), b('k1'), 100);
    });
    await pending;
    expect(rows.map((r) => `${r.key}=${r.value}`)).toEqual([
      'k01=own',
      'k02=e',
      'k04=e',
      'k05=inflight',
      'k055=new',
      'k06=e',
      'k07=e',
      'k08=e',
      'k09=e',
    ]);
    const limited = await backend.transact((tx) => tx.scan(b(''), b(''), 3));
    expect(limited.map((r) => r.key.toString())).toEqual(['k01', 'k02', 'k04']);
  });

  it('scan agrees with a model under random writes and limits', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            key: fc.integer({ min: 0, max: 30 }),
            del: fc.boolean(),
            flushBefore: fc.boolean(),
          }),
          { maxLength: 40 },
        ),
        fc.integer({ min: 1, max: 12 }),
        async (ops, limit) => {
          const model = new Map<string, string>();
          const prefix = `m${Math.random().toString(36).slice(2, 8)}/`;
          const inFlight: Promise<unknown>[] = [];
          for (const [i, op] of ops.entries()) {
            const key = `${prefix}${String(op.key).padStart(2, '0')}`;
            if (op.flushBefore) await Promise.all(inFlight);
            if (op.del) model.delete(key);
            else model.set(key, String(i));
            inFlight.push(
              backend.transact(async (tx) => {
                if (op.del) tx.delete(b(key));
                else tx.put(b(key), b(String(i)));
              }),
            );
          }
          const rows = await backend.transact((tx) => tx.scan(b(prefix), b(`${prefix}~`), limit));
          await Promise.all(inFlight);
          const expected = [...model.entries()].sort(([x], [y]) => (x < y ? -1 : 1)).slice(0, limit);
          expect(rows.map((r) => [r.key.toString(), r.value.toString()])).toEqual(expected);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('rejects keys the engine cannot store without failing other transactions', async () => {
    const ok = backend.transact(async (tx) => tx.put(b('fine'), b('1')));
    await expect(backend.transact(async (tx) => tx.put(Buffer.alloc(0), b('1')))).rejects.toBeInstanceOf(
      BackendError,
    );
    await ok;
    expect(str(await backend.transact((tx) => tx.get(b('fine'))))).toBe('1');
  });

  it('refuses transactions once closed', async () => {
    await backend.close();
    await expect(backend.transact(async () => 1)).rejects.toMatchObject({ code: 'Unavailable' });
    backend = await EmbeddedBackend.open({ workdir: dir });
  });
});

describe('envelope', () => {
  it('round-trips type, expiry and payload; foreign values read as plain strings', () => {
    const v = { type: 'string' as const, expiresAt: 1_700_000_000_123, payload: b('hello') };
    expect(decodeEnvelope(encodeEnvelope(v))).toEqual(v);
    expect(decodeEnvelope(b('raw value'))).toEqual({ type: 'string', expiresAt: 0, payload: b('raw value') });
    expect(isExpired(0, Date.now())).toBe(false);
    expect(isExpired(100, 100)).toBe(true);
    expect(isExpired(101, 100)).toBe(false);
  });
});
