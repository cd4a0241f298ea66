/** Connection commands: PING, ECHO, QUIT, SELECT, HELLO, AUTH, RESET-free CLIENT subset. */

import {
  array,
  bulk,
  EMPTY_ARRAY,
  int,
  NULL,
  OK,
  PONG,
  type Reply,
  simple,
  stringMap,
  verbatim,
} from '../resp/reply.js';
import { err, RedisError, SYNTAX, WRONG_ARITY } from './errors.js';
import { is, lower, parseInt64 } from './numbers.js';
import { type Call, type ClientState, type CommandSpec, command } from './types.js';

/** What HELLO and INFO report: the Redis version whose behaviour the gateway reproduces. */
export const REDIS_VERSION = '7.0.15';

const WRONGPASS = 'WRONGPASS invalid username-password pair or user is disabled.';

function ping(call: Call): Reply {
  if (call.args.length > 2) throw WRONG_ARITY(call.fullName);
  return call.args.length === 2 ? bulk(call.args[1]!) : PONG;
}

function select(call: Call): Reply {
  const db = parseInt64(call.args[1]!);
  if (db === undefined || db > 2147483647n || db < -2147483648n) {
    throw err('value is not an integer or out of range');
  }
  if (db !== 0n) throw err('DB index is out of range');
  return OK;
}

/**
 * There are no users or passwords: like a default redis-server, the `default` user accepts any
 * password and every other user name is refused.
 */
function authenticate(user: Buffer, _password: Buffer): void {
  if (user.toString('latin1') !== 'default') throw new RedisError(WRONGPASS);
}

function auth(call: Call): Reply {
  if (call.args.length > 3) throw SYNTAX();
  if (call.args.length === 2) {
    throw err(
      'AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?',
    );
  }
  authenticate(call.args[1]!, call.args[2]!);
  return OK;
}

/** CLIENT SETNAME's rule: printable ASCII without spaces (an empty name clears it). */
function validClientName(name: Buffer): boolean {
  for (const c of name) if (c < 0x21 || c > 0x7e) return false;
  return true;
}

function setName(client: ClientState, name: Buffer): void {
  if (!validClientName(name)) {
    throw err('Client names cannot contain spaces, newlines or special characters.');
  }
  client.name = name.toString('latin1');
}

function helloReply(call: Call): Reply {
  return stringMap([
    ['server', bulk('redis')],
    ['version', bulk(REDIS_VERSION)],
    ['proto', int(call.client.resp)],
    ['id', int(call.client.id)],
    ['mode', bulk('standalone')],
    ['role', bulk('master')],
    ['modules', EMPTY_ARRAY],
  ]);
}

function hello(call: Call): Reply {
  const args = call.args;
  let ver: bigint | undefined;
  let next = 1;
  if (args.length >= 2) {
    ver = parseInt64(args[next++]!);
    if (ver === undefined) throw err('Protocol version is not an integer or out of range');
    if (ver < 2n || ver > 3n) throw new RedisError('NOPROTO unsupported protocol version');
  }
  let user: Buffer | undefined;
  let password: Buffer | undefined;
  let clientName: Buffer | undefined;
  for (let j = next; j < args.length; j++) {
    const more = args.length - 1 - j;
    const opt = args[j]!;
    if (is(opt, 'auth') && more >= 2) {
      user = args[j + 1];
      password = args[j + 2];
      j += 2;
    } else if (is(opt, 'setname') && more >= 1) {
      clientName = args[j + 1];
      j++;
    } else {
      throw err(`Syntax error in HELLO option '${opt.toString('latin1')}'`);
    }
  }
  if (user !== undefined && password !== undefined) authenticate(user, password);
  if (clientName !== undefined) setName(call.client, clientName);
  if (ver !== undefined) call.client.resp = ver === 3n ? 3 : 2;
  return helloReply(call);
}

/** One CLIENT LIST line, in Redis's field order (memory fields are estimates). */
export function clientLine(c: ClientState, now: number): string {
  const qbuf = c.queryBytes();
  const omem = c.outputBytes();
  const multi = c.multi === undefined ? -1 : c.multi.length;
  const flags = c.multi !== undefined ? 'x' : 'N';
  return [
    `id=${c.id}`,
    `addr=${c.addr}`,
    `laddr=${c.laddr}`,
    `fd=${c.fd}`,
    `name=${c.name}`,
    `age=${Math.floor((now - c.createdAt) / 1000)}`,
    `idle=${Math.floor((now - c.lastActive) / 1000)}`,
    `flags=${flags}`,
    'db=0',
    'sub=0',
    'psub=0',
    'ssub=0',
    `multi=${multi}`,
    `qbuf=${qbuf}`,
    `qbuf-free=${Math.max(0, 20474 - qbuf)}`,
    'argv-mem=0',
    'multi-mem=0',
    'rbs=16384',
    'rbp=16384',
    'obl=0',
    'oll=0',
    `omem=${omem}`,
    `tot-mem=${qbuf + omem + 20474}`,
    'events=r',
    `cmd=${c.lastCommand}`,
    'user=default',
    'redir=-1',
    `resp=${c.resp}`,
  ].join(' ');
}

