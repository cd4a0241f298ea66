/** String commands (t_string.c): GET/SET and friends, counters, APPEND, ranges. */

import type { StoredValue } from '../backend/envelope.js';
import { array, bulk, bulkOrNull, EMPTY_BULK, int, NULL, OK, ONE, type Reply, ZERO } from '../resp/reply.js';
import {
  err,
  INVALID_EXPIRE,
  NOT_FLOAT,
  NOT_INTEGER,
  STRING_TOO_LONG,
  SYNTAX,
  WRONG_ARITY,
  WRONGTYPE,
} from './errors.js';
import type { KeyTxn } from './keyspace.js';
import { addLongDouble, formatLongDouble, parseLongDouble } from './long-double.js';
import { INT64_MAX, INT64_MIN, int64Arg, is, parseInt64 } from './numbers.js';
import { type Call, type CommandSpec, command } from './types.js';

/** A live value as a string, or WRONGTYPE. */
export function stringOf(v: StoredValue | undefined): Buffer | undefined {
  if (v === undefined) return undefined;
  if (v.type !== 'string') throw WRONGTYPE();
  return v.payload;
}

function str(payload: Buffer, expiresAt: number): StoredValue {
  return { type: 'string', expiresAt, payload: Buffer.from(payload) };
}

/** Writes a string, or deletes the key when the expiry is already past (it would read as absent). */
function store(t: KeyTxn, key: Buffer, payload: Buffer, expiresAt: number): void {
  if (expiresAt !== 0 && expiresAt <= t.now) t.delete(key);
  else t.set(key, str(payload, expiresAt));
}

type ExpireUnit = 's' | 'ms';

interface StringArgs {
  nx: boolean;
  xx: boolean;
  get: boolean;
  keepTtl: boolean;
  persist: boolean;
  expire?: { arg: Buffer; unit: ExpireUnit; absolute: boolean };
}

/**
 * Redis's `parseExtendedStringArgumentsOrReply` for SET (`forSet`) and GETEX: the same
 * acceptance rules (a repeated EX is fine, EX with PX is not) and the same `syntax error`.
 */
function parseStringArgs(args: readonly Buffer[], from: number, forSet: boolean): StringArgs {
  const o: StringArgs = { nx: false, xx: false, get: false, keepTtl: false, persist: false };
  let kind: 'ex' | 'px' | 'exat' | 'pxat' | undefined;
  for (let j = from; j < args.length; j++) {
    const a = args[j]!;
    const next = j + 1 < args.length ? args[j + 1] : undefined;
    if (forSet && is(a, 'nx') && !o.xx) o.nx = true;
    else if (forSet && is(a, 'xx') && !o.nx) o.xx = true;
    else if (forSet && is(a, 'get')) o.get = true;
    else if (forSet && is(a, 'keepttl') && !o.persist && kind === undefined) o.keepTtl = true;
    else if (!forSet && is(a, 'persist') && kind === undefined && !o.keepTtl) o.persist = true;
    else {
      let k: 'ex' | 'px' | 'exat' | 'pxat' | undefined;
      for (const cand of ['ex', 'px', 'exat', 'pxat'] as const) if (is(a, cand)) k = cand;
      if (
        k === undefined ||
        o.keepTtl ||
        o.persist ||
        next === undefined ||
        (kind !== undefined && kind !== k)
      ) {
        throw SYNTAX();
      }
      kind = k;
      o.expire = { arg: next, unit: k === 'ex' || k === 'exat' ? 's' : 'ms', absolute: k.endsWith('at') };
      j++;
    }
  }
  return o;
}

/** Redis's `getExpireMillisecondsOrReply`: positive, no overflow once made absolute. */
function expireAt(e: NonNullable<StringArgs['expire']>, now: number, commandName: string): number {
  let v = int64Arg(e.arg);
  if (v <= 0n || (e.unit === 's' && v > INT64_MAX / 1000n)) throw INVALID_EXPIRE(commandName);
  if (e.unit === 's') v *= 1000n;
  if (!e.absolute) v += BigInt(now);
  if (v > INT64_MAX) throw INVALID_EXPIRE(commandName);
  return Number(v);
}

async function set(call: Call): Promise<Reply> {
  const [, key, value] = call.args as [Buffer, Buffer, Buffer];
  const o = parseStringArgs(call.args, 3, true);
  return call.kv.tx(async (t) => {
    const expiresAt = o.expire ? expireAt(o.expire, t.now, call.fullName) : 0;
    // A plain SET overwrites whatever is there: no need to read it.
    if (!o.nx && !o.xx && !o.get && !o.keepTtl) {
      store(t, key, value, expiresAt);
      return OK;
    }
    const old = await t.get(key);
    const oldValue = o.get ? stringOf(old) : undefined;
    const reply = o.get ? bulkOrNull(oldValue) : OK;
    if ((o.nx && old !== undefined) || (o.xx && old === undefined)) return o.get ? reply : NULL;
    store(t, key, value, o.keepTtl && old !== undefined ? old.expiresAt : expiresAt);
    return reply;
  });
}

