import { open } from '@nokv/engine';
import { formatBytes } from '../format.js';
import type { Output } from '../output.js';

/**
 * `nokv demo [--workdir DIR]`: a short tour of the embedded engine on a real workdir. It keeps its
 * workdir, so running it again shows the data from the previous run coming back from disk.
 */
export async function demoCommand(options: { workdir: string }, out: Output): Promise<void> {
  const dir = options.workdir;
  const db = await open({ dir, syncWrites: true });
  try {
    const previousRuns = Number((await db.get('demo:runs'))?.toString() ?? '0');
    out.write(`NoKV embedded engine demo — workdir ${dir}`);
    out.write(
      previousRuns === 0
        ? '  first run: the workdir is new'
        : `  run #${previousRuns + 1}: the data of earlier runs is back (${db.stats().lsm.tables} table(s), ${db.recovery.walEntries} entries replayed from the WAL)`,
    );
    await db.set('demo:runs', String(previousRuns + 1));

    await db.write(
      db
        .batch()
        .put('fruit:apple', 'red')
        .put('fruit:banana', 'yellow')
        .put('fruit:cherry', 'dark red')
        .put('fruit:damson', 'purple'),
    );
    out.write('\n1. an atomic batch of four puts (one WAL record, fsynced):');
    for await (const [k, v] of db.iterate({ prefix: 'fruit:' })) out.write(`   ${k} = ${v}`);

    const before = db.snapshot();
    await db.deleteRange('fruit:b', 'fruit:d');
    out.write("\n2. deleteRange('fruit:b', 'fruit:d') hides banana and cherry:");
    for await (const [k] of db.iterate({ prefix: 'fruit:' })) out.write(`   ${k}`);
    out.write('   ...while a snapshot taken before it still sees them:');
    for await (const [k] of db.iterate({ prefix: 'fruit:', snapshot: before })) out.write(`   ${k}`);
    before.release();

    await db.set('session:42', 'token', { ttlMs: 50 });
    out.write(`\n3. a key with a 50 ms TTL: now ${String(await db.get('session:42'))}`);
    await new Promise((resolve) => setTimeout(resolve, 60));
    out.write(`   60 ms later: ${String(await db.get('session:42'))}`);

    for (let i = 0; i < 2000; i++) await db.set(`bulk:${String(i).padStart(5, '0')}`, 'x'.repeat(100));
    await db.flush();
    const s = db.stats();
    out.write(
      `\n4. 2,000 more keys, then flush: ${s.lsm.tables} table(s), ${formatBytes(s.lsm.totalBytes)} on disk, ${s.wal.syncs} WAL fsyncs so far`,
    );
    out.write(`\nInspect it: pnpm nokv stats --workdir ${dir}   |   pnpm nokv sst --workdir ${dir}`);
    out.write(
      'The replicated cluster lab (coordinator, stores, console) is not built yet; this demo is the embedded engine only.',
    );
  } finally {
    await db.close();
  }
}
