import { open, type RootDatabase } from 'lmdb';
import type { EngineAdapter } from './adapter.js';

/** LMDB through lmdb-js: memory-mapped B+tree, synchronous reads, batched async writes, no fsync. */
export class LmdbAdapter implements EngineAdapter {
  readonly name = 'lmdb';
  private db!: RootDatabase<Buffer, string>;

  async open(dir: string): Promise<void> {
    this.db = open<Buffer, string>({ path: dir, noSync: true, encoding: 'binary', compression: false });
  }
  async insert(key: string, value: Buffer): Promise<void> {
    await this.db.put(key, value);
  }
  async read(key: string): Promise<Buffer | undefined> {
    return this.db.get(key);
  }
  async update(key: string, value: Buffer): Promise<void> {
    await this.db.put(key, value);
  }
  async scan(startKey: string, count: number): Promise<number> {
    let n = 0;
    for (const _ of this.db.getRange({ start: startKey, limit: count })) n++;
    return n;
  }
  async settle(): Promise<void> {
    await this.db.flushed;
  }
  close(): Promise<void> {
    return this.db.close();
  }
}
