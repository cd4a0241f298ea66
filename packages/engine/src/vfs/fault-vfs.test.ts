import * as fs from 'node:fs';
import * as os from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FaultVfs, InjectedFault, SimulatedCrash } from './fault-vfs.js';
import type { VfsFile, VfsOp } from './vfs.js';

let dir: string;

beforeEach(() => {
  dir = fs.mkdtempSync(join(os.tmpdir(), 'nokv-'));
});

afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const p = (name: string) => join(dir, name);
const size = (name: string) => fs.statSync(p(name)).size;
const exists = (name: string) => fs.existsSync(p(name));

async function outcome(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
    return 'ok';
  } catch (err) {
    return err;
  }
}

/** Writes `data` at `at` and reports 'ok' or the error. */
function writeOutcome(f: VfsFile, data: Buffer, at: number): Promise<unknown> {
  return outcome(() => f.write(data, at));
}

describe('FaultVfs triggers', () => {
  it('nth fails only the n-th matching call', async () => {
    const vfs = new FaultVfs();
    vfs.inject({ op: 'write', path: 'a.log', when: { nth: 2 } });
    const f = await vfs.open(p('a.log'), 'createExclusive');
    const results = [];
    for (let i = 0; i < 4; i++) results.push(await writeOutcome(f, Buffer.from([i]), i));
    expect(results[0]).toBe('ok');
    expect(results[1]).toBeInstanceOf(InjectedFault);
    expect(results[2]).toBe('ok');
    expect(results[3]).toBe('ok');
    const fault = results[1] as InjectedFault;
    expect(fault.code).toBe('EIO');
    expect(fault.op).toBe('write');
    expect(fault.path).toBe(p('a.log'));
    expect(fault.message).toContain(p('a.log'));
    expect(vfs.faultsFired).toBe(1);
    expect(vfs.count('write')).toBe(4);
    // the failed write wrote nothing
    expect([...fs.readFileSync(p('a.log'))]).toEqual([0, 0, 2, 3]);
    await f.close();
  });

  it('counts only calls that match the op and the path', async () => {
    const vfs = new FaultVfs();
    vfs.inject({ op: 'sync', path: 'target', when: { nth: 2 } });
    const target = await vfs.open(p('target'), 'createExclusive');
    const other = await vfs.open(p('other'), 'createExclusive');
    await other.sync();
    await target.sync(); // 1st matching
    await other.sync();
    await target.write(Buffer.from('x'), 0); // other op
    await expect(target.sync()).rejects.toBeInstanceOf(InjectedFault); // 2nd matching
    await target.sync();
    await other.sync();
    expect(vfs.faultsFired).toBe(1);
    await target.close();
    await other.close();
  });

  it('matches paths by substring, regular expression or predicate', async () => {
    const vfs = new FaultVfs();
    fs.writeFileSync(p('000001.sst'), 'a');
    fs.writeFileSync(p('000002.wal'), 'b');
    fs.writeFileSync(p('MANIFEST-000003'), 'c');
    vfs.inject({ op: 'readFile', path: /\.sst$/, when: { after: 0 } });
    vfs.inject({ op: 'readFile', path: (path) => path.endsWith('.wal'), when: { after: 0 } });
    vfs.inject({ op: 'exists', path: 'MANIFEST', when: { after: 0 } });
    await expect(vfs.readFile(p('000001.sst'))).rejects.toBeInstanceOf(InjectedFault);
    await expect(vfs.readFile(p('000002.wal'))).rejects.toBeInstanceOf(InjectedFault);
    expect((await vfs.readFile(p('MANIFEST-000003'))).toString()).toBe('c');
    await expect(vfs.exists(p('MANIFEST-000003'))).rejects.toBeInstanceOf(InjectedFault);
    expect(await vfs.exists(p('000001.sst'))).toBe(true);
  });

  it('after fails every matching call after the first n', async () => {
    const vfs = new FaultVfs();
    vfs.inject({ op: 'readdir', when: { after: 2 } });
    const results = [];
    for (let i = 0; i < 5; i++) results.push(await outcome(() => vfs.readdir(dir)));
    expect(results.map((r) => (r === 'ok' ? 'ok' : 'fail'))).toEqual(['ok', 'ok', 'fail', 'fail', 'fail']);
    expect(vfs.faultsFired).toBe(3);
  });

  it('after: 0 fails every matching call', async () => {
    const vfs = new FaultVfs();
    vfs.inject({ op: 'mkdirp', when: { after: 0 } });
    await expect(vfs.mkdirp(p('x'))).rejects.toBeInstanceOf(InjectedFault);
    await expect(vfs.mkdirp(p('y'))).rejects.toBeInstanceOf(InjectedFault);
    expect(exists('x')).toBe(false);
  });

  it('probability draws from the supplied random source', async () => {
    const draws = [0.1, 0.9, 0.49, 0.5, 0.7, 0.0];
    let i = 0;
    const vfs = new FaultVfs({ random: () => draws[i++]! });
    vfs.inject({ op: 'exists', when: { probability: 0.5 } });
    const results = [];
    for (let k = 0; k < draws.length; k++) results.push(await outcome(() => vfs.exists(dir)));
    expect(results.map((r) => (r === 'ok' ? 'ok' : 'fail'))).toEqual([
      'fail',
      'ok',
      'fail',
      'ok',
      'ok',
      'fail',
    ]);
    expect(i).toBe(draws.length);
  });

  it('probability 0 never fires and 1 always fires', async () => {
    const never = new FaultVfs();
    never.inject({ op: 'exists', when: { probability: 0 } });
    for (let k = 0; k < 50; k++) expect(await never.exists(dir)).toBe(true);
    const always = new FaultVfs();
    always.inject({ op: 'exists', when: { probability: 1 } });
    for (let k = 0; k < 50; k++) await expect(always.exists(dir)).rejects.toBeInstanceOf(InjectedFault);
  });

  it('uses the requested errno', async () => {
    const vfs = new FaultVfs();
    vfs.inject({ op: 'open', when: { nth: 1 }, errno: 'ENOSPC' });
    const err = await outcome(() => vfs.open(p('f'), 'createExclusive'));
    expect(err).toBeInstanceOf(InjectedFault);
    expect((err as InjectedFault).code).toBe('ENOSPC');
    expect((err as InjectedFault).message).toMatch(/^ENOSPC/);
    expect(exists('f')).toBe(false); // a failed open creates nothing
  });

  it('each rule counts every matching call, even one another rule failed', async () => {
    const vfs = new FaultVfs();
    vfs.inject({ op: 'exists', when: { nth: 1 }, errno: 'EFIRST' });
    vfs.inject({ op: 'exists', when: { nth: 2 }, errno: 'ESECOND' });
    const codes = [];
    for (let k = 0; k < 4; k++) {
      const r = await outcome(() => vfs.exists(dir));
      codes.push(r instanceof InjectedFault ? r.code : r);
    }
    expect(codes).toEqual(['EFIRST', 'ESECOND', 'ok', 'ok']);
    expect(vfs.faultsFired).toBe(2);
  });

  it('rules can be disarmed one by one or all at once', async () => {
    const vfs = new FaultVfs();
    const undo = vfs.inject({ op: 'exists', when: { after: 0 } });
    await expect(vfs.exists(dir)).rejects.toBeInstanceOf(InjectedFault);
    undo();
    expect(await vfs.exists(dir)).toBe(true);
    vfs.inject({ op: 'exists', when: { after: 0 } });
    vfs.inject({ op: 'readdir', when: { after: 0 } });
    vfs.clearFaults();
    expect(await vfs.exists(dir)).toBe(true);
    expect(await vfs.readdir(dir)).toEqual([]);
  });

  it('can fail every operation it wraps', async () => {
    const ops: VfsOp[] = [
      'open',
      'read',
      'write',
      'sync',
      'truncate',
      'close',
      'readFile',
      'rename',
      'unlink',
      'mkdirp',
      'readdir',
      'exists',
      'syncDir',
    ];
    for (const op of ops) {
      const vfs = new FaultVfs();
      fs.writeFileSync(p('file'), 'contents');
      const f = op === 'open' ? undefined : await vfs.open(p('file'), 'readwrite');
      vfs.inject({ op, when: { nth: 1 } });
      const call: Record<VfsOp, () => Promise<unknown>> = {
        open: () => vfs.open(p('file'), 'read'),
        read: async () => f!.readAt(Buffer.alloc(4), 0),
        write: () => f!.write(Buffer.from('x'), 0),
        sync: () => f!.sync(),
        truncate: () => f!.truncate(1),
        close: () => f!.close(),
        readFile: () => vfs.readFile(p('file')),
        rename: () => vfs.rename(p('file'), p('renamed')),
        unlink: () => vfs.unlink(p('file')),
        mkdirp: () => vfs.mkdirp(p('sub')),
        readdir: () => vfs.readdir(dir),
        exists: () => vfs.exists(p('file')),
        syncDir: () => vfs.syncDir(dir),
      };
      const err = await outcome(call[op]);
      expect(err, op).toBeInstanceOf(InjectedFault);
      expect((err as InjectedFault).op).toBe(op);
      expect(exists('file'), op).toBe(true);
      expect(fs.readFileSync(p('file'), 'utf8'), op).toBe('contents');
      // the same call succeeds once the one-shot rule is spent (close has already released the file)
      if (op !== 'close' && op !== 'open') await f!.close();
      fs.rmSync(p('file'), { force: true });
    }
  });

  it('a failed close still releases the file', async () => {
    const vfs = new FaultVfs();
    const f = await vfs.open(p('f'), 'createExclusive');
    vfs.inject({ op: 'close', when: { nth: 1 } });
    await expect(f.close()).rejects.toBeInstanceOf(InjectedFault);
    // a crash afterwards does not trip over it
    await vfs.crash({ loseUnsynced: false });
  });
});

