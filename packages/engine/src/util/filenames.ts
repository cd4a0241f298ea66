/**
 * Names of the files in a workdir. WAL segments, tables and manifests draw their numbers from one
 * counter (`nextFileNumber` in the manifest), so a number identifies one file for the life of the
 * workdir.
 */

export type FileKind =
  | 'wal'
  | 'table'
  | 'vlog'
  | 'manifest'
  | 'current'
  | 'currentTmp'
  | 'lock'
  | 'mode'
  | 'temp';

export const CURRENT_FILE = 'CURRENT';
export const CURRENT_TMP_FILE = 'CURRENT.tmp';
export const LOCK_FILE = 'LOCK';
export const MODE_FILE = 'MODE.json';

function pad(n: number): string {
  return String(n).padStart(6, '0');
}

export function walFileName(n: number): string {
  return `${pad(n)}.wal`;
}

export function tableFileName(n: number): string {
  return `${pad(n)}.sst`;
}

export function manifestFileName(n: number): string {
  return `MANIFEST-${pad(n)}`;
}

/** Temporary name a table is written under before its rename into place. */
export function tableTempFileName(n: number): string {
  return `${pad(n)}.sst.tmp`;
}

export interface ParsedFileName {
  kind: FileKind;
  /** File number, for wal / table / manifest / temp. */
  number: number;
}

/** Classifies a workdir entry name; undefined for names the engine does not own. */
export function parseFileName(name: string): ParsedFileName | undefined {
  let m = /^(\d{6,})\.wal$/.exec(name);
  if (m) return { kind: 'wal', number: Number(m[1]) };
  m = /^(\d{6,})\.sst$/.exec(name);
  if (m) return { kind: 'table', number: Number(m[1]) };
  m = /^(\d{6,})\.vlog$/.exec(name);
  if (m) return { kind: 'vlog', number: Number(m[1]) };
  m = /^MANIFEST-(\d{6,})$/.exec(name);
  if (m) return { kind: 'manifest', number: Number(m[1]) };
  m = /^(\d{6,})\.sst\.tmp$/.exec(name);
  if (m) return { kind: 'temp', number: Number(m[1]) };
  if (name === CURRENT_FILE) return { kind: 'current', number: 0 };
  if (name === CURRENT_TMP_FILE) return { kind: 'currentTmp', number: 0 };
  if (name === LOCK_FILE) return { kind: 'lock', number: 0 };
  if (name === MODE_FILE) return { kind: 'mode', number: 0 };
  return undefined;
}
