import { type Command, InvalidArgumentError } from 'commander';
import { CliError } from '../errors.js';
import type { Output } from '../output.js';

// `nokv migrate ...`: the standalone → seeded → cluster protocol (packages/raftstore/src/migrate).
// Each subcommand prints what it did as text, or JSON with --json; a failed step exits 1 with a
// typed error ([code]) and the checkpoint tells `status` how to resume.

function id(value: string): bigint {
  if (!/^\d+$/.test(value) || BigInt(value) <= 0n || BigInt(value) > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new InvalidArgumentError('expected a positive integer id');
  }
  return BigInt(value);
}

function ms(value: string): number {
  const m = /^(\d+)(ms|s)?$/.exec(value);
  if (!m) throw new InvalidArgumentError('expected a duration such as 30s or 200ms');
  return Number(m[1]) * (m[2] === 's' ? 1000 : 1);
}

interface Target {
  storeId: bigint;
  peerId: bigint;
  addr?: string;
}

/** `store:peer[@host:port]` */
function target(value: string, previous: Target[] = []): Target[] {
  const m = /^(\d+):(\d+)(?:@(.+))?$/.exec(value);
  if (!m) throw new InvalidArgumentError('expected store:peer or store:peer@host:port');
  return [...previous, { storeId: id(m[1]!), peerId: id(m[2]!), ...(m[3] ? { addr: m[3] } : {}) }];
}

const crashAfter = process.env.NOKV_MIGRATE_CRASH_AFTER;
/** Crash tests set NOKV_MIGRATE_CRASH_AFTER=<stage>: the process SIGKILLs itself right after that checkpoint. */
function crashHook(stage: string): void {
  if (crashAfter === stage) process.kill(process.pid, 'SIGKILL');
}

function json(value: unknown): string {
  return JSON.stringify(
    value,
    (_k, v: unknown) =>
      typeof v === 'bigint' ? String(v) : v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v,
    2,
  );
}

function regionLine(r: {
  id: bigint;
  epoch: { version: bigint; confVersion: bigint };
  peers: { storeId: bigint; peerId: bigint }[];
}): string {
  return `region ${r.id} epoch ${r.epoch.version}/${r.epoch.confVersion} peers ${r.peers.map((p) => `${p.storeId}:${p.peerId}`).join(', ')}`;
}

