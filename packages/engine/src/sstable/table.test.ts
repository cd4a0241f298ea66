import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BlockCache } from '../cache/block-cache.js';
import { CorruptionError } from '../errors.js';
import type { InternalIterator } from '../iterator/internal-iterator.js';
import { entryKind, KIND_DELETE, KIND_PUT, KIND_RANGE_DELETE, META_HAS_EXPIRY } from '../keys/entry.js';
import {
  compareInternalKeys,
  encodeBaseKey,
  encodeInternalKey,
  internalKeyVersion,
  MAX_VERSION,
  sameBaseKey,
} from '../keys/internal-key.js';
import type { RangeTombstone } from '../rangedel/tombstone-index.js';
import { nodeVfs } from '../vfs/node-vfs.js';
import { bloomHash } from './bloom.js';
import {
  BLOCK_TRAILER_BYTES,
  COMPRESSION_LZ4,
  COMPRESSION_NONE,
  type Compression,
  FOOTER_BYTES,
} from './format.js';
import { TableBuilder } from './table-builder.js';
import { TableFileWriter } from './table-file-writer.js';
import { TableReader } from './table-reader.js';

const ik = (user: string, version: bigint, cf = 0) => encodeInternalKey(cf, Buffer.from(user), version);

interface Row {
  key: Buffer;
  meta: number;
  expiresAt: number;
  value: Buffer;
}

interface Built {
  path: string;
  bytes: Buffer;
  chunks: Buffer[];
  /** File offset of each emitted chunk (data blocks first, then filter, range-del, properties, index, footer). */
  chunkOffsets: number[];
  props: ReturnType<TableBuilder['finish']>;
}

let dir: string;
let opened: TableReader[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(join(os.tmpdir(), 'nokv-'));
  opened = [];
});

afterEach(async () => {
  for (const r of opened) await r.close().catch(() => undefined);
  fs.rmSync(dir, { recursive: true, force: true });
});

let fileCounter = 0;

function build(
  rows: readonly Row[],
  tombstones: readonly RangeTombstone[] = [],
  compression: Compression = 'none',
  blockBytes = 256,
  createdAtMs = 1_234_567,
): Built {
  const b = new TableBuilder({ blockBytes, bloomBitsPerKey: 10, compression });
  const chunks: Buffer[] = [];
  for (const r of rows) {
    b.add(r.key, r.meta, r.expiresAt, r.value);
    chunks.push(...b.takeOutput()); // drain as we go, as the flush path does
  }
  for (const t of tombstones) b.addTombstone(t);
  const props = b.finish(createdAtMs);
  chunks.push(...b.takeOutput());
  const bytes = Buffer.concat(chunks);
  expect(bytes.length).toBe(b.fileSize);
  const chunkOffsets: number[] = [];
  let off = 0;
  for (const c of chunks) {
    chunkOffsets.push(off);
    off += c.length;
  }
  const path = join(dir, `${String(++fileCounter).padStart(6, '0')}.sst`);
  fs.writeFileSync(path, bytes);
  return { path, bytes, chunks, chunkOffsets, props };
}

async function open(path: string, cache = new BlockCache(1 << 20), number = 1): Promise<TableReader> {
  const r = await TableReader.open(nodeVfs, path, number, cache);
  opened.push(r);
  return r;
}

/** A workload of many versions, deletes and expiring puts over two column families. */
function workload(n: number): Row[] {
  const rows: Row[] = [];
  for (let i = 0; i < n; i++) {
    const cf = i < n * 0.8 ? 0 : 1;
    const user = `key-${String(i % Math.floor(n * 0.8) || i).padStart(5, '0')}`;
    const versions = (i % 3) + 1;
    for (let v = versions; v >= 1; v--) {
      const version = BigInt(i * 10 + v);
      const kind = (i + v) % 7 === 0 ? KIND_DELETE : KIND_PUT;
      const expiresAt = (i + v) % 5 === 0 ? 1_700_000_000_000 + i : 0;
      rows.push({
        key: encodeInternalKey(cf, Buffer.from(user), version),
        meta: kind | (expiresAt ? META_HAS_EXPIRY : 0),
        expiresAt,
        value: kind === KIND_DELETE ? Buffer.alloc(0) : Buffer.from(`value-${i}-${v}-`.repeat(3)),
      });
    }
  }
  rows.sort((a, b) => compareInternalKeys(a.key, b.key));
  // the generator above can repeat a key; keep the first of each
  return rows.filter((r, i) => i === 0 || compareInternalKeys(rows[i - 1]!.key, r.key) !== 0);
}

