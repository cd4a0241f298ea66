import { inspectWorkdir, type WorkdirReport } from '@nokv/engine';
import { formatBytes, grid, table, toJson } from '../format.js';
import type { Output } from '../output.js';

/** `nokv vlog --workdir DIR [--json]`: value log segments, head and GC state (read-only). */
export async function vlogCommand(options: { workdir: string; json?: boolean }, out: Output): Promise<void> {
  const report = await inspectWorkdir(options.workdir);
  out.write(options.json ? toJson({ dir: report.dir, ...report.valueLog }) : renderVlog(report));
}

export function renderVlog(r: WorkdirReport): string {
  const v = r.valueLog;
  const total = v.segments.reduce((n, s) => n + s.sizeBytes, 0);
  const garbage = v.segments.reduce((n, s) => n + Math.min(s.discardBytes, s.sizeBytes), 0);
  const head = table([
    ['Workdir', r.dir],
    ['Segments', `${v.segments.length} (${formatBytes(total)})`],
    [
      'Head',
      v.head === null
        ? 'none (no value has been separated yet)'
        : `segment ${v.head.segment} at offset ${v.head.offset}`,
    ],
    [
      'Known garbage',
      `${formatBytes(garbage)} (counted by compaction; GC reclaims segments above its ratio)`,
    ],
    ['Collected by GC', `${v.collectedSegments} segment(s)`],
    [
      'Pending deletes',
      v.pendingDeletes.length === 0
        ? 'none'
        : `${v.pendingDeletes.join(' ')} (removed at the next read-write open)`,
    ],
  ]);
  if (v.segments.length === 0) return head;
  const rows = grid(
    ['segment', 'size', 'garbage', 'ratio'],
    v.segments.map((s) => [
      s.file,
      formatBytes(s.sizeBytes),
      formatBytes(s.discardBytes),
      String(s.discardRatio),
    ]),
  );
  return `${head}\n\n${rows}`;
}
