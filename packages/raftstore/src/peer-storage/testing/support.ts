import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Database, open } from '@nokv/engine';
import { type Entry, EntryType, type RegionMeta, RegionState } from '@nokv/proto';

/** A region with voters on stores 1..voters and learners after them (peer id = 10 × store id). */
export function testRegion(
  id: bigint,
  opts: { start?: string; end?: string; voters?: number; learners?: number; version?: bigint } = {},
): RegionMeta {
  const voters = opts.voters ?? 3;
  const learners = opts.learners ?? 0;
  const peers = [];
  for (let s = 1; s <= voters + learners; s++) {
    peers.push({ storeId: BigInt(s), peerId: BigInt(s) * 10n + id, learner: s > voters });
  }
  return {
    id,
    startKey: Buffer.from(opts.start ?? ''),
    endKey: Buffer.from(opts.end ?? ''),
    epoch: { version: opts.version ?? 1n, confVersion: 1n },
    peers,
    state: RegionState.Running,
  };
}

export function entry(index: bigint | number, term: bigint | number, data?: string): Entry {
  return {
    index: BigInt(index),
    term: BigInt(term),
    type: EntryType.Normal,
    data: Buffer.from(data ?? `e${index}-${term}`),
  };
}

/** Entries [from, to] all with `term`. */
export function entries(from: number, to: number, term: number): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i, term));
  return out;
}

/** A temp engine directory that can be opened, closed and reopened; `cleanup` closes and removes it. */
export class TempEngine {
  db!: Database;
  private constructor(readonly dir: string) {}

  static async create(prefix = 'nokv-peer-storage-'): Promise<TempEngine> {
    const t = new TempEngine(await mkdtemp(join(tmpdir(), prefix)));
    await t.open();
    return t;
  }

  async open(): Promise<Database> {
    this.db = await open({ dir: this.dir });
    return this.db;
  }

  async reopen(): Promise<Database> {
    await this.db.close();
    return this.open();
  }

  async cleanup(): Promise<void> {
    await this.db?.close();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** Resolves once `cond` holds, polling; rejects after `ms`. */
export async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
