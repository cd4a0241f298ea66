/** What a command implementation sees, and how it is described to COMMAND / COMMAND DOCS. */

import type { KvBackend } from '../backend/backend.js';
import type { Protocol } from '../resp/encoder.js';
import type { Reply } from '../resp/reply.js';
import type { KeyTxn } from './keyspace.js';
import type { ScanCursors } from './scan-cursors.js';
import type { WatchRegistry } from './watches.js';

/** One connection's state, as CLIENT, HELLO, MULTI and INFO see it. */
export interface ClientState {
  readonly id: number;
  name: string;
  resp: Protocol;
  readonly addr: string;
  readonly laddr: string;
  readonly fd: number;
  readonly createdAt: number;
  lastActive: number;
  /** Full name of the last command (`client|info`), as in CLIENT LIST's `cmd=`. */
  lastCommand: string;
  /** Commands queued by MULTI (undefined outside MULTI). */
  multi: QueuedCommand[] | undefined;
  /** A command failed to queue: EXEC answers EXECABORT. */
  multiFailed: boolean;
  /** WATCHed keys and what they held when watched (envelope bytes, or undefined if absent). */
  readonly watched: Map<string, { key: Buffer; snapshot: string | undefined }>;
  /** A watched key was written through this gateway since WATCH: EXEC must abort. */
  watchDirty: boolean;
  /** Set by QUIT: close once the replies so far are written. */
  closeAfterReply: boolean;
  /** Bytes waiting in the socket's write buffer (for CLIENT LIST's omem). */
  outputBytes(): number;
  /** Bytes received but not yet parsed (CLIENT LIST's qbuf). */
  queryBytes(): number;
}

export interface QueuedCommand {
  spec: CommandSpec;
  args: Buffer[];
  fullName: string;
}

export interface ServerStats {
  connectionsReceived: number;
  rejectedConnections: number;
  commandsProcessed: number;
  errorReplies: number;
  keyspaceHits: number;
  keyspaceMisses: number;
  expiredKeys: number;
  netInputBytes: number;
  netOutputBytes: number;
}

export interface ServerContext {
  readonly backend: KvBackend;
  readonly allowFlush: boolean;
  readonly maxClients: number;
  readonly maxBulkBytes: number;
  readonly startedAt: number;
  readonly port: () => number;
  readonly stats: ServerStats;
  readonly clients: ReadonlyMap<number, ClientState>;
  readonly cursors: ScanCursors;
  readonly watches: WatchRegistry;
  readonly runId: string;
}

/** Runs `fn` against the keyspace: in its own transaction, or inside EXEC's shared one. */
export interface KvAccess {
  tx<T>(fn: (t: KeyTxn) => Promise<T>): Promise<T>;
}

export interface Call {
  readonly args: Buffer[];
  readonly client: ClientState;
  readonly server: ServerContext;
  readonly kv: KvAccess;
  /** The command's full name (`set`, `client|setname`) for error messages. */
  readonly fullName: string;
}

export type CommandFlag =
  | 'write'
  | 'readonly'
  | 'denyoom'
  | 'admin'
  | 'noscript'
  | 'loading'
  | 'stale'
  | 'fast'
  | 'no_auth'
  | 'allow_busy'
  | 'no_multi'
  | 'movablekeys'
  | 'sentinel'
  | 'no_mandatory_keys';

export interface CommandSpec {
  /** Lower case; subcommands by their own name (`setname`). */
  readonly name: string;
  /** Redis arity: N = exactly N arguments (name included), -N = at least N. */
  readonly arity: number;
  readonly flags: readonly CommandFlag[];
  readonly firstKey: number;
  readonly lastKey: number;
  readonly step: number;
  /** ACL categories without `@`. */
  readonly acl: readonly string[];
  readonly group: string;
  readonly since: string;
  readonly summary: string;
  readonly complexity: string;
  readonly subcommands?: readonly CommandSpec[];
  /**
   * How the command treats a transaction: 'queue' (runs at EXEC like any command), or handled by
   * the dispatcher itself around MULTI ('multi', 'exec', 'discard', 'watch', 'quit').
   */
  readonly special?: 'multi' | 'exec' | 'discard' | 'watch' | 'quit';
  readonly run: (call: Call) => Promise<Reply> | Reply;
}

/** Fills the COMMAND metadata defaults of a spec. */
export function command(
  spec: Pick<CommandSpec, 'name' | 'arity' | 'run'> & Partial<CommandSpec>,
): CommandSpec {
  return {
    flags: [],
    firstKey: 0,
    lastKey: 0,
    step: 0,
    acl: [],
    group: 'generic',
    since: '1.0.0',
    summary: '',
    complexity: 'O(1)',
    ...spec,
  };
}
