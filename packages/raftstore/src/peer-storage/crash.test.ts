// Crash test with real processes: a child persists Readies (synced), applies and compacts the log
// of a region and is SIGKILLed at a random moment; reopening here must find every acknowledged
// operation, and the one in flight either whole or not at all. Each cycle continues from the
// state the previous one left.

import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { open } from '@nokv/engine';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { dataKey } from '../store/keys.js';
import { PeerStorage } from './peer-storage.js';
import type { CrashOp } from './testing/crash-child.js';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, '..', '..', '..', '..');
const CYCLES = Number(process.env.NOKV_PEER_CRASH_CYCLES ?? 4);

interface Model {
  log: Map<bigint, bigint>;
  truncated: bigint;
  truncatedTerm: bigint;
  hs: { term: bigint; vote: bigint; commit: bigint };
  applied: bigint;
  appliedTerm: bigint;
  data: Map<string, string>;
}

function clone(m: Model): Model {
  return { ...m, log: new Map(m.log), hs: { ...m.hs }, data: new Map(m.data) };
}

function applyOp(m0: Model, op: CrashOp): Model {
  const m = clone(m0);
  switch (op.t) {
    case 'ready': {
      const first = BigInt(op.first);
      for (const i of [...m.log.keys()]) if (i >= first) m.log.delete(i);
      for (let i = first; i <= BigInt(op.last); i++) m.log.set(i, BigInt(op.term));
      m.hs = { term: BigInt(op.hs.term), vote: BigInt(op.hs.vote), commit: BigInt(op.hs.commit) };
      break;
    }
    case 'apply':
      m.applied = BigInt(op.index);
      m.appliedTerm = BigInt(op.term);
      m.data.set(op.key, op.value);
      break;
    case 'compact': {
      const to = BigInt(op.to);
      m.truncatedTerm = m.log.get(to)!;
      m.truncated = to;
      for (const i of [...m.log.keys()]) if (i <= to) m.log.delete(i);
      break;
    }
  }
  return m;
}

/** Differences between what the storage holds and the model; empty when they agree. */
async function diff(
  s: PeerStorage,
  m: Model,
  get: (k: Uint8Array) => Promise<Buffer | undefined>,
): Promise<string[]> {
  const out: string[] = [];
  const last = m.log.size === 0 ? m.truncated : m.truncated + BigInt(m.log.size);
  if (s.truncatedIndex !== m.truncated) out.push(`truncated ${s.truncatedIndex} != ${m.truncated}`);
  if (s.firstIndex() !== m.truncated + 1n) out.push(`first ${s.firstIndex()} != ${m.truncated + 1n}`);
  if (s.lastIndex() !== last) out.push(`last ${s.lastIndex()} != ${last}`);
  const hs = s.hardState;
  if (hs.term !== m.hs.term || hs.vote !== m.hs.vote || hs.commit !== m.hs.commit) {
    out.push(`hard state ${JSON.stringify(hs, (_, v) => (typeof v === 'bigint' ? String(v) : v))}`);
  }
  if (s.appliedIndex !== m.applied || s.appliedTerm !== m.appliedTerm) out.push(`applied ${s.appliedIndex}`);
  if (out.length > 0) return out;
  if (s.term(m.truncated) !== m.truncatedTerm) out.push(`truncated term ${s.term(m.truncated)}`);
  if (last > m.truncated) {
    const es = s.entries(m.truncated + 1n, last + 1n, Number.MAX_SAFE_INTEGER);
    for (const e of es) {
      const t = m.log.get(e.index);
      if (e.term !== t || Buffer.from(e.data).toString() !== `e${e.index}-${t}`) {
        out.push(`entry ${e.index}: term ${e.term} (model ${t})`);
      }
    }
  }
  for (const [k, v] of m.data) {
    const got = (await get(dataKey(Buffer.from(k))))?.toString();
    if (got !== v) out.push(`data ${k}: ${got} != ${v}`);
  }
  return out;
}

async function runChild(dir: string, seed: number, runMs: number): Promise<string[]> {
  const child = spawn(
    process.execPath,
    [
      '--conditions=@nokv/source',
      '--import',
      'tsx',
      join(here, 'testing', 'crash-child.ts'),
      dir,
      String(seed),
    ],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const deadline = Date.now() + 30_000;
  while (!stdout.includes('"t":"ready"')) {
    if (child.exitCode !== null) throw new Error(`crash child exited early (${child.exitCode}): ${stderr}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`crash child did not get ready: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  await new Promise((r) => setTimeout(r, runMs));
  if (child.exitCode !== null)
    throw new Error(`crash child died before the kill (${child.exitCode}): ${stderr}`);
  child.kill('SIGKILL');
  await closed;
  // Only complete lines: the kill may cut the last one.
  const lines = stdout.split('\n');
  lines.pop();
  return lines;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nokv-peer-crash-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('acknowledged Readies, applies and compactions survive SIGKILL', async () => {
  let model: Model = {
    log: new Map(),
    truncated: 5n,
    truncatedTerm: 5n,
    hs: { term: 5n, vote: 0n, commit: 5n },
    applied: 5n,
    appliedTerm: 5n,
    data: new Map(),
  };
  let acked = 0;
  let inFlightApplied = 0;
  for (let cycle = 0; cycle < CYCLES; cycle++) {
    const lines = await runChild(dir, 1000 + cycle, 150 + ((cycle * 137) % 400));
    let pending: CrashOp | undefined;
    for (const line of lines) {
      const ev = JSON.parse(line) as { t: string; op?: CrashOp };
      if (ev.t === 'begin') pending = ev.op;
      else if (ev.t === 'ack') {
        model = applyOp(model, pending!);
        pending = undefined;
        acked++;
      }
    }
    const db = await open({ dir });
    try {
      const s = await PeerStorage.open(db, 1n);
      const get = (k: Uint8Array) => db.get(k);
      const asAcked = await diff(s, model, get);
      if (asAcked.length > 0) {
        expect(pending, `state differs from the acknowledged one: ${asAcked.join('; ')}`).toBeDefined();
        const withPending = applyOp(model, pending!);
        const asPending = await diff(s, withPending, get);
        expect(
          asPending,
          `matches neither acknowledged (${asAcked.join('; ')}) nor with the op in flight`,
        ).toEqual([]);
        model = withPending;
        inFlightApplied++;
      }
    } finally {
      await db.close();
    }
  }
  expect(acked).toBeGreaterThan(20);
  expect(inFlightApplied).toBeLessThanOrEqual(CYCLES);
}, 120_000);