describe('FaultVfs torn writes', () => {
  it('tornBytes writes a prefix, then throws', async () => {
    const vfs = new FaultVfs();
    const f = await vfs.open(p('t'), 'createExclusive');
    await f.write(Buffer.from('head-'), 0);
    vfs.inject({ op: 'write', path: 't', when: { nth: 1 }, tornBytes: 4 });
    const err = await writeOutcome(f, Buffer.from('0123456789'), 5);
    expect(err).toBeInstanceOf(InjectedFault);
    expect(fs.readFileSync(p('t'), 'utf8')).toBe('head-0123');
    await f.close();
  });

  it('tornBytes larger than the write writes it all and still throws', async () => {
    const vfs = new FaultVfs();
    const f = await vfs.open(p('t'), 'createExclusive');
    vfs.inject({ op: 'write', when: { nth: 1 }, tornBytes: 100 });
    await expect(f.write(Buffer.from('abc'), 0)).rejects.toBeInstanceOf(InjectedFault);
    expect(fs.readFileSync(p('t'), 'utf8')).toBe('abc');
    await f.close();
  });

  it('tornBytes 0 writes nothing', async () => {
    const vfs = new FaultVfs();
    const f = await vfs.open(p('t'), 'createExclusive');
    vfs.inject({ op: 'write', when: { nth: 1 }, tornBytes: 0 });
    await expect(f.write(Buffer.from('abc'), 0)).rejects.toBeInstanceOf(InjectedFault);
    expect(size('t')).toBe(0);
    await f.close();
  });
});

