import { join } from 'node:path';
import { type LocalStatus, localStatus, type PlanReport, plan } from './local.js';
import { writeFileDurably } from './progress.js';
import { type RuntimeStatus, runtimeStatus } from './remote.js';

export interface StatusOptions {
  workdir: string;
  /** A store's gRPC address to ask for the region's runtime view. */
  addr?: string;
  regionId?: bigint;
  timeoutMs?: number;
}

export interface ClusterView {
  addr: string;
  runtime?: RuntimeStatus;
  runtimeError?: string;
  leaderStoreId?: string;
  membership: { storeId: string; peerId: string; learner: boolean }[];
}

export interface MigrationStatus extends LocalStatus {
  cluster?: ClusterView;
}

/** `migrate status`: the workdir's view, plus the cluster's when `addr` is given. Read-only. */
export async function status(opts: StatusOptions): Promise<MigrationStatus> {
  const local = await localStatus(opts.workdir, opts.regionId);
  if (opts.addr === undefined) return local;
  const regionId =
    opts.regionId ??
    (local.regionId !== undefined
      ? BigInt(local.regionId)
      : local.progress
        ? BigInt(local.progress.regionId)
        : 0n);
  const cluster: ClusterView = { addr: opts.addr, membership: [] };
  try {
    const rt = await runtimeStatus(opts.addr, regionId, { rpcTimeoutMs: opts.timeoutMs ?? 3000 });
    cluster.runtime = rt;
    const peers = rt.region?.peers ?? [];
    cluster.membership = peers.map((p) => ({
      storeId: String(p.storeId),
      peerId: String(p.peerId),
      learner: p.learner,
    }));
    const lead = peers.find((p) => p.peerId === rt.leaderPeerId);
    if (lead) cluster.leaderStoreId = String(lead.storeId);
  } catch (err) {
    cluster.runtimeError = (err as Error).message;
  }
  return { ...local, cluster };
}

export interface MigrationReport {
  generatedAt: string;
  stage: string;
  summary: string;
  readyForInit: boolean;
  readyForServe: boolean;
  plan?: PlanReport;
  status: MigrationStatus;
  nextSteps: string[];
  files?: { text: string; json: string };
}

/**
 * `migrate report`: plan (while standalone) + status + cluster summary, with next steps; written to
 * `<out>/MIGRATION_REPORT.{txt,json}` (default: the workdir) when `write` is set.
 */
export async function report(
  opts: StatusOptions & { write?: boolean; outDir?: string },
): Promise<MigrationReport> {
  const st = await status(opts);
  const p = st.mode === 'standalone' || st.mode === 'missing' ? await plan(opts.workdir) : undefined;
  const next: string[] = [];
  if (p) {
    if (p.eligible) next.push(p.next);
    else next.push(...p.blockers.map((b) => `fix: ${b}`));
  } else {
    next.push(st.resumeHint);
    if (st.mode === 'cluster' && st.cluster?.runtime && st.cluster.membership.length < 3) {
      next.push(
        `the region has ${st.cluster.membership.length} replica(s): nokv migrate expand --addr ${opts.addr} --region ${st.cluster.runtime.region?.id ?? '<id>'} --target <store>:<peer>@<addr>`,
      );
    }
  }
  const stage = st.progress?.stage ?? (st.mode === 'standalone' ? 'not started' : st.mode);
  const replicas = st.cluster?.membership.length;
  const summary =
    st.mode === 'missing'
      ? 'no such workdir'
      : st.mode === 'standalone'
        ? `standalone database${p ? ` with ${p.keys} keys; ${p.eligible ? 'eligible for migration' : `${p.blockers.length} blocker(s)`}` : ''}`
        : st.mode === 'preparing'
          ? `init interrupted after '${stage}'`
          : st.mode === 'seeded'
            ? 'seeded: ready for nokv serve'
            : `cluster store${replicas !== undefined ? `; region has ${replicas} replica(s), leader on store ${st.cluster?.leaderStoreId ?? 'unknown'}` : ''}`;
  const out: MigrationReport = {
    generatedAt: new Date().toISOString(),
    stage,
    summary,
    readyForInit: p?.eligible === true,
    readyForServe: st.mode === 'seeded' || st.mode === 'cluster',
    ...(p ? { plan: p } : {}),
    status: st,
    nextSteps: next,
  };
  if (opts.write) {
    const dir = opts.outDir ?? opts.workdir;
    const files = { text: join(dir, 'MIGRATION_REPORT.txt'), json: join(dir, 'MIGRATION_REPORT.json') };
    await writeFileDurably(files.json, `${JSON.stringify(out, jsonBigint, 2)}\n`);
    await writeFileDurably(files.text, `${formatReport(out)}\n`);
    out.files = files;
  }
  return out;
}

export function jsonBigint(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return String(value);
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  return value;
}

/** The text form of a report (what `nokv migrate report` prints). */
export function formatReport(r: MigrationReport): string {
  const s = r.status;
  const lines = [
    `NoKV migration report (${r.generatedAt})`,
    `workdir:          ${s.workdir}`,
    `mode:             ${s.mode}`,
    `stage:            ${r.stage}`,
    `summary:          ${r.summary}`,
  ];
  if (s.storeId !== undefined)
    lines.push(`ids:              store ${s.storeId} region ${s.regionId} peer ${s.peerId}`);
  if (s.seed.dir)
    lines.push(
      `seed snapshot:    ${s.seed.present ? `${s.seed.entries} keys, ${s.seed.bytes} bytes` : 'absent'} (${s.seed.dir})`,
    );
  if (s.catalogRegions !== undefined) lines.push(`local catalog:    ${s.catalogRegions} region(s)`);
  if (r.plan) {
    lines.push(`keys:             ${r.plan.keys} (${r.plan.valueBytes} value bytes)`);
    for (const b of r.plan.blockers) lines.push(`blocker:          ${b}`);
    for (const w of r.plan.warnings) lines.push(`warning:          ${w}`);
  }
  if (s.cluster) {
    if (s.cluster.runtimeError) lines.push(`cluster:          ${s.cluster.runtimeError}`);
    else {
      const rt = s.cluster.runtime!;
      lines.push(
        `cluster:          region ${rt.region?.id ?? '?'} leader store ${s.cluster.leaderStoreId ?? 'unknown'}, applied ${rt.appliedIndex}/${rt.appliedTerm}`,
        `membership:       ${s.cluster.membership.map((m) => `${m.storeId}:${m.peerId}${m.learner ? ' (learner)' : ''}`).join(', ')}`,
      );
    }
  }
  lines.push(`ready for init:   ${r.readyForInit}`, `ready for serve:  ${r.readyForServe}`);
  for (const n of r.nextSteps) lines.push(`next:             ${n}`);
  return lines.join('\n');
}
