import { type Database, open } from '@nokv/engine';
import type { EngineAdapter } from './adapter.js';

export class NoKVAdapter implements EngineAdapter {
  readonly name = 'nokv';
  db!: Database;

  async open(dir: string, options: { cacheBytes: number }): Promise<void> {
    // The cache budget is shared with the row cache, so the total matches the peers' budget.
    const rowCacheBytes = Math.floor(options.cacheBytes / 4);
    this.db = await open({ dir, blockCacheBytes: options.cacheBytes - rowCacheBytes, rowCacheBytes });
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
    return (await this.db.scan({ gte: startKey, limit: count })).length;
  }
  async settle(): Promise<void> {}
  close(): Promise<void> {
    return this.db.close();
  }
}
