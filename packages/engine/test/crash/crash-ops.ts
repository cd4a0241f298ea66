/** Operations of the crash test's writers, and how each changes a key/value state. */

import type { OpenOptions } from '../../src/index.js';

export type CrashOp =
  | { kind: 'put'; key: string; value: string }
  | { kind: 'delete'; key: string }
  | { kind: 'deleteRange'; start: string; end: string }
  | { kind: 'batch'; ops: { key: string; value: string | null }[] };

/** Small memtables and tables so flushes, compactions and manifest rewrites happen within a cycle. */
export const crashDbOptions: Omit<OpenOptions, 'dir'> = {
  syncWrites: true,
  memtableBytes: 64 * 1024,
  blockBytes: 1024,
  l0CompactionTrigger: 2,
  l0StopWritesTrigger: 12,
  levelBaseBytes: 128 * 1024,
  targetFileBytes: 32 * 1024,
  maxManifestBytes: 4 * 1024,
  // About half the values (0-600 bytes) go to the value log, and GC runs often.
  valueThreshold: 300,
  vlogSegmentBytes: 128 * 1024,
  vlogGcIntervalMs: 150,
  vlogGcDiscardRatio: 0.3,
};

const KEYS_PER_WRITER = 20;

/** Writer `w` owns keys `w<w>-k00` … `w<w>-k19` (single-digit writer ids keep the ranges apart). */
export function writerKey(w: number, i: number): string {
  return `w${w}-k${String(i).padStart(2, '0')}`;
}

export function isWriterKey(key: string, writers: number): boolean {
  const m = /^w(\d)-k(\d\d)$/.exec(key);
  return m !== null && Number(m[1]) < writers && Number(m[2]) < KEYS_PER_WRITER;
}

export function nextOp(rand: () => number, w: number, seq: number, seed: number): CrashOp {
  const key = () => writerKey(w, Math.floor(rand() * KEYS_PER_WRITER));
  const value = () => `s${seed}-w${w}-${seq}-${'v'.repeat(Math.floor(rand() * 600))}`;
  const r = rand();
  if (r < 0.6) return { kind: 'put', key: key(), value: value() };
  if (r < 0.75) return { kind: 'delete', key: key() };
  if (r < 0.8) {
    const a = Math.floor(rand() * KEYS_PER_WRITER);
    const b = Math.min(KEYS_PER_WRITER, a + 1 + Math.floor(rand() * 5));
    return {
      kind: 'deleteRange',
      start: writerKey(w, a),
      end: b === KEYS_PER_WRITER ? `w${w}-l` : writerKey(w, b),
    };
  }
  const n = 2 + Math.floor(rand() * 3);
  return {
    kind: 'batch',
    ops: Array.from({ length: n }, () => ({ key: key(), value: rand() < 0.8 ? value() : null })),
  };
}

/** Applies `op` to `state` in place. */
export function applyOp(state: Map<string, string>, op: CrashOp): void {
  switch (op.kind) {
    case 'put':
      state.set(op.key, op.value);
      break;
    case 'delete':
      state.delete(op.key);
      break;
    case 'deleteRange':
      for (const k of [...state.keys()]) if (k >= op.start && k < op.end) state.delete(k);
      break;
    case 'batch':
      for (const o of op.ops) {
        if (o.value === null) state.delete(o.key);
        else state.set(o.key, o.value);
      }
      break;
  }
}