function clientList(call: Call): Reply {
  const args = call.args;
  let ids: Set<number> | undefined;
  let typeFilter: string | undefined;
  for (let j = 2; j < args.length; j++) {
    if (is(args[j], 'type') && j + 1 < args.length) {
      typeFilter = lower(args[++j]!);
      if (!['normal', 'master', 'replica', 'slave', 'pubsub'].includes(typeFilter)) {
        throw err(`Unknown client type '${args[j]!.toString('latin1')}'`);
      }
    } else if (is(args[j], 'id') && j + 1 < args.length) {
      ids = new Set();
      for (j++; j < args.length; j++) {
        const id = parseInt64(args[j]!);
        if (id === undefined || id <= 0n) throw err('Invalid client ID');
        ids.add(Number(id));
      }
    } else {
      throw SYNTAX();
    }
  }
  const now = Date.now();
  let out = '';
  for (const c of call.server.clients.values()) {
    if (typeFilter !== undefined && typeFilter !== 'normal') continue;
    if (ids !== undefined && !ids.has(c.id)) continue;
    out += `${clientLine(c, now)}\n`;
  }
  return verbatim(out);
}

const CLIENT_HELP = [
  'CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
  'GETNAME',
  '    Return the name of the current connection.',
  'ID',
  '    Return the ID of the current connection.',
  'INFO',
  '    Return information about the current client connection.',
  'LIST [options ...]',
  '    Return information about client connections. Options:',
  '    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)',
  '      Return clients of specified type.',
  '    * ID <client-id> [<client-id> ...]',
  '      Return clients of specified IDs only.',
  'SETNAME <name>',
  '    Assign the name <name> to the current connection.',
  'HELP',
  '    Print this help.',
];

const conn = { group: 'connection', flags: ['noscript', 'loading', 'stale'] } as const;
const clientSub = (
  name: string,
  arity: number,
  summary: string,
  run: (call: Call) => Reply,
  since = '2.6.9',
): CommandSpec =>
  command({
    name,
    arity,
    ...conn,
    acl: ['slow', 'connection'],
    since,
    summary,
    complexity: name === 'list' ? 'O(N) where N is the number of client connections' : 'O(1)',
    run,
  });

export const CONNECTION_COMMANDS: readonly CommandSpec[] = [
  command({
    name: 'ping',
    arity: -1,
    flags: ['fast', 'sentinel'],
    group: 'connection',
    acl: ['fast', 'connection'],
    summary: 'Ping the server',
    run: ping,
  }),
  command({
    name: 'echo',
    arity: 2,
    flags: ['fast'],
    group: 'connection',
    acl: ['fast', 'connection'],
    summary: 'Echo the given string',
    run: (c) => bulk(c.args[1]!),
  }),
  command({
    name: 'quit',
    arity: -1,
    flags: ['allow_busy', 'noscript', 'loading', 'stale', 'fast', 'no_auth'],
    group: 'connection',
    acl: ['fast', 'connection'],
    summary: 'Close the connection',
    special: 'quit',
    run: () => OK,
  }),
  command({
    name: 'select',
    arity: 2,
    flags: ['loading', 'stale', 'fast'],
    group: 'connection',
    acl: ['fast', 'connection'],
    since: '2.0.0',
    summary: 'Change the selected database for the current connection',
    run: select,
  }),
  command({
    name: 'hello',
    arity: -1,
    flags: ['noscript', 'loading', 'stale', 'fast', 'no_auth', 'sentinel', 'allow_busy'],
    group: 'connection',
    acl: ['fast', 'connection'],
    since: '6.0.0',
    summary: 'Handshake with Redis',
    run: hello,
  }),
  command({
    name: 'auth',
    arity: -2,
    flags: ['noscript', 'loading', 'stale', 'fast', 'no_auth', 'sentinel', 'allow_busy'],
    group: 'connection',
    acl: ['fast', 'connection'],
    summary: 'Authenticate to the server',
    complexity: 'O(N) where N is the number of passwords defined for the user',
    run: auth,
  }),
  command({
    name: 'client',
    arity: -2,
    flags: [],
    group: 'connection',
    acl: ['slow'],
    since: '2.4.0',
    summary: 'A container for client connection commands',
    complexity: 'Depends on subcommand.',
    run: () => NULL,
    subcommands: [
      clientSub(
        'id',
        2,
        'Returns the client ID for the current connection',
        (c) => int(c.client.id),
        '5.0.0',
      ),
      clientSub('getname', 2, 'Get the current connection name', (c) =>
        c.client.name === '' ? NULL : bulk(c.client.name),
      ),
      clientSub('setname', 3, 'Set the current connection name', (c) => {
        setName(c.client, c.args[2]!);
        return OK;
      }),
      clientSub(
        'info',
        2,
        'Returns information about the current client connection.',
        (c) => verbatim(`${clientLine(c.client, Date.now())}\n`),
        '6.2.0',
      ),
      clientSub('list', -2, 'Get the list of client connections', clientList, '2.4.0'),
      clientSub(
        'help',
        2,
        'Show helpful text about the different subcommands',
        () => array(CLIENT_HELP.map((l) => simple(l))),
        '5.0.0',
      ),
    ],
  }),
];