export function registerMigrate(program: Command, out: Output): void {
  const m = program
    .command('migrate')
    .description('turn a standalone workdir into a replicated cluster (plan, init, serve, expand)');
  const lib = () => import('@nokv/raftstore/migrate');
  const say = (quiet: boolean) => (msg: string) => {
    if (!quiet) out.write(`  ${msg}`);
  };

  m.command('plan')
    .description('read-only preflight: is this standalone workdir ready to migrate?')
    .requiredOption('--workdir <dir>', 'the standalone database directory')
    .option('--json', 'JSON for scripts')
    .action(async (o: { workdir: string; json?: boolean }) => {
      const r = await (await lib()).plan(o.workdir);
      if (o.json) out.write(json(r));
      else {
        out.write(`workdir:   ${r.workdir}`);
        out.write(`mode:      ${r.mode}`);
        out.write(`eligible:  ${r.eligible}`);
        out.write(`keys:      ${r.keys} (${r.valueBytes} value bytes)`);
        for (const b of r.blockers) out.write(`blocker:   ${b}`);
        for (const w of r.warnings) out.write(`warning:   ${w}`);
        out.write(`next:      ${r.next}`);
      }
      if (!r.eligible) throw new CliError('the workdir is not eligible for migration', 1);
    });

  m.command('init')
    .description('seed the workdir as a one-peer store (resumable; each milestone is checkpointed)')
    .requiredOption('--workdir <dir>', 'the standalone database directory')
    .requiredOption('--store <id>', 'store id this workdir becomes', id)
    .requiredOption('--region <id>', 'id of the full-range region', id)
    .requiredOption('--peer <id>', 'id of the region’s first peer', id)
    .option('--json', 'JSON for scripts')
    .action(async (o: { workdir: string; store: bigint; region: bigint; peer: bigint; json?: boolean }) => {
      const r = await (await lib()).init({
        workdir: o.workdir,
        storeId: o.store,
        regionId: o.region,
        peerId: o.peer,
        afterCheckpoint: crashHook,
        onProgress: say(o.json === true),
      });
      if (o.json) out.write(json(r));
      else if (r.alreadySeeded)
        out.write(`already seeded as store ${r.storeId} region ${r.regionId} peer ${r.peerId}`);
      else {
        out.write(
          `seeded: store ${r.storeId}, region ${r.regionId} (full range), peer ${r.peerId}; ${r.entries} keys, seed ${r.seedBytes} bytes${r.resumedAfter ? ` (resumed after ${r.resumedAfter})` : ''}`,
        );
        out.write(`next: nokv serve --config <topology> --store-id ${r.storeId} --workdir ${r.workdir}`);
      }
    });

  const statusOptions = (c: Command) =>
    c
      .requiredOption('--workdir <dir>', 'the workdir being migrated')
      .option('--addr <host:port>', 'a store to ask for the cluster view of the region')
      .option('--region <id>', 'region id (default: the checkpoint’s)', id)
      .option('--timeout <duration>', 'deadline of the remote call', ms, 3000)
      .option('--json', 'JSON for scripts');
  type StatusOpts = { workdir: string; addr?: string; region?: bigint; timeout: number; json?: boolean };

  statusOptions(
    m
      .command('status')
      .description('mode, checkpoint, seed and resume hint (and the cluster view with --addr)'),
  ).action(async (o: StatusOpts) => {
    const l = await lib();
    const r = await l.report({
      workdir: o.workdir,
      ...(o.addr ? { addr: o.addr } : {}),
      ...(o.region ? { regionId: o.region } : {}),
      timeoutMs: o.timeout,
    });
    if (o.json) out.write(json(r.status));
    else out.write(l.formatReport(r));
  });

  statusOptions(
    m
      .command('report')
      .description('plan + status + cluster summary, written as MIGRATION_REPORT.{txt,json}'),
  )
    .option('--out <dir>', 'where the report files go (default: the workdir)')
    .action(async (o: StatusOpts & { out?: string }) => {
      const l = await lib();
      const r = await l.report({
        workdir: o.workdir,
        ...(o.addr ? { addr: o.addr } : {}),
        ...(o.region ? { regionId: o.region } : {}),
        timeoutMs: o.timeout,
        write: true,
        ...(o.out ? { outDir: o.out } : {}),
      });
      if (o.json) out.write(json(r));
      else {
        out.write(l.formatReport(r));
        out.write(`written: ${r.files?.text} and ${r.files?.json}`);
      }
    });

  m.command('expand')
    .description('add peers to the region one at a time, each with a snapshot, verified hosted and applied')
    .requiredOption('--addr <host:port>', 'the region leader’s gRPC address')
    .requiredOption('--region <id>', 'region id', id)
    .requiredOption(
      '--target <store:peer[@addr]>',
      'a peer to add (repeatable); @addr = the target store’s gRPC address',
      target,
    )
    .option('--workdir <dir>', 'write checkpoints to this workdir’s MIGRATION_PROGRESS.json')
    .option('--wait <duration>', 'how long each step may take (0 = fire and return)', ms, 30_000)
    .option('--poll-interval <duration>', 'how often to poll', ms, 200)
    .option('--json', 'JSON for scripts')
    .action(
      async (o: {
        addr: string;
        region: bigint;
        target: Target[];
        workdir?: string;
        wait: number;
        pollInterval: number;
        json?: boolean;
      }) => {
        const r = await (await lib()).expand({
          addr: o.addr,
          regionId: o.region,
          targets: o.target,
          ...(o.workdir ? { workdir: o.workdir } : {}),
          waitMs: o.wait,
          pollIntervalMs: o.pollInterval,
          afterCheckpoint: crashHook,
          onProgress: say(o.json === true),
        });
        if (o.json) out.write(json(r));
        else {
          for (const a of r.added) {
            out.write(
              `peer ${a.peerId} on store ${a.storeId}: ${a.alreadyMember ? 'already a member' : `added (snapshot ${a.snapshotBytes} bytes)`}, applied index ${a.appliedIndex}`,
            );
          }
          if (r.region) out.write(regionLine(r.region));
        }
      },
    );

  const moveOptions = (c: Command) =>
    c
      .requiredOption('--addr <host:port>', 'the region leader’s gRPC address')
      .requiredOption('--target-addr <host:port>', 'gRPC address of the store holding --peer')
      .requiredOption('--region <id>', 'region id', id)
      .requiredOption('--peer <id>', 'peer id', id)
      .option('--workdir <dir>', 'write checkpoints to this workdir’s MIGRATION_PROGRESS.json')
      .option('--wait <duration>', 'how long to wait for the change', ms, 30_000)
      .option('--json', 'JSON for scripts');
  type MoveOpts = {
    addr: string;
    targetAddr: string;
    region: bigint;
    peer: bigint;
    workdir?: string;
    wait: number;
    json?: boolean;
  };
  const moveArgs = (o: MoveOpts) => ({
    addr: o.addr,
    targetAddr: o.targetAddr,
    regionId: o.region,
    peerId: o.peer,
    ...(o.workdir ? { workdir: o.workdir } : {}),
    waitMs: o.wait,
    afterCheckpoint: crashHook,
  });

  moveOptions(
    m.command('transfer-leader').description('move the region’s leadership to --peer and wait until it took'),
  ).action(async (o: MoveOpts) => {
    const s = await (await lib()).transferLeader(moveArgs(o));
    if (o.json) out.write(json(s));
    else out.write(`peer ${s.localPeerId} at ${s.addr} leads region ${o.region} (applied ${s.appliedIndex})`);
  });

  moveOptions(
    m.command('remove-peer').description('remove --peer from the region and wait until its store dropped it'),
  ).action(async (o: MoveOpts) => {
    const r = await (await lib()).removePeer(moveArgs(o));
    if (o.json) out.write(json(r));
    else out.write(`peer ${o.peer} removed${r.region ? `; ${regionLine(r.region)}` : ''}`);
  });
}