function setWithExpiry(unit: ExpireUnit) {
  return (call: Call): Promise<Reply> => {
    const [, key, seconds, value] = call.args as [Buffer, Buffer, Buffer, Buffer];
    return call.kv.tx(async (t) => {
      const expiresAt = expireAt({ arg: seconds, unit, absolute: false }, t.now, call.fullName);
      store(t, key, value, expiresAt);
      return OK;
    });
  };
}

async function setnx(call: Call): Promise<Reply> {
  const [, key, value] = call.args as [Buffer, Buffer, Buffer];
  return call.kv.tx(async (t) => {
    if ((await t.get(key)) !== undefined) return ZERO;
    store(t, key, value, 0);
    return ONE;
  });
}

async function get(call: Call): Promise<Reply> {
  const key = call.args[1]!;
  return call.kv.tx(async (t) => {
    const v = stringOf(await t.get(key));
    if (v === undefined) call.server.stats.keyspaceMisses++;
    else call.server.stats.keyspaceHits++;
    return bulkOrNull(v);
  });
}

async function getset(call: Call): Promise<Reply> {
  const [, key, value] = call.args as [Buffer, Buffer, Buffer];
  return call.kv.tx(async (t) => {
    const old = stringOf(await t.get(key));
    store(t, key, value, 0);
    return bulkOrNull(old);
  });
}

async function getdel(call: Call): Promise<Reply> {
  const key = call.args[1]!;
  return call.kv.tx(async (t) => {
    const old = stringOf(await t.get(key));
    if (old !== undefined) t.delete(key);
    return bulkOrNull(old);
  });
}

async function getex(call: Call): Promise<Reply> {
  const key = call.args[1]!;
  const o = parseStringArgs(call.args, 2, false);
  return call.kv.tx(async (t) => {
    const v = await t.get(key);
    const payload = stringOf(v);
    if (v === undefined || payload === undefined) return NULL;
    // Redis validates the expiry only once it knows the key exists.
    if (o.expire) {
      store(t, key, payload, expireAt(o.expire, t.now, call.fullName));
    } else if (o.persist && v.expiresAt !== 0) {
      t.set(key, str(payload, 0));
    }
    return bulk(payload);
  });
}

async function mget(call: Call): Promise<Reply> {
  const keys = call.args.slice(1);
  return call.kv.tx(async (t) => {
    const values = await t.getMany(keys);
    return array(
      values.map((v) => {
        if (v === undefined || v.type !== 'string') {
          call.server.stats.keyspaceMisses++;
          return NULL;
        }
        call.server.stats.keyspaceHits++;
        return bulk(v.payload);
      }),
    );
  });
}

function pairs(call: Call): [Buffer, Buffer][] {
  if (call.args.length % 2 === 0) throw WRONG_ARITY(call.fullName);
  const out: [Buffer, Buffer][] = [];
  for (let i = 1; i < call.args.length; i += 2) out.push([call.args[i]!, call.args[i + 1]!]);
  return out;
}

async function mset(call: Call): Promise<Reply> {
  const kvs = pairs(call);
  return call.kv.tx(async (t) => {
    for (const [k, v] of kvs) t.set(k, str(v, 0));
    return OK;
  });
}

async function msetnx(call: Call): Promise<Reply> {
  const kvs = pairs(call);
  return call.kv.tx(async (t) => {
    const existing = await t.getMany(kvs.map(([k]) => k));
    if (existing.some((v) => v !== undefined)) return ZERO;
    for (const [k, v] of kvs) t.set(k, str(v, 0));
    return ONE;
  });
}

/** INCR/DECR/INCRBY/DECRBY: int64 arithmetic with Redis's overflow rule; the TTL is kept. */
async function incrBy(call: Call, key: Buffer, by: bigint): Promise<Reply> {
  return call.kv.tx(async (t) => {
    const v = await t.get(key);
    const cur = stringOf(v);
    const old = cur === undefined ? 0n : parseInt64(cur);
    if (old === undefined) throw NOT_INTEGER();
    if ((by < 0n && old < 0n && by < INT64_MIN - old) || (by > 0n && old > 0n && by > INT64_MAX - old)) {
      throw err('increment or decrement would overflow');
    }
    const next = old + by;
    t.set(key, str(Buffer.from(next.toString()), v?.expiresAt ?? 0));
    return int(next);
  });
}

