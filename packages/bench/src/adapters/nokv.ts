import { type Database, open } from '@nokv/engine';
import type { EngineAdapter } from './adapter.js';

export class NoKVAdapter implements EngineAdapter {
  readonly name = 'nokv';
  private db!: Database;

  async open(dir: string, options: { cacheBytes: number }): Promise<void> {
    this.db = await open({ dir, blockCacheBytes: options.cacheBytes });
  }
  insert(key: string, value: Buffer): Promise<void> {
    return this.db.set(key, value);
  }
  read(key: string): Promise<Buffer | undefined> {
    return this.db.get(key);
  }
  update(key: string, value: Buffer): Promise<void> {
    return this.db.set(key, value);
  }
  async scan(startKey: string, count: number): Promise<number> {
    let n = 0;
    for await (const _ of this.db.iterate({ gte: startKey, limit: count })) n++;
    return n;
  }
  async settle(): Promise<void> {}
  close(): Promise<void> {
    return this.db.close();
  }
}
