import RocksDB from 'rocksdb-native';
import type { EngineAdapter } from './adapter.js';

/** RocksDB through Holepunch's rocksdb-native (no per-write fsync: the WAL is not synced). */
export class RocksDbAdapter implements EngineAdapter {
  readonly name = 'rocksdb';
  private db!: RocksDB;

  async open(dir: string): Promise<void> {
    this.db = new RocksDB(dir);
    await this.db.ready();
  }
  insert(key: string, value: Buffer): Promise<void> {
    return this.db.put(key, value);
  }
  async read(key: string): Promise<Buffer | undefined> {
    return (await this.db.get(key)) ?? undefined;
  }
  update(key: string, value: Buffer): Promise<void> {
    return this.db.put(key, value);
  }
  async scan(startKey: string, count: number): Promise<number> {
    let n = 0;
    for await (const _ of this.db.iterator({ gte: startKey, limit: count })) n++;
    return n;
  }
  async settle(): Promise<void> {}
  close(): Promise<void> {
    return this.db.close();
  }
}
