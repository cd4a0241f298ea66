// Helpers for the transaction tests: a real engine in a temp dir, and applying a command's writes.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Database, open } from '@nokv/engine';
import type { TxnCommandResult } from './commands.js';

export async function withTxnDb(fn: (db: Database) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'nokv-txn-'));
  const db = await open({ dir, compactionThreads: 0 });
  try {
    await fn(db);
  } finally {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs a command and applies its writes (as the store would, in one batch). */
export async function apply<R>(db: Database, result: Promise<TxnCommandResult<R>>): Promise<R> {
  const r = await result;
  if (r.writes.length > 0) await db.internal.write(r.writes);
  return r.response;
}

export const b = (s: string): Buffer => Buffer.from(s);
