/**
 * The command-level test suite, run through real clients (ioredis, and raw sockets for protocol
 * details) against `startRedisServer` over any `KvBackend`. Every backend must pass it unchanged:
 *
 *     defineCommandSuite('embedded', async () => { ...; return { backend, cleanup } });
 *
 * Expected replies and error texts are redis-server 7.0's. Timing-dependent checks (TTL expiry)
 * poll instead of asserting durations.
 */

import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { KvBackend } from '../backend/backend.js';
import { type RunningRedis, startRedisServer } from '../server.js';
import { RawClient, resp } from './raw-client.js';

export interface SuiteBackend {
  backend: KvBackend;
  cleanup(): Promise<void>;
}

/** Limits small enough to exercise cheaply. */
const LIMITS = { maxBulkBytes: 1024 * 1024, maxArgs: 1000, maxInlineBytes: 4096 };

async function until<T>(probe: () => Promise<T>, done: (v: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (done(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function defineCommandSuite(name: string, makeBackend: () => Promise<SuiteBackend>): void {
  describe(`redis gateway commands (${name} backend)`, () => {
    let made: SuiteBackend;
    let server: RunningRedis;
    let registry: Registry;
    let r: Redis;
    const clients: Redis[] = [];
    const raws: RawClient[] = [];

    const client = async (): Promise<Redis> => {
      const c = new Redis({
        port: server.port,
        host: server.host,
        maxRetriesPerRequest: 1,
        lazyConnect: true,
      });
      await c.connect();
      clients.push(c);
      return c;
    };
    const raw = async (): Promise<RawClient> => {
      const c = await RawClient.connect(server.port, server.host);
      raws.push(c);
      return c;
    };
    /** Runs `cmd` and returns its error message (fails if it succeeds). */
    const errorOf = async (p: Promise<unknown>): Promise<string> => {
      try {
        await p;
      } catch (e) {
        return (e as Error).message;
      }
      throw new Error('expected an error reply');
    };
    const flush = (): Promise<unknown> => r.flushall();

    beforeAll(async () => {
      made = await makeBackend();
      registry = new Registry();
      server = await startRedisServer({
        backend: made.backend,
        allowFlush: true,
        registry,
        sweeper: { intervalMs: 20, idleMs: 50, batchKeys: 64 },
        ...LIMITS,
      });
      r = await client();
    });

    afterEach(() => {
      for (const c of raws.splice(0)) c.close();
    });

    afterAll(async () => {
      for (const c of clients) c.disconnect();
      await server?.close();
      await made?.cleanup();
    });

    describe('connection and server', () => {
      it('PING, ECHO, SELECT', async () => {
        expect(await r.ping()).toBe('PONG');
        expect(await r.ping('hi')).toBe('hi');
        expect(await r.echo('a b\r\nc')).toBe('a b\r\nc');
        expect(await r.select(0)).toBe('OK');
        expect(await errorOf(r.select(1))).toBe('ERR DB index is out of range');
        expect(await errorOf(r.call('select', 'x'))).toBe('ERR value is not an integer or out of range');
        expect(await errorOf(r.call('ping', 'a', 'b'))).toBe(
          "ERR wrong number of arguments for 'ping' command",
        );
      });

      it('answers unknown commands and wrong arity like Redis 7', async () => {
        expect(await errorOf(r.call('foo', 'a', 'b'))).toBe(
          "ERR unknown command 'foo', with args beginning with: 'a' 'b' ",
        );
        expect(await errorOf(r.call('FOO'))).toBe("ERR unknown command 'FOO', with args beginning with: ");
        expect(await errorOf(r.call('get'))).toBe("ERR wrong number of arguments for 'get' command");
        expect(await errorOf(r.call('mset', 'a'))).toBe("ERR wrong number of arguments for 'mset' command");
        expect(await errorOf(r.call('mset', 'a', 'b', 'c'))).toBe(
          "ERR wrong number of arguments for 'mset' command",
        );
        expect(await errorOf(r.call('client', 'setname'))).toBe(
          "ERR wrong number of arguments for 'client|setname' command",
        );
        expect(await errorOf(r.call('client', 'foo'))).toBe("ERR unknown subcommand 'foo'. Try CLIENT HELP.");
        const long = 'x'.repeat(300);
        const msg = await errorOf(r.call(long, long));
        expect(msg).toBe(
          `ERR unknown command '${'x'.repeat(128)}', with args beginning with: '${'x'.repeat(128)}' `,
        );
      });

      it('QUIT replies OK and closes, also inside MULTI', async () => {
        const c = await raw();
        c.send(resp('PING'));
        c.send(resp('QUIT'));
        expect(await c.expect('+PONG\r\n+OK\r\n')).toBe('+PONG\r\n+OK\r\n');
        expect(await c.waitClosed()).toBe(true);
        const d = await raw();
        d.send('MULTI\r\nQUIT\r\n');
        expect(await d.expect('+OK\r\n+OK\r\n')).toBe('+OK\r\n+OK\r\n');
        expect(await d.waitClosed()).toBe(true);
      });

      it('HELLO switches to RESP3 and back, with Redis errors', async () => {
        const c = await raw();
        c.send(resp('HELLO', '3'));
        const head = await c.expect('%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n');
        expect(head).toBe('%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$6\r\n7.0.15\r\n');
        expect(await c.expect('$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:')).toBe(
          '$5\r\nproto\r\n:3\r\n$2\r\nid\r\n:',
        );
        // id digits, then the rest
        let idText = '';
        for (;;) {
          const ch = (await c.read(1)).toString();
          if (ch === '\r') break;
          idText += ch;
        }
        expect(Number(idText)).toBeGreaterThan(0);
        const rest =
          '\n$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$7\r\nmodules\r\n*0\r\n';
        expect(await c.expect(rest)).toBe(rest);
        // RESP3 nulls, and maps for CONFIG GET.
        c.send(resp('GET', 'resp3:missing'));
        expect(await c.expect('_\r\n')).toBe('_\r\n');
        c.send(resp('MGET', 'resp3:missing', 'resp3:missing'));
        expect(await c.expect('*2\r\n_\r\n_\r\n')).toBe('*2\r\n_\r\n_\r\n');
        c.send(resp('CONFIG', 'GET', 'appendonly'));
        expect(await c.expect('%1\r\n$10\r\nappendonly\r\n$2\r\nno\r\n')).toBe(
          '%1\r\n$10\r\nappendonly\r\n$2\r\nno\r\n',
        );
        c.send(resp('CLIENT', 'GETNAME'));
        expect(await c.expect('_\r\n')).toBe('_\r\n');
        c.send(resp('HELLO', '4'));
        expect(await c.expect('-NOPROTO unsupported protocol version\r\n')).toBe(
          '-NOPROTO unsupported protocol version\r\n',
        );
        c.send(resp('HELLO', 'x'));
        const notInt = '-ERR Protocol version is not an integer or out of range\r\n';
        expect(await c.expect(notInt)).toBe(notInt);
        c.send(resp('HELLO', '2', 'foo'));
        const bad = "-ERR Syntax error in HELLO option 'foo'\r\n";
        expect(await c.expect(bad)).toBe(bad);
        c.send(resp('HELLO', '2', 'AUTH', 'bob', 'pw'));
        const wrongpass = '-WRONGPASS invalid username-password pair or user is disabled.\r\n';
        expect(await c.expect(wrongpass)).toBe(wrongpass);
        c.send(resp('HELLO', '2', 'SETNAME', 'a b'));
        const badName = '-ERR Client names cannot contain spaces, newlines or special characters.\r\n';
        expect(await c.expect(badName)).toBe(badName);
        c.send(resp('HELLO', '2', 'AUTH', 'default', 'anything', 'SETNAME', 'conn1'));
        expect(await c.expect('*14\r\n')).toBe('*14\r\n');
        await c.read(100).catch(() => undefined);
        const d = await raw();
        d.send(resp('HELLO', '2', 'SETNAME', 'named'));
        await d.expect('*14\r\n');
      });

      it('AUTH behaves like a default redis-server without a password', async () => {
        expect(await errorOf(r.call('auth', 'pw'))).toBe(
          'ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?',
        );
        expect(await r.call('auth', 'default', 'x')).toBe('OK');
        expect(await errorOf(r.call('auth', 'bob', 'x'))).toBe(
          'WRONGPASS invalid username-password pair or user is disabled.',
        );
      });

      it('CLIENT ID, SETNAME, GETNAME, INFO, LIST', async () => {
        const c = await client();
        const id = (await c.client('ID')) as number;
        expect(id).toBeGreaterThan(0);
        expect(await c.client('GETNAME')).toBeNull();
        expect(await c.client('SETNAME', 'worker-1')).toBe('OK');
        expect(await c.client('GETNAME')).toBe('worker-1');
        expect(await errorOf(c.client('SETNAME', 'bad name'))).toBe(
          'ERR Client names cannot contain spaces, newlines or special characters.',
        );
        const info = (await c.client('INFO')) as string;
        expect(info).toMatch(
          new RegExp(
            `^id=${id} addr=127\\.0\\.0\\.1:\\d+ laddr=127\\.0\\.0\\.1:${server.port} fd=-?\\d+ name=worker-1 age=\\d+ idle=\\d+ flags=N db=0 .* cmd=client\\|info user=default redir=-1 resp=2\\n$`,
          ),
        );
        const list = (await c.client('LIST')) as string;
        expect(list.split('\n').filter((l) => l.includes(`id=${id} `))).toHaveLength(1);
        expect(list.endsWith('\n')).toBe(true);
        const only = (await c.call('client', 'list', 'id', String(id))) as string;
        expect(only.trim().split('\n')).toHaveLength(1);
        expect(await c.call('client', 'list', 'type', 'pubsub')).toBe('');
        expect(await errorOf(c.call('client', 'list', 'type', 'x'))).toBe("ERR Unknown client type 'x'");
        expect(await c.client('SETNAME', '')).toBe('OK');
        expect(await c.client('GETNAME')).toBeNull();
      });

      it('COMMAND COUNT, INFO, DOCS, LIST and the full table', async () => {
        const count = (await r.call('command', 'count')) as number;
        expect(count).toBeGreaterThan(50);
        const table = (await r.call('command')) as unknown[][];
        expect(table).toHaveLength(count);
        const [get] = (await r.call('command', 'info', 'get')) as unknown[][];
        expect(get!.slice(0, 7)).toEqual([
          'get',
          2,
          ['readonly', 'fast'],
          1,
          1,
          1,
          ['@read', '@string', '@fast'],
        ]);
        expect(await r.call('command', 'info', 'nosuch')).toEqual([null]);
        const [setname] = (await r.call('command', 'info', 'client|setname')) as unknown[][];
        expect(setname![0]).toBe('client|setname');
        const docs = (await r.call('command', 'docs', 'get')) as unknown[];
        expect(docs[0]).toBe('get');
        expect(docs[1]).toEqual(
          expect.arrayContaining(['summary', 'Get the value of a key', 'group', 'string']),
        );
        expect(await r.call('command', 'list')).toEqual(expect.arrayContaining(['get', 'set', 'scan']));
        expect(await errorOf(r.call('command', 'FOO'))).toBe(
          "ERR unknown subcommand 'FOO'. Try COMMAND HELP.",
        );
      });

      it('INFO has server, clients, stats and keyspace sections', async () => {
        await flush();
        await r.set('info:a', '1');
        await r.set('info:b', '1', 'EX', 100);
        const all = await r.info();
        for (const section of ['# Server', '# Clients', '# Stats', '# Keyspace'])
          expect(all).toContain(section);
        expect(all).toContain('redis_version:7.0.15');
        expect(all).toMatch(/connected_clients:\d+/);
        expect(all).toMatch(/total_commands_processed:\d+/);
        expect(await r.info('keyspace')).toBe('# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=0\r\n');
        expect(await r.info('server', 'clients')).toMatch(
          /^# Server\r\n[\s\S]*\r\n\r\n# Clients\r\n[\s\S]*\r\n$/,
        );
        await flush();
        expect(await r.info('keyspace')).toBe('# Keyspace\r\n');
        expect(await r.info('nosuchsection')).toBe('');
      });

      it('DBSIZE counts live keys only', async () => {
        await flush();
        expect(await r.dbsize()).toBe(0);
        await r.mset('d1', '1', 'd2', '2', 'd3', '3');
        await r.set('d4', 'x', 'PX', 1);
        await until(
          () => r.dbsize(),
          (n) => n === 3,
        );
        expect(await r.dbsize()).toBe(3);
        expect(await errorOf(r.call('dbsize', 'x'))).toBe(
          "ERR wrong number of arguments for 'dbsize' command",
        );
      });

      it('FLUSHDB/FLUSHALL: options, and refused unless allowed', async () => {
        await r.set('f1', 'x');
        expect(await r.call('flushdb', 'async')).toBe('OK');
        expect(await r.dbsize()).toBe(0);
        expect(await errorOf(r.call('flushdb', 'x'))).toBe('ERR syntax error');
        await r.set('f1', 'x');
        const guarded = await startRedisServer({ backend: made.backend, sweeper: false });
        try {
          const g = new Redis({ port: guarded.port, lazyConnect: true, maxRetriesPerRequest: 1 });
          await g.connect();
          expect(await errorOf(g.flushdb())).toMatch(
            /^ERR FLUSHDB is disabled on this gateway .*--allow-flush/,
          );
          expect(await errorOf(g.flushall())).toMatch(/^ERR FLUSHALL is disabled/);
          expect(await g.get('f1')).toBe('x');
          g.disconnect();
        } finally {
          await guarded.close();
        }
      });

      it('refuses connections over maxClients', async () => {
        const small = await startRedisServer({ backend: made.backend, maxClients: 1, sweeper: false });
        try {
          const first = await RawClient.connect(small.port);
          raws.push(first);
          first.send('PING\r\n');
          await first.expect('+PONG\r\n');
          const second = await RawClient.connect(small.port);
          raws.push(second);
          expect(await second.expect('-ERR max number of clients reached\r\n')).toBe(
            '-ERR max number of clients reached\r\n',
          );
          expect(await second.waitClosed()).toBe(true);
          first.close();
          await first.closed;
          // The slot is free again once the first client left.
          const third = await until(
            async () => {
              const c = await RawClient.connect(small.port);
              raws.push(c);
              c.send('PING\r\n');
              return (await c.read(7).catch(() => Buffer.from(''))).toString();
            },
            (reply) => reply === '+PONG\r\n',
          );
          expect(third).toBe('+PONG\r\n');
        } finally {
          await small.close();
        }
      });

      it('RESP3 nil for an EXEC aborted by WATCH', async () => {
        const c = await raw();
        c.send(resp('HELLO', '3'));
        await c.expect('%7\r\n');
        await c.read(1, 1000).catch(() => undefined);
        // Drain the rest of the HELLO map.
        await new Promise((res) => setTimeout(res, 50));
        c.pendingReset();
        await r.set('r3w', '1');
        c.send(resp('WATCH', 'r3w'));
        expect(await c.expect('+OK\r\n')).toBe('+OK\r\n');
        await r.set('r3w', '2');
        c.send(Buffer.concat([resp('MULTI'), resp('GET', 'r3w'), resp('EXEC')]));
        expect(await c.expect('+OK\r\n+QUEUED\r\n_\r\n')).toBe('+OK\r\n+QUEUED\r\n_\r\n');
      });

      it('CONFIG GET answers the settings clients probe; TIME', async () => {
        expect(await r.config('GET', 'save')).toEqual(['save', '']);
        expect(await r.config('GET', 'appendonly')).toEqual(['appendonly', 'no']);
        expect(await r.config('GET', 'nosuch')).toEqual([]);
        const [s, us] = (await r.time()) as unknown as [string, string];
        expect(Math.abs(Number(s) - Date.now() / 1000)).toBeLessThan(5);
        expect(Number(us)).toBeLessThan(1_000_000);
      });
    });

    describe('strings', () => {
      beforeEach(async () => {
        await flush();
      });

      it('GET/SET round-trip binary keys and values', async () => {
        const key = Buffer.from([0, 1, 0x0d, 0x0a, 0xff]);
        const value = Buffer.from([0xff, 0, 0x0d, 0x0a, 0x24]);
        expect(await r.set(key, value)).toBe('OK');
        expect(await r.getBuffer(key)).toEqual(value);
        expect(await r.set('', 'empty-key')).toBe('OK');
        expect(await r.get('')).toBe('empty-key');
        expect(await r.set('e', '')).toBe('OK');
        expect(await r.get('e')).toBe('');
        expect(await r.get('missing')).toBeNull();
      });

      it('SET NX / XX / GET', async () => {
        expect(await r.set('k', 'v1', 'NX')).toBe('OK');
        expect(await r.set('k', 'v2', 'NX')).toBeNull();
        expect(await r.set('k', 'v3', 'XX')).toBe('OK');
        expect(await r.set('nokey', 'v', 'XX')).toBeNull();
        expect(await r.get('nokey')).toBeNull();
        expect(await r.set('k', 'v4', 'GET')).toBe('v3');
        expect(await r.set('new', 'v', 'GET')).toBeNull();
        expect(await r.get('new')).toBe('v');
        // NX with GET (Redis 7): the old value comes back whether or not the set happens.
        expect(await r.call('set', 'k', 'v5', 'NX', 'GET')).toBe('v4');
        expect(await r.get('k')).toBe('v4');
        expect(await r.call('set', 'fresh', 'v', 'NX', 'GET')).toBeNull();
        expect(await r.get('fresh')).toBe('v');
        expect(await r.call('set', 'k', 'v6', 'XX', 'GET')).toBe('v4');
        expect(await r.get('k')).toBe('v6');
      });

      it('SET expiry options and their errors', async () => {
        await r.set('k', 'v', 'EX', 100);
        expect(await r.ttl('k')).toBeGreaterThan(98);
        await r.set('k', 'v', 'PX', 100_000);
        expect(await r.pttl('k')).toBeGreaterThan(98_000);
        await r.set('k', 'v', 'EXAT', Math.floor(Date.now() / 1000) + 200);
        expect(await r.ttl('k')).toBeGreaterThan(190);
        await r.set('k', 'v', 'PXAT', Date.now() + 300_000);
        expect(await r.ttl('k')).toBeGreaterThan(290);
        await r.call('set', 'k', 'v2', 'KEEPTTL');
        expect(await r.ttl('k')).toBeGreaterThan(290);
        expect(await r.get('k')).toBe('v2');
        await r.set('k', 'v3');
        expect(await r.ttl('k')).toBe(-1);
        await r.call('set', 'k', 'v', 'ex', '10', 'EX', '20');
        expect(await r.ttl('k')).toBeGreaterThan(18);
        // Already past: the key is gone at once.
        await r.call('set', 'k', 'v', 'PXAT', '1');
        expect(await r.exists('k')).toBe(0);
        const syntax = 'ERR syntax error';
        expect(await errorOf(r.call('set', 'k', 'v', 'NX', 'XX'))).toBe(syntax);
        expect(await errorOf(r.call('set', 'k', 'v', 'XX', 'NX'))).toBe(syntax);
        expect(await errorOf(r.call('set', 'k', 'v', 'EX', '1', 'PX', '1'))).toBe(syntax);
        expect(await errorOf(r.call('set', 'k', 'v', 'KEEPTTL', 'EX', '1'))).toBe(syntax);
        expect(await errorOf(r.call('set', 'k', 'v', 'PX', '1', 'KEEPTTL'))).toBe(syntax);
        expect(await errorOf(r.call('set', 'k', 'v', 'EX'))).toBe(syntax);
        expect(await errorOf(r.call('set', 'k', 'v', 'FOO'))).toBe(syntax);
        expect(await errorOf(r.call('set', 'k', 'v', 'PERSIST'))).toBe(syntax);
        expect(await errorOf(r.call('set', 'k', 'v', 'EX', 'x'))).toBe(
          'ERR value is not an integer or out of range',
        );
        expect(await errorOf(r.call('set', 'k', 'v', 'EX', '0'))).toBe(
          "ERR invalid expire time in 'set' command",
        );
        expect(await errorOf(r.call('set', 'k', 'v', 'PX', '-5'))).toBe(
          "ERR invalid expire time in 'set' command",
        );
        expect(await errorOf(r.call('set', 'k', 'v', 'EX', '9223372036854775'))).toBe(
          "ERR invalid expire time in 'set' command",
        );
        expect(await errorOf(r.call('set', 'k', 'v', 'EX', '9223372036854775808'))).toBe(
          'ERR value is not an integer or out of range',
        );
      });

      it('SETNX, SETEX, PSETEX, GETSET, GETDEL', async () => {
        expect(await r.setnx('a', '1')).toBe(1);
        expect(await r.setnx('a', '2')).toBe(0);
        expect(await r.get('a')).toBe('1');
        expect(await r.setex('b', 100, 'v')).toBe('OK');
        expect(await r.ttl('b')).toBeGreaterThan(98);
        expect(await r.psetex('c', 100_000, 'v')).toBe('OK');
        expect(await r.pttl('c')).toBeGreaterThan(98_000);
        expect(await errorOf(r.setex('b', 0, 'v'))).toBe("ERR invalid expire time in 'setex' command");
        expect(await errorOf(r.psetex('b', -1, 'v'))).toBe("ERR invalid expire time in 'psetex' command");
        expect(await errorOf(r.call('setex', 'b', 'x', 'v'))).toBe(
          'ERR value is not an integer or out of range',
        );
        expect(await r.getset('b', 'w')).toBe('v');
        expect(await r.ttl('b')).toBe(-1);
        expect(await r.getset('nob', 'w')).toBeNull();
        expect(await r.getdel('b')).toBe('w');
        expect(await r.getdel('b')).toBeNull();
        expect(await r.exists('b')).toBe(0);
      });

      it('GETEX with EX/PX/EXAT/PXAT/PERSIST', async () => {
        await r.set('g', 'v');
        expect(await r.getex('g', 'EX', 100)).toBe('v');
        expect(await r.ttl('g')).toBeGreaterThan(98);
        expect(await r.getex('g', 'PX', 200_000)).toBe('v');
        expect(await r.ttl('g')).toBeGreaterThan(198);
        expect(await r.getex('g', 'EXAT', Math.floor(Date.now() / 1000) + 300)).toBe('v');
        expect(await r.ttl('g')).toBeGreaterThan(298);
        expect(await r.getex('g', 'PXAT', Date.now() + 400_000)).toBe('v');
        expect(await r.ttl('g')).toBeGreaterThan(398);
        expect(await r.getex('g', 'PERSIST')).toBe('v');
        expect(await r.ttl('g')).toBe(-1);
        expect(await r.getex('g')).toBe('v');
        expect(await r.getex('nog', 'EX', 0)).toBeNull();
        expect(await errorOf(r.getex('g', 'EX', 0))).toBe("ERR invalid expire time in 'getex' command");
        expect(await errorOf(r.call('getex', 'g', 'PERSIST', 'EX', '1'))).toBe('ERR syntax error');
        expect(await errorOf(r.call('getex', 'g', 'foo'))).toBe('ERR syntax error');
        expect(await errorOf(r.call('getex', 'g', 'KEEPTTL'))).toBe('ERR syntax error');
        expect(await r.getex('g', 'PXAT', 1)).toBe('v');
        expect(await r.exists('g')).toBe(0);
      });

      it('MGET, MSET, MSETNX', async () => {
        expect(await r.mset('m1', 'a', 'm2', 'b')).toBe('OK');
        expect(await r.mget('m1', 'nope', 'm2', 'm1')).toEqual(['a', null, 'b', 'a']);
        await r.set('m1', 'x', 'EX', 100);
        await r.mset('m1', 'y');
        expect(await r.ttl('m1')).toBe(-1);
        expect(await r.msetnx('m3', '1', 'm4', '2')).toBe(1);
        expect(await r.msetnx('m4', '1', 'm5', '2')).toBe(0);
        expect(await r.exists('m5')).toBe(0);
        expect(await errorOf(r.call('msetnx', 'a', 'b', 'c'))).toBe(
          "ERR wrong number of arguments for 'msetnx' command",
        );
      });

      it('INCR, DECR, INCRBY, DECRBY: int64, overflow, keeping the TTL', async () => {
        expect(await r.incr('n')).toBe(1);
        expect(await r.incrby('n', 41)).toBe(42);
        expect(await r.decr('n')).toBe(41);
        expect(await r.decrby('n', 50)).toBe(-9);
        await r.expire('n', 100);
        expect(await r.incr('n')).toBe(-8);
        expect(await r.ttl('n')).toBeGreaterThan(98);
        await r.set('big', '9223372036854775807');
        expect(await errorOf(r.incr('big'))).toBe('ERR increment or decrement would overflow');
        await r.set('small', '-9223372036854775808');
        expect(await errorOf(r.decr('small'))).toBe('ERR increment or decrement would overflow');
        expect(await errorOf(r.call('decrby', 'n', '-9223372036854775808'))).toBe(
          'ERR decrement would overflow',
        );
        for (const bad of ['abc', ' 1', '01', '+1', '1.5', '', '99999999999999999999']) {
          await r.set('bad', bad);
          expect(await errorOf(r.incr('bad'))).toBe('ERR value is not an integer or out of range');
        }
        expect(await errorOf(r.call('incrby', 'n', '1.5'))).toBe(
          'ERR value is not an integer or out of range',
        );
        expect(await errorOf(r.call('incrby', 'n', '-0'))).toBe(
          'ERR value is not an integer or out of range',
        );
      });

      it('INCRBYFLOAT prints like Redis (80-bit long double, %.17Lf)', async () => {
        expect(await r.incrbyfloat('f', '10.50')).toBe('10.5');
        expect(await r.incrbyfloat('f', '0.1')).toBe('10.6');
        expect(await r.incrbyfloat('f', '-5e3')).toBe('-4989.39999999999999991');
        await r.set('f2', '0.1');
        expect(await r.incrbyfloat('f2', '0.2')).toBe('0.3');
        await r.set('f3', '1.5e1');
        expect(await r.incrbyfloat('f3', '0x10')).toBe('31');
        expect(await r.incrbyfloat('f4', '.5')).toBe('0.5');
        expect(await r.incrbyfloat('f5', '5.')).toBe('5');
        expect(await r.incrbyfloat('f6', '-0')).toBe('0');
        await r.set('f7', ' 1');
        expect(await errorOf(r.incrbyfloat('f7', '1'))).toBe('ERR value is not a valid float');
        expect(await errorOf(r.incrbyfloat('f', 'nan'))).toBe('ERR value is not a valid float');
        expect(await errorOf(r.incrbyfloat('f', 'inf'))).toBe('ERR increment would produce NaN or Infinity');
        await r.set('f8', '1', 'EX', 100);
        await r.incrbyfloat('f8', '1');
        expect(await r.ttl('f8')).toBeGreaterThan(98);
      });

      it('APPEND, STRLEN', async () => {
        expect(await r.append('s', 'ab')).toBe(2);
        expect(await r.append('s', 'cd')).toBe(4);
        expect(await r.get('s')).toBe('abcd');
        expect(await r.strlen('s')).toBe(4);
        expect(await r.strlen('nos')).toBe(0);
        await r.expire('s', 100);
        await r.append('s', 'e');
        expect(await r.ttl('s')).toBeGreaterThan(98);
      });

      it('GETRANGE, SETRANGE, and the string size limit', async () => {
        await r.set('s', 'Hello World');
        expect(await r.getrange('s', 0, 4)).toBe('Hello');
        expect(await r.getrange('s', -5, -1)).toBe('World');
        expect(await r.getrange('s', -100, 100)).toBe('Hello World');
        expect(await r.getrange('s', 5, 2)).toBe('');
        expect(await r.getrange('s', -1, -5)).toBe('');
        expect(await r.getrange('nos', 0, 10)).toBe('');
        expect(await errorOf(r.call('getrange', 's', 'x', '1'))).toBe(
          'ERR value is not an integer or out of range',
        );
        expect(await r.setrange('s', 6, 'Redis')).toBe(11);
        expect(await r.get('s')).toBe('Hello Redis');
        expect(await r.setrange('pad', 3, 'ab')).toBe(5);
        expect(await r.getBuffer('pad')).toEqual(Buffer.from([0, 0, 0, 0x61, 0x62]));
        expect(await r.setrange('none', 0, '')).toBe(0);
        expect(await r.exists('none')).toBe(0);
        expect(await r.setrange('s', 100, '')).toBe(11);
        expect(await errorOf(r.setrange('s', -1, 'x'))).toBe('ERR offset is out of range');
        expect(await errorOf(r.setrange('s', 536870912, 'x'))).toBe(
          'ERR string exceeds maximum allowed size (proto-max-bulk-len)',
        );
        expect(await errorOf(r.setrange('s', LIMITS.maxBulkBytes, 'x'))).toBe(
          'ERR string exceeds maximum allowed size (proto-max-bulk-len)',
        );
      });

      it('commands on a missing key behave as on an expired one', async () => {
        await r.set('gone', 'v', 'PX', 1);
        await until(
          () => r.exists('gone'),
          (n) => n === 0,
        );
        expect(await r.get('gone')).toBeNull();
        expect(await r.incr('gone')).toBe(1);
        expect(await r.ttl('gone')).toBe(-1);
      });
    });

    describe('keys', () => {
      beforeEach(async () => {
        await flush();
      });

      it('DEL, UNLINK, EXISTS, TOUCH count like Redis', async () => {
        await r.mset('a', '1', 'b', '2', 'c', '3');
        expect(await r.exists('a', 'a', 'nope', 'b')).toBe(3);
        expect(await r.touch('a', 'nope')).toBe(1);
        expect(await r.del('a', 'a', 'nope')).toBe(1);
        expect(await r.unlink('b', 'c', 'nope')).toBe(2);
        expect(await r.exists('a', 'b', 'c')).toBe(0);
      });

      it('EXPIRE family with NX, XX, GT, LT', async () => {
        await r.set('k', 'v');
        expect(await r.call('expire', 'k', '100', 'XX')).toBe(0);
        expect(await r.call('expire', 'k', '100', 'GT')).toBe(0);
        expect(await r.call('expire', 'k', '100', 'NX')).toBe(1);
        expect(await r.call('expire', 'k', '200', 'NX')).toBe(0);
        expect(await r.call('expire', 'k', '50', 'GT')).toBe(0);
        expect(await r.call('expire', 'k', '200', 'GT')).toBe(1);
        expect(await r.call('expire', 'k', '300', 'LT')).toBe(0);
        expect(await r.call('expire', 'k', '150', 'LT')).toBe(1);
        expect(await r.call('expire', 'k', '120', 'XX', 'LT')).toBe(1);
        expect(await r.ttl('k')).toBeGreaterThan(110);
        await r.persist('k');
        expect(await r.call('expire', 'k', '10', 'LT')).toBe(1);
        expect(await r.pexpire('k', 100_000)).toBe(1);
        expect(await r.pttl('k')).toBeGreaterThan(90_000);
        expect(await r.expireat('k', Math.floor(Date.now() / 1000) + 500)).toBe(1);
        expect(await r.ttl('k')).toBeGreaterThan(490);
        expect(await r.pexpireat('k', Date.now() + 600_000)).toBe(1);
        expect(await r.ttl('k')).toBeGreaterThan(590);
        expect(await r.call('expiretime', 'k')).toBeGreaterThan(Date.now() / 1000);
        expect(await r.call('pexpiretime', 'k')).toBeGreaterThan(Date.now());
        expect(await r.expire('nope', 100)).toBe(0);
        expect(await errorOf(r.call('expire', 'k', '10', 'NX', 'XX'))).toBe(
          'ERR NX and XX, GT or LT options at the same time are not compatible',
        );
        expect(await errorOf(r.call('expire', 'k', '10', 'GT', 'LT'))).toBe(
          'ERR GT and LT options at the same time are not compatible',
        );
        expect(await errorOf(r.call('expire', 'k', '10', 'foo'))).toBe('ERR Unsupported option foo');
        expect(await errorOf(r.call('expire', 'k', 'x'))).toBe('ERR value is not an integer or out of range');
        expect(await errorOf(r.call('expire', 'k', '9223372036854775'))).toBe(
          "ERR invalid expire time in 'expire' command",
        );
        expect(await errorOf(r.call('pexpire', 'k', '9223372036854775807'))).toBe(
          "ERR invalid expire time in 'pexpire' command",
        );
        // A time in the past deletes the key.
        expect(await r.expire('k', -1)).toBe(1);
        expect(await r.exists('k')).toBe(0);
      });

      it('TTL, PTTL, PERSIST, TYPE', async () => {
        expect(await r.ttl('nope')).toBe(-2);
        expect(await r.pttl('nope')).toBe(-2);
        await r.set('k', 'v');
        expect(await r.ttl('k')).toBe(-1);
        expect(await r.pttl('k')).toBe(-1);
        expect(await r.persist('k')).toBe(0);
        await r.pexpire('k', 5900);
        // TTL rounds to the nearest second (5.9 s -> 6), as Redis does.
        expect([5, 6]).toContain(await r.ttl('k'));
        const pttl = await r.pttl('k');
        expect(pttl).toBeLessThanOrEqual(5900);
        expect(pttl).toBeGreaterThan(4000);
        expect(await r.persist('k')).toBe(1);
        expect(await r.ttl('k')).toBe(-1);
        expect(await r.type('k')).toBe('string');
        expect(await r.type('nope')).toBe('none');
      });

      it('RENAME, RENAMENX, COPY', async () => {
        await r.set('src', 'v', 'EX', 100);
        expect(await r.rename('src', 'dst')).toBe('OK');
        expect(await r.get('dst')).toBe('v');
        expect(await r.ttl('dst')).toBeGreaterThan(98);
        expect(await r.exists('src')).toBe(0);
        expect(await errorOf(r.rename('src', 'x'))).toBe('ERR no such key');
        await r.set('other', 'o');
        expect(await r.renamenx('dst', 'other')).toBe(0);
        expect(await r.renamenx('dst', 'dst2')).toBe(1);
        expect(await r.copy('dst2', 'other')).toBe(0);
        expect(await r.copy('dst2', 'other', 'REPLACE')).toBe(1);
        expect(await r.get('other')).toBe('v');
        expect(await errorOf(r.copy('dst2', 'dst2'))).toBe('ERR source and destination objects are the same');
      });

      it('KEYS with glob patterns', async () => {
        await r.mset('user:1', 'a', 'user:2', 'b', 'user:10', 'c', 'item:1', 'd', 'h*llo', 'e', 'hallo', 'f');
        expect((await r.keys('*')).sort()).toEqual([
          'h*llo',
          'hallo',
          'item:1',
          'user:1',
          'user:10',
          'user:2',
        ]);
        expect((await r.keys('user:?')).sort()).toEqual(['user:1', 'user:2']);
        expect((await r.keys('user:*')).sort()).toEqual(['user:1', 'user:10', 'user:2']);
        expect((await r.keys('user:[12]')).sort()).toEqual(['user:1', 'user:2']);
        expect((await r.keys('user:[^1]')).sort()).toEqual(['user:2']);
        expect((await r.keys('*:1*')).sort()).toEqual(['item:1', 'user:1', 'user:10']);
        expect(await r.keys('h\\*llo')).toEqual(['h*llo']);
        expect(await r.keys('nomatch*')).toEqual([]);
      });

      it('SCAN walks everything with MATCH, COUNT and TYPE', async () => {
        const keys = Array.from({ length: 250 }, (_, i) => `scan:${String(i).padStart(3, '0')}`);
        await r.mset(...keys.flatMap((k) => [k, 'v']));
        await r.set('other', 'v');
        const seen = new Set<string>();
        let cursor = '0';
        let calls = 0;
        do {
          const [next, batch] = await r.scan(cursor, 'MATCH', 'scan:*', 'COUNT', 17);
          expect(batch.length).toBeLessThanOrEqual(17);
          for (const k of batch) seen.add(k);
          expect(/^\d+$/.test(next)).toBe(true);
          cursor = next;
          calls++;
        } while (cursor !== '0');
        expect(calls).toBeGreaterThan(10);
        expect([...seen].sort()).toEqual(keys);
        const [, typed] = await r.scan('0', 'COUNT', 1000, 'TYPE', 'list');
        expect(typed).toEqual([]);
        const [done, str] = await r.scan('0', 'COUNT', 1000, 'TYPE', 'string');
        expect(done).toBe('0');
        expect(str).toHaveLength(251);
        const [, glob] = await r.scan('0', 'MATCH', '*0', 'COUNT', 1000);
        expect(glob).toHaveLength(25);
        expect(await errorOf(r.call('scan', 'x'))).toBe('ERR invalid cursor');
        expect(await errorOf(r.call('scan', '0', 'COUNT', '0'))).toBe('ERR syntax error');
        expect(await errorOf(r.call('scan', '0', 'COUNT', 'x'))).toBe(
          'ERR value is not an integer or out of range',
        );
        expect(await errorOf(r.call('scan', '0', 'foo'))).toBe('ERR syntax error');
        expect(await errorOf(r.call('scan', '0', 'MATCH'))).toBe('ERR syntax error');
        // An unknown cursor starts over rather than skipping keys.
        const [, fromUnknown] = await r.scan('123', 'COUNT', 1000);
        expect(fromUnknown).toHaveLength(251);
      });

      it('SCAN returns every key present for the whole iteration despite concurrent writes', async () => {
        const stable = Array.from({ length: 300 }, (_, i) => `stable:${i}`);
        await r.mset(...stable.flatMap((k) => [k, 'v']));
        const writer = await client();
        let stop = false;
        let n = 0;
        const churn = (async () => {
          while (!stop) {
            const k = `churn:${n++ % 97}`;
            await writer.set(k, 'x');
            if (n % 3 === 0) await writer.del(`churn:${(n * 7) % 97}`);
          }
        })();
        const seen = new Set<string>();
        let cursor = '0';
        do {
          const [next, batch] = await r.scan(cursor, 'COUNT', 13);
          for (const k of batch) seen.add(k);
          cursor = next;
        } while (cursor !== '0');
        stop = true;
        await churn;
        for (const k of stable) expect(seen.has(k)).toBe(true);
      });
    });

    describe('expiry', () => {
      it('keys with small TTLs disappear and the sweeper deletes them', async () => {
        await flush();
        await r.set('short:1', 'v', 'PX', 30);
        await r.psetex('short:2', 30, 'v');
        await r.set('long', 'v', 'EX', 1000);
        await until(
          () => r.exists('short:1', 'short:2'),
          (n) => n === 0,
        );
        expect(await r.get('short:1')).toBeNull();
        expect(await r.ttl('short:2')).toBe(-2);
        expect(await r.exists('long')).toBe(1);
        // Untouched expired keys are reclaimed by the sweeper: INFO's expired_keys counts them.
        const swept = await until(
          async () => Number(/expired_keys:(\d+)/.exec(await r.info('stats'))?.[1] ?? 0),
          (v) => v >= 2,
        );
        expect(swept).toBeGreaterThanOrEqual(2);
      });

      it('TTL precision is milliseconds', async () => {
        await r.set('ms', 'v', 'PX', 1500);
        const pttl = await r.pttl('ms');
        expect(pttl).toBeGreaterThan(1000);
        expect(pttl).toBeLessThanOrEqual(1500);
        // Rounded to the nearest second (time may pass between the two reads).
        const rounded = Math.floor((pttl + 500) / 1000);
        expect([rounded, rounded - 1]).toContain(await r.ttl('ms'));
      });
    });

    describe('transactions', () => {
      beforeEach(async () => {
        await flush();
      });

      it('MULTI/EXEC runs the queue with read-your-writes and per-command errors', async () => {
        const res = await r
          .multi()
          .set('t', '1')
          .incr('t')
          .get('t')
          .incrbyfloat('t', 'x')
          .incr('nonnum')
          .exec();
        expect(res![0]).toEqual([null, 'OK']);
        expect(res![1]).toEqual([null, 2]);
        expect(res![2]).toEqual([null, '2']);
        expect(res![3]![0]).toBeInstanceOf(Error);
        expect(res![4]).toEqual([null, 1]);
      });

      it('queued runtime errors do not stop the rest; EXECABORT on queueing errors', async () => {
        const c = await raw();
        c.send('MULTI\r\nSET a\r\nfoo\r\nSET a b\r\nEXEC\r\n');
        const expected =
          "+OK\r\n-ERR wrong number of arguments for 'set' command\r\n-ERR unknown command 'foo', with args beginning with: \r\n+QUEUED\r\n-EXECABORT Transaction discarded because of previous errors.\r\n";
        expect(await c.expect(expected)).toBe(expected);
        expect(await r.exists('a')).toBe(0);
        c.send('MULTI\r\nMULTI\r\nWATCH x\r\nSET a 1\r\nINCRBYFLOAT a x\r\nINCR a\r\nEXEC\r\n');
        const second =
          '+OK\r\n-ERR MULTI calls can not be nested\r\n-ERR WATCH inside MULTI is not allowed\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n+OK\r\n-ERR value is not a valid float\r\n:2\r\n';
        expect(await c.expect(second)).toBe(second);
        c.send('EXEC\r\nDISCARD\r\nMULTI\r\nSET z 1\r\nDISCARD\r\nGET z\r\n');
        const third =
          '-ERR EXEC without MULTI\r\n-ERR DISCARD without MULTI\r\n+OK\r\n+QUEUED\r\n+OK\r\n$-1\r\n';
        expect(await c.expect(third)).toBe(third);
        c.send('MULTI\r\nEXEC\r\n');
        expect(await c.expect('+OK\r\n*0\r\n')).toBe('+OK\r\n*0\r\n');
      });

      it('WATCH aborts EXEC when a watched key changes (value or expiry) and not otherwise', async () => {
        const a = await client();
        const b = await client();
        await a.set('w', '1');
        await a.watch('w');
        await b.set('w', '2');
        expect(await a.multi().set('w', '3').exec()).toBeNull();
        expect(await a.get('w')).toBe('2');

        await a.watch('w');
        expect(await a.multi().set('w', '4').exec()).toEqual([[null, 'OK']]);

        // A write that leaves the value unchanged still counts (Redis: the key was touched).
        await a.watch('w');
        await b.set('w', '4');
        expect(await a.multi().get('w').exec()).toBeNull();

        // So does the watcher's own write outside MULTI, and a FLUSHDB.
        await a.watch('w');
        await a.set('w', '4');
        expect(await a.multi().get('w').exec()).toBeNull();
        await a.watch('w');
        await b.flushdb();
        expect(await a.multi().get('w').exec()).toBeNull();
        await a.set('w', '4');

        // Writes to other keys do not.
        await a.watch('w');
        await b.set('unrelated', '1');
        expect(await a.multi().get('w').exec()).toEqual([[null, '4']]);

        await a.watch('w');
        await b.expire('w', 100);
        expect(await a.multi().set('w', '5').exec()).toBeNull();

        await a.watch('absent');
        await b.set('absent', 'now');
        expect(await a.multi().get('absent').exec()).toBeNull();

        await a.watch('w2');
        await a.unwatch();
        await b.set('w2', 'x');
        expect(await a.multi().set('w2', 'y').exec()).toEqual([[null, 'OK']]);

        await a.watch('w3');
        await b.set('w3', 'x');
        const d = await a.multi();
        d.set('w3', 'y');
        await a.discard().catch(() => undefined);
        await a.set('w3', 'z');
        expect(await a.get('w3')).toBe('z');
      });

      it('WATCH sees a key expiring as a change', async () => {
        const a = await client();
        await a.set('exp', 'v', 'PX', 50);
        await a.watch('exp');
        await until(
          () => a.pttl('exp'),
          (t) => t === -2,
        );
        expect(await a.multi().set('exp', 'new').exec()).toBeNull();
      });

      it('concurrent WATCH/INCR loops lose no updates', async () => {
        const workers = await Promise.all([client(), client(), client(), client()]);
        await r.set('counter', '0');
        const perWorker = 15;
        await Promise.all(
          workers.map(async (w) => {
            for (let done = 0; done < perWorker; ) {
              await w.watch('counter');
              const cur = Number(await w.get('counter'));
              const res = await w
                .multi()
                .set('counter', String(cur + 1))
                .exec();
              if (res !== null) done++;
            }
          }),
        );
        expect(await r.get('counter')).toBe(String(workers.length * perWorker));
      });
    });

    describe('protocol', () => {
      it('pipelines replies in order', async () => {
        await flush();
        const p = r.pipeline();
        for (let i = 0; i < 500; i++) p.set(`p:${i}`, String(i));
        for (let i = 0; i < 500; i++) p.incr(`p:${i}`);
        for (let i = 0; i < 500; i++) p.get(`p:${i}`);
        const out = await p.exec();
        expect(out!.slice(1000).map(([, v]) => v)).toEqual(
          Array.from({ length: 500 }, (_, i) => String(i + 1)),
        );
        const c = await raw();
        c.send(
          Buffer.concat([
            resp('SET', 'x', '1'),
            resp('INCR', 'x'),
            resp('GET', 'x'),
            Buffer.from('PING\r\n'),
          ]),
        );
        expect(await c.expect('+OK\r\n:2\r\n$1\r\n2\r\n+PONG\r\n')).toBe('+OK\r\n:2\r\n$1\r\n2\r\n+PONG\r\n');
      });

      it('parses requests split at every byte boundary', async () => {
        const c = await raw();
        const req = Buffer.concat([
          resp('SET', 'split', 'a\r\nb'),
          resp('GET', 'split'),
          Buffer.from('ECHO "x y"\r\n'),
        ]);
        for (const byte of req) c.send(Buffer.from([byte]));
        const expected = '+OK\r\n$4\r\na\r\nb\r\n$3\r\nx y\r\n';
        expect(await c.expect(expected)).toBe(expected);
      });

      it('inline commands: quotes, escapes, empty lines, bare LF', async () => {
        const c = await raw();
        c.send("\r\n\n   \r\nSET inl \"a\\x41\\n\" \r\nGET inl\nECHO 'it\\'s'\r\n");
        const expected = "+OK\r\n$3\r\naA\n\r\n$4\r\nit's\r\n";
        expect(await c.expect(expected)).toBe(expected);
      });

      it('closes only where Redis cannot resync', async () => {
        const cases: [string, string][] = [
          ['*1\r\n$x\r\n', '-ERR Protocol error: invalid bulk length\r\n'],
          ['*x\r\n', '-ERR Protocol error: invalid multibulk length\r\n'],
          ['*1\r\n+a\r\n', "-ERR Protocol error: expected '$', got '+'\r\n"],
          ['*3000000000\r\n', '-ERR Protocol error: invalid multibulk length\r\n'],
          ['*2\r\n$4\r\nECHO\r\n$-1\r\n', '-ERR Protocol error: invalid bulk length\r\n'],
          ['ECHO "abc"x\r\n', ''],
        ];
        for (const [input, reply] of cases.slice(0, 5)) {
          const c = await raw();
          c.send(`PING\r\n${input}`);
          expect(await c.expect(`+PONG\r\n${reply}`)).toBe(`+PONG\r\n${reply}`);
          expect(await c.waitClosed()).toBe(true);
        }
        // Unbalanced quotes: the line is complete, so the connection goes on.
        const c = await raw();
        c.send('ECHO "abc"x\r\nPING\r\n');
        const expected = '-ERR Protocol error: unbalanced quotes in request\r\n+PONG\r\n';
        expect(await c.expect(expected)).toBe(expected);
        // Redis skips the two bytes after a bulk without checking them.
        const d = await raw();
        d.send('*1\r\n$3\r\nabcXYPING\r\n');
        const skipped = "-ERR unknown command 'abc', with args beginning with: \r\n+PONG\r\n";
        expect(await d.expect(skipped)).toBe(skipped);
        expect(d.isClosed).toBe(false);
      });

      it('oversized bulks, too many arguments and long inline lines answer an error and keep the connection', async () => {
        const c = await raw();
        const big = Buffer.alloc(LIMITS.maxBulkBytes + 1, 0x61);
        c.send(resp('SET', 'big', big));
        c.send(resp('PING'));
        const expected = '-ERR Protocol error: invalid bulk length\r\n+PONG\r\n';
        expect(await c.expect(expected)).toBe(expected);
        expect(await r.exists('big')).toBe(0);
        const args = Array.from({ length: LIMITS.maxArgs + 1 }, (_, i) => `k${i}`);
        c.send(resp('DEL', ...args));
        c.send(resp('PING'));
        const tooMany = '-ERR Protocol error: invalid multibulk length\r\n+PONG\r\n';
        expect(await c.expect(tooMany)).toBe(tooMany);
        c.send(`ECHO ${'x'.repeat(LIMITS.maxInlineBytes + 10)}\r\nPING\r\n`);
        const inline = '-ERR Protocol error: too big inline request\r\n+PONG\r\n';
        expect(await c.expect(inline)).toBe(inline);
        // At the limit exactly, all is well.
        const ok = Buffer.alloc(LIMITS.maxBulkBytes, 0x62);
        expect(await r.set('atlimit', ok)).toBe('OK');
        expect((await r.getBuffer('atlimit'))!.length).toBe(LIMITS.maxBulkBytes);
        await r.del('atlimit');
      });

      it('answers a client that sends without reading (backpressure) without losing replies', async () => {
        const c = await raw();
        const n = 20_000;
        const one = resp('GET', 'bp:missing');
        c.send(Buffer.concat(Array.from({ length: n }, () => one)));
        const all = await c.read(n * 5, 30_000);
        expect(all.toString('latin1')).toBe('$-1\r\n'.repeat(n));
      });

      it('answers every request of a client that half-closes after sending, then closes', async () => {
        const c = await raw();
        c.send(Buffer.concat([resp('SET', 'hc', '1'), resp('INCR', 'hc'), resp('GET', 'hc')]));
        c.endInput();
        expect(await c.expect('+OK\r\n:2\r\n$1\r\n2\r\n')).toBe('+OK\r\n:2\r\n$1\r\n2\r\n');
        expect(await c.waitClosed()).toBe(true);
      });

      it('serves many connections at once', async () => {
        const conns = await Promise.all(Array.from({ length: 20 }, () => client()));
        await Promise.all(conns.map((c, i) => c.set(`conn:${i}`, String(i))));
        const got = await Promise.all(conns.map((c, i) => c.get(`conn:${(i + 1) % conns.length}`)));
        expect(got).toEqual(conns.map((_, i) => String((i + 1) % conns.length)));
      });
    });

    describe('metrics', () => {
      it('counts commands, errors, connections and latency on the registry', async () => {
        await r.get('metrics:x');
        await r.call('nosuchcommand').catch(() => undefined);
        const text = await registry.metrics();
        expect(text).toMatch(/nokv_redis_commands_total\{command="get"\} \d+/);
        expect(text).toMatch(/nokv_redis_command_errors_total\{command="unknown",kind="ERR"\} \d+/);
        expect(text).toMatch(/nokv_redis_connections \d+/);
        expect(text).toMatch(/nokv_redis_connections_total \d+/);
        expect(text).toMatch(/nokv_redis_command_duration_seconds_bucket\{le="0.001",command="get"\} \d+/);
      });
    });
  });
}
