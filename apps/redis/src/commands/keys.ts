/** Generic key commands (db.c, expire.c): DEL, EXISTS, expiry, TYPE, SCAN, KEYS, DBSIZE, FLUSHDB. */

import { array, bulk, int, OK, ONE, type Reply, simple, ZERO } from '../resp/reply.js';
import { err, INVALID_EXPIRE, SYNTAX } from './errors.js';
import { globMatch, literalPrefix } from './glob.js';
import { KEY_PREFIX, KEYSPACE_END, type KeyTxn, prefixRange, storageKeyAfter } from './keyspace.js';
import { INT64_MAX, INT64_MIN, int64Arg, intArg, is, lower } from './numbers.js';
import { parseCursor } from './scan-cursors.js';
import { type Call, type CommandSpec, command } from './types.js';

/** Keys read per backend call by KEYS, DBSIZE and FLUSHDB (each page is its own transaction). */
const PAGE = 1000;
/** Most keys one SCAN call examines, whatever COUNT asks (bounds one reply's memory). */
const MAX_SCAN_COUNT = 10_000;

async function del(call: Call): Promise<Reply> {
  const keys = call.args.slice(1);
  return call.kv.tx(async (t) => {
    const values = await t.getMany(keys);
    const seen = new Set<string>();
    let n = 0;
    keys.forEach((key, i) => {
      const k = key.toString('latin1');
      if (values[i] !== undefined && !seen.has(k)) {
        seen.add(k);
        n++;
        t.delete(key);
      }
    });
    return int(n);
  });
}

async function exists(call: Call): Promise<Reply> {
  const keys = call.args.slice(1);
  return call.kv.tx(async (t) => int((await t.getMany(keys)).filter((v) => v !== undefined).length));
}

type ExpireFlags = { nx: boolean; xx: boolean; gt: boolean; lt: boolean };

function parseExpireFlags(args: readonly Buffer[], from: number): ExpireFlags {
  const f = { nx: false, xx: false, gt: false, lt: false };
  for (let j = from; j < args.length; j++) {
    const a = args[j]!;
    if (is(a, 'nx')) f.nx = true;
    else if (is(a, 'xx')) f.xx = true;
    else if (is(a, 'gt')) f.gt = true;
    else if (is(a, 'lt')) f.lt = true;
    else throw err(`Unsupported option ${a.toString('latin1')}`);
  }
  if (f.nx && (f.xx || f.gt || f.lt))
    throw err('NX and XX, GT or LT options at the same time are not compatible');
  if (f.gt && f.lt) throw err('GT and LT options at the same time are not compatible');
  return f;
}

/** EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (Redis's `expireGenericCommand`). */
function expireCommand(unit: 's' | 'ms', absolute: boolean) {
  return async (call: Call): Promise<Reply> => {
    const [, key, param] = call.args as [Buffer, Buffer, Buffer];
    const flags = parseExpireFlags(call.args, 3);
    const given = int64Arg(param);
    return call.kv.tx(async (t) => {
      let when = given;
      const base = absolute ? 0n : BigInt(t.now);
      if (unit === 's') {
        if (when > INT64_MAX / 1000n || when < INT64_MIN / 1000n) throw INVALID_EXPIRE(call.fullName);
        when *= 1000n;
      }
      if (when > INT64_MAX - base) throw INVALID_EXPIRE(call.fullName);
      when += base;
      const v = await t.get(key);
      if (v === undefined) return ZERO;
      const current = v.expiresAt === 0 ? -1n : BigInt(v.expiresAt);
      if (flags.nx && current !== -1n) return ZERO;
      if (flags.xx && current === -1n) return ZERO;
      if (flags.gt && (when <= current || current === -1n)) return ZERO;
      if (flags.lt && current !== -1n && when >= current) return ZERO;
      if (when <= BigInt(t.now)) t.delete(key);
      else t.set(key, { ...v, expiresAt: Number(when) });
      return ONE;
    });
  };
}

function ttlCommand(ms: boolean, mode: 'ttl' | 'expiretime') {
  return async (call: Call): Promise<Reply> => {
    const key = call.args[1]!;
    return call.kv.tx(async (t) => {
      const v = await t.get(key);
      if (v === undefined) return int(-2);
      if (v.expiresAt === 0) return int(-1);
      if (mode === 'expiretime') return int(ms ? v.expiresAt : Math.floor((v.expiresAt + 500) / 1000));
      const ttl = Math.max(0, v.expiresAt - t.now);
      return int(ms ? ttl : Math.floor((ttl + 500) / 1000));
    });
  };
}

