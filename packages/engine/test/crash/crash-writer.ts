/**
 * Child process of the crash test: opens the database with `syncWrites: true`, then runs several
 * concurrent writers until it is killed. Every operation is journaled synchronously to a file
 * before it starts ("begin") and after it resolves ("ack"), so the journal survives SIGKILL and
 * tells the parent exactly what was acknowledged.
 *
 *     crash-writer.ts <dir> <journal> <seed> <writers>
 */

import { appendFileSync } from 'node:fs';
import { open } from '../../src/index.js';
import { prng } from '../support-prng.js';
import { type CrashOp, crashDbOptions, nextOp } from './crash-ops.js';

const [dir, journal, seedArg, writersArg] = process.argv.slice(2);
if (!dir || !journal || !seedArg || !writersArg) {
  process.stderr.write('usage: crash-writer.ts <dir> <journal> <seed> <writers>\n');
  process.exit(2);
}
const seed = Number(seedArg);
const writers = Number(writersArg);

function log(entry: object): void {
  appendFileSync(journal!, `${JSON.stringify(entry)}\n`);
}

const db = await open({ dir: dir!, ...crashDbOptions });
log({ t: 'ready', pid: process.pid });
// Background work counters, so the parent can tell what was running when the kill came.
setInterval(() => {
  const s = db.stats();
  log({
    t: 'stats',
    flushes: s.flush.completed,
    compactions: s.compaction.runs,
    gcDeleted: s.valueLog.gc.segmentsDeleted,
  });
}, 50).unref();

async function runWriter(w: number): Promise<void> {
  const rand = prng(seed * 31 + w);
  for (let seq = 0; ; seq++) {
    const op: CrashOp = nextOp(rand, w, seq, seed);
    log({ t: 'begin', w, seq, op });
    switch (op.kind) {
      case 'put':
        await db.set(op.key, op.value);
        break;
      case 'delete':
        await db.delete(op.key);
        break;
      case 'deleteRange':
        await db.deleteRange(op.start, op.end);
        break;
      case 'batch':
        await db.write(
          op.ops.map((o) =>
            o.value === null
              ? { type: 'delete' as const, key: o.key }
              : { type: 'put' as const, key: o.key, value: o.value },
          ),
        );
        break;
    }
    log({ t: 'ack', w, seq });
  }
}

await Promise.all(Array.from({ length: writers }, (_, w) => runWriter(w)));
