import { appendFile, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RegionMeta } from '@nokv/proto';
import { afterEach, beforeEach, expect, test } from 'vitest';
import { CoordinatorError } from '../errors.js';
import { CHECKPOINT_FILE, readCheckpoint } from './checkpoint.js';
import { DurableState } from './durable.js';
import { encodeRecord, LOG_HEADER_BYTES, logFileName, parseLog } from './log.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nokv-coord-state-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function region(id: bigint, start: string, end: string, version = 1n): RegionMeta {
  return {
    id,
    startKey: Buffer.from(start),
    endKey: Buffer.from(end),
    epoch: { version, confVersion: 1n },
    peers: [
      { storeId: 1n, peerId: id * 100n + 1n, learner: false },
      { storeId: 2n, peerId: id * 100n + 2n, learner: false },
    ],
    state: 2,
  };
}

async function fill(s: DurableState): Promise<void> {
  await s.append([
    { type: 'storePut', store: { id: 1n, addr: '127.0.0.1:1', httpAddr: '', adminState: 'normal' } },
  ]);
  await s.append([{ type: 'regionUpsert', region: region(1n, '', 'm') }]);
  await s.append([{ type: 'regionUpsert', region: region(2n, 'm', '') }]);
  await s.append([
    { type: 'idFence', fence: 1000n },
    { type: 'tsoFence', fence: 5n << 18n },
  ]);
  await s.append([{ type: 'regionRemoved', regionId: 2n }]);
}

function expectFilled(s: DurableState): void {
  const c = s.catalog;
  expect([...c.stores.keys()]).toEqual([1n]);
  expect(c.stores.get(1n)?.addr).toBe('127.0.0.1:1');
  expect([...c.regions.keys()]).toEqual([1n]);
  expect(c.regions.get(1n)).toEqual(region(1n, '', 'm'));
  expect(c.idFence).toBe(1000n);
  expect(c.tsoFence).toBe(5n << 18n);
}

test('events round-trip through the log (no checkpoint)', async () => {
  const s = await DurableState.open(dir);
  await fill(s);
  await s.close({ checkpoint: false });
  const r = await DurableState.open(dir);
  expect(r.recovery.checkpoint).toBeUndefined();
  expect(r.recovery.eventsReplayed).toBe(6);
  expectFilled(r);
  await r.close();
});

test('checkpoint + log tail round-trip; the checkpoint rotates the log and drops the old one', async () => {
  const s = await DurableState.open(dir);
  await fill(s);
  await s.checkpoint();
  await s.append([{ type: 'regionUpsert', region: region(3n, 'm', '') }]);
  await s.close({ checkpoint: false });
  const ck = await readCheckpoint(join(dir, CHECKPOINT_FILE));
  expect(ck?.logSeq).toBe(2n);
  expect((await readdir(dir)).filter((n) => n.endsWith('.log'))).toEqual([logFileName(2n)]);
  const r = await DurableState.open(dir);
  expect(r.recovery.checkpoint?.logSeq).toBe(2n);
  expect(r.recovery.eventsReplayed).toBe(1);
  expect([...r.catalog.regions.keys()].sort()).toEqual([1n, 3n]);
  expect(r.catalog.idFence).toBe(1000n);
  await r.close();
});

test('automatic checkpoints after N events', async () => {
  const s = await DurableState.open(dir, { checkpointEveryEvents: 3 });
  for (let i = 1n; i <= 10n; i++) await s.append([{ type: 'idFence', fence: i }]);
  await s.close({ checkpoint: false });
  expect(s.checkpoints).toBeGreaterThanOrEqual(2);
  const r = await DurableState.open(dir);
  expect(r.catalog.idFence).toBe(10n);
  await r.close();
});

test('a torn last record is cut and reported', async () => {
  const s = await DurableState.open(dir);
  await fill(s);
  await s.close({ checkpoint: false });
  const file = join(dir, logFileName(1n));
  const good = (await stat(file)).size;
  // Half of a further record.
  const extra = encodeRecord(4, Buffer.alloc(8, 0xff));
  await appendFile(file, extra.subarray(0, 7));
  const r = await DurableState.open(dir);
  expect(r.recovery.tornTail).toMatchObject({ file, offset: good, bytes: 7 });
  expectFilled(r);
  expect((await stat(file)).size).toBe(good);
  await r.append([{ type: 'idFence', fence: 2000n }]);
  await r.close({ checkpoint: false });
  const again = await DurableState.open(dir);
  expect(again.recovery.tornTail).toBeUndefined();
  expect(again.catalog.idFence).toBe(2000n);
  await again.close();
});

test('a bad checksum on the last record is a torn tail; a zero-filled tail too', async () => {
  const s = await DurableState.open(dir);
  await fill(s);
  await s.close({ checkpoint: false });
  const file = join(dir, logFileName(1n));
  const data = await readFile(file);
  const last = Buffer.from(data);
  last[last.length - 1]! ^= 0xff;
  const parsed = parseLog(file, last);
  expect(parsed.torn?.reason).toMatch(/checksum/);
  expect(parsed.records).toHaveLength(5);
  const zeros = parseLog(file, Buffer.concat([data, Buffer.alloc(4096)]));
  expect(zeros.torn?.reason).toMatch(/zero/);
  expect(zeros.records).toHaveLength(6);
});

test('a bad checksum before the last record is a typed corruption error naming file and offset', async () => {
  const s = await DurableState.open(dir);
  await fill(s);
  await s.close({ checkpoint: false });
  const file = join(dir, logFileName(1n));
  const data = await readFile(file);
  // The first record's payload starts after the file header and the record's length + type.
  data[LOG_HEADER_BYTES + 6]! ^= 0x01;
  await writeFile(file, data);
  const err = await DurableState.open(dir).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(CoordinatorError);
  expect(err).toMatchObject({ code: 'Corruption', file, offset: LOG_HEADER_BYTES });
  expect((err as Error).message).toContain(file);
});

test('a damaged checkpoint is a corruption error', async () => {
  const s = await DurableState.open(dir);
  await fill(s);
  await s.close();
  const file = join(dir, CHECKPOINT_FILE);
  const data = await readFile(file);
  data[data.length - 2]! ^= 0x10;
  await writeFile(file, data);
  await expect(DurableState.open(dir)).rejects.toMatchObject({ code: 'Corruption', file });
});
