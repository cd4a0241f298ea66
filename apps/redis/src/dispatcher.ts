/**
 * From parsed arguments to a reply: command lookup, arity, MULTI queuing, EXEC as one backend
 * transaction, WATCH, error mapping, stats and metrics. One connection's commands reach it one at
 * a time (the connection awaits each), so per-connection state needs no locking.
 */

import type { Logger } from 'pino';
import { BackendError, type BackendErrorCode } from './backend/backend.js';
import { EnvelopeError } from './backend/envelope.js';
import { RedisError, unknownCommand, unknownSubcommand, WRONG_ARITY } from './commands/errors.js';
import { KeyTxn } from './commands/keyspace.js';
import { lower } from './commands/numbers.js';
import type { CommandTable } from './commands/server-commands.js';
import type { Call, ClientState, CommandSpec, KvAccess, ServerContext } from './commands/types.js';
import type { GatewayMetrics } from './metrics.js';
import { array, errorReply, NULL_ARRAY, OK, QUEUED, type Reply } from './resp/reply.js';

const EXECABORT = 'EXECABORT Transaction discarded because of previous errors.';

interface Resolved {
  spec: CommandSpec;
  fullName: string;
}

/** How storage failures reach clients: TRYAGAIN when a retry can succeed, ERR otherwise. */
function backendErrorText(code: BackendErrorCode, message: string): string {
  return code === 'Internal' ? `ERR ${message}` : `TRYAGAIN ${message}`;
}

export class Dispatcher {
  /** Marks WATCHers of written keys dirty (skipped cheaply while nobody watches). */
  private readonly touch = (keys: Iterable<string>): void => {
    if (!this.server.watches.empty) this.server.watches.touch(keys);
  };

  constructor(
    private readonly table: CommandTable,
    private readonly server: ServerContext,
    private readonly metrics: GatewayMetrics,
    private readonly logger: Logger | undefined,
  ) {}

  /** Never throws: every failure becomes an error reply. */
  async execute(client: ClientState, args: Buffer[]): Promise<Reply> {
    const started = performance.now();
    const resolved = this.resolve(args);
    const name = typeof resolved === 'string' ? 'unknown' : resolved.fullName;
    let reply: Reply;
    if (typeof resolved === 'string') {
      // Rejected before execution: inside MULTI this dooms the EXEC.
      if (client.multi !== undefined) client.multiFailed = true;
      reply = errorReply(resolved);
    } else {
      client.lastCommand = resolved.fullName;
      reply = await this.dispatch(client, resolved, args);
    }
    this.server.stats.commandsProcessed++;
    this.account(name, reply);
    this.metrics.command(name, (performance.now() - started) / 1000);
    return reply;
  }

  /** A protocol error reply, counted like any other error. */
  protocolError(message: string): Reply {
    this.account('protocol', errorReply(message));
    return errorReply(message);
  }

  private account(name: string, reply: Reply): void {
    if (reply.t !== 'error') return;
    this.server.stats.errorReplies++;
    const space = reply.v.indexOf(' ');
    this.metrics.error(name, space < 0 ? reply.v : reply.v.slice(0, space));
  }

  /** The command and its full name, or the error text for unknown commands and bad arity. */
  private resolve(args: Buffer[]): Resolved | string {
    const name = lower(args[0]!);
    const spec = this.table.get(name);
    if (spec === undefined) return unknownCommand(args).message;
    let target = spec;
    let fullName = name;
    if (spec.subcommands && args.length >= 2) {
      const subName = lower(args[1]!);
      const sub = spec.subcommands.find((s) => s.name === subName);
      if (sub === undefined) return unknownSubcommand(args[0]!, args[1]!).message;
      target = sub;
      fullName = `${name}|${subName}`;
    }
    const arity = target.arity;
    if ((arity > 0 && arity !== args.length) || args.length < -arity) return WRONG_ARITY(fullName).message;
    return { spec: target, fullName };
  }

  private async dispatch(client: ClientState, r: Resolved, args: Buffer[]): Promise<Reply> {
    const special = r.spec.special;
    if (client.multi !== undefined) {
      switch (special) {
        case 'multi':
          return errorReply('ERR MULTI calls can not be nested');
        case 'watch':
          return errorReply('ERR WATCH inside MULTI is not allowed');
        case 'exec':
          return this.exec(client);
        case 'discard':
          client.multi = undefined;
          client.multiFailed = false;
          this.server.watches.unwatchAll(client);
          return OK;
        case 'quit':
          client.closeAfterReply = true;
          return OK;
        default:
          client.multi.push({ spec: r.spec, args, fullName: r.fullName });
          return QUEUED;
      }
    }
    switch (special) {
      case 'multi':
        client.multi = [];
        client.multiFailed = false;
        return OK;
      case 'exec':
        return errorReply('ERR EXEC without MULTI');
      case 'discard':
        return errorReply('ERR DISCARD without MULTI');
      case 'watch':
        return this.watch(client, args.slice(1));
      case 'quit':
        client.closeAfterReply = true;
        return OK;
      default:
        return this.runStandalone(client, r, args);
    }
  }

