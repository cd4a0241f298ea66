import { inspectWorkdir, type WorkdirReport } from '@nokv/engine';
import { formatBytes, grid, table, toJson } from '../format.js';
import type { Output } from '../output.js';

/** `nokv manifest --workdir DIR [--json]`: the live manifest's state, read without opening the database. */
export async function manifestCommand(
  options: { workdir: string; json?: boolean },
  out: Output,
): Promise<void> {
  const report = await inspectWorkdir(options.workdir);
  if (options.json) {
    const { dir, mode, lockedBy, manifest, walSegments, unreferenced } = report;
    const levels = report.levels.map((l) => ({
      level: l.level,
      tables: l.tables.length,
      sizeBytes: l.sizeBytes,
      tableNumbers: l.tables.map((t) => t.number),
    }));
    out.write(toJson({ dir, mode, lockedBy, manifest, levels, walSegments, unreferenced }));
    return;
  }
  out.write(renderManifest(report));
}

export function renderManifest(r: WorkdirReport): string {
  const m = r.manifest;
  const head = table([
    ['Workdir', r.dir],
    ['Mode', r.mode],
    ['Open by', r.lockedBy === null ? 'nobody' : `pid ${r.lockedBy.pid} on ${r.lockedBy.host}`],
    ['Manifest', `${m.file} (${formatBytes(m.sizeBytes)}, ${m.edits} edit(s))`],
    ['Log number', `${m.logNumber} (WAL segments from here on are replayed at open)`],
    ['Next file', String(m.nextFileNumber)],
    ['Last version', m.lastVersion],
    [
      'Torn tail',
      m.tornTail === null
        ? 'none'
        : `${m.tornTail.droppedBytes} B at offset ${m.tornTail.offset} (${m.tornTail.reason})`,
    ],
  ]);
  const levels = grid(
    ['level', 'tables', 'size', 'table numbers'],
    r.levels.map((l) => [
      `L${l.level}`,
      String(l.tables.length),
      formatBytes(l.sizeBytes),
      l.tables.map((t) => t.number).join(' '),
    ]),
  );
  const wal =
    r.walSegments.length === 0
      ? '  (none)'
      : r.walSegments
          .map((w) => `  ${w.file}  ${formatBytes(w.sizeBytes)}${w.replayed ? '' : '  (flushed, obsolete)'}`)
          .join('\n');
  const extra =
    r.unreferenced.length === 0
      ? ''
      : `\n\nUnreferenced files (removed at the next read-write open):\n  ${r.unreferenced.join('\n  ')}`;
  return `${head}\n\nLevels:\n${levels}\n\nWAL segments:\n${wal}${extra}`;
}
