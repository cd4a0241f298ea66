import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RegionState } from '@nokv/proto';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ConfigError,
  formatKey,
  formatPath,
  loadTopology,
  parseHostPort,
  parseKey,
  parseTopology,
  regionMetas,
  regionMetasOfStore,
  resolveWorkdir,
  showKey,
  storeAddress,
  storeAddressResolver,
  storeHttpAddress,
  type TopologyFile,
} from './index.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const EXAMPLE = join(ROOT, 'nokv.config.json');

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A valid three-store, two-region topology (the example's shape) to break in each test. */
function valid(): TopologyFile {
  return {
    cluster: 'test',
    stores: [1, 2, 3].map((id) => ({
      id,
      addr: `127.0.0.1:${20169 + id}`,
      httpAddr: `127.0.0.1:${20179 + id}`,
      dockerAddr: `nokv-node${id}:20160`,
      workdir: `./data/store-${id}`,
    })),
    regions: [
      {
        id: 1,
        startKey: '',
        endKey: 'm',
        peers: [1, 2, 3].map((s) => ({ storeId: s, peerId: s * 100 + 1 })),
      },
      {
        id: 2,
        startKey: 'm',
        endKey: '',
        peers: [1, 2, 3].map((s) => ({ storeId: s, peerId: s * 100 + 2 })),
      },
    ],
  };
}

/** The ConfigError `parseTopology` throws for `value`. */
function problems(value: unknown): ConfigError {
  try {
    parseTopology(value, 'test.json');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

function issueAt(err: ConfigError, path: string): string {
  const found = err.issues.find((i) => i.path === path);
  if (!found) throw new Error(`no issue at ${path}; issues: ${JSON.stringify(err.issues)}`);
  return found.message;
}

function mutate(f: (t: TopologyFile) => void): TopologyFile {
  const t = valid();
  f(t);
  return t;
}

describe('the example file', () => {
  it('validates, and resolves addresses and workdirs', async () => {
    const t = await loadTopology(EXAMPLE);
    expect(t.cluster).toBe('nokv-lab');
    expect(t.stores.map((s) => s.id)).toEqual([1n, 2n, 3n]);
    expect(storeAddress(t, 1n, 'host')).toBe('127.0.0.1:20170');
    expect(storeAddress(t, 3, 'docker')).toBe('nokv-node3:20160');
    expect(storeHttpAddress(t, 2n)).toBe('127.0.0.1:20181');
    expect(storeHttpAddress(t, 2n, 'docker')).toBe('nokv-node2:20180');
    expect(resolveWorkdir(t, 1n)).toBe(join(ROOT, 'data', 'store-1'));
    expect(resolveWorkdir(t, 1n, { override: 'x/y', cwd: '/tmp' })).toBe('/tmp/x/y');
    const metas = regionMetas(t);
    expect(metas).toHaveLength(2);
    expect(metas[0]).toEqual({
      id: 1n,
      startKey: new Uint8Array(0),
      endKey: new Uint8Array(Buffer.from('m')),
      epoch: { version: 1n, confVersion: 1n },
      peers: [
        { storeId: 1n, peerId: 101n, learner: false },
        { storeId: 2n, peerId: 201n, learner: false },
        { storeId: 3n, peerId: 301n, learner: false },
      ],
      state: RegionState.Running,
    });
    expect(metas[1]!.peers.map((p) => p.peerId)).toEqual([102n, 202n, 302n]);
    expect(regionMetasOfStore(t, 2n)).toHaveLength(2);
    const resolveAddr = storeAddressResolver(t, 'docker');
    expect(resolveAddr(2n)).toBe('nokv-node2:20160');
    expect(resolveAddr(9n)).toBeUndefined();
  });

  it('a missing file is ConfigNotFound, a directory ConfigUnreadable, bad JSON InvalidConfig', async () => {
    await expect(loadTopology('/nonexistent/nokv.json')).rejects.toMatchObject({
      code: 'ConfigNotFound',
      message: 'topology file /nonexistent/nokv.json not found',
    });
    const dir = mkdtempSync(join(tmpdir(), 'nokv-config-'));
    dirs.push(dir);
    await expect(loadTopology(dir)).rejects.toMatchObject({ code: 'ConfigUnreadable' });
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{ "stores": [ }');
    const err = (await loadTopology(bad).catch((e: unknown) => e)) as ConfigError;
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.code).toBe('InvalidConfig');
    expect(err.message).toMatch(new RegExp(`^invalid topology file ${bad}: \\(root\\): not valid JSON`));
  });

  it('resolves relative workdirs against the file, and parseTopology against baseDir', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nokv-config-'));
    dirs.push(dir);
    const file = join(dir, 'topo.json');
    writeFileSync(file, JSON.stringify(valid()));
    const t = await loadTopology(file);
    expect(resolveWorkdir(t, 2n)).toBe(join(dir, 'data', 'store-2'));
    expect(parseTopology(valid(), 'x', '/base').baseDir).toBe('/base');
    const noWorkdir = parseTopology(
      mutate((t) => {
        delete t.stores[0]!.workdir;
      }),
      'x',
    );
    expect(() => resolveWorkdir(noWorkdir, 1n)).toThrow(
      expect.objectContaining({ code: 'MissingWorkdir', message: expect.stringMatching(/pass --workdir/) }),
    );
    expect(() => resolveWorkdir(noWorkdir, 7n)).toThrow(expect.objectContaining({ code: 'UnknownStore' }));
    expect(() => storeAddress(noWorkdir, 7n)).toThrow(
      /store 7 is not in topology file x \(stores: 1, 2, 3\)/,
    );
  });
});

describe('schema errors name the JSON path', () => {
  it('types, required fields and unknown fields', () => {
    expect(issueAt(problems([]), '(root)')).toMatch(/expected object, got an array/);
    const err = problems(
      mutate((t) => {
        (t.stores[1] as Record<string, unknown>).addr = undefined;
        (t.stores[2] as Record<string, unknown>).id = '3';
        (t.regions[0] as Record<string, unknown>).start = '';
        (t as Record<string, unknown>).extra = 1;
      }),
    );
    expect(issueAt(err, 'stores[1].addr')).toBe('required');
    expect(issueAt(err, 'stores[2].id')).toMatch(/expected a store id/);
    expect(issueAt(err, 'regions[0]')).toBe('unknown field "start"');
    expect(issueAt(err, '(root)')).toBe('unknown field "extra"');
    expect(err.message).toMatch(/^invalid topology file test\.json \(4 problems\):\n {2}/);
    expect(err.message).toContain('\n  stores[1].addr: required');
  });

  it('addresses must be host:port', () => {
    for (const bad of ['127.0.0.1', 'localhost:', ':20160', 'host:70000', 'host:0', 'a b:1', 'http://x:1']) {
      const err = problems(
        mutate((t) => {
          t.stores[1]!.addr = bad;
        }),
      );
      expect(issueAt(err, 'stores[1].addr')).toBe('expected host:port');
      expect(err.message).toBe('invalid topology file test.json: stores[1].addr: expected host:port');
    }
    const err = problems(
      mutate((t) => {
        t.stores[0]!.httpAddr = 'nope';
        t.stores[2]!.dockerAddr = 'x';
      }),
    );
    expect(issueAt(err, 'stores[0].httpAddr')).toBe('expected host:port');
    expect(issueAt(err, 'stores[2].dockerAddr')).toBe('expected host:port');
    expect(parseHostPort('[::1]:20160')).toEqual({ host: '::1', port: 20160 });
    expect(parseHostPort('nokv-node1:20160')).toEqual({ host: 'nokv-node1', port: 20160 });
    expect(parseHostPort('127.0.0.1:0')).toBeUndefined();
    expect(parseHostPort('127.0.0.1:0', { allowZeroPort: true })).toEqual({ host: '127.0.0.1', port: 0 });
  });

  it('ids must be positive safe integers', () => {
    for (const bad of [0, -1, 1.5, 2 ** 53]) {
      const err = problems(
        mutate((t) => {
          t.stores[0]!.id = bad;
          t.regions[1]!.id = bad;
          t.regions[0]!.peers[2]!.peerId = bad;
        }),
      );
      expect(issueAt(err, 'stores[0].id')).toMatch(/positive safe integer/);
      expect(issueAt(err, 'regions[1].id')).toMatch(/positive safe integer/);
      expect(issueAt(err, 'regions[0].peers[2].peerId')).toMatch(/positive safe integer/);
    }
  });

  it('at least one store, one peer per region; hex keys must be hex', () => {
    expect(
      issueAt(
        problems(
          mutate((t) => {
            t.stores = [];
          }),
        ),
        'stores',
      ),
    ).toBe('expected at least one store');
    // No regions is fine: a migrated or grown cluster keeps its regions in the workdirs.
    const empty = mutate((t) => {
      t.regions = [];
    });
    expect(parseTopology(empty, 'test.json').regions).toEqual([]);
    expect(
      issueAt(
        problems(
          mutate((t) => {
            t.regions[0]!.peers = [];
          }),
        ),
        'regions[0].peers',
      ),
    ).toBe('a region needs at least one peer');
    for (const bad of ['hex:zz', 'hex:abc']) {
      const err = problems(
        mutate((t) => {
          t.regions[0]!.endKey = bad;
          t.regions[1]!.startKey = bad;
        }),
      );
      expect(issueAt(err, 'regions[0].endKey')).toMatch(/is not valid hex/);
      expect(issueAt(err, 'regions[1].startKey')).toMatch(/is not valid hex/);
    }
  });
});

describe('cross-field rules', () => {
  it('store ids and addresses are unique', () => {
    const err = problems(
      mutate((t) => {
        t.stores[2]!.id = 1;
        t.stores[1]!.addr = t.stores[0]!.addr;
        t.stores[2]!.httpAddr = t.stores[0]!.httpAddr;
        t.stores[2]!.dockerAddr = t.stores[1]!.dockerAddr;
      }),
    );
    expect(issueAt(err, 'stores[2].id')).toBe('store id 1 is already used by stores[0]');
    expect(issueAt(err, 'stores[1].addr')).toBe('address 127.0.0.1:20170 is already used by stores[0].addr');
    expect(issueAt(err, 'stores[2].httpAddr')).toBe(
      'address 127.0.0.1:20180 is already used by stores[0].httpAddr',
    );
    expect(issueAt(err, 'stores[2].dockerAddr')).toBe(
      'address nokv-node2:20160 is already used by stores[1].dockerAddr',
    );
    // A host address may equal a docker one: different namespaces.
    parseTopology(
      mutate((t) => {
        t.stores[0]!.dockerAddr = t.stores[1]!.addr;
      }),
      'x',
    );
  });

  it('region ids are unique, peer ids globally unique, peers on known distinct stores', () => {
    const err = problems(
      mutate((t) => {
        t.regions[1]!.id = 1;
        t.regions[1]!.peers[0]!.peerId = 101;
        t.regions[0]!.peers[2]!.storeId = 2;
        t.regions[1]!.peers[2]!.storeId = 9;
      }),
    );
    expect(issueAt(err, 'regions[1].id')).toBe('region id 1 is already used by regions[0]');
    expect(issueAt(err, 'regions[1].peers[0].peerId')).toBe(
      'peer id 101 is already used by regions[0].peers[0]',
    );
    expect(issueAt(err, 'regions[0].peers[2].storeId')).toBe('store 2 already holds peers[1] of this region');
    expect(issueAt(err, 'regions[1].peers[2].storeId')).toBe('store 9 is not in stores');
    const learners = problems(
      mutate((t) => {
        for (const p of t.regions[0]!.peers) p.learner = true;
      }),
    );
    expect(issueAt(learners, 'regions[0].peers')).toMatch(/at least one voter/);
  });

  it('names the gap below the first region and above the last', () => {
    const err = problems(
      mutate((t) => {
        t.regions[0]!.startKey = 'a';
        t.regions[1]!.endKey = 'x';
      }),
    );
    expect(issueAt(err, 'regions[0].startKey')).toBe(
      'gap: keys below a are in no region (the lowest region, region 1 [a, m), must start at "")',
    );
    expect(issueAt(err, 'regions[1].endKey')).toBe(
      'gap: keys from x on are in no region (the highest region, region 2 [m, x), must end at "")',
    );
  });

  it('names the gap between regions', () => {
    const err = problems(
      mutate((t) => {
        t.regions[1]!.startKey = 'p';
      }),
    );
    expect(err.issues).toHaveLength(1);
    expect(issueAt(err, 'regions[1].startKey')).toBe(
      'gap: keys [m, p) are in no region (between region 1 [-, m) and region 2 [p, -))',
    );
  });

  it('names overlapping regions and the overlap', () => {
    const err = problems(
      mutate((t) => {
        t.regions[1]!.startKey = 'g';
      }),
    );
    expect(err.issues).toHaveLength(1);
    expect(issueAt(err, 'regions[1].startKey')).toBe(
      'overlap: region 2 [g, -) overlaps region 1 [-, m) on [g, m)',
    );
    // Two regions both covering everything; a region nested inside another.
    const twice = problems(
      mutate((t) => {
        t.regions[0]!.endKey = '';
        t.regions[1]!.startKey = '';
      }),
    );
    expect(issueAt(twice, 'regions[1].startKey')).toBe(
      'overlap: region 2 [-, -) overlaps region 1 [-, -) on [-, -)',
    );
    const nested = problems(
      mutate((t) => {
        t.regions.push({ id: 3, startKey: 'b', endKey: 'c', peers: [{ storeId: 1, peerId: 103 }] });
      }),
    );
    expect(issueAt(nested, 'regions[2].startKey')).toBe(
      'overlap: region 3 [b, c) overlaps region 1 [-, m) on [b, c)',
    );
  });

  it('refuses empty ranges', () => {
    const err = problems(
      mutate((t) => {
        t.regions.push({ id: 3, startKey: 'q', endKey: 'q', peers: [{ storeId: 1, peerId: 103 }] });
      }),
    );
    expect(issueAt(err, 'regions[2].endKey')).toBe(
      'region 3: end key q is not above start key q (an empty range)',
    );
  });

  it('accepts many regions in any file order', () => {
    const t = parseTopology(
      mutate((t) => {
        t.regions = ['', 'c', 'f', 'k', 'q']
          .map((start, i, all) => ({
            id: i + 1,
            startKey: start,
            endKey: all[i + 1] ?? '',
            peers: [{ storeId: 1 + (i % 3), peerId: 1000 + i }],
          }))
          .reverse();
      }),
      'x',
    );
    expect(t.regions.map((r) => r.id)).toEqual([5n, 4n, 3n, 2n, 1n]);
    expect(regionMetasOfStore(t, 1n).map((r) => r.id)).toEqual([4n, 1n]);
  });
});

describe('keys', () => {
  it('hex keys are bytes; plain keys are UTF-8', () => {
    const t = parseTopology(
      mutate((t) => {
        t.regions[0]!.endKey = 'hex:00ff';
        t.regions[1]!.startKey = 'hex:00FF';
      }),
      'x',
    );
    expect([...t.regions[0]!.endKey]).toEqual([0x00, 0xff]);
    expect([...t.regions[1]!.startKey]).toEqual([0x00, 0xff]);
    expect([...parseKey('é')]).toEqual([0xc3, 0xa9]);
    expect(parseKey('hex:').length).toBe(0);
    expect(formatKey(parseKey('user:1'))).toBe('user:1');
    expect(formatKey(new Uint8Array([0, 255]))).toBe('hex:00ff');
    expect(formatKey(parseKey('hex:6865783a'))).toBe('hex:6865783a'); // the text "hex:" itself
    expect(parseKey(formatKey(parseKey('é')))).toEqual(parseKey('é'));
    expect(showKey(new Uint8Array(0))).toBe('-');
  });

  it('hex and plain keys tile together', () => {
    parseTopology(
      mutate((t) => {
        t.regions[0]!.endKey = 'hex:6d'; // "m"
      }),
      'x',
    );
  });

  it('formatPath', () => {
    expect(formatPath(['stores', 1, 'addr'])).toBe('stores[1].addr');
    expect(formatPath([])).toBe('(root)');
    expect(formatPath([3])).toBe('[3]');
  });
});