function rowsOf(it: InternalIterator, reverse: boolean): Row[] {
  const out: Row[] = [];
  while (it.valid()) {
    out.push({
      key: Buffer.from(it.key()),
      meta: it.meta(),
      expiresAt: it.expiresAt(),
      value: Buffer.from(it.value()),
    });
    if (reverse) it.prev();
    else it.next();
  }
  return out;
}

function same(a: readonly Row[], b: readonly Row[]): void {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (
      !x.key.equals(y.key) ||
      x.meta !== y.meta ||
      x.expiresAt !== y.expiresAt ||
      !x.value.equals(y.value)
    ) {
      expect({ i, key: x.key.toString('hex'), meta: x.meta, value: x.value.toString() }).toEqual({
        i,
        key: y.key.toString('hex'),
        meta: y.meta,
        value: y.value.toString(),
      });
    }
  }
}

/** Model of get: newest row with the seek key's base key and a version <= the seek version. */
function modelGet(rows: readonly Row[], seekKey: Buffer): Row | undefined {
  return rows.find((r) => sameBaseKey(r.key, seekKey) && compareInternalKeys(r.key, seekKey) >= 0);
}

function corruptionOf(fn: () => unknown): CorruptionError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CorruptionError);
    return err as CorruptionError;
  }
  throw new Error('expected a CorruptionError');
}

async function corruptionOfAsync(p: Promise<unknown>): Promise<CorruptionError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(CorruptionError);
    return err as CorruptionError;
  }
  throw new Error('expected a CorruptionError');
}