async function incrbyfloat(call: Call): Promise<Reply> {
  const [, key, incrArg] = call.args as [Buffer, Buffer, Buffer];
  return call.kv.tx(async (t) => {
    const v = await t.get(key);
    const cur = stringOf(v);
    const value = cur === undefined ? { neg: false, mant: 0n, exp: 0 } : parseLongDouble(cur);
    if (value === undefined) throw NOT_FLOAT();
    const incr = parseLongDouble(incrArg);
    if (incr === undefined) throw NOT_FLOAT();
    const sum = addLongDouble(value, incr);
    if (sum === undefined) throw err('increment would produce NaN or Infinity');
    const text = Buffer.from(formatLongDouble(sum));
    t.set(key, str(text, v?.expiresAt ?? 0));
    return bulk(text);
  });
}

async function append(call: Call): Promise<Reply> {
  const [, key, suffix] = call.args as [Buffer, Buffer, Buffer];
  return call.kv.tx(async (t) => {
    const v = await t.get(key);
    const cur = stringOf(v) ?? Buffer.alloc(0);
    if (cur.length + suffix.length > call.server.maxBulkBytes) throw STRING_TOO_LONG();
    const next = Buffer.concat([cur, suffix]);
    t.set(key, str(next, v?.expiresAt ?? 0));
    return int(next.length);
  });
}

async function strlen(call: Call): Promise<Reply> {
  const key = call.args[1]!;
  return call.kv.tx(async (t) => int(stringOf(await t.get(key))?.length ?? 0));
}

async function getrange(call: Call): Promise<Reply> {
  const [, key, startArg, endArg] = call.args as [Buffer, Buffer, Buffer, Buffer];
  let start = int64Arg(startArg);
  let end = int64Arg(endArg);
  return call.kv.tx(async (t) => {
    const s = stringOf(await t.get(key));
    if (s === undefined) return EMPTY_BULK;
    const len = BigInt(s.length);
    if (start < 0n && end < 0n && start > end) return EMPTY_BULK;
    if (start < 0n) start += len;
    if (end < 0n) end += len;
    if (start < 0n) start = 0n;
    if (end < 0n) end = 0n;
    if (end >= len) end = len - 1n;
    if (start > end || len === 0n) return EMPTY_BULK;
    return bulk(s.subarray(Number(start), Number(end) + 1));
  });
}

async function setrange(call: Call): Promise<Reply> {
  const [, key, offsetArg, value] = call.args as [Buffer, Buffer, Buffer, Buffer];
  const offset = int64Arg(offsetArg);
  if (offset < 0n) throw err('offset is out of range');
  return call.kv.tx(async (t) => {
    const v = await t.get(key);
    const cur = stringOf(v);
    if (value.length === 0) return int(cur?.length ?? 0);
    if (offset + BigInt(value.length) > BigInt(call.server.maxBulkBytes)) throw STRING_TOO_LONG();
    const off = Number(offset);
    const base = cur ?? Buffer.alloc(0);
    const next = Buffer.alloc(Math.max(base.length, off + value.length));
    base.copy(next, 0);
    value.copy(next, off);
    t.set(key, str(next, v?.expiresAt ?? 0));
    return int(next.length);
  });
}

const W = ['write', 'denyoom'] as const;
const WF = ['write', 'denyoom', 'fast'] as const;
const RF = ['readonly', 'fast'] as const;
const one = { firstKey: 1, lastKey: 1, step: 1, group: 'string' } as const;

