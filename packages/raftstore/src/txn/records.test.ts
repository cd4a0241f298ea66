import { describe, expect, it } from 'vitest';
import { CorruptTxnRecordError } from './errors.js';
import {
  decodeLock,
  decodeWrite,
  encodeLock,
  encodeWrite,
  type LockRecord,
  type WriteRecord,
} from './records.js';
import { composeTs, MAX_LOGICAL, tsLogical, tsPhysicalMs } from './timestamp.js';

describe('records', () => {
  it('round-trips locks', () => {
    const locks: LockRecord[] = [
      { primary: Buffer.from('p'), startTs: 1n, ttl: 0, kind: 'put', minCommitTs: 2n },
      {
        primary: Buffer.alloc(300, 7),
        startTs: 0xffff_ffff_ffff_fffen,
        ttl: 3_000,
        kind: 'delete',
        minCommitTs: 0n,
      },
      {
        primary: Buffer.from('x'),
        startTs: composeTs(1_700_000_000_000, 5),
        ttl: 1,
        kind: 'lock',
        minCommitTs: 9n,
      },
    ];
    for (const l of locks) expect(decodeLock(encodeLock(l))).toEqual(l);
  });

  it('round-trips write records', () => {
    const ws: WriteRecord[] = [
      { kind: 'put', startTs: 5n, overlappedRollback: false },
      { kind: 'delete', startTs: 1n << 60n, overlappedRollback: true },
      { kind: 'lock', startTs: 0n, overlappedRollback: false },
      { kind: 'rollback', startTs: 127n, overlappedRollback: false },
    ];
    for (const w of ws) expect(decodeWrite(encodeWrite(w))).toEqual(w);
    expect([...encodeWrite({ kind: 'rollback', startTs: 300n, overlappedRollback: false })]).toEqual([
      1, 4, 0, 0xac, 0x02,
    ]);
  });

  it('rejects damaged records', () => {
    const lock = encodeLock({
      primary: Buffer.from('pk'),
      startTs: 10n,
      ttl: 5,
      kind: 'put',
      minCommitTs: 11n,
    });
    const bad = [
      Buffer.alloc(0),
      Buffer.from([2, ...lock.subarray(1)]),
      lock.subarray(0, lock.length - 1),
      Buffer.concat([lock, Buffer.from([0])]),
      Buffer.from([1, 9, 1, 1, 1, 0]),
    ];
    for (const x of bad) expect(() => decodeLock(x)).toThrow(CorruptTxnRecordError);
    const w = encodeWrite({ kind: 'put', startTs: 10n, overlappedRollback: false });
    for (const x of [
      w.subarray(0, 3),
      Buffer.from([1, 5, 0, 1]),
      Buffer.from([1, 1, 2, 1]),
      Buffer.concat([w, w]),
    ]) {
      expect(() => decodeWrite(x)).toThrow(CorruptTxnRecordError);
    }
    expect(() => decodeWrite(Buffer.from([1, 1, 0, ...new Array(11).fill(0xff), 1]))).toThrow(
      CorruptTxnRecordError,
    );
  });
});

describe('timestamps', () => {
  it('compose and split physical ms and logical', () => {
    const ts = composeTs(1_700_000_000_123, 42);
    expect(ts).toBe((1_700_000_000_123n << 18n) | 42n);
    expect(tsPhysicalMs(ts)).toBe(1_700_000_000_123);
    expect(tsLogical(ts)).toBe(42);
    expect(composeTs(5, MAX_LOGICAL) < composeTs(6, 0)).toBe(true);
    expect(() => composeTs(1, MAX_LOGICAL + 1)).toThrow(RangeError);
    expect(() => composeTs(-1)).toThrow(RangeError);
  });
});
