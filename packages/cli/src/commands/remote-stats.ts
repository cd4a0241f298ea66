import { CliError } from '../errors.js';
import { formatBytes, grid, table, toJson } from '../format.js';
import type { Output } from '../output.js';

/** The `/stats` payload of `nokv serve` (apps/node), loosely typed: it comes over the wire. */
export interface NodeStats {
  storeId?: string;
  addr?: string;
  uptimeMs?: number;
  engine?: {
    dir?: string;
    entries?: number;
    memtable?: { activeEntries?: number; activeBytes?: number; immutables?: number };
    wal?: { segments?: number };
    lsm?: { tables?: number; totalBytes?: number };
    compaction?: { backlog?: number };
    versions?: { lastVersion?: string };
    backgroundError?: string | null;
  };
  store?: { regions?: number; leaders?: number; hibernating?: number; tombstones?: number } | null;
  regions?: {
    regionId?: string;
    peerId?: string;
    role?: string;
    leaderPeerId?: string;
    term?: string;
    commitIndex?: string;
    appliedIndex?: string;
    startKey?: string;
    endKey?: string;
    hibernating?: boolean;
  }[];
}

const TIMEOUT_MS = 5000;

/** `host:port`, `http://host:port` or a full URL → the `/stats` URL. */
export function statsUrl(text: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new CliError(`--url '${text}' is not a URL (expected http://HOST:PORT)`, 2);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CliError(`--url '${text}' is not an http(s) URL`, 2);
  }
  if (url.pathname === '' || url.pathname === '/') url.pathname = '/stats';
  return url.toString();
}

function reason(err: unknown): string {
  const e = err as { name?: string; message?: string; code?: string; cause?: unknown; errors?: unknown[] };
  if (e?.name === 'TimeoutError') return `no answer within ${TIMEOUT_MS} ms`;
  if (typeof e?.code === 'string') return e.code;
  const nested = e?.errors?.[0];
  if (nested !== undefined) return reason(nested);
  if (e?.cause !== undefined) return reason(e.cause);
  return e?.message ?? String(err);
}

/** `nokv stats --url URL [--json]`: the stats of a running store, from its HTTP `/stats`. */
export async function remoteStatsCommand(
  options: { url: string; json?: boolean },
  out: Output,
): Promise<void> {
  const url = statsUrl(options.url);
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  } catch (err) {
    throw new CliError(`cannot reach ${url}: ${reason(err)}`, 1, { cause: err });
  }
  const body = await res.text();
  if (!res.ok)
    throw new CliError(`${url} answered ${res.status} ${res.statusText}: ${body.trim().slice(0, 200)}`);
  let stats: NodeStats;
  try {
    stats = JSON.parse(body) as NodeStats;
  } catch {
    throw new CliError(`${url} did not answer JSON (is it a nokv serve HTTP address?)`);
  }
  out.write(options.json ? toJson(stats) : renderNodeStats(stats));
}

/** 3723000 → "1h 02m 03s". */
export function formatDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (h > 0) return `${h}h ${String(m).padStart(2, '0')}m ${String(sec).padStart(2, '0')}s`;
  if (m > 0) return `${m}m ${String(sec).padStart(2, '0')}s`;
  return `${(ms / 1000).toFixed(1)}s`;
}

const n = (v: number | undefined) => (v === undefined ? '?' : String(v));
const key = (k: string | undefined) => (k === undefined ? '?' : k === '' ? '-' : k);

export function renderNodeStats(s: NodeStats): string {
  const e = s.engine ?? {};
  const st = s.store ?? {};
  const regions = s.regions ?? [];
  const rows: [string, string][] = [
    ['Store', `${s.storeId ?? '?'} at ${s.addr ?? '?'}`],
    ['Uptime', s.uptimeMs === undefined ? '?' : formatDuration(s.uptimeMs)],
    [
      'Regions',
      `${n(st.regions ?? regions.length)} hosted, ${n(st.leaders)} leader(s), ${n(st.hibernating)} hibernating`,
    ],
    ['Workdir', e.dir ?? '?'],
    ['Engine keys', `${n(e.entries)} entries, last version ${e.versions?.lastVersion ?? '?'}`],
    [
      'Memtable',
      `${n(e.memtable?.activeEntries)} entries, ${e.memtable?.activeBytes === undefined ? '?' : formatBytes(e.memtable.activeBytes)} active; ${n(e.memtable?.immutables)} frozen`,
    ],
    [
      'LSM',
      `${n(e.lsm?.tables)} table(s), ${e.lsm?.totalBytes === undefined ? '?' : formatBytes(e.lsm.totalBytes)}; compaction backlog ${n(e.compaction?.backlog)}`,
    ],
    ['WAL', `${n(e.wal?.segments)} segment(s) to replay`],
  ];
  if (e.backgroundError) rows.push(['Engine error', e.backgroundError]);
  const head = table(rows);
  if (regions.length === 0) return `${head}\n\nNo regions.`;
  const body = grid(
    ['region', 'peer', 'role', 'leader', 'term', 'commit', 'applied', 'range', 'quiet'],
    regions.map((r) => [
      r.regionId ?? '?',
      r.peerId ?? '?',
      r.role ?? '?',
      r.leaderPeerId === undefined || r.leaderPeerId === '0' ? '-' : r.leaderPeerId,
      r.term ?? '?',
      r.commitIndex ?? '?',
      r.appliedIndex ?? '?',
      `[${key(r.startKey)}, ${key(r.endKey)})`,
      r.hibernating ? 'yes' : 'no',
    ]),
  );
  return `${head}\n\nRegions:\n${body}`;
}
