import * as fs from 'node:fs';
import { promisify } from 'node:util';
import type { OpenMode, Vfs, VfsFile } from './vfs.js';

const fsWrite = promisify(fs.write);
const fsFsync = promisify(fs.fsync);
const fsFtruncate = promisify(fs.ftruncate);
const fsClose = promisify(fs.close);
const fsOpen = promisify(fs.open);

const FLAGS: Record<OpenMode, number> = {
  read: fs.constants.O_RDONLY,
  readwrite: fs.constants.O_RDWR,
  createExclusive: fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL,
  createTruncate: fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_TRUNC,
};

class NodeFile implements VfsFile {
  readonly path: string;
  private fd: number;
  private closed = false;

  constructor(path: string, fd: number) {
    this.path = path;
    this.fd = fd;
  }

  readAt(buffer: Uint8Array, position: number): number {
    let done = 0;
    while (done < buffer.length) {
      const n = fs.readSync(this.fd, buffer, done, buffer.length - done, position + done);
      if (n === 0) break;
      done += n;
    }
    return done;
  }

  async write(data: Uint8Array, position: number): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await fsWrite(this.fd, data, done, data.length - done, position + done);
      done += bytesWritten;
    }
  }

  writevSync(chunks: readonly Uint8Array[], position: number): void {
    let pending = chunks as Uint8Array[];
    let pos = position;
    for (;;) {
      let total = 0;
      for (const c of pending) total += c.length;
      if (total === 0) return;
      const n = fs.writevSync(this.fd, pending, pos);
      if (n === total) return;
      // Short write (rare on regular files): continue after the bytes that made it.
      pos += n;
      let skip = n;
      const rest: Uint8Array[] = [];
      for (const c of pending) {
        if (skip >= c.length) {
          skip -= c.length;
          continue;
        }
        rest.push(skip > 0 ? c.subarray(skip) : c);
        skip = 0;
      }
      pending = rest;
    }
  }

  async sync(): Promise<void> {
    await fsFsync(this.fd);
  }

  async truncate(size: number): Promise<void> {
    await fsFtruncate(this.fd, size);
  }

  size(): number {
    return fs.fstatSync(this.fd).size;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await fsClose(this.fd);
  }
}

/** The real filesystem. */
export class NodeVfs implements Vfs {
  async open(path: string, mode: OpenMode): Promise<VfsFile> {
    const fd = await fsOpen(path, FLAGS[mode], 0o644);
    return new NodeFile(path, fd);
  }

  readFile(path: string): Promise<Buffer> {
    return fs.promises.readFile(path);
  }

  rename(from: string, to: string): Promise<void> {
    return fs.promises.rename(from, to);
  }

  unlink(path: string): Promise<void> {
    return fs.promises.unlink(path);
  }

  async mkdirp(path: string): Promise<void> {
    await fs.promises.mkdir(path, { recursive: true });
  }

  readdir(dir: string): Promise<string[]> {
    return fs.promises.readdir(dir);
  }

  async exists(path: string): Promise<boolean> {
    try {
      await fs.promises.access(path);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  async syncDir(dir: string): Promise<void> {
    const fd = await fsOpen(dir, fs.constants.O_RDONLY);
    try {
      await fsFsync(fd);
    } finally {
      await fsClose(fd);
    }
  }
}

/** The process-wide real filesystem instance. */
export const nodeVfs: Vfs = new NodeVfs();
