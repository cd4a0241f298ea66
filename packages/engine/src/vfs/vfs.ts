/**
 * The engine does all file I/O through this small interface, so tests can swap in `FaultVfs` to
 * fail or tear any write, sync, rename or read at a chosen point.
 *
 * Reads are synchronous positioned reads: engine files are read back mostly from the OS page
 * cache, where a synchronous `pread` costs a few microseconds and an async call costs a trip
 * through libuv's thread pool. Writes, syncs and metadata calls are async.
 */

export type OpenMode =
  /** Read an existing file. */
  | 'read'
  /** Read and write an existing file (used to append to a recovered WAL). */
  | 'readwrite'
  /** Create a new file; fail with EEXIST if it exists. */
  | 'createExclusive'
  /** Create the file, or truncate it if it exists. */
  | 'createTruncate';

export interface VfsFile {
  readonly path: string;
  /** Reads up to `buffer.length` bytes at `position`; returns the number read (short at EOF). */
  readAt(buffer: Uint8Array, position: number): number;
  /** Writes all of `data` at `position`. */
  write(data: Uint8Array, position: number): Promise<void>;
  /**
   * Writes `chunks` back to back at `position`, synchronously. For small appends that land in the
   * page cache (the WAL), where a thread-pool round trip would cost more than the write itself.
   */
  writevSync(chunks: readonly Uint8Array[], position: number): void;
  /** Flushes the file's data and metadata to stable storage. */
  sync(): Promise<void>;
  truncate(size: number): Promise<void>;
  /** Current size in bytes. */
  size(): number;
  close(): Promise<void>;
}

export interface Vfs {
  open(path: string, mode: OpenMode): Promise<VfsFile>;
  /** Reads a whole file. */
  readFile(path: string): Promise<Buffer>;
  /** Atomically replaces `to` with `from` (POSIX rename). */
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** Creates `path` and any missing parents. */
  mkdirp(path: string): Promise<void>;
  /** Names (not paths) of the entries in `dir`. */
  readdir(dir: string): Promise<string[]>;
  exists(path: string): Promise<boolean>;
  /** Makes the directory's entries (creations, renames, deletions) durable. */
  syncDir(dir: string): Promise<void>;
}

/** The operations `FaultVfs` can fail, by name. */
export type VfsOp =
  | 'open'
  | 'read'
  | 'write'
  | 'sync'
  | 'truncate'
  | 'close'
  | 'readFile'
  | 'rename'
  | 'unlink'
  | 'mkdirp'
  | 'readdir'
  | 'exists'
  | 'syncDir';