export const STRING_COMMANDS: readonly CommandSpec[] = [
  command({
    name: 'get',
    arity: 2,
    flags: RF,
    ...one,
    acl: ['read', 'string', 'fast'],
    summary: 'Get the value of a key',
    run: get,
  }),
  command({
    name: 'set',
    arity: -3,
    flags: W,
    ...one,
    acl: ['write', 'string', 'slow'],
    summary: 'Set the string value of a key',
    run: set,
  }),
  command({
    name: 'setnx',
    arity: 3,
    flags: WF,
    ...one,
    acl: ['write', 'string', 'fast'],
    summary: 'Set the value of a key, only if the key does not exist',
    run: setnx,
  }),
  command({
    name: 'setex',
    arity: 4,
    flags: W,
    ...one,
    acl: ['write', 'string', 'slow'],
    since: '2.0.0',
    summary: 'Set the value and expiration of a key',
    run: setWithExpiry('s'),
  }),
  command({
    name: 'psetex',
    arity: 4,
    flags: W,
    ...one,
    acl: ['write', 'string', 'slow'],
    since: '2.6.0',
    summary: 'Set the value and expiration in milliseconds of a key',
    run: setWithExpiry('ms'),
  }),
  command({
    name: 'getset',
    arity: 3,
    flags: WF,
    ...one,
    acl: ['write', 'string', 'fast'],
    summary: 'Set the string value of a key and return its old value',
    run: getset,
  }),
  command({
    name: 'getdel',
    arity: 2,
    flags: ['write', 'fast'],
    ...one,
    acl: ['write', 'string', 'fast'],
    since: '6.2.0',
    summary: 'Get the value of a key and delete the key',
    run: getdel,
  }),
  command({
    name: 'getex',
    arity: -2,
    flags: ['write', 'fast'],
    ...one,
    acl: ['write', 'string', 'fast'],
    since: '6.2.0',
    summary: 'Get the value of a key and optionally set its expiration',
    run: getex,
  }),
  command({
    name: 'mget',
    arity: -2,
    flags: RF,
    firstKey: 1,
    lastKey: -1,
    step: 1,
    group: 'string',
    acl: ['read', 'string', 'fast'],
    complexity: 'O(N) where N is the number of keys to retrieve.',
    summary: 'Get the values of all the given keys',
    run: mget,
  }),
  command({
    name: 'mset',
    arity: -3,
    flags: W,
    firstKey: 1,
    lastKey: -1,
    step: 2,
    group: 'string',
    acl: ['write', 'string', 'slow'],
    since: '1.0.1',
    complexity: 'O(N) where N is the number of keys to set.',
    summary: 'Set multiple keys to multiple values',
    run: mset,
  }),
  command({
    name: 'msetnx',
    arity: -3,
    flags: W,
    firstKey: 1,
    lastKey: -1,
    step: 2,
    group: 'string',
    acl: ['write', 'string', 'slow'],
    since: '1.0.1',
    complexity: 'O(N) where N is the number of keys to set.',
    summary: 'Set multiple keys to multiple values, only if none of the keys exist',
    run: msetnx,
  }),
  command({
    name: 'incr',
    arity: 2,
    flags: WF,
    ...one,
    acl: ['write', 'string', 'fast'],
    summary: 'Increment the integer value of a key by one',
    run: (c) => incrBy(c, c.args[1]!, 1n),
  }),
  command({
    name: 'decr',
    arity: 2,
    flags: WF,
    ...one,
    acl: ['write', 'string', 'fast'],
    summary: 'Decrement the integer value of a key by one',
    run: (c) => incrBy(c, c.args[1]!, -1n),
  }),
  command({
    name: 'incrby',
    arity: 3,
    flags: WF,
    ...one,
    acl: ['write', 'string', 'fast'],
    summary: 'Increment the integer value of a key by the given amount',
    run: (c) => incrBy(c, c.args[1]!, int64Arg(c.args[2]!)),
  }),
  command({
    name: 'decrby',
    arity: 3,
    flags: WF,
    ...one,
    acl: ['write', 'string', 'fast'],
    summary: 'Decrement the integer value of a key by the given number',
    run: (c) => {
      const by = int64Arg(c.args[2]!);
      if (by === INT64_MIN) throw err('decrement would overflow');
      return incrBy(c, c.args[1]!, -by);
    },
  }),
  command({
    name: 'incrbyfloat',
    arity: 3,
    flags: WF,
    ...one,
    acl: ['write', 'string', 'fast'],
    since: '2.6.0',
    summary: 'Increment the float value of a key by the given amount',
    run: incrbyfloat,
  }),
  command({
    name: 'append',
    arity: 3,
    flags: WF,
    ...one,
    acl: ['write', 'string', 'fast'],
    since: '2.0.0',
    summary: 'Append a value to a key',
    run: append,
  }),
  command({
    name: 'strlen',
    arity: 2,
    flags: RF,
    ...one,
    acl: ['read', 'string', 'fast'],
    since: '2.2.0',
    summary: 'Get the length of the value stored in a key',
    run: strlen,
  }),
  command({
    name: 'getrange',
    arity: 4,
    flags: ['readonly'],
    ...one,
    acl: ['read', 'string', 'slow'],
    since: '2.4.0',
    complexity: 'O(N) where N is the length of the returned string.',
    summary: 'Get a substring of the string stored at a key',
    run: getrange,
  }),
  command({
    name: 'setrange',
    arity: 4,
    flags: W,
    ...one,
    acl: ['write', 'string', 'slow'],
    since: '2.2.0',
    summary: 'Overwrite part of a string at key starting at the specified offset',
    run: setrange,
  }),
];
