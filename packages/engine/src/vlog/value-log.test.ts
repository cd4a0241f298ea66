import { appendFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../test/support.js';
import { CorruptionError } from '../errors.js';
import { encodeInternalKey } from '../keys/internal-key.js';
import { nodeVfs } from '../vfs/node-vfs.js';
import { type PendingValue, ValueLog } from './value-log.js';
import { POINTER_BYTES, readPointer, recordPayloadBytes, writeRecordPayload } from './vlog-format.js';

function pending(key: Buffer, value: string): PendingValue {
  const payload = Buffer.allocUnsafe(recordPayloadBytes(key.length, Buffer.byteLength(value)));
  writeRecordPayload(payload, 0, key, Buffer.from(value));
  return { payload, pointer: Buffer.alloc(POINTER_BYTES) };
}

/** File numbers, unique across the opens of one test (the manifest's counter in real use). */
let next = 10;

async function openLog(dir: string, segmentBytes = 1 << 20) {
  return (
    await ValueLog.open({
      vfs: nodeVfs,
      dir,
      names: readdirSync(dir),
      deleted: new Set(),
      segmentBytes,
      newFileNumber: () => next++,
      readOnly: false,
    })
  ).log;
}

describe('ValueLog', () => {
  it('appends records, points at them, and reads them back checked against their key', async () => {
    const dir = tempDir();
    const log = await openLog(dir);
    const keys = [0, 1, 2].map((i) => encodeInternalKey(0, Buffer.from(`k${i}`), BigInt(i + 1)));
    const values = keys.map((k, i) => pending(k, `value-${i}`.repeat(10)));
    await log.append(values);
    for (let i = 0; i < 3; i++) {
      const p = readPointer(values[i]!.pointer, dir);
      expect(log.read(p, keys[i]!).toString()).toBe(`value-${i}`.repeat(10));
      expect(() => log.read(p, keys[(i + 1) % 3]!)).toThrow(CorruptionError);
    }
    expect([...log.records(log.activeSegment!)].map((r) => r.record.value.toString())).toEqual(
      [0, 1, 2].map((i) => `value-${i}`.repeat(10)),
    );
    await log.close();
  });

  it('starts a new segment when one is full, and each open starts afresh', async () => {
    const dir = tempDir();
    let log = await openLog(dir, 64 * 1024);
    const key = encodeInternalKey(0, Buffer.from('k'), 1n);
    for (let i = 0; i < 30; i++) await log.append([pending(key, 'x'.repeat(4000))]);
    expect(log.list().length).toBeGreaterThan(1);
    expect(log.list().every((s) => s.size <= 64 * 1024)).toBe(true);
    const before = log.list().length;
    await log.close();
    log = await openLog(dir, 64 * 1024);
    expect(log.activeSegment).toBeUndefined();
    await log.append([pending(key, 'y')]);
    expect(log.list().length).toBe(before + 1);
    await log.close();
  });

  it('walks a segment to its torn tail without complaint', async () => {
    const dir = tempDir();
    const log = await openLog(dir);
    const key = encodeInternalKey(0, Buffer.from('k'), 1n);
    await log.append([pending(key, 'a'), pending(key, 'b')]);
    const segment = log.activeSegment!;
    await log.close();
    appendFileSync(
      join(dir, readdirSync(dir)[0]!),
      Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]),
    );
    const reopened = await openLog(dir);
    expect([...reopened.records(segment)].map((r) => r.record.value.toString())).toEqual(['a', 'b']);
    await reopened.deleteSegment(segment);
    expect(readdirSync(dir)).toEqual([]);
    await reopened.close();
  });
});
