/** Formats benchmark results: one row per phase, ops/s with p50/p99 per engine, our ratio to the best peer. */

import type { EngineResult } from './bench-engine.js';
import type { PhaseResult } from './ycsb/runner.js';

const US = 'nokv';

function cell(p: PhaseResult | undefined): string {
  if (p === undefined) return '-';
  return `${p.opsPerSec.toLocaleString('en-US')} (${p.p50Us}/${p.p99Us})`;
}

export function renderReport(results: readonly EngineResult[], workloads: readonly string[]): string {
  const engines = results.map((r) => r.engine);
  const phases = ['load', ...workloads];
  const find = (r: EngineResult, phase: string) =>
    phase === 'load' ? r.load : r.workloads.find((w) => w.phase === phase);
  const header = ['workload', ...engines, 'nokv / best peer'];
  const rows: string[][] = [];
  for (const phase of phases) {
    const ours = results.find((r) => r.engine === US);
    const peers = results.filter((r) => r.engine !== US);
    const best = Math.max(0, ...peers.map((r) => find(r, phase)?.opsPerSec ?? 0));
    const mine = ours === undefined ? undefined : find(ours, phase)?.opsPerSec;
    const ratio = mine === undefined || best === 0 ? '-' : (mine / best).toFixed(2);
    rows.push([phase, ...results.map((r) => cell(find(r, phase))), ratio]);
  }
  rows.push(['space amp', ...results.map((r) => `${r.spaceAmplification}x`), '']);
  rows.push(['reopen ms', ...results.map((r) => String(r.reopenMs)), '']);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  return [
    'ops/s (p50/p99 latency in microseconds); load = insert of every record',
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
  ].join('\n');
}