describe('FaultVfs crash', () => {
  it('loseUnsynced truncates files to their last synced size', async () => {
    const vfs = new FaultVfs();
    const f = await vfs.open(p('log'), 'createExclusive');
    await vfs.syncDir(dir);
    await f.write(Buffer.alloc(100, 1), 0);
    await f.sync();
    await f.write(Buffer.alloc(50, 2), 100);
    expect(size('log')).toBe(150);
    await vfs.crash({ loseUnsynced: true });
    expect(vfs.isCrashed).toBe(true);
    expect(size('log')).toBe(100);
    expect(fs.readFileSync(p('log')).every((b) => b === 1)).toBe(true);
  });

  it('loseUnsynced truncates a pre-existing file back to its size at open', async () => {
    fs.writeFileSync(p('old'), 'durable');
    const vfs = new FaultVfs();
    const f = await vfs.open(p('old'), 'readwrite');
    await f.write(Buffer.from(' and not'), 7);
    await vfs.crash({ loseUnsynced: true });
    expect(fs.readFileSync(p('old'), 'utf8')).toBe('durable');
  });

  it('loseUnsynced removes files created since the last syncDir of their directory', async () => {
    const vfs = new FaultVfs();
    fs.mkdirSync(p('sub'));
    const a = await vfs.open(p('a'), 'createExclusive');
    await a.write(Buffer.from('aaa'), 0);
    await a.sync();
    await vfs.syncDir(dir); // a's entry is durable
    const b = await vfs.open(p('b'), 'createExclusive'); // created after the syncDir
    await b.write(Buffer.from('bbb'), 0);
    await b.sync(); // data synced, but the directory entry is not
    const c = await vfs.open(p('sub/c'), 'createExclusive');
    await c.sync();
    await vfs.syncDir(dir); // syncs dir, not dir/sub: c's entry stays unsynced
    const d = await vfs.open(p('d'), 'createTruncate');
    await d.write(Buffer.from('ddd'), 0);
    await vfs.crash({ loseUnsynced: true });
    expect(fs.readFileSync(p('a'), 'utf8')).toBe('aaa');
    expect(fs.readFileSync(p('b'), 'utf8')).toBe('bbb'); // the later syncDir covered b
    expect(exists('sub/c')).toBe(false);
    expect(exists('d')).toBe(false);
  });

  it('syncDir makes creations durable however the directory path is spelled', async () => {
    const vfs = new FaultVfs();
    const f = await vfs.open(p('x'), 'createExclusive');
    await f.write(Buffer.from('x'), 0);
    await f.sync();
    await vfs.syncDir(`${dir}/`);
    await vfs.crash({ loseUnsynced: true });
    expect(exists('x')).toBe(true);
  });

  it('a file renamed before its directory was synced is still lost', async () => {
    const vfs = new FaultVfs();
    const f = await vfs.open(p('tmp'), 'createExclusive');
    await f.write(Buffer.from('data'), 0);
    await f.sync();
    await f.close();
    await vfs.rename(p('tmp'), p('final'));
    await vfs.crash({ loseUnsynced: true });
    expect(exists('tmp')).toBe(false);
    expect(exists('final')).toBe(false);
  });

  it('a rename carries the synced size with the file', async () => {
    const vfs = new FaultVfs();
    const f = await vfs.open(p('tmp'), 'createExclusive');
    await f.write(Buffer.from('synced'), 0);
    await f.sync();
    await vfs.syncDir(dir);
    await f.write(Buffer.from('+lost'), 6);
    await vfs.rename(p('tmp'), p('final'));
    await vfs.crash({ loseUnsynced: true });
    expect(fs.readFileSync(p('final'), 'utf8')).toBe('synced');
  });

  it("a durable file renamed over a tracked one is not cut to the old one's synced size", async () => {
    fs.writeFileSync(p('replacement'), 'a longer, durable replacement');
    const vfs = new FaultVfs();
    const target = await vfs.open(p('target'), 'createExclusive');
    await target.write(Buffer.from('tiny'), 0);
    await target.sync();
    await vfs.syncDir(dir);
    await target.close();
    await vfs.rename(p('replacement'), p('target'));
    await vfs.crash({ loseUnsynced: true });
    expect(fs.readFileSync(p('target'), 'utf8')).toBe('a longer, durable replacement');
  });

  it('replacing a durable file by rename, then crashing before syncDir, never leaves neither file', async () => {
    // the CURRENT.tmp -> CURRENT swap: the new name must survive (renames count as durable at once)
    fs.writeFileSync(p('CURRENT'), 'old manifest name\n');
    const vfs = new FaultVfs();
    const tmp = await vfs.open(p('CURRENT.tmp'), 'createTruncate');
    await tmp.write(Buffer.from('new manifest name\n'), 0);
    await tmp.sync();
    await tmp.close();
    await vfs.rename(p('CURRENT.tmp'), p('CURRENT'));
    await vfs.crash({ loseUnsynced: true });
    expect(exists('CURRENT.tmp')).toBe(false);
    expect(fs.readFileSync(p('CURRENT'), 'utf8')).toBe('new manifest name\n');
  });

  it('truncate counts as durable', async () => {
    const vfs = new FaultVfs();
    const f = await vfs.open(p('t'), 'createExclusive');
    await vfs.syncDir(dir);
    await f.write(Buffer.from('0123456789'), 0);
    await f.sync();
    await f.truncate(4);
    await f.write(Buffer.from('xy'), 4);
    await vfs.crash({ loseUnsynced: true });
    expect(fs.readFileSync(p('t'), 'utf8')).toBe('0123');
  });

  it('an in-flight sync that the crash overtakes does not count', async () => {
    const vfs = new FaultVfs();
    const f = await vfs.open(p('s'), 'createExclusive');
    await vfs.syncDir(dir);
    await f.write(Buffer.from('abc'), 0);
    const pending = outcome(() => f.sync());
    await vfs.crash({ loseUnsynced: true });
    expect(await pending).toBeInstanceOf(SimulatedCrash);
    expect(size('s')).toBe(0);
  });

  it('loseUnsynced: false keeps everything written, synced or not', async () => {
    fs.writeFileSync(p('old'), 'old');
    const vfs = new FaultVfs();
    const a = await vfs.open(p('a'), 'createExclusive'); // never syncDir'd
    await a.write(Buffer.from('unsynced'), 0);
    const old = await vfs.open(p('old'), 'readwrite');
    await old.write(Buffer.from('+more'), 3);
    await vfs.crash({ loseUnsynced: false });
    expect(fs.readFileSync(p('a'), 'utf8')).toBe('unsynced');
    expect(fs.readFileSync(p('old'), 'utf8')).toBe('old+more');
  });

  it('writes already handed to the OS land before the crash, but report the crash', async () => {
    const vfs = new FaultVfs();
    const f = await vfs.open(p('w'), 'createExclusive');
    const pending = writeOutcome(f, Buffer.alloc(64 * 1024, 7), 0);
    await vfs.crash({ loseUnsynced: false });
    expect(await pending).toBeInstanceOf(SimulatedCrash);
    expect(size('w')).toBe(64 * 1024);
  });

  it('every call after the crash throws SimulatedCrash', async () => {
    fs.writeFileSync(p('existing'), 'data');
    const vfs = new FaultVfs();
    const f = await vfs.open(p('existing'), 'readwrite');
    const g = await vfs.open(p('other'), 'createExclusive');
    await vfs.crash({ loseUnsynced: false });
    const calls: [string, () => unknown][] = [
      ['open', () => vfs.open(p('existing'), 'read')],
      ['open create', () => vfs.open(p('new'), 'createExclusive')],
      ['readFile', () => vfs.readFile(p('existing'))],
      ['rename', () => vfs.rename(p('existing'), p('moved'))],
      ['unlink', () => vfs.unlink(p('existing'))],
      ['mkdirp', () => vfs.mkdirp(p('sub'))],
      ['readdir', () => vfs.readdir(dir)],
      ['exists', () => vfs.exists(p('existing'))],
      ['syncDir', () => vfs.syncDir(dir)],
      ['readAt', () => f.readAt(Buffer.alloc(4), 0)],
      ['write', () => f.write(Buffer.from('x'), 0)],
      ['sync', () => f.sync()],
      ['truncate', () => f.truncate(0)],
      ['size', () => f.size()],
      ['close', () => g.close()],
    ];
    for (const [name, call] of calls) {
      const err = await outcome(async () => call());
      expect(err, name).toBeInstanceOf(SimulatedCrash);
      expect((err as SimulatedCrash).code).toBe('ECRASHED');
    }
    // nothing was done
    expect(fs.readFileSync(p('existing'), 'utf8')).toBe('data');
    expect(fs.readdirSync(dir).sort()).toEqual(['existing', 'other']);
    // a crash is not counted as calls
    expect(vfs.count('readdir')).toBe(0);
  });

  it('a fresh FaultVfs works on the crashed files', async () => {
    const vfs = new FaultVfs();
    const f = await vfs.open(p('log'), 'createExclusive');
    await vfs.syncDir(dir);
    await f.write(Buffer.from('kept'), 0);
    await f.sync();
    await f.write(Buffer.from('lost'), 4);
    await vfs.crash({ loseUnsynced: true });
    const next = new FaultVfs();
    expect((await next.readFile(p('log'))).toString()).toBe('kept');
    const h = await next.open(p('log'), 'readwrite');
    expect(h.size()).toBe(4);
    await h.close();
  });
});