describe.each(['none', 'lz4'] as const)('SSTable round trip (%s)', (compression) => {
  const rows = workload(600);

  it('builds many blocks, compressed as asked', async () => {
    const t = build(rows, [], compression);
    const r = await open(t.path);
    expect(r.blockCount).toBeGreaterThan(20);
    expect(t.props.dataBlocks).toBe(r.blockCount);
    expect(r.fileSize).toBe(t.bytes.length);
    const types = t.chunks.slice(0, r.blockCount).map((c) => c[c.length - BLOCK_TRAILER_BYTES]);
    if (compression === 'none') expect(types.every((x) => x === COMPRESSION_NONE)).toBe(true);
    else expect(types.filter((x) => x === COMPRESSION_LZ4).length).toBeGreaterThan(r.blockCount / 2);
  });

  it('iterates forward and backward over every entry', async () => {
    const t = build(rows, [], compression);
    const r = await open(t.path);
    const it = r.iterator();
    it.seekToFirst();
    same(rowsOf(it, false), rows);
    it.seekToLast();
    same(rowsOf(it, true), [...rows].reverse());
  });

  it('seek and seekForPrev agree with the model at, between and beyond keys', async () => {
    const t = build(rows, [], compression);
    const r = await open(t.path);
    const it = r.iterator();
    const targets: Buffer[] = [
      ik('', MAX_VERSION, 0),
      ik('a', 0n, 0),
      ik('zzz', 0n, 3),
      rows[0]!.key,
      rows[rows.length - 1]!.key,
    ];
    for (let i = 0; i < rows.length; i += 7) {
      const k = rows[i]!.key;
      targets.push(k);
      // just after k (same base key, one version older) and just before it (one version newer)
      const v = internalKeyVersion(k);
      targets.push(encodeInternalKey(k[0]!, k.subarray(1, k.length - 8), v === 0n ? 0n : v - 1n));
      targets.push(encodeInternalKey(k[0]!, k.subarray(1, k.length - 8), v + 1n));
      // a user key between this one and the next
      targets.push(
        encodeInternalKey(k[0]!, Buffer.concat([k.subarray(1, k.length - 8), Buffer.from('!')]), 5n),
      );
    }
    for (const target of targets) {
      const ge = rows.findIndex((x) => compareInternalKeys(x.key, target) >= 0);
      it.seek(target);
      if (ge < 0) expect(it.valid()).toBe(false);
      else {
        expect(it.valid()).toBe(true);
        expect(it.key().equals(rows[ge]!.key)).toBe(true);
        it.next();
        if (ge + 1 < rows.length) expect(it.key().equals(rows[ge + 1]!.key)).toBe(true);
        else expect(it.valid()).toBe(false);
      }
      let le = -1;
      for (let i = rows.length - 1; i >= 0; i--) {
        if (compareInternalKeys(rows[i]!.key, target) <= 0) {
          le = i;
          break;
        }
      }
      it.seekForPrev(target);
      if (le < 0) expect(it.valid()).toBe(false);
      else {
        expect(it.valid()).toBe(true);
        expect(it.key().equals(rows[le]!.key)).toBe(true);
        it.prev();
        if (le > 0) expect(it.key().equals(rows[le - 1]!.key)).toBe(true);
        else expect(it.valid()).toBe(false);
      }
    }
  });

  it('get returns the newest version at or below the seek version, and misses cleanly', async () => {
    const t = build(rows, [], compression);
    const r = await open(t.path);
    let probes = 0;
    for (let i = 0; i < rows.length; i += 3) {
      const k = rows[i]!.key;
      const cf = k[0]!;
      const user = k.subarray(1, k.length - 8);
      const v = internalKeyVersion(k);
      for (const seekVersion of [MAX_VERSION, v + 1n, v, v - 1n, 0n]) {
        const seek = encodeInternalKey(cf, user, seekVersion);
        const want = modelGet(rows, seek);
        const got = r.get(seek);
        probes++;
        if (want === undefined) expect(got).toBeUndefined();
        else {
          expect(got).toBeDefined();
          expect(got!.key.equals(want.key)).toBe(true);
          expect(got!.meta).toBe(want.meta);
          expect(got!.expiresAt).toBe(want.expiresAt);
          expect(got!.value.equals(want.value)).toBe(true);
        }
      }
      expect(r.mayContain(bloomHash(encodeBaseKey(cf, user)))).toBe(true);
    }
    expect(probes).toBeGreaterThan(500);
    // keys that are not in the table at all
    for (const miss of [
      ik('', MAX_VERSION),
      ik('key-', MAX_VERSION),
      ik('key-00001x', MAX_VERSION),
      ik('zzz', 1n),
      ik('key-00001', 5n, 2),
    ]) {
      expect(r.get(miss)).toBeUndefined();
    }
    // a short prefix of a stored key never matches it ("key-0000" vs "key-00001")
    expect(r.get(ik('key-0000', MAX_VERSION))).toBeUndefined();
  });

  it('caches a data block a point read misses on twice, then serves it from the cache', async () => {
    const t = build(rows, [], compression);
    const r = await open(t.path);
    const probe = rows[Math.floor(rows.length / 2)]!.key;
    expect(r.get(probe)).toBeDefined(); // first miss: read, not cached (doorkeeper)
    expect(r.get(probe)).toBeDefined(); // second miss: read and cached
    const reads = r.blockReads;
    expect(reads).toBe(2);
    expect(r.get(probe)).toBeDefined();
    expect(r.blockReads).toBe(reads);
    // with no cache room every read goes to the file
    const uncached = await open(t.path, new BlockCache(0), 2);
    uncached.get(probe);
    uncached.get(probe);
    expect(uncached.blockReads).toBe(2);
  });

  it('verify reads every block and counts every entry', async () => {
    const t = build(rows, [], compression);
    const r = await open(t.path);
    expect(r.verify()).toEqual({ blocks: r.blockCount, entries: rows.length });
  });
});