  private runStandalone(client: ClientState, r: Resolved, args: Buffer[]): Promise<Reply> {
    const backend = this.server.backend;
    const write = r.spec.flags.includes('write');
    const kv: KvAccess = {
      tx: (fn) =>
        backend.transact(async (tx) => {
          const t = new KeyTxn(tx, Date.now(), this.touch);
          if (write) t.markWrite();
          const result = await fn(t);
          t.finish();
          return result;
        }),
    };
    return this.run(client, r.spec, r.fullName, args, kv, false);
  }

  /** Runs one command; its RedisError (or storage failure) becomes its reply. */
  private async run(
    client: ClientState,
    spec: CommandSpec,
    fullName: string,
    args: Buffer[],
    kv: KvAccess,
    inExec: boolean,
  ): Promise<Reply> {
    const call: Call = { args, client, server: this.server, kv, fullName };
    try {
      if (spec.name === 'unwatch') this.server.watches.unwatchAll(client);
      return await spec.run(call);
    } catch (err) {
      // Inside EXEC a storage failure breaks the shared transaction: it must fail (or retry) whole.
      if (inExec && err instanceof BackendError) throw err;
      return this.errorFor(err, fullName);
    }
  }

  private errorFor(err: unknown, fullName: string): Reply {
    if (err instanceof RedisError) return errorReply(err.message);
    if (err instanceof BackendError) return errorReply(backendErrorText(err.code, err.message));
    if (err instanceof EnvelopeError) return errorReply(`ERR corrupt value: ${err.message}`);
    this.logger?.error({ err, command: fullName }, 'redis command failed unexpectedly');
    return errorReply(
      `ERR internal error in '${fullName}': ${err instanceof Error ? err.message : String(err)}`,
    );
  }

  private async watch(client: ClientState, keys: Buffer[]): Promise<Reply> {
    // Registered before the read, so a write ordered after the read cannot go unnoticed.
    // Redis keeps the first WATCH of a key: a later one does not reset what it saw.
    const fresh = keys.filter((key) => !client.watched.has(key.toString('latin1')));
    for (const key of fresh) this.server.watches.watch(client, key.toString('latin1'));
    try {
      const snapshots = await this.server.backend.transact(async (tx) => {
        const t = new KeyTxn(tx, Date.now());
        const out: (string | undefined)[] = [];
        for (const key of fresh) out.push(await t.snapshotOf(key));
        return out;
      });
      fresh.forEach((key, i) => {
        const k = key.toString('latin1');
        if (!client.watched.has(k)) client.watched.set(k, { key: Buffer.from(key), snapshot: snapshots[i] });
      });
      return OK;
    } catch (err) {
      // Without a snapshot the watch cannot be honoured: make the coming EXEC fail safe.
      client.watchDirty = true;
      return this.errorFor(err, 'watch');
    }
  }

  /**
   * EXEC: every queued command in ONE backend transaction. Watched keys are re-read inside it and
   * compared with what WATCH saw (value and expiry); any difference answers nil without running
   * anything. They are also guarded, so a concurrent commit to them makes this transaction lose
   * the race (abortOnConflict: a lost race answers nil too, as a changed key would).
   */
  private async exec(client: ClientState): Promise<Reply> {
    const queued = client.multi ?? [];
    const failed = client.multiFailed;
    const watched = [...client.watched.values()];
    // Read now: the transaction below may run later, and this client's mark must count.
    const dirtyAtExec = client.watchDirty;
    client.multi = undefined;
    client.multiFailed = false;
    if (failed) {
      this.server.watches.unwatchAll(client);
      return errorReply(EXECABORT);
    }
    // Each queued command counts as processed (as in Redis), on top of EXEC itself.
    try {
      const replies = await this.server.backend.transact(
        async (tx) => {
          const t = new KeyTxn(tx, Date.now(), this.touch);
          // Checked inside the transaction: writes ordered before it have marked this client.
          if (dirtyAtExec || client.watchDirty) return undefined;
          this.server.watches.unwatchAll(client);
          for (const w of watched) {
            if ((await t.snapshotOf(w.key)) !== w.snapshot) return undefined;
            t.guard(w.key);
          }
          const kv: KvAccess = {
            tx: (fn) => {
              t.now = Date.now();
              return fn(t);
            },
          };
          const out: Reply[] = [];
          for (const q of queued) {
            const fullName = q.fullName;
            if (q.spec.flags.includes('write')) t.markWrite();
            const started = performance.now();
            const reply = await this.run(client, q.spec, fullName, q.args, kv, true);
            this.metrics.command(fullName, (performance.now() - started) / 1000);
            this.account(fullName, reply);
            out.push(reply);
          }
          t.finish();
          return out;
        },
        watched.length > 0 ? { abortOnConflict: true } : undefined,
      );
      if (replies === undefined) return NULL_ARRAY;
      this.server.stats.commandsProcessed += queued.length;
      return array(replies);
    } catch (err) {
      if (err instanceof BackendError && err.code === 'Conflict' && watched.length > 0) return NULL_ARRAY;
      return this.errorFor(err, 'exec');
    } finally {
      this.server.watches.unwatchAll(client);
    }
  }
}
