/** Server introspection: INFO, COMMAND, CONFIG GET, TIME; and the MULTI family's table entries. */

import { arch, hostname, platform, release } from 'node:os';
import {
  array,
  bulk,
  int,
  map,
  NULL,
  OK,
  type Reply,
  set,
  simple,
  stringMap,
  verbatim,
} from '../resp/reply.js';
import { REDIS_VERSION } from './connection.js';
import { err, unknownSubcommand } from './errors.js';
import { globMatch } from './glob.js';
import { countKeys } from './keys.js';
import { is, lower } from './numbers.js';
import { type Call, type CommandSpec, command } from './types.js';

export const NOKV_REDIS_VERSION = '0.1.0';

export interface CommandTable {
  readonly all: readonly CommandSpec[];
  get(name: string): CommandSpec | undefined;
}

// ---- INFO -----------------------------------------------------------------------------------

const SECTIONS = ['server', 'clients', 'stats', 'keyspace'] as const;
type Section = (typeof SECTIONS)[number];

function lines(title: string, fields: [string, string | number][]): string {
  return `# ${title}\r\n${fields.map(([k, v]) => `${k}:${v}\r\n`).join('')}`;
}

async function infoSection(call: Call, section: Section): Promise<string> {
  const s = call.server;
  const now = Date.now();
  switch (section) {
    case 'server': {
      const uptime = Math.floor((now - s.startedAt) / 1000);
      return lines('Server', [
        ['redis_version', REDIS_VERSION],
        ['redis_git_sha1', '00000000'],
        ['redis_git_dirty', 0],
        ['redis_build_id', '0'],
        ['redis_mode', 'standalone'],
        ['os', `${platform() === 'linux' ? 'Linux' : platform()} ${release()} ${arch()}`],
        ['arch_bits', 64],
        ['multiplexing_api', 'libuv'],
        ['process_id', process.pid],
        ['process_supervised', 'no'],
        ['run_id', s.runId],
        ['tcp_port', s.port()],
        ['server_time_usec', now * 1000],
        ['uptime_in_seconds', uptime],
        ['uptime_in_days', Math.floor(uptime / 86400)],
        ['hz', 10],
        ['configured_hz', 10],
        ['executable', process.argv[1] ?? ''],
        ['config_file', ''],
        ['io_threads_active', 0],
        ['nokv_version', NOKV_REDIS_VERSION],
        ['nokv_backend', s.backend.kind],
        ['nokv_host', hostname()],
      ]);
    }
    case 'clients':
      return lines('Clients', [
        ['connected_clients', s.clients.size],
        ['cluster_connections', 0],
        ['maxclients', s.maxClients],
        ['blocked_clients', 0],
        ['tracking_clients', 0],
        ['clients_in_timeout_table', 0],
      ]);
    case 'stats': {
      const st = s.stats;
      return lines('Stats', [
        ['total_connections_received', st.connectionsReceived],
        ['total_commands_processed', st.commandsProcessed],
        ['total_net_input_bytes', st.netInputBytes],
        ['total_net_output_bytes', st.netOutputBytes],
        ['rejected_connections', st.rejectedConnections],
        ['expired_keys', st.expiredKeys],
        ['evicted_keys', 0],
        ['keyspace_hits', st.keyspaceHits],
        ['keyspace_misses', st.keyspaceMisses],
        ['pubsub_channels', 0],
        ['pubsub_patterns', 0],
        ['total_error_replies', st.errorReplies],
      ]);
    }
    case 'keyspace': {
      const { keys, expires } = await countKeys(call);
      return lines('Keyspace', keys > 0 ? [['db0', `keys=${keys},expires=${expires},avg_ttl=0`]] : []);
    }
  }
}

async function info(call: Call): Promise<Reply> {
  let wanted: Section[];
  if (call.args.length === 1) {
    wanted = [...SECTIONS];
  } else {
    const names = call.args.slice(1).map(lower);
    wanted = names.some((n) => n === 'all' || n === 'everything' || n === 'default')
      ? [...SECTIONS]
      : SECTIONS.filter((sec) => names.includes(sec));
  }
  const parts: string[] = [];
  for (const sec of wanted) parts.push(await infoSection(call, sec));
  return verbatim(parts.join('\r\n'));
}

// ---- COMMAND --------------------------------------------------------------------------------