async function persist(call: Call): Promise<Reply> {
  const key = call.args[1]!;
  return call.kv.tx(async (t) => {
    const v = await t.get(key);
    if (v === undefined || v.expiresAt === 0) return ZERO;
    t.set(key, { ...v, expiresAt: 0 });
    return ONE;
  });
}

async function type(call: Call): Promise<Reply> {
  const key = call.args[1]!;
  return call.kv.tx(async (t) => simple((await t.get(key))?.type ?? 'none'));
}

async function touch(call: Call): Promise<Reply> {
  return exists(call);
}

/** RENAME / RENAMENX: the value moves with its TTL, in one transaction. */
function renameCommand(nx: boolean) {
  return async (call: Call): Promise<Reply> => {
    const [, src, dst] = call.args as [Buffer, Buffer, Buffer];
    return call.kv.tx(async (t) => {
      const v = await t.get(src);
      if (v === undefined) throw err('no such key');
      if (src.equals(dst)) return nx ? ZERO : OK;
      if (nx && (await t.get(dst)) !== undefined) return ZERO;
      t.delete(src);
      t.set(dst, v);
      return nx ? ONE : OK;
    });
  };
}

async function copy(call: Call): Promise<Reply> {
  const [, src, dst] = call.args as [Buffer, Buffer, Buffer];
  let replace = false;
  for (let j = 3; j < call.args.length; j++) {
    const a = call.args[j]!;
    if (is(a, 'replace')) replace = true;
    else if (is(a, 'db') && j + 1 < call.args.length) {
      const db = intArg(call.args[++j]!);
      if (db !== 0) throw err('DB index is out of range');
    } else throw SYNTAX();
  }
  return call.kv.tx(async (t) => {
    if (src.equals(dst)) throw err('source and destination objects are the same');
    const v = await t.get(src);
    if (v === undefined) return ZERO;
    if (!replace && (await t.get(dst)) !== undefined) return ZERO;
    t.set(dst, { ...v, payload: Buffer.from(v.payload) });
    return ONE;
  });
}

interface ScanOptions {
  count: number;
  pattern: Buffer | undefined;
  type: string | undefined;
}

function parseScanOptions(args: readonly Buffer[], from: number): ScanOptions {
  const o: ScanOptions = { count: 10, pattern: undefined, type: undefined };
  for (let i = from; i < args.length; ) {
    const left = args.length - i;
    const a = args[i]!;
    if (is(a, 'count') && left >= 2) {
      const n = intArg(args[i + 1]!);
      if (n < 1) throw SYNTAX();
      o.count = n;
      i += 2;
    } else if (is(a, 'match') && left >= 2) {
      const p = args[i + 1]!;
      o.pattern = p.length === 1 && p[0] === 0x2a ? undefined : p;
      i += 2;
    } else if (is(a, 'type') && left >= 2) {
      o.type = lower(args[i + 1]!);
      i += 2;
    } else {
      throw SYNTAX();
    }
  }
  return o;
}

/** The stored-key range a pattern can match: only keys with its literal prefix. */
function patternRange(pattern: Buffer | undefined): { start: Buffer; end: Buffer } {
  const prefix = pattern ? literalPrefix(pattern) : Buffer.alloc(0);
  return prefix.length > 0 ? prefixRange(prefix) : { start: KEY_PREFIX, end: KEYSPACE_END };
}

/**
 * SCAN: examines up to COUNT stored keys after the cursor's resume key (expired ones count as
 * examined work, like Redis's empty buckets), filters by MATCH and TYPE, and hands out a new
 * cursor for the rest. A MATCH with a literal prefix (`user:*`) scans only that key range.
 */
async function scan(call: Call): Promise<Reply> {
  const cursor = parseCursor(call.args[1]!);
  if (cursor === undefined) throw err('invalid cursor');
  const o = parseScanOptions(call.args, 2);
  const range = patternRange(o.pattern);
  const resume = call.server.cursors.resolve(cursor);
  let start = range.start;
  if (resume !== undefined) {
    const after = storageKeyAfter(resume);
    if (Buffer.compare(after, start) > 0) start = after;
  }
  if (Buffer.compare(start, range.end) >= 0) return array([bulk('0'), array([])]);
  const { entries, more } = await call.kv.tx((t) =>
    t.scan(start, range.end, Math.min(o.count, MAX_SCAN_COUNT)),
  );
  const keys: Reply[] = [];
  for (const e of entries) {
    if (e.value === undefined) continue;
    if (o.type !== undefined && e.value.type !== o.type) continue;
    if (o.pattern !== undefined && !globMatch(o.pattern, e.key)) continue;
    keys.push(bulk(e.key));
  }
  const last = entries[entries.length - 1];
  const next = more && last !== undefined ? call.server.cursors.issue(last.key) : '0';
  return array([bulk(next), array(keys)]);
}

