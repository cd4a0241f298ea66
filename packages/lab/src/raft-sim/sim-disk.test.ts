import { type Entry, EntryType } from '@nokv/proto';
import { MemoryStorage } from '@nokv/raftstore/raft';
import { describe, expect, test } from 'vitest';
import { Prng } from '../workload/prng.js';
import { SimDisk } from './sim-disk.js';

const entries = (from: number, to: number, term = 1n): Entry[] =>
  Array.from({ length: to - from + 1 }, (_, i) => ({
    index: BigInt(from + i),
    term,
    type: EntryType.Normal,
    data: new Uint8Array(0),
  }));

describe('SimDisk', () => {
  test('synced writes survive a crash; unsynced ones survive only as a prefix', () => {
    let keptSome = false;
    let lostSome = false;
    for (let seed = 1; seed <= 40; seed++) {
      const disk = new SimDisk(new MemoryStorage());
      disk.write({ kind: 'entries', entries: entries(1, 3) });
      disk.write({ kind: 'hardState', hardState: { term: 1n, vote: 2n, commit: 2n } });
      disk.sync();
      disk.write({ kind: 'entries', entries: entries(4, 5) });
      disk.write({ kind: 'hardState', hardState: { term: 2n, vote: 0n, commit: 3n } });
      expect(disk.live.lastIndex()).toBe(5n);
      const kept = disk.crash(new Prng(seed));
      const last = disk.live.lastIndex();
      const hs = disk.live.currentHardState();
      // Never less than what was synced, and the hard state only if the entries before it made it.
      expect(last >= 3n).toBe(true);
      if (kept === 0) expect([last, hs.term]).toEqual([3n, 1n]);
      if (kept === 1) expect([last, hs.term]).toEqual([5n, 1n]);
      if (kept === 2) expect([last, hs.term]).toEqual([5n, 2n]);
      keptSome ||= kept > 0;
      lostSome ||= kept < 2;
    }
    expect(keptSome && lostSome).toBe(true);
  });

  test('a local snapshot is durable at once and compacts both views', () => {
    const disk = new SimDisk(new MemoryStorage());
    disk.write({ kind: 'entries', entries: entries(1, 6) });
    disk.sync();
    const cs = { voters: [1n], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
    disk.saveLocalSnapshot(5n, cs, Buffer.from('state'), 4n);
    expect(disk.live.firstIndex()).toBe(5n);
    expect(disk.durable.firstIndex()).toBe(5n);
    disk.crash(new Prng(1));
    expect(disk.live.snapshot().metadata.index).toBe(5n);
    // Read back after a restart, the log starts after the snapshot.
    expect(disk.live.firstIndex()).toBe(6n);
    expect(disk.live.lastIndex()).toBe(6n);
    expect(Buffer.from(disk.live.snapshot().data).toString()).toBe('state');
  });
});
