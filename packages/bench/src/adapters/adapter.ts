/** What the YCSB runner needs from a store. Keys are strings, values Buffers. */
export interface EngineAdapter {
  readonly name: string;
  /** Opens (creating) the store in `dir`. */
  open(dir: string, options: { cacheBytes: number }): Promise<void>;
  insert(key: string, value: Buffer): Promise<void>;
  /** Returns the value or undefined. */
  read(key: string): Promise<Buffer | undefined>;
  update(key: string, value: Buffer): Promise<void>;
  /** Reads up to `count` records from `startKey` on; returns how many it read. */
  scan(startKey: string, count: number): Promise<number>;
  /** Waits until background work started by the load is done, if the store has a way to ask. */
  settle(): Promise<void>;
  close(): Promise<void>;
}
