import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { type RegionMeta, RegionState } from '@nokv/proto';
import * as z from 'zod';
import { parseHostPort } from './address.js';
import { ConfigError, type ConfigIssue, formatPath } from './errors.js';
import { compareKeys, keyProblem, parseKey, showKey } from './keys.js';

// --- the file's shape (zod) ------------------------------------------------------------------------

const id = (what: string) =>
  z
    .number({ error: (iss) => (iss.input === undefined ? 'required' : `expected a ${what} (a JSON number)`) })
    .refine((n) => Number.isSafeInteger(n) && n > 0, {
      error: `expected a ${what}: a positive safe integer`,
    });

const address = z
  .string({ error: (iss) => (iss.input === undefined ? 'required' : 'expected host:port (a string)') })
  .refine((s) => parseHostPort(s) !== undefined, { error: 'expected host:port' });

const key = z
  .string({
    error: (iss) => (iss.input === undefined ? 'required' : 'expected a key string ("" = unbounded)'),
  })
  .superRefine((s, ctx) => {
    const problem = keyProblem(s);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  });

const nonEmpty = (what: string) =>
  z
    .string({ error: (iss) => (iss.input === undefined ? 'required' : `expected ${what} (a string)`) })
    .min(1, { error: `expected ${what}, got an empty string` });

const storeSchema = z.strictObject({
  id: id('store id'),
  addr: address,
  httpAddr: address.optional(),
  dockerAddr: address.optional(),
  dockerHttpAddr: address.optional(),
  workdir: nonEmpty('a directory').optional(),
  dockerWorkdir: nonEmpty('a directory').optional(),
});

const peerSchema = z.strictObject({
  storeId: id('store id'),
  peerId: id('peer id'),
  learner: z.boolean().optional(),
});

const regionSchema = z.strictObject({
  id: id('region id'),
  startKey: key,
  endKey: key,
  peers: z.array(peerSchema).min(1, { error: 'a region needs at least one peer' }),
});

const topologySchema = z.strictObject({
  $schema: z.string().optional(),
  cluster: nonEmpty('a cluster name').optional(),
  coordinator: z
    .strictObject({
      addr: address,
      dockerAddr: address.optional(),
    })
    .optional(),
  stores: z.array(storeSchema).min(1, { error: 'expected at least one store' }),
  // Empty or absent: the stores' regions come from their workdirs (a migrated cluster, or one
  // grown by splits and AddPeer), not from this file.
  regions: z.array(regionSchema).default([]),
});

/** The file as written (JSON numbers, key strings). */
export type TopologyFile = z.infer<typeof topologySchema>;

// --- the validated view ----------------------------------------------------------------------------

export interface StoreConfig {
  id: bigint;
  /** gRPC address, host scope. */
  addr: string;
  /** HTTP (metrics, stats) address, host scope. */
  httpAddr?: string;
  dockerAddr?: string;
  dockerHttpAddr?: string;
  /** As written (relative paths are resolved against the file's directory by `resolveWorkdir`). */
  workdir?: string;
  dockerWorkdir?: string;
}

export interface PeerConfig {
  storeId: bigint;
  peerId: bigint;
  learner: boolean;
}

export interface RegionConfig {
  id: bigint;
  /** Inclusive; empty = -inf. */
  startKey: Uint8Array;
  /** Exclusive; empty = +inf. */
  endKey: Uint8Array;
  peers: PeerConfig[];
}

export interface Topology {
  /** Where it came from (a file path or a name the caller chose); used in messages. */
  source: string;
  /** The directory relative workdirs are resolved against. */
  baseDir: string;
  cluster: string;
  coordinator?: { addr: string; dockerAddr?: string };
  stores: StoreConfig[];
  /** In file order. */
  regions: RegionConfig[];
}

export type AddressScope = 'host' | 'docker';

export const DEFAULT_CLUSTER_NAME = 'nokv';