function keySpecs(spec: CommandSpec): Reply {
  if (spec.firstKey <= 0) return array([]);
  const write = spec.flags.includes('write');
  const lastRelative = spec.lastKey < 0 ? spec.lastKey : spec.lastKey - spec.firstKey;
  return array([
    stringMap([
      ['flags', set(write ? [simple('RW'), simple('update')] : [simple('RO'), simple('access')])],
      [
        'begin_search',
        stringMap([
          ['type', bulk('index')],
          ['spec', stringMap([['index', int(spec.firstKey)]])],
        ]),
      ],
      [
        'find_keys',
        stringMap([
          ['type', bulk('range')],
          [
            'spec',
            stringMap([
              ['lastkey', int(lastRelative)],
              ['keystep', int(spec.step)],
              ['limit', int(0)],
            ]),
          ],
        ]),
      ],
    ]),
  ]);
}

function commandInfo(spec: CommandSpec, parent?: CommandSpec): Reply {
  return array([
    bulk(parent ? `${parent.name}|${spec.name}` : spec.name),
    int(spec.arity),
    set(spec.flags.map((f) => simple(f))),
    int(spec.firstKey),
    int(spec.lastKey),
    int(spec.step),
    set(spec.acl.map((a) => simple(`@${a}`))),
    array([]),
    keySpecs(spec),
    array((spec.subcommands ?? []).map((sub) => commandInfo(sub, spec))),
  ]);
}

function commandDocs(spec: CommandSpec, parent?: CommandSpec): Reply {
  const fields: [string, Reply][] = [
    ['summary', bulk(spec.summary)],
    ['since', bulk(spec.since)],
    ['group', bulk(parent ? parent.group : spec.group)],
    ['complexity', bulk(spec.complexity)],
  ];
  if (spec.subcommands) {
    fields.push([
      'subcommands',
      map(spec.subcommands.map((sub) => [bulk(`${spec.name}|${sub.name}`), commandDocs(sub, spec)] as const)),
    ]);
  }
  return stringMap(fields);
}

function lookupFullName(
  table: CommandTable,
  name: string,
): { spec: CommandSpec; parent?: CommandSpec } | undefined {
  const bar = name.indexOf('|');
  if (bar < 0) {
    const spec = table.get(name);
    return spec ? { spec } : undefined;
  }
  const parent = table.get(name.slice(0, bar));
  const sub = parent?.subcommands?.find((s) => s.name === name.slice(bar + 1));
  return parent && sub ? { spec: sub, parent } : undefined;
}

const COMMAND_HELP = [
  'COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
  '(no subcommand)',
  '    Return details about all Redis commands.',
  'COUNT',
  '    Return the total number of commands in this Redis server.',
  'LIST',
  '    Return a list of all commands in this Redis server.',
  'INFO [<command-name> ...]',
  '    Return details about multiple Redis commands.',
  '    If no command names are given, documentation details for all',
  '    commands are returned.',
  'DOCS [<command-name> ...]',
  '    Return documentation details about multiple Redis commands.',
  '    If no command names are given, documentation details for all',
  '    commands are returned.',
  'HELP',
  '    Print this help.',
];

function commandCommand(table: () => CommandTable) {
  return (call: Call): Reply => {
    const t = table();
    if (call.args.length === 1) return array(t.all.map((s) => commandInfo(s)));
    const sub = call.args[1]!;
    const names = call.args.slice(2).map(lower);
    if (is(sub, 'count') && call.args.length === 2) return int(t.all.length);
    if (is(sub, 'list')) {
      if (call.args.length > 2) throw err('syntax error');
      return array(t.all.map((s) => bulk(s.name)));
    }
    if (is(sub, 'info')) {
      if (names.length === 0) return array(t.all.map((s) => commandInfo(s)));
      return array(
        names.map((n) => {
          const found = lookupFullName(t, n);
          return found ? commandInfo(found.spec, found.parent) : NULL;
        }),
      );
    }
    if (is(sub, 'docs')) {
      const specs =
        names.length === 0
          ? t.all.map((spec) => ({ name: spec.name, spec, parent: undefined }))
          : names.flatMap((n) => {
              const found = lookupFullName(t, n);
              return found ? [{ name: n, spec: found.spec, parent: found.parent }] : [];
            });
      return map(specs.map((f) => [bulk(f.name), commandDocs(f.spec, f.parent)] as const));
    }
    if (is(sub, 'help') && call.args.length === 2) return array(COMMAND_HELP.map((l) => simple(l)));
    if (is(sub, 'count') || is(sub, 'help')) {
      throw err(`wrong number of arguments for 'command|${lower(sub)}' command`);
    }
    throw unknownSubcommand(call.args[0]!, sub);
  };
}