/** `nokv migrate checksum`: count and SHA-256 of every key/value, offline from a standalone workdir or through the cluster. */
export async function checksumCommand(
  o: { workdir?: string; coordinator?: string; json?: boolean },
  out: Output,
): Promise<void> {
  if ((o.workdir === undefined) === (o.coordinator === undefined)) {
    throw new CliError(
      'give exactly one of --workdir (a standalone database) or --coordinator (a cluster)',
      2,
    );
  }
  const { PairDigest } = await import('@nokv/raftstore/migrate');
  const d = new PairDigest();
  if (o.workdir !== undefined) {
    const { open } = await import('@nokv/engine');
    const db = await open({ dir: o.workdir, readOnly: true });
    try {
      for await (const [k, v] of db.iterate()) d.add(k, v);
    } finally {
      await db.close();
    }
  } else {
    const { connectCluster } = await import('@nokv/raftstore');
    const conn = await connectCluster({ coordinatorAddr: o.coordinator!, timeoutMs: 15_000 });
    try {
      let from = Buffer.alloc(0);
      for (;;) {
        const rows = await conn.client.scan(from, '', 2000);
        for (const r of rows) d.add(r.key, r.value);
        if (rows.length < 2000) break;
        from = Buffer.concat([rows[rows.length - 1]!.key, Buffer.from([0])]);
      }
    } finally {
      conn.close();
    }
  }
  if (o.json) out.write(JSON.stringify({ keys: d.count, sha256: d.hex() }));
  else out.write(`${d.count} keys, sha256 ${d.hex()}`);
}

/** `nokv fill`: writes `keys` sample keys into a standalone database (for trying the migration). */
export async function fillCommand(o: { workdir: string; keys: number }, out: Output): Promise<void> {
  const { open } = await import('@nokv/engine');
  const db = await open({ dir: o.workdir });
  try {
    for (let i = 0; i < o.keys; i += 1000) {
      const batch = db.batch();
      for (let j = i; j < Math.min(o.keys, i + 1000); j++) {
        batch.put(`user:${String(j).padStart(8, '0')}`, JSON.stringify({ id: j, name: `user ${j}` }));
      }
      await db.write(batch);
    }
  } finally {
    await db.close();
  }
  out.write(`wrote ${o.keys} keys into ${o.workdir}`);
}