/** Reads and validates a topology file. Throws `ConfigError`. */
export async function loadTopology(path: string): Promise<Topology> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new ConfigError('ConfigNotFound', path, `topology file ${path} not found`, [], { cause: err });
    }
    throw new ConfigError(
      'ConfigUnreadable',
      path,
      `cannot read topology file ${path}: ${(err as Error).message}`,
      [],
      { cause: err },
    );
  }
  return parseTopology(text, path, dirname(resolve(path)));
}

/**
 * Validates a topology: `json` is the file's text or an already parsed value. `source` names it in
 * messages; `baseDir` (default: the current directory) is where relative workdirs are resolved.
 * Throws `ConfigError` (`InvalidConfig`) listing every problem with its JSON path.
 */
export function parseTopology(json: unknown, source: string, baseDir: string = process.cwd()): Topology {
  let value = json;
  if (typeof json === 'string') {
    try {
      value = JSON.parse(json);
    } catch (err) {
      throw ConfigError.invalid(source, [
        { path: '(root)', message: `not valid JSON: ${(err as Error).message}` },
      ]);
    }
  }
  const parsed = topologySchema.safeParse(value, {
    error: (iss) => {
      if (iss.code === 'invalid_type' && iss.input === undefined) return 'required';
      if (iss.code === 'invalid_type') return `expected ${iss.expected}, got ${describe(iss.input)}`;
      return undefined;
    },
  });
  if (!parsed.success) {
    throw ConfigError.invalid(
      source,
      parsed.error.issues.map((i) => ({ path: formatPath(i.path), message: unrecognized(i) })),
    );
  }
  const file = parsed.data;
  const issues = crossCheck(file);
  if (issues.length > 0) throw ConfigError.invalid(source, issues);
  return {
    source,
    baseDir,
    cluster: file.cluster ?? DEFAULT_CLUSTER_NAME,
    ...(file.coordinator ? { coordinator: { ...file.coordinator } } : {}),
    stores: file.stores.map((s) => ({
      ...s,
      id: BigInt(s.id),
    })),
    regions: file.regions.map((r) => ({
      id: BigInt(r.id),
      startKey: parseKey(r.startKey),
      endKey: parseKey(r.endKey),
      peers: r.peers.map((p) => ({
        storeId: BigInt(p.storeId),
        peerId: BigInt(p.peerId),
        learner: p.learner ?? false,
      })),
    })),
  };
}

function describe(input: unknown): string {
  if (input === null) return 'null';
  if (Array.isArray(input)) return 'an array';
  return typeof input === 'object' ? 'an object' : `${typeof input} ${JSON.stringify(input)}`;
}

