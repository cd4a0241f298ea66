/**
 * Writes a table built by `TableBuilder` into its file: chunks are appended as they are produced,
 * then the file is fsynced. The caller fsyncs the directory before a manifest edit names the table,
 * so a table the manifest lists is always fully on disk.
 */

import { IoError } from '../errors.js';
import type { Vfs, VfsFile } from '../vfs/vfs.js';

export class TableFileWriter {
  readonly path: string;
  private readonly vfs: Vfs;
  private readonly file: VfsFile;
  private offset = 0;

  private constructor(vfs: Vfs, file: VfsFile) {
    this.vfs = vfs;
    this.file = file;
    this.path = file.path;
  }

  static async create(vfs: Vfs, path: string): Promise<TableFileWriter> {
    try {
      return new TableFileWriter(vfs, await vfs.open(path, 'createExclusive'));
    } catch (err) {
      throw new IoError('create', path, err);
    }
  }

  get bytesWritten(): number {
    return this.offset;
  }

  /**
   * Appends `chunks`. Synchronous underneath: tables are built in a worker thread, where blocking
   * is free, and a megabyte into the page cache is a fraction of a millisecond on the event loop.
   */
  async write(chunks: readonly Buffer[]): Promise<void> {
    if (chunks.length === 0) return;
    let bytes = 0;
    for (const c of chunks) bytes += c.length;
    try {
      this.file.writevSync(chunks, this.offset);
    } catch (err) {
      throw new IoError('write', this.path, err);
    }
    this.offset += bytes;
  }

  /** fsyncs and closes the file. */
  async finish(): Promise<void> {
    try {
      await this.file.sync();
    } catch (err) {
      await this.file.close().catch(() => undefined);
      throw new IoError('sync', this.path, err);
    }
    try {
      await this.file.close();
    } catch (err) {
      throw new IoError('close', this.path, err);
    }
  }

  /** Closes and deletes the partial file (best effort: an orphan is removed at the next open). */
  async abort(): Promise<void> {
    await this.file.close().catch(() => undefined);
    await this.vfs.unlink(this.path).catch(() => undefined);
  }
}
