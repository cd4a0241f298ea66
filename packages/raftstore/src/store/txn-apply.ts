import type { InternalWrite } from '@nokv/engine';
import {
  batchRollback,
  checkTxnStatus,
  commit,
  prewrite,
  resolveLock,
  type TxnCommandResult,
  type TxnDb,
} from '../txn/index.js';
import type { TxnCommand } from './command.js';

/** Runs a transactional command against the engine: its writes (to apply) and its response. */
export function runTxnCommand(db: TxnDb, cmd: TxnCommand): Promise<TxnCommandResult<unknown>> {
  switch (cmd.type) {
    case 'prewrite':
      return prewrite(db, cmd.req);
    case 'commit':
      return commit(db, cmd.req);
    case 'batchRollback':
      return batchRollback(db, cmd.req);
    case 'resolveLock':
      return resolveLock(db, cmd.req);
    case 'checkTxnStatus':
      return checkTxnStatus(db, cmd.req);
  }
}

/** The keys whose latches a command holds while it runs: every key it reads or writes. */
export function txnLatchKeys(cmd: TxnCommand): Uint8Array[] {
  switch (cmd.type) {
    case 'prewrite':
      return cmd.req.mutations.map((m) => m.key);
    case 'commit':
    case 'batchRollback':
      return [...cmd.req.keys];
    case 'resolveLock':
      // A range resolve reads the lock family over the range: take no per-key latch for unlisted
      // keys (regions apply their own range in log order; the range's keys belong to this region).
      return [...(cmd.req.keys ?? [])];
    case 'checkTxnStatus':
      return [cmd.req.primaryKey];
  }
}

export type { InternalWrite };