function unrecognized(issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys') {
    return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`;
  }
  return issue.message;
}

/** The rules zod cannot express per field: uniqueness, references, and the key-space tiling. */
function crossCheck(file: TopologyFile): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const add = (path: string, message: string) => issues.push({ path, message });

  const storeIndex = new Map<number, number>();
  const addrOwner = new Map<string, string>();
  file.stores.forEach((s, i) => {
    const first = storeIndex.get(s.id);
    if (first !== undefined) add(`stores[${i}].id`, `store id ${s.id} is already used by stores[${first}]`);
    else storeIndex.set(s.id, i);
    const fields = ['addr', 'httpAddr', 'dockerAddr', 'dockerHttpAddr'] as const;
    for (const field of fields) {
      const a = s[field];
      if (a === undefined) continue;
      // Host and docker addresses live in different namespaces: only compare within a scope.
      const scope = field.startsWith('docker') ? 'docker' : 'host';
      const owner = addrOwner.get(`${scope}|${a}`);
      if (owner !== undefined) add(`stores[${i}].${field}`, `address ${a} is already used by ${owner}`);
      else addrOwner.set(`${scope}|${a}`, `stores[${i}].${field}`);
    }
  });

  const regionIndex = new Map<number, number>();
  const peerOwner = new Map<number, string>();
  file.regions.forEach((r, i) => {
    const first = regionIndex.get(r.id);
    if (first !== undefined)
      add(`regions[${i}].id`, `region id ${r.id} is already used by regions[${first}]`);
    else regionIndex.set(r.id, i);
    const storesOfRegion = new Map<number, number>();
    r.peers.forEach((p, j) => {
      const path = `regions[${i}].peers[${j}]`;
      if (!storeIndex.has(p.storeId)) add(`${path}.storeId`, `store ${p.storeId} is not in stores`);
      const same = storesOfRegion.get(p.storeId);
      if (same !== undefined) {
        add(`${path}.storeId`, `store ${p.storeId} already holds peers[${same}] of this region`);
      } else storesOfRegion.set(p.storeId, j);
      const owner = peerOwner.get(p.peerId);
      if (owner !== undefined) add(`${path}.peerId`, `peer id ${p.peerId} is already used by ${owner}`);
      else peerOwner.set(p.peerId, path);
    });
    if (r.peers.every((p) => p.learner === true)) {
      add(`regions[${i}].peers`, 'a region needs at least one voter (every peer is a learner)');
    }
  });

  issues.push(...checkTiling(file));
  return issues;
}

interface Span {
  index: number;
  id: number;
  start: Uint8Array;
  end: Uint8Array;
}

function showRange(s: Span): string {
  return `[${showKey(s.start)}, ${showKey(s.end)})`;
}

function name(s: Span): string {
  return `region ${s.id} ${showRange(s)}`;
}

/** Regions must cover the whole key space exactly once. */
function checkTiling(file: TopologyFile): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const spans: Span[] = [];
  file.regions.forEach((r, index) => {
    const span = { index, id: r.id, start: parseKey(r.startKey), end: parseKey(r.endKey) };
    if (span.end.length > 0 && compareKeys(span.start, span.end) >= 0) {
      issues.push({
        path: `regions[${index}].endKey`,
        message: `region ${r.id}: end key ${showKey(span.end)} is not above start key ${showKey(span.start)} (an empty range)`,
      });
      return;
    }
    spans.push(span);
  });
  if (spans.length === 0) return issues;
  spans.sort((a, b) => compareKeys(a.start, b.start) || a.index - b.index);

  const first = spans[0]!;
  if (first.start.length > 0) {
    issues.push({
      path: `regions[${first.index}].startKey`,
      message: `gap: keys below ${showKey(first.start)} are in no region (the lowest region, ${name(first)}, must start at "")`,
    });
  }
  // `reach` is the furthest end seen so far (empty = +inf) and the region that reaches it.
  let reach = first;
  for (const next of spans.slice(1)) {
    const reachEnd = reach.end;
    if (reachEnd.length === 0 || compareKeys(next.start, reachEnd) < 0) {
      const overlapEnd =
        reachEnd.length === 0
          ? next.end
          : next.end.length === 0 || compareKeys(reachEnd, next.end) < 0
            ? reachEnd
            : next.end;
      issues.push({
        path: `regions[${next.index}].startKey`,
        message: `overlap: ${name(next)} overlaps ${name(reach)} on [${showKey(next.start)}, ${showKey(overlapEnd)})`,
      });
    } else if (compareKeys(next.start, reachEnd) > 0) {
      issues.push({
        path: `regions[${next.index}].startKey`,
        message: `gap: keys [${showKey(reachEnd)}, ${showKey(next.start)}) are in no region (between ${name(reach)} and ${name(next)})`,
      });
    }
    if (reachEnd.length > 0 && (next.end.length === 0 || compareKeys(next.end, reachEnd) > 0)) reach = next;
  }
  if (reach.end.length > 0) {
    issues.push({
      path: `regions[${reach.index}].endKey`,
      message: `gap: keys from ${showKey(reach.end)} on are in no region (the highest region, ${name(reach)}, must end at "")`,
    });
  }
  return issues;
}

// --- lookups -----------------------------------------------------------------------------------------

function toId(storeId: bigint | number): bigint {
  return typeof storeId === 'bigint' ? storeId : BigInt(storeId);
}

export function findStore(topology: Topology, storeId: bigint | number): StoreConfig | undefined {
  const wanted = toId(storeId);
  return topology.stores.find((s) => s.id === wanted);
}

/** The store, or `ConfigError` (`UnknownStore`) naming the file and the known ids. */
export function requireStore(topology: Topology, storeId: bigint | number): StoreConfig {
  const store = findStore(topology, storeId);
  if (!store) {
    const known = topology.stores.map((s) => String(s.id)).join(', ');
    throw new ConfigError(
      'UnknownStore',
      topology.source,
      `store ${storeId} is not in topology file ${topology.source} (stores: ${known})`,
    );
  }
  return store;
}

/** The store's gRPC address in a scope: the docker address when scope is docker and it has one, else the host one. */
export function storeAddress(
  topology: Topology,
  storeId: bigint | number,
  scope: AddressScope = 'host',
): string {
  const s = requireStore(topology, storeId);
  return scope === 'docker' ? (s.dockerAddr ?? s.addr) : s.addr;
}

/** The store's HTTP address in a scope (same fallback rule), or undefined when the file gives none. */
export function storeHttpAddress(
  topology: Topology,
  storeId: bigint | number,
  scope: AddressScope = 'host',
): string | undefined {
  const s = requireStore(topology, storeId);
  return scope === 'docker' ? (s.dockerHttpAddr ?? s.httpAddr) : s.httpAddr;
}

/** A `resolveStoreAddress` for the store runtime: unknown stores resolve to undefined. */
export function storeAddressResolver(
  topology: Topology,
  scope: AddressScope = 'host',
): (storeId: bigint) => string | undefined {
  const byId = new Map(
    topology.stores.map((s) => [s.id, scope === 'docker' ? (s.dockerAddr ?? s.addr) : s.addr]),
  );
  return (storeId) => byId.get(storeId);
}

/**
 * The store's workdir: `override` (a flag; relative to `cwd`) if given, else the file's `workdir`
 * (`dockerWorkdir` first in docker scope), relative to the file's directory. Throws `ConfigError`
 * (`MissingWorkdir`) when neither exists, `UnknownStore` for an unknown store.
 */
export function resolveWorkdir(
  topology: Topology,
  storeId: bigint | number,
  options: { override?: string; scope?: AddressScope; cwd?: string } = {},
): string {
  const cwd = options.cwd ?? process.cwd();
  if (options.override !== undefined && options.override !== '') return resolve(cwd, options.override);
  const s = requireStore(topology, storeId);
  const dir = options.scope === 'docker' ? (s.dockerWorkdir ?? s.workdir) : s.workdir;
  if (dir === undefined) {
    throw new ConfigError(
      'MissingWorkdir',
      topology.source,
      `store ${storeId} has no workdir in topology file ${topology.source}; pass --workdir`,
    );
  }
  return isAbsolute(dir) ? dir : resolve(topology.baseDir, dir);
}

/** The regions as RegionMeta (epoch 1/1, Running): what every store bootstraps on its first start. */
export function regionMetas(topology: Topology): RegionMeta[] {
  return topology.regions.map((r) => ({
    id: r.id,
    startKey: new Uint8Array(r.startKey),
    endKey: new Uint8Array(r.endKey),
    epoch: { version: 1n, confVersion: 1n },
    peers: r.peers.map((p) => ({ storeId: p.storeId, peerId: p.peerId, learner: p.learner })),
    state: RegionState.Running,
  }));
}

/** The regions that have a peer on `storeId`, as RegionMeta. */
export function regionMetasOfStore(topology: Topology, storeId: bigint | number): RegionMeta[] {
  const wanted = toId(storeId);
  return regionMetas(topology).filter((r) => r.peers.some((p) => p.storeId === wanted));
}
