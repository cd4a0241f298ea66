import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type Database,
  type InternalWrite,
  MAX_KEY_BYTES,
  nodeVfs,
  open,
  readModeFile,
  type WorkdirMode,
  writeModeFile,
} from '@nokv/engine';
import { type RegionMeta, RegionState } from '@nokv/proto';
import {
  encodeSnapshotPayload,
  PeerStorage,
  RAFT_INIT_INDEX,
  RAFT_INIT_TERM,
  readRegionStates,
} from '../peer-storage/index.js';
import { dataKey, dataRange, regionStateRange, storeIdentKey, userKeyOf } from '../store/keys.js';
import { MigrateError } from './errors.js';
import {
  MIGRATION_STAGES,
  type MigrationProgress,
  type MigrationStage,
  readProgress,
  resumeHint,
  writeProgress,
} from './progress.js';
import { readSeed, seedDir, writeSeed } from './seed.js';

export interface PlanReport {
  workdir: string;
  mode: WorkdirMode | 'missing';
  eligible: boolean;
  blockers: string[];
  warnings: string[];
  next: string;
  /**
   * Regions a store catalog in this workdir lists. A standalone workdir has none: a store's catalog
   * lives in a workdir whose MODE.json says so, which is a blocker of its own. (Standalone keys that
   * happen to look like catalog keys are user data, and init moves them like any other.)
   */
  localCatalogRegions: number;
  /** Live keys of the standalone database (what the seed will hold). */
  keys: number;
  valueBytes: number;
}

export interface MigrationIds {
  storeId: bigint;
  regionId: bigint;
  peerId: bigint;
}

