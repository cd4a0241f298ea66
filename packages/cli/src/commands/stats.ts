import { type EngineStats, open } from '@nokv/engine';
import { formatBytes, grid, table, toJson } from '../format.js';
import type { Output } from '../output.js';

/** `nokv stats --workdir DIR [--json]`: opens the database read-only and prints its stats. */
export async function statsCommand(options: { workdir: string; json?: boolean }, out: Output): Promise<void> {
  const db = await open({ dir: options.workdir, readOnly: true });
  let stats: EngineStats;
  try {
    stats = db.stats();
  } finally {
    await db.close();
  }
  out.write(options.json ? toJson(stats) : renderStats(stats));
}

export function renderStats(s: EngineStats): string {
  const torn = s.recovery.tornTails.map((t) => `${t.file}@${t.offset} (${t.droppedBytes} B: ${t.reason})`);
  const summary = table([
    ['Workdir', s.dir],
    ['Entries', String(s.entries)],
    [
      'Memtable',
      `${s.memtable.activeEntries} entries, ${formatBytes(s.memtable.activeBytes)} active; ${s.memtable.immutables} frozen (${formatBytes(s.memtable.immutableBytes)})`,
    ],
    [
      'WAL',
      `segment ${s.wal.activeSegment}, ${formatBytes(s.wal.activeBytes)} active, ${s.wal.segments} segment(s) to replay`,
    ],
    [
      'Manifest',
      `${s.manifest.file} (${formatBytes(s.manifest.bytes)}), next file ${s.manifest.nextFileNumber}, log ${s.manifest.logNumber}`,
    ],
    ['Versions', `last ${s.versions.lastVersion}, visible ${s.versions.visibleVersion}`],
    ['Compaction', `backlog ${s.compaction.backlog}, max score ${s.compaction.maxScore}`],
    ['LSM', `${s.lsm.tables} table(s), ${formatBytes(s.lsm.totalBytes)}`],
    [
      'Recovery',
      `replayed ${s.recovery.walSegments} WAL segment(s), ${s.recovery.walRecords} record(s), ${s.recovery.walEntries} entries in ${s.recovery.durationMs} ms`,
    ],
    ['Torn tails', torn.length === 0 ? 'none' : torn.join('; ')],
  ]);
  const levels = grid(
    ['level', 'tables', 'size', 'entries', 'deletes', 'range-dels', 'target', 'score'],
    s.lsm.levels.map((l) => [
      `L${l.level}`,
      String(l.tables),
      formatBytes(l.sizeBytes),
      String(l.entries),
      String(l.deletions),
      String(l.rangeDeletions),
      l.level === 0 ? '-' : formatBytes(l.targetBytes),
      String(l.score),
    ]),
  );
  return `${summary}\n\nLSM levels:\n${levels}`;
}
