/**
 * Child process of the peer-storage crash test: opens (bootstrapping on first start) region 1 in
 * the engine at <dir> and persists Readies, applies and log compactions one after another until it
 * is SIGKILLed. Before each operation it prints `{"t":"begin",...}` describing it, and after the
 * operation resolved `{"t":"ack","seq":n}`, one JSON line each on stdout (synchronous for pipes on
 * Linux), so the parent knows exactly what was acknowledged.
 *
 *     crash-child.ts <dir> <seed>
 */

import { open } from '@nokv/engine';
import { PeerStorage } from '../peer-storage.js';
import { entry, testRegion } from './support.js';

export type CrashOp =
  | {
      t: 'ready';
      first: string;
      last: string;
      term: string;
      hs: { term: string; vote: string; commit: string };
    }
  | { t: 'apply'; index: string; term: string; key: string; value: string }
  | { t: 'compact'; to: string };

const [dir, seedArg] = process.argv.slice(2);
if (!dir || !seedArg) {
  process.stderr.write('usage: crash-child.ts <dir> <seed>\n');
  process.exit(2);
}

let state = Number(seedArg) >>> 0 || 1;
function rand(): number {
  // xorshift32
  state ^= state << 13;
  state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5;
  state >>>= 0;
  return state / 0x1_0000_0000;
}
const pick = (n: number) => Math.floor(rand() * n);

function emit(obj: object): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

const db = await open({ dir });
if ((await PeerStorage.open(db, 1n).catch(() => undefined)) === undefined) {
  await PeerStorage.bootstrap(db, testRegion(1n));
}
const s = await PeerStorage.open(db, 1n);
emit({ t: 'ready', pid: process.pid });

for (let seq = 0; ; seq++) {
  const hs = s.hardState;
  const r = rand();
  let op: CrashOp | undefined;
  if (r < 0.7) {
    const last = s.lastIndex();
    let first = last + 1n;
    let term = hs.term;
    if (pick(5) === 0 && last > hs.commit) {
      first = hs.commit + 1n + BigInt(pick(Number(last - hs.commit)));
      term += 1n; // a new leader overwrites an uncommitted suffix
    } else if (pick(10) === 0) {
      term += 1n;
    }
    const newLast = first + BigInt(pick(4));
    const commit = hs.commit + BigInt(pick(Number(newLast - hs.commit) + 1));
    op = {
      t: 'ready',
      first: String(first),
      last: String(newLast),
      term: String(term),
      hs: { term: String(term), vote: String(pick(3)), commit: String(commit) },
    };
  } else if (r < 0.9 && s.appliedIndex < hs.commit) {
    const index = s.appliedIndex + 1n + BigInt(pick(Number(hs.commit - s.appliedIndex)));
    op = {
      t: 'apply',
      index: String(index),
      term: String(s.term(index)),
      key: `k${index}`,
      value: `v${seq}`,
    };
  } else if (s.truncatedIndex < s.appliedIndex) {
    const to = s.truncatedIndex + 1n + BigInt(pick(Number(s.appliedIndex - s.truncatedIndex)));
    op = { t: 'compact', to: String(to) };
  }
  if (op === undefined) continue;
  emit({ t: 'begin', seq, op });
  switch (op.t) {
    case 'ready': {
      const es = [];
      for (let i = BigInt(op.first); i <= BigInt(op.last); i++) es.push(entry(i, BigInt(op.term)));
      await s.persistReady({
        entries: es,
        hardState: { term: BigInt(op.hs.term), vote: BigInt(op.hs.vote), commit: BigInt(op.hs.commit) },
        mustSync: true,
      });
      break;
    }
    case 'apply':
      await s.applyWrites(
        [{ op: 'put', key: Buffer.from(op.key), value: Buffer.from(op.value) }],
        BigInt(op.index),
        BigInt(op.term),
      );
      break;
    case 'compact':
      await s.compactLog(BigInt(op.to));
      break;
  }
  emit({ t: 'ack', seq });
}