/** Visits every live key in [start, end) in pages (each page its own transaction when standalone). */
export async function forEachKey(
  call: Call,
  range: { start: Buffer; end: Buffer },
  visit: (t: KeyTxn, key: Buffer, expiresAt: number | undefined, type: string | undefined) => void,
): Promise<void> {
  let start = range.start;
  for (;;) {
    const { entries, more } = await call.kv.tx(async (t) => {
      const page = await t.scan(start, range.end, PAGE);
      for (const e of page.entries) visit(t, e.key, e.value?.expiresAt, e.value?.type);
      return page;
    });
    const last = entries[entries.length - 1];
    if (!more || last === undefined) return;
    start = storageKeyAfter(last.key);
  }
}

async function keys(call: Call): Promise<Reply> {
  const pattern = call.args[1]!;
  const all = pattern.length === 1 && pattern[0] === 0x2a;
  const out: Reply[] = [];
  await forEachKey(call, patternRange(all ? undefined : pattern), (_t, key, _exp, type) => {
    if (type !== undefined && (all || globMatch(pattern, key))) out.push(bulk(key));
  });
  return array(out);
}

/** Live keys, and how many of them have an expiry (DBSIZE, INFO keyspace). O(keys): a full scan. */
export async function countKeys(call: Call): Promise<{ keys: number; expires: number }> {
  let n = 0;
  let expires = 0;
  await forEachKey(call, { start: KEY_PREFIX, end: KEYSPACE_END }, (_t, _k, exp, type) => {
    if (type === undefined) return;
    n++;
    if (exp !== 0) expires++;
  });
  return { keys: n, expires };
}

async function dbsize(call: Call): Promise<Reply> {
  return int((await countKeys(call)).keys);
}

async function flush(call: Call): Promise<Reply> {
  if (
    call.args.length > 2 ||
    (call.args.length === 2 && !is(call.args[1], 'async') && !is(call.args[1], 'sync'))
  ) {
    throw SYNTAX();
  }
  if (!call.server.allowFlush) {
    throw err(
      `${call.fullName.toUpperCase()} is disabled on this gateway (start it with flushing allowed: nokv redis --allow-flush)`,
    );
  }
  // Page by page: every key is deleted, but not atomically with respect to concurrent writers.
  await forEachKey(call, { start: KEY_PREFIX, end: KEYSPACE_END }, (t, key) => t.delete(key));
  return OK;
}

const K = { firstKey: 1, lastKey: 1, step: 1, group: 'generic' } as const;

