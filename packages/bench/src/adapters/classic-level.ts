import { ClassicLevel } from 'classic-level';
import type { EngineAdapter } from './adapter.js';

/** LevelDB through classic-level (its own C++ thread pool does the I/O). */
export class ClassicLevelAdapter implements EngineAdapter {
  readonly name = 'classic-level';
  private db!: ClassicLevel<string, Buffer>;

  async open(dir: string, options: { cacheBytes: number }): Promise<void> {
    this.db = new ClassicLevel<string, Buffer>(dir, { keyEncoding: 'utf8', valueEncoding: 'buffer' });
    await this.db.open({ cacheSize: options.cacheBytes, writeBufferSize: 64 * 1024 * 1024 });
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
    const it = this.db.iterator({ gte: startKey, limit: count });
    try {
      return (await it.nextv(count)).length;
    } finally {
      await it.close();
    }
  }
  async settle(): Promise<void> {}
  close(): Promise<void> {
    return this.db.close();
  }
}
