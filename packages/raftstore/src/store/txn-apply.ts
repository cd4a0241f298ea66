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

export type { InternalWrite };
