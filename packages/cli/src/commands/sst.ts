import { inspectWorkdir, open, type TableReport } from '@nokv/engine';
import { formatBytes, grid, toJson } from '../format.js';
import type { Output } from '../output.js';

/**
 * `nokv sst --workdir DIR [--json] [--verify]`: tables per level with key ranges and sizes.
 * `--verify` also reads every block (read-only open) and checks checksums and key order.
 */
export async function sstCommand(
  options: { workdir: string; json?: boolean; verify?: boolean },
  out: Output,
): Promise<void> {
  const report = await inspectWorkdir(options.workdir);
  let verified: { tables: number; blocks: number; entries: number } | undefined;
  if (options.verify) {
    const db = await open({ dir: options.workdir, readOnly: true });
    try {
      verified = await db.verify();
    } finally {
      await db.close();
    }
  }
  if (options.json) {
    out.write(toJson({ dir: report.dir, levels: report.levels, ...(verified ? { verified } : {}) }));
    return;
  }
  const lines: string[] = [];
  for (const level of report.levels) {
    if (level.tables.length === 0) continue;
    lines.push(`L${level.level}: ${level.tables.length} table(s), ${formatBytes(level.sizeBytes)}`);
    lines.push(indent(renderTables(level.tables)));
    lines.push('');
  }
  if (lines.length === 0) lines.push('no tables yet (everything is still in the WAL / memtable)');
  if (verified)
    lines.push(
      `verified ${verified.tables} table(s), ${verified.blocks} block(s), ${verified.entries} entries: all checksums match`,
    );
  out.write(lines.join('\n').trimEnd());
}

function renderTables(tables: readonly TableReport[]): string {
  return grid(
    ['table', 'size', 'entries', 'smallest', 'largest', 'versions'],
    tables.map((t) => [
      t.file,
      formatBytes(t.sizeBytes),
      `${t.entries}${t.deletions ? ` (${t.deletions} del)` : ''}${t.rangeDeletions ? ` +${t.rangeDeletions} range-del` : ''}`,
      `${t.smallest.cf}:${t.smallest.key}@${t.smallest.version}`,
      `${t.largest.cf}:${t.largest.key}@${t.largest.version}`,
      `${t.minVersion}..${t.maxVersion}`,
    ]),
  );
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `  ${l}`)
    .join('\n');
}
