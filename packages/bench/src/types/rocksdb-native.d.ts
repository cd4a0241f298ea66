/** The part of rocksdb-native (which ships no types) the benchmark uses. */
declare module 'rocksdb-native' {
  export default class RocksDB {
    constructor(path: string, options?: Record<string, unknown>);
    ready(): Promise<void>;
    get(key: string | Buffer): Promise<Buffer | null>;
    put(key: string | Buffer, value: Buffer | string): Promise<void>;
    iterator(range: {
      gte?: string | Buffer;
      lt?: string | Buffer;
      limit?: number;
    }): AsyncIterable<{ key: Buffer; value: Buffer }>;
    close(): Promise<void>;
  }
}