async function readMode(workdir: string): Promise<WorkdirMode> {
  return (await readModeFile(nodeVfs, workdir))?.mode ?? 'standalone';
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Keys of a store catalog (store ident, region states) in an engine: a workdir a store already owns. */
async function catalogRegions(db: Database): Promise<number> {
  let n = 0;
  for await (const _ of db.iterate({ gte: regionStateRange.lo, lt: regionStateRange.hi })) n++;
  if (n === 0 && (await db.get(storeIdentKey)) !== undefined) n = -1;
  return n;
}

/**
 * `migrate plan`: a read-only preflight. Opens the database read-only (no lock, nothing written),
 * which replays and checks the manifest, WAL and value-log heads, and counts what would move.
 */
export async function plan(workdir: string): Promise<PlanReport> {
  const report: PlanReport = {
    workdir,
    mode: 'standalone',
    eligible: false,
    blockers: [],
    warnings: [],
    next: '',
    localCatalogRegions: 0,
    keys: 0,
    valueBytes: 0,
  };
  if (!(await exists(workdir))) {
    report.mode = 'missing';
    report.blockers.push(`workdir ${workdir} does not exist`);
    report.next = 'point --workdir at an existing standalone NoKV database';
    return report;
  }
  try {
    report.mode = await readMode(workdir);
  } catch (err) {
    report.blockers.push(`MODE.json is unreadable: ${(err as Error).message}`);
  }
  if (report.mode !== 'standalone') {
    report.blockers.push(`workdir is in mode '${report.mode}', not standalone`);
  }
  if (!(await exists(join(workdir, 'CURRENT')))) {
    report.blockers.push('no CURRENT file: this directory holds no NoKV database');
  }
  if (report.blockers.length === 0) {
    let db: Database | undefined;
    try {
      db = await open({ dir: workdir, readOnly: true });
      for await (const [k, v] of db.iterate()) {
        report.keys++;
        report.valueBytes += v.length;
        if (k.length >= MAX_KEY_BYTES) {
          report.blockers.push(`a key of ${k.length} bytes leaves no room for the cluster's 1-byte prefix`);
          break;
        }
      }
    } catch (err) {
      report.blockers.push(`the database does not open cleanly: ${(err as Error).message}`);
    } finally {
      await db?.close().catch(() => {});
    }
  }
  if (await exists(join(workdir, 'RAFTSTORE_SNAPSHOTS'))) {
    report.warnings.push('RAFTSTORE_SNAPSHOTS exists from an earlier attempt; init replaces it');
  }
  if (report.keys === 0 && report.blockers.length === 0) report.warnings.push('the database is empty');
  report.warnings.push('TTLs are not carried over: the cluster keeps every migrated key until deleted');
  report.eligible = report.blockers.length === 0;
  report.next = report.eligible
    ? `nokv migrate init --workdir ${workdir} --store <id> --region <id> --peer <id>`
    : report.mode === 'preparing'
      ? resumeHint('preparing', await readProgress(workdir).catch(() => undefined))
      : 'fix the blockers above and run plan again';
  return report;
}

export interface InitResult {
  workdir: string;
  storeId: string;
  regionId: string;
  peerId: string;
  /** True when the workdir was already seeded with these ids (nothing was done). */
  alreadySeeded: boolean;
  /** The checkpoint an interrupted init resumed after, if any. */
  resumedAfter?: MigrationStage;
  entries: number;
  seedBytes: number;
  seedDir: string;
  /** Milestones this run reached, in order. */
  stages: MigrationStage[];
}

export interface InitOptions extends MigrationIds {
  workdir: string;
  /** Test hook: called after each checkpoint is durable (the crash tests SIGKILL here). */
  afterCheckpoint?: (stage: MigrationStage) => void;
  onProgress?: (message: string) => void;
}

function stageIndex(stage: MigrationStage | undefined): number {
  return stage === undefined ? -1 : MIGRATION_STAGES.indexOf(stage);
}

function checkIds(ids: MigrationIds): void {
  for (const [name, v] of Object.entries(ids)) {
    if (typeof v !== 'bigint' || v <= 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new MigrateError('InvalidArgument', `${name} must be a positive integer, got ${String(v)}`);
    }
  }
}

function idsMatch(record: { storeId?: number; regionId?: number; peerId?: number }, ids: MigrationIds) {
  return (
    record.storeId === Number(ids.storeId) &&
    record.regionId === Number(ids.regionId) &&
    record.peerId === Number(ids.peerId)
  );
}

/** The full-range region a standalone database becomes: one peer, epoch 1/1. */
export function seedRegion(ids: MigrationIds): RegionMeta {
  return {
    id: ids.regionId,
    startKey: new Uint8Array(0),
    endKey: new Uint8Array(0),
    epoch: { version: 1n, confVersion: 1n },
    peers: [{ storeId: ids.storeId, peerId: ids.peerId, learner: false }],
    state: RegionState.Running,
  };
}

/** A hash over key/value pairs in order, to compare two copies of the same data. */
export class PairDigest {
  private readonly h = createHash('sha256');
  count = 0;
  add(key: Uint8Array, value: Uint8Array): void {
    const len = Buffer.alloc(8);
    len.writeUInt32BE(key.length, 0);
    len.writeUInt32BE(value.length, 4);
    this.h.update(len).update(key).update(value);
    this.count++;
  }
  hex(): string {
    return this.h.copy().digest('hex');
  }
}

const WIPE_END = Buffer.alloc(MAX_KEY_BYTES, 0xff);
const PUT_CHUNK = 4096;

/**
 * `migrate init`: turns a standalone workdir into a seeded one-peer store (spec §5.3). Every
 * milestone is checkpointed; a re-run resumes. Until `seed-snapshot-exported` the standalone data is
 * untouched; after it, the verified seed file is the source of truth, and the conversion (wipe the
 * standalone key space, write the region's data keys, region and Raft state) is redone whole from it
 * on every resume, so a crash anywhere in it loses nothing.
 */
export async function init(opts: InitOptions): Promise<InitResult> {
  checkIds({ storeId: opts.storeId, regionId: opts.regionId, peerId: opts.peerId });
  const { workdir } = opts;
  const say = opts.onProgress ?? (() => {});
  const reached: MigrationStage[] = [];
  const ids = { storeId: Number(opts.storeId), regionId: Number(opts.regionId), peerId: Number(opts.peerId) };
  const checkpoint = async (stage: MigrationStage) => {
    await writeProgress(workdir, { stage, ...ids });
    reached.push(stage);
    say(`checkpoint ${stage}`);
    opts.afterCheckpoint?.(stage);
  };
  const record = await readModeFile(nodeVfs, workdir);
  const mode = record?.mode ?? 'standalone';
  const base = {
    workdir,
    storeId: String(opts.storeId),
    regionId: String(opts.regionId),
    peerId: String(opts.peerId),
    seedDir: seedDir(workdir, opts.regionId),
  };
  if (mode === 'cluster') {
    throw new MigrateError('WrongMode', `workdir ${workdir} is already a cluster store; nothing to init`);
  }
  if (mode === 'seeded') {
    if (!record || !idsMatch(record, opts)) {
      throw new MigrateError(
        'IdMismatch',
        `workdir ${workdir} was seeded as store ${record?.storeId} region ${record?.regionId} peer ${record?.peerId}`,
      );
    }
    const seed = await readSeed(workdir, opts.regionId);
    return {
      ...base,
      alreadySeeded: true,
      entries: seed?.manifest.entryCount ?? 0,
      seedBytes: seed?.manifest.bytes ?? 0,
      stages: [],
    };
  }
  let progress: MigrationProgress | undefined;
  if (mode === 'preparing') {
    if (!record || !idsMatch(record, opts)) {
      throw new MigrateError(
        'IdMismatch',
        `an init for store ${record?.storeId} region ${record?.regionId} peer ${record?.peerId} is in progress; re-run it with those ids`,
      );
    }
    progress = await readProgress(workdir);
    say(`resuming after ${progress?.stage ?? 'the start'}`);
  } else {
    const report = await plan(workdir);
    if (!report.eligible) {
      throw new MigrateError(
        'NotEligible',
        `workdir ${workdir} cannot be migrated: ${report.blockers.join('; ')}`,
      );
    }
    await writeModeFile(nodeVfs, workdir, { mode: 'preparing', ...ids });
    await checkpoint('mode-preparing-written');
    progress = await readProgress(workdir);
  }
  const resumedAfter = mode === 'preparing' ? progress?.stage : undefined;
  const region = seedRegion(opts);
  const db = await open({ dir: workdir, allowedModes: ['preparing'] });
  let entries = 0;
  let seedBytes = 0;
  try {
    if (stageIndex(progress?.stage) < stageIndex('seed-snapshot-exported')) {
      // The standalone data is still intact: (re)build the seed from it.
      const pairs: Array<[Uint8Array, Uint8Array]> = [];
      for await (const [k, v] of db.iterate()) pairs.push([k, v]);
      say(`exporting ${pairs.length} keys into the seed snapshot`);
      const payload = encodeSnapshotPayload({
        region,
        appliedIndex: RAFT_INIT_INDEX,
        appliedTerm: RAFT_INIT_TERM,
        pairs,
        records: [],
      });
      await writeSeed(workdir, region, payload, pairs.length);
      const check = await readSeed(workdir, opts.regionId);
      if (!check || check.payload.pairs.length !== pairs.length) {
        throw new MigrateError('ValidationFailed', 'the seed snapshot does not read back as written');
      }
      await checkpoint('seed-snapshot-exported');
    }
    const seed = await readSeed(workdir, opts.regionId);
    if (!seed) {
      throw new MigrateError(
        'CorruptSeed',
        `checkpoint says the seed was exported but ${seedDir(workdir, opts.regionId)} holds none; the standalone data may be gone — restore the workdir from a backup`,
      );
    }
    entries = seed.manifest.entryCount;
    seedBytes = seed.manifest.bytes;
    if (stageIndex(progress?.stage) < stageIndex('raft-seed-initialized')) {
      say(`converting ${entries} keys into region ${opts.regionId}`);
      await convert(db, region, seed.payload.pairs, opts.storeId);
      await checkpoint('local-catalog-persisted');
      await checkpoint('raft-seed-initialized');
    }
    await validateSeeded(db, region, seed.payload.pairs);
  } finally {
    await db.close();
  }
  await writeModeFile(nodeVfs, workdir, { mode: 'seeded', ...ids });
  await checkpoint('seeded-finalized');
  return {
    ...base,
    alreadySeeded: false,
    ...(resumedAfter ? { resumedAfter } : {}),
    entries,
    seedBytes,
    stages: reached,
  };
}

/** Wipes the standalone key space and writes the seed as one region's data, catalog and Raft state. */
async function convert(
  db: Database,
  region: RegionMeta,
  pairs: ReadonlyArray<[Uint8Array, Uint8Array]>,
  storeId: bigint,
): Promise<void> {
  await db.internal.write(
    [
      { cf: 'default', op: 'deleteRange', key: Buffer.from([0]), end: WIPE_END },
      { cf: 'default', op: 'delete', key: WIPE_END },
    ],
    { sync: true },
  );
  for (let i = 0; i < pairs.length; i += PUT_CHUNK) {
    const ops: InternalWrite[] = pairs
      .slice(i, i + PUT_CHUNK)
      .map(([k, v]) => ({ cf: 'default', op: 'put', key: dataKey(k), value: v }));
    await db.internal.write(ops, { sync: false });
  }
  // The region and Raft state land last, synced: their presence means the data before is durable.
  await PeerStorage.bootstrap(db, region);
  const ident = Buffer.alloc(8);
  ident.writeBigUInt64BE(storeId);
  await db.internal.write([{ cf: 'default', op: 'put', key: storeIdentKey, value: ident }], { sync: true });
}

/** Post-check: one region with this peer, Raft state present, every seed key readable as data. */
async function validateSeeded(
  db: Database,
  region: RegionMeta,
  pairs: ReadonlyArray<[Uint8Array, Uint8Array]>,
): Promise<void> {
  const states = await readRegionStates(db);
  const mine = states.filter((s) => s.region.id === region.id);
  if (states.length !== 1 || mine.length !== 1) {
    throw new MigrateError(
      'ValidationFailed',
      `expected exactly region ${region.id} in the catalog, found ${states.length}`,
    );
  }
  const peers = mine[0]!.region.peers;
  if (peers.length !== 1 || peers[0]!.peerId !== region.peers[0]!.peerId) {
    throw new MigrateError(
      'ValidationFailed',
      `region ${region.id} does not list exactly peer ${region.peers[0]!.peerId}`,
    );
  }
  if (mine[0]!.appliedIndex !== RAFT_INIT_INDEX) {
    throw new MigrateError('ValidationFailed', `region ${region.id} has no initial Raft state`);
  }
  const want = new PairDigest();
  for (const [k, v] of pairs) want.add(k, v);
  const got = new PairDigest();
  const { lo, hi } = dataRange(new Uint8Array(0), new Uint8Array(0));
  for await (const [k, v] of db.iterate({ gte: lo, lt: hi })) got.add(userKeyOf(k), v);
  if (got.count !== want.count || got.hex() !== want.hex()) {
    throw new MigrateError(
      'ValidationFailed',
      `the region's data (${got.count} keys) does not match the seed (${want.count} keys)`,
    );
  }
}

export interface LocalStatus {
  workdir: string;
  mode: WorkdirMode | 'missing';
  storeId?: number;
  regionId?: number;
  peerId?: number;
  progress?: MigrationProgress;
  progressError?: string;
  seed: { dir: string; present: boolean; entries?: number; bytes?: number; error?: string };
  /** Regions in the workdir's store catalog (read-only open); undefined if it could not be read. */
  catalogRegions?: number;
  catalogError?: string;
  resumeHint: string;
}

/** `migrate status` without `--addr`: what the workdir says about the migration. Read-only. */
export async function localStatus(workdir: string, regionId?: bigint): Promise<LocalStatus> {
  if (!(await exists(workdir))) {
    return {
      workdir,
      mode: 'missing',
      seed: { dir: '', present: false },
      resumeHint: `workdir ${workdir} does not exist`,
    };
  }
  const record = await readModeFile(nodeVfs, workdir);
  const mode = record?.mode ?? 'standalone';
  const out: LocalStatus = {
    workdir,
    mode,
    ...(record?.storeId !== undefined ? { storeId: record.storeId } : {}),
    ...(record?.regionId !== undefined ? { regionId: record.regionId } : {}),
    ...(record?.peerId !== undefined ? { peerId: record.peerId } : {}),
    seed: { dir: '', present: false },
    resumeHint: '',
  };
  try {
    const p = await readProgress(workdir);
    if (p) out.progress = p;
  } catch (err) {
    out.progressError = (err as Error).message;
  }
  const rid =
    regionId ??
    (out.progress ? BigInt(out.progress.regionId) : record?.regionId ? BigInt(record.regionId) : undefined);
  if (rid !== undefined) {
    out.seed.dir = seedDir(workdir, rid);
    try {
      const seed = await readSeed(workdir, rid);
      if (seed)
        out.seed = {
          dir: out.seed.dir,
          present: true,
          entries: seed.manifest.entryCount,
          bytes: seed.manifest.bytes,
        };
    } catch (err) {
      out.seed.error = (err as Error).message;
    }
  }
  let db: Database | undefined;
  try {
    db = await open({ dir: workdir, readOnly: true, allowedModes: ['preparing', 'seeded', 'cluster'] });
    out.catalogRegions = Math.max(0, await catalogRegions(db));
  } catch (err) {
    out.catalogError = (err as Error).message;
  } finally {
    await db?.close().catch(() => {});
  }
  out.resumeHint = resumeHint(mode, out.progress);
  return out;
}