describe('SSTable properties and bounds', () => {
  it('records counts, sizes and version bounds', async () => {
    const rows = workload(100);
    const t = build(rows, [], 'lz4', 256, 42);
    const r = await open(t.path);
    const p = r.props;
    expect(p).toEqual(t.props);
    expect(p.entries).toBe(rows.length);
    expect(p.deletions).toBe(rows.filter((x) => entryKind(x.meta) === KIND_DELETE).length);
    expect(p.deletions).toBeGreaterThan(0);
    expect(p.rangeDeletions).toBe(0);
    expect(p.rawKeyBytes).toBe(rows.reduce((n, x) => n + x.key.length, 0));
    expect(p.rawValueBytes).toBe(rows.reduce((n, x) => n + x.value.length, 0));
    const versions = rows.map((x) => internalKeyVersion(x.key));
    // bigints: Math.min/max do not apply
    const byVersion = [...versions].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    expect(p.minVersion).toBe(byVersion[0]);
    expect(p.maxVersion).toBe(byVersion[byVersion.length - 1]);
    expect(p.smallest.equals(rows[0]!.key)).toBe(true);
    expect(p.largest.equals(rows[rows.length - 1]!.key)).toBe(true);
    expect(p.createdAtMs).toBe(42);
    expect(r.tombstones).toEqual([]);
  });

  it('round-trips range tombstones and widens the bounds to cover them', async () => {
    const rows: Row[] = [
      { key: ik('c', 3n), meta: KIND_PUT, expiresAt: 0, value: Buffer.from('c3') },
      { key: ik('d', 1n), meta: KIND_PUT, expiresAt: 0, value: Buffer.from('d1') },
    ];
    const tombstones: RangeTombstone[] = [
      { cf: 0, start: Buffer.from('m'), end: Buffer.from('q'), version: 9n },
      { cf: 0, start: Buffer.from('a'), end: Buffer.from('cz'), version: 7n },
      { cf: 0, start: Buffer.from('c'), end: Buffer.from('e'), version: 2n },
    ];
    const t = build(rows, tombstones);
    const r = await open(t.path);
    // stored sorted by (cf, start, version desc)
    expect(r.tombstones.map((x) => [x.cf, x.start.toString(), x.end.toString(), x.version])).toEqual([
      [0, 'a', 'cz', 7n],
      [0, 'c', 'e', 2n],
      [0, 'm', 'q', 9n],
    ]);
    expect(r.props.rangeDeletions).toBe(3);
    expect(r.props.entries).toBe(2);
    expect(r.props.minVersion).toBe(1n);
    expect(r.props.maxVersion).toBe(9n);
    // smallest: the first tombstone's start key at its version; largest: the sentinel (end, MAX_VERSION)
    expect(r.props.smallest.equals(ik('a', 7n))).toBe(true);
    expect(r.props.largest.equals(ik('q', MAX_VERSION))).toBe(true);
    expect(internalKeyVersion(r.props.largest)).toBe(MAX_VERSION);
    // the sentinel sorts before every real version of 'q'
    expect(compareInternalKeys(r.props.largest, ik('q', MAX_VERSION - 1n))).toBeLessThan(0);
    // tombstones are not point entries
    const it = r.iterator();
    it.seekToFirst();
    expect(rowsOf(it, false).map((x) => x.value.toString())).toEqual(['c3', 'd1']);
    expect(r.verify()).toEqual({ blocks: 1, entries: 2 });
  });

  it('a tombstone that starts at a point key with a newer version bounds the table below it', async () => {
    const rows: Row[] = [{ key: ik('k', 3n), meta: KIND_PUT, expiresAt: 0, value: Buffer.from('v') }];
    const t = build(rows, [{ cf: 0, start: Buffer.from('k'), end: Buffer.from('ka'), version: 5n }]);
    const r = await open(t.path);
    expect(r.props.smallest.equals(ik('k', 5n))).toBe(true);
    expect(r.props.largest.equals(ik('ka', MAX_VERSION))).toBe(true);
  });

  it('point keys beyond every tombstone keep the largest point key as the bound', async () => {
    const rows: Row[] = [{ key: ik('z', 1n), meta: KIND_PUT, expiresAt: 0, value: Buffer.from('z') }];
    const t = build(rows, [{ cf: 0, start: Buffer.from('a'), end: Buffer.from('b'), version: 4n }]);
    const r = await open(t.path);
    expect(r.props.smallest.equals(ik('a', 4n))).toBe(true);
    expect(r.props.largest.equals(ik('z', 1n))).toBe(true);
  });

  it('a table of only tombstones has no data blocks and reads as empty', async () => {
    const t = build(
      [],
      [
        { cf: 1, start: Buffer.from('b'), end: Buffer.from('c'), version: 3n },
        { cf: 0, start: Buffer.from('x'), end: Buffer.from('y'), version: 8n },
      ],
    );
    const r = await open(t.path);
    expect(r.blockCount).toBe(0);
    expect(r.props.entries).toBe(0);
    expect(r.props.dataBlocks).toBe(0);
    expect(r.props.smallest.equals(ik('x', 8n, 0))).toBe(true);
    expect(r.props.largest.equals(ik('c', MAX_VERSION, 1))).toBe(true);
    expect(r.tombstones.map((x) => x.cf)).toEqual([0, 1]);
    expect(r.get(ik('b', MAX_VERSION, 1))).toBeUndefined();
    const it = r.iterator();
    it.seekToFirst();
    expect(it.valid()).toBe(false);
    it.seekToLast();
    expect(it.valid()).toBe(false);
    it.seek(ik('a', 1n));
    expect(it.valid()).toBe(false);
    it.seekForPrev(ik('z', 1n));
    expect(it.valid()).toBe(false);
    expect(r.verify()).toEqual({ blocks: 0, entries: 0 });
  });

  it('refuses to finish an empty table', () => {
    const b = new TableBuilder({ blockBytes: 256, bloomBitsPerKey: 10, compression: 'none' });
    expect(() => b.finish(0)).toThrow(/empty table/);
  });

  it('refuses range tombstones through add', () => {
    const b = new TableBuilder({ blockBytes: 256, bloomBitsPerKey: 10, compression: 'none' });
    expect(() => b.add(ik('a', 1n), KIND_RANGE_DELETE, 0, Buffer.from('b'))).toThrow(/addTombstone/);
  });

  it('writes through TableFileWriter like a direct write', async () => {
    const rows = workload(50);
    const ref = build(rows, [], 'lz4');
    const b = new TableBuilder({ blockBytes: 256, bloomBitsPerKey: 10, compression: 'lz4' });
    const path = join(dir, '000900.sst');
    const w = await TableFileWriter.create(nodeVfs, path);
    for (const r of rows) {
      b.add(r.key, r.meta, r.expiresAt, r.value);
      await w.write(b.takeOutput());
    }
    b.finish(1_234_567);
    await w.write(b.takeOutput());
    await w.finish();
    expect(w.bytesWritten).toBe(b.fileSize);
    expect(fs.readFileSync(path).equals(ref.bytes)).toBe(true);
    const r = await open(path);
    expect(r.verify().entries).toBe(rows.length);
  });

  it('matches the model for random tables (property)', async () => {
    const arbRows = fc
      .uniqueArray(
        fc.record({
          cf: fc.integer({ min: 0, max: 1 }),
          user: fc.stringMatching(/^[a-c]{0,3}$/),
          version: fc.bigInt({ min: 0n, max: 5n }),
          kind: fc.constantFrom(KIND_PUT, KIND_DELETE),
          value: fc.uint8Array({ maxLength: 40 }),
        }),
        { minLength: 1, maxLength: 60, selector: (r) => `${r.cf}/${r.user}/${r.version}` },
      )
      .map((list) =>
        list
          .map(
            (r): Row => ({
              key: ik(r.user, r.version, r.cf),
              meta: r.kind,
              expiresAt: 0,
              value: Buffer.from(r.value),
            }),
          )
          .sort((a, b) => compareInternalKeys(a.key, b.key)),
      );
    await fc.assert(
      fc.asyncProperty(
        arbRows,
        fc.constantFrom<Compression>('none', 'lz4'),
        fc.integer({ min: 40, max: 300 }),
        async (rows, compression, blockBytes) => {
          const t = build(rows, [], compression, blockBytes);
          const r = await open(t.path, new BlockCache(1 << 16), 3);
          const it = r.iterator();
          it.seekToFirst();
          same(rowsOf(it, false), rows);
          it.seekToLast();
          same(rowsOf(it, true), [...rows].reverse());
          for (const user of ['', 'a', 'ab', 'b', 'ca', 'ccc', 'd']) {
            for (const cf of [0, 1]) {
              for (const v of [0n, 2n, 4n, MAX_VERSION]) {
                const seek = ik(user, v, cf);
                const want = modelGet(rows, seek);
                const got = r.get(seek);
                if (want === undefined) expect(got).toBeUndefined();
                else expect(got?.key.equals(want.key)).toBe(true);
              }
            }
          }
          await r.close();
          opened.pop();
          fs.rmSync(t.path);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('SSTable corruption', () => {
  const rows = workload(200);

  it.each(['none', 'lz4'] as const)(
    'a flipped byte in a data block (%s) fails reads of that block, naming file and offset',
    async (compression) => {
      const t = build(rows, [], compression);
      const nBlocks = t.props.dataBlocks;
      expect(nBlocks).toBeGreaterThan(5);
      const victim = Math.floor(nBlocks / 2);
      const blockOffset = t.chunkOffsets[victim]!;
      const damaged = Buffer.from(t.bytes);
      damaged[blockOffset + 3] = damaged[blockOffset + 3]! ^ 0x20;
      fs.writeFileSync(t.path, damaged);

      // opening does not read data blocks
      const r = await open(t.path);
      // blocks before the victim are fine
      const firstKey = rows[0]!.key;
      expect(r.get(firstKey)).toBeDefined();
      expect(() => r.readBlock(victim - 1)).not.toThrow();

      const direct = corruptionOf(() => r.readBlock(victim));
      expect(direct.file).toBe(t.path);
      expect(direct.offset).toBe(blockOffset);
      expect(direct.message).toContain(t.path);
      expect(direct.message).toMatch(/checksum/);

      // a scan reaches it
      const it = r.iterator();
      it.seekToFirst();
      const scan = corruptionOf(() => {
        while (it.valid()) it.next();
      });
      expect(scan.offset).toBe(blockOffset);
      // verify finds it
      const v = corruptionOf(() => r.verify());
      expect(v.file).toBe(t.path);
      expect(v.offset).toBe(blockOffset);
    },
  );

  it('a flipped byte in a block trailer is caught too', async () => {
    const t = build(rows);
    const victim = 1;
    const end = t.chunkOffsets[victim]! + t.chunks[victim]!.length;
    for (const at of [end - 1, end - BLOCK_TRAILER_BYTES]) {
      const damaged = Buffer.from(t.bytes);
      damaged[at] = damaged[at]! ^ 0x01;
      fs.writeFileSync(t.path, damaged);
      const r = await open(t.path, new BlockCache(1 << 20), 10 + at);
      const err = corruptionOf(() => r.readBlock(victim));
      expect(err.offset).toBe(t.chunkOffsets[victim]);
    }
  });

  it('a flipped byte anywhere in the footer makes open fail', async () => {
    const t = build(rows);
    const footerAt = t.bytes.length - FOOTER_BYTES;
    for (let i = 0; i < FOOTER_BYTES; i++) {
      const damaged = Buffer.from(t.bytes);
      damaged[footerAt + i] = damaged[footerAt + i]! ^ 0x04;
      fs.writeFileSync(t.path, damaged);
      const err = await corruptionOfAsync(TableReader.open(nodeVfs, t.path, 1, new BlockCache(1 << 20)));
      expect(err.file).toBe(t.path);
      expect(err.offset).toBeGreaterThanOrEqual(footerAt);
    }
  });

  it('a flipped byte in the index, filter, range-del or properties block makes open fail', async () => {
    const t = build(rows, [{ cf: 0, start: Buffer.from('a'), end: Buffer.from('b'), version: 1n }]);
    const n = t.props.dataBlocks;
    // chunks after the data blocks: filter, range-del, properties, index
    const names = ['filter', 'range-del', 'properties', 'index'];
    for (let m = 0; m < names.length; m++) {
      const chunk = n + m;
      const start = t.chunkOffsets[chunk]!;
      const len = t.chunks[chunk]!.length;
      for (const at of [start, start + Math.floor(len / 2), start + len - 1]) {
        const damaged = Buffer.from(t.bytes);
        damaged[at] = damaged[at]! ^ 0x80;
        fs.writeFileSync(t.path, damaged);
        const err = await corruptionOfAsync(TableReader.open(nodeVfs, t.path, 1, new BlockCache(1 << 20)));
        expect(err.file).toBe(t.path);
        expect(err.offset, `${names[m]} byte ${at - start}`).toBe(start);
      }
    }
  });

  it('a truncated file makes open fail', async () => {
    const t = build(rows);
    for (const size of [
      t.bytes.length - 1,
      t.bytes.length - 10,
      t.bytes.length - FOOTER_BYTES,
      100,
      FOOTER_BYTES,
      10,
      0,
    ]) {
      fs.writeFileSync(t.path, t.bytes.subarray(0, size));
      const err = await corruptionOfAsync(TableReader.open(nodeVfs, t.path, 1, new BlockCache(1 << 20)));
      expect(err.file).toBe(t.path);
    }
  });

  it('garbage after a valid table makes open fail (the footer is no longer last)', async () => {
    const t = build(rows);
    fs.writeFileSync(t.path, Buffer.concat([t.bytes, Buffer.alloc(3)]));
    await corruptionOfAsync(TableReader.open(nodeVfs, t.path, 1, new BlockCache(1 << 20)));
  });

  it('an intact copy of the same bytes still opens (control)', async () => {
    const t = build(rows);
    const r = await open(t.path);
    expect(r.verify().entries).toBe(rows.length);
  });
});

describe('index separators', () => {
  it('are short keys between adjacent blocks, never outside them', async () => {
    const { shortestSeparator } = await import('./table-builder.js');
    const { compareInternalKeys, encodeInternalKey } = await import('../keys/internal-key.js');
    const ik = (s: string, v: bigint) => encodeInternalKey(0, Buffer.from(s), v);
    const cases: [Buffer, Buffer][] = [
      [ik('user00123', 5n), ik('user00789', 9n)],
      [ik('abc', 5n), ik('abd', 9n)],
      [ik('abc', 9n), ik('abc', 5n)],
      [ik('ab', 5n), ik('abc', 5n)],
      [ik('a\u00ff', 5n), ik('b', 5n)],
    ];
    for (const [a, b] of cases) {
      const s = shortestSeparator(a, b);
      expect(compareInternalKeys(a, s)).toBeLessThanOrEqual(0);
      expect(compareInternalKeys(s, b)).toBeLessThan(0);
    }
    expect(shortestSeparator(ik('user00123', 5n), ik('user00789', 9n)).length).toBeLessThan(
      ik('user00123', 5n).length,
    );
  });
});
