/** Shared helpers for the engine's tests. */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';

/** A fresh temporary directory removed after the current test. */
export function tempDir(prefix = 'nokv-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Collects an async iterable of [key, value] into string pairs. */
export async function collect(iterable: AsyncIterable<[Buffer, Buffer]>): Promise<[string, string][]> {
  const out: [string, string][] = [];
  for await (const [k, v] of iterable) out.push([k.toString(), v.toString()]);
  return out;
}

/** Small options that make flushes and compactions happen with little data. */
export const tinyOptions = {
  memtableBytes: 64 * 1024,
  blockBytes: 512,
  l0CompactionTrigger: 2,
  l0StopWritesTrigger: 8,
  levelBaseBytes: 64 * 1024,
  targetFileBytes: 16 * 1024,
  maxManifestBytes: 8 * 1024,
} as const;

export { prng } from './support-prng.js';