// ---- CONFIG ---------------------------------------------------------------------------------

function configValues(call: Call): [string, string][] {
  return [
    ['appendonly', 'no'],
    ['save', ''],
    ['databases', '1'],
    ['maxclients', String(call.server.maxClients)],
    ['maxmemory', '0'],
    ['maxmemory-policy', 'noeviction'],
    ['port', String(call.server.port())],
    ['proto-max-bulk-len', String(call.server.maxBulkBytes)],
    ['timeout', '0'],
  ];
}

function config(call: Call): Reply {
  const sub = call.args[1]!;
  if (is(sub, 'get')) {
    if (call.args.length < 3) throw err("wrong number of arguments for 'config|get' command");
    const patterns = call.args.slice(2).map((p) => Buffer.from(lower(p), 'latin1'));
    const out = configValues(call).filter(([k]) => patterns.some((p) => globMatch(p, Buffer.from(k))));
    return map(out.map(([k, v]) => [bulk(k), bulk(v)] as const));
  }
  if (is(sub, 'set')) {
    if (call.args.length < 4) throw err("wrong number of arguments for 'config|set' command");
    throw err(`Unknown option or number of arguments for CONFIG SET - '${call.args[2]!.toString('latin1')}'`);
  }
  if (is(sub, 'resetstat')) {
    const st = call.server.stats;
    st.commandsProcessed = 0;
    st.errorReplies = 0;
    st.keyspaceHits = 0;
    st.keyspaceMisses = 0;
    st.expiredKeys = 0;
    st.rejectedConnections = 0;
    st.connectionsReceived = 0;
    st.netInputBytes = 0;
    st.netOutputBytes = 0;
    return OK;
  }
  throw unknownSubcommand(call.args[0]!, sub);
}

function time(): Reply {
  const ns = process.hrtime.bigint();
  const now = BigInt(Date.now()) * 1000n + ((ns / 1000n) % 1000n);
  return array([bulk(String(now / 1_000_000n)), bulk(String(now % 1_000_000n))]);
}

const tx = (name: string, arity: number, summary: string, special?: CommandSpec['special']): CommandSpec =>
  command({
    name,
    arity,
    flags:
      name === 'exec' || name === 'unwatch'
        ? ['noscript', 'loading', 'stale']
        : ['noscript', 'loading', 'stale', 'fast'],
    firstKey: name === 'watch' ? 1 : 0,
    lastKey: name === 'watch' ? -1 : 0,
    step: name === 'watch' ? 1 : 0,
    acl: name === 'exec' ? ['slow', 'transaction'] : ['fast', 'transaction'],
    group: 'transactions',
    since: name === 'watch' || name === 'unwatch' ? '2.2.0' : '1.2.0',
    summary,
    ...(special ? { special } : {}),
    run: () => OK,
  });

export function serverCommands(table: () => CommandTable): CommandSpec[] {
  return [
    command({
      name: 'info',
      arity: -1,
      flags: ['loading', 'stale', 'sentinel'],
      group: 'server',
      acl: ['slow', 'dangerous'],
      summary: 'Get information and statistics about the server',
      run: info,
    }),
    command({
      name: 'command',
      arity: -1,
      flags: ['loading', 'stale'],
      group: 'server',
      acl: ['slow', 'connection'],
      since: '2.8.13',
      summary: 'Get array of Redis command details',
      complexity: 'O(N) where N is the total number of Redis commands',
      run: commandCommand(table),
    }),
    command({
      name: 'config',
      arity: -2,
      flags: ['admin', 'noscript', 'loading', 'stale'],
      group: 'server',
      acl: ['admin', 'slow', 'dangerous'],
      since: '2.0.0',
      summary: 'A container for server configuration commands (GET, SET, RESETSTAT)',
      complexity: 'Depends on subcommand.',
      run: config,
    }),
    command({
      name: 'time',
      arity: 1,
      flags: ['loading', 'stale', 'fast'],
      group: 'server',
      acl: ['fast'],
      since: '2.6.0',
      summary: 'Return the current server time',
      run: time,
    }),
    tx('multi', 1, 'Mark the start of a transaction block', 'multi'),
    tx('exec', 1, 'Execute all commands issued after MULTI', 'exec'),
    tx('discard', 1, 'Discard all commands issued after MULTI', 'discard'),
    tx('watch', -2, 'Watch the given keys to determine execution of the MULTI/EXEC block', 'watch'),
    tx('unwatch', 1, 'Forget about all watched keys'),
  ];
}