export const KEY_COMMANDS: readonly CommandSpec[] = [
  command({
    name: 'del',
    arity: -2,
    flags: ['write'],
    firstKey: 1,
    lastKey: -1,
    step: 1,
    acl: ['keyspace', 'write', 'slow'],
    complexity: 'O(N) where N is the number of keys that will be removed.',
    summary: 'Delete a key',
    run: del,
  }),
  command({
    name: 'unlink',
    arity: -2,
    flags: ['write', 'fast'],
    firstKey: 1,
    lastKey: -1,
    step: 1,
    acl: ['keyspace', 'write', 'fast'],
    since: '4.0.0',
    summary: 'Delete a key asynchronously in another thread. Otherwise it is just as DEL, but non blocking.',
    run: del,
  }),
  command({
    name: 'exists',
    arity: -2,
    flags: ['readonly', 'fast'],
    firstKey: 1,
    lastKey: -1,
    step: 1,
    acl: ['keyspace', 'read', 'fast'],
    summary: 'Determine if a key exists',
    complexity: 'O(N) where N is the number of keys to check.',
    run: exists,
  }),
  command({
    name: 'touch',
    arity: -2,
    flags: ['readonly', 'fast'],
    firstKey: 1,
    lastKey: -1,
    step: 1,
    acl: ['keyspace', 'read', 'fast'],
    since: '3.2.1',
    summary: 'Alters the last access time of a key(s). Returns the number of existing keys specified.',
    run: touch,
  }),
  command({
    name: 'expire',
    arity: -3,
    flags: ['write', 'fast'],
    ...K,
    acl: ['keyspace', 'write', 'fast'],
    summary: "Set a key's time to live in seconds",
    run: expireCommand('s', false),
  }),
  command({
    name: 'pexpire',
    arity: -3,
    flags: ['write', 'fast'],
    ...K,
    acl: ['keyspace', 'write', 'fast'],
    since: '2.6.0',
    summary: "Set a key's time to live in milliseconds",
    run: expireCommand('ms', false),
  }),
  command({
    name: 'expireat',
    arity: -3,
    flags: ['write', 'fast'],
    ...K,
    acl: ['keyspace', 'write', 'fast'],
    since: '1.2.0',
    summary: 'Set the expiration for a key as a UNIX timestamp',
    run: expireCommand('s', true),
  }),
  command({
    name: 'pexpireat',
    arity: -3,
    flags: ['write', 'fast'],
    ...K,
    acl: ['keyspace', 'write', 'fast'],
    since: '2.6.0',
    summary: 'Set the expiration for a key as a UNIX timestamp specified in milliseconds',
    run: expireCommand('ms', true),
  }),
  command({
    name: 'ttl',
    arity: 2,
    flags: ['readonly', 'fast'],
    ...K,
    acl: ['keyspace', 'read', 'fast'],
    summary: 'Get the time to live for a key in seconds',
    run: ttlCommand(false, 'ttl'),
  }),
  command({
    name: 'pttl',
    arity: 2,
    flags: ['readonly', 'fast'],
    ...K,
    acl: ['keyspace', 'read', 'fast'],
    since: '2.6.0',
    summary: 'Get the time to live for a key in milliseconds',
    run: ttlCommand(true, 'ttl'),
  }),
  command({
    name: 'expiretime',
    arity: 2,
    flags: ['readonly', 'fast'],
    ...K,
    acl: ['keyspace', 'read', 'fast'],
    since: '7.0.0',
    summary: 'Get the expiration Unix timestamp for a key',
    run: ttlCommand(false, 'expiretime'),
  }),
  command({
    name: 'pexpiretime',
    arity: 2,
    flags: ['readonly', 'fast'],
    ...K,
    acl: ['keyspace', 'read', 'fast'],
    since: '7.0.0',
    summary: 'Get the expiration Unix timestamp for a key in milliseconds',
    run: ttlCommand(true, 'expiretime'),
  }),
  command({
    name: 'persist',
    arity: 2,
    flags: ['write', 'fast'],
    ...K,
    acl: ['keyspace', 'write', 'fast'],
    since: '2.2.0',
    summary: 'Remove the expiration from a key',
    run: persist,
  }),
  command({
    name: 'type',
    arity: 2,
    flags: ['readonly', 'fast'],
    ...K,
    acl: ['keyspace', 'read', 'fast'],
    summary: 'Determine the type stored at key',
    run: type,
  }),
  command({
    name: 'rename',
    arity: 3,
    flags: ['write'],
    firstKey: 1,
    lastKey: 2,
    step: 1,
    acl: ['keyspace', 'write', 'slow'],
    summary: 'Rename a key',
    run: renameCommand(false),
  }),
  command({
    name: 'renamenx',
    arity: 3,
    flags: ['write', 'fast'],
    firstKey: 1,
    lastKey: 2,
    step: 1,
    acl: ['keyspace', 'write', 'fast'],
    summary: 'Rename a key, only if the new key does not exist',
    run: renameCommand(true),
  }),
  command({
    name: 'copy',
    arity: -3,
    flags: ['write', 'denyoom'],
    firstKey: 1,
    lastKey: 2,
    step: 1,
    acl: ['keyspace', 'write', 'slow'],
    since: '6.2.0',
    summary: 'Copy a key',
    complexity:
      'O(N) worst case for collections, where N is the number of nested items. O(1) for string values.',
    run: copy,
  }),
  command({
    name: 'scan',
    arity: -2,
    flags: ['readonly'],
    acl: ['keyspace', 'read', 'slow'],
    since: '2.8.0',
    complexity:
      'O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.',
    summary: 'Incrementally iterate the keys space',
    run: scan,
  }),
  command({
    name: 'keys',
    arity: 2,
    flags: ['readonly'],
    acl: ['keyspace', 'read', 'slow', 'dangerous'],
    complexity:
      'O(N) with N being the number of keys in the database, under the assumption that the key names in the database and the given pattern have limited length.',
    summary: 'Find all keys matching the given pattern',
    run: keys,
  }),
  command({
    name: 'dbsize',
    arity: 1,
    flags: ['readonly', 'fast'],
    acl: ['keyspace', 'read', 'fast'],
    group: 'server',
    summary: 'Return the number of keys in the selected database',
    run: dbsize,
  }),
  command({
    name: 'flushdb',
    arity: -1,
    flags: ['write'],
    acl: ['keyspace', 'write', 'slow', 'dangerous'],
    group: 'server',
    complexity: 'O(N) where N is the total number of keys in all databases',
    summary: 'Remove all keys from the current database',
    run: flush,
  }),
  command({
    name: 'flushall',
    arity: -1,
    flags: ['write'],
    acl: ['keyspace', 'write', 'slow', 'dangerous'],
    group: 'server',
    complexity: 'O(N) where N is the total number of keys in all databases',
    summary: 'Remove all keys from all databases',
    run: flush,
  }),
];
