import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, existsSync, type WriteStream } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadTopology, resolveWorkdir, storeAddress, storeHttpAddress, type Topology } from '@nokv/config';

// The local lab: the coordinator and every store of a topology file as child processes of one
// supervisor, and, once they are up, the Redis gateway over the cluster (when the topology names a
// coordinator). Logs are streamed to the terminal with a prefix and kept under artifacts/lab/; the
// children's pids go to artifacts/lab/pids.json so `nokv lab down` can stop a lab started
// elsewhere. Started again, the stores reuse their workdirs and recover.

export interface LabOptions {
  configPath: string;
  /** Where logs and the pid file go (default ./artifacts/lab). */
  artifactsDir?: string;
  /** Where each line of child output goes (default stdout). */
  print?: (line: string) => void;
  logLevel?: string;
  /** Where the Redis gateway listens (default 127.0.0.1:6380); `false`: no gateway. */
  redisAddr?: string | false;
  /** Where the coordinator serves its tRPC API (default 127.0.0.1:2381). */
  trpcAddr?: string;
}

interface LabChild {
  name: string;
  args: string[];
  proc?: ChildProcess;
  log?: WriteStream;
  health?: string;
  /** The gateway's `host:port`: ready once it serves reads. */
  redisAddr?: string;
}

// packages/cli/{src,dist/src}/lab → the repository root, where the apps live.
const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = here.includes(join('dist', 'src'))
  ? join(here, '..', '..', '..', '..', '..')
  : join(here, '..', '..', '..', '..');

/** The compiled entry of a workspace app (`node` → apps/node/dist/src/main.js), if built. */
function appEntry(app: string): string | undefined {
  const entry = join(repoRoot, 'apps', app, 'dist', 'src', 'main.js');
  return existsSync(entry) ? entry : undefined;
}

/** Where the lab's coordinator serves its tRPC API (the console talks to it). */
const LAB_TRPC_ADDR = '127.0.0.1:2381';
/** Where the lab's Redis gateway listens. */
export const LAB_REDIS_ADDR = '127.0.0.1:6380';

/**
 * Whether the gateway at `addr` serves: a read answers (`:0`) rather than `-TRYAGAIN`, which it
 * says while the coordinator still learns the regions from the stores' heartbeats.
 */
function gatewayServes(addr: string): Promise<boolean> {
  const i = addr.lastIndexOf(':');
  return new Promise((resolve) => {
    const sock = connect(Number(addr.slice(i + 1)), addr.slice(0, i));
    let got = '';
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(1000, () => done(false));
    sock.once('connect', () => sock.write('EXISTS nokv-lab-ready\r\n'));
    sock.on('data', (d) => {
      got += d.toString('latin1');
      if (got.includes('\r\n')) done(got.startsWith(':'));
    });
    sock.once('error', () => done(false));
  });
}

export class LabError extends Error {
  override readonly name = 'LabError';
  constructor(
    readonly code: 'LabRunning' | 'LabNotRunning' | 'NotBuilt' | 'StartFailed',
    message: string,
  ) {
    super(message);
  }
}

function pidFile(dir: string): string {
  return join(dir, 'pids.json');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function runningPids(dir: string): Promise<{ name: string; pid: number }[]> {
  try {
    const list = JSON.parse(await readFile(pidFile(dir), 'utf8')) as { name: string; pid: number }[];
    return list.filter((p) => alive(p.pid));
  } catch {
    return [];
  }
}

/** Starts the lab and resolves once every process answers; `stop()` ends it cleanly. */
export async function labUp(
  opts: LabOptions,
): Promise<{ stop(): Promise<void>; done: Promise<boolean>; topology: Topology }> {
  const artifacts = resolve(opts.artifactsDir ?? 'artifacts/lab');
  const print = opts.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const running = await runningPids(artifacts);
  if (running.length > 0) {
    throw new LabError(
      'LabRunning',
      `a lab is already running (${running.map((p) => `${p.name} pid ${p.pid}`).join(', ')}); run 'nokv lab down' first`,
    );
  }
  const topology = await loadTopology(opts.configPath);
  const nodeEntry = appEntry('node');
  if (!nodeEntry) throw new LabError('NotBuilt', "the node app is not built; run 'pnpm build' first");
  const coordinatorEntry = appEntry('coordinator');
  await mkdir(artifacts, { recursive: true });
  const level = opts.logLevel ?? 'info';
  const children: LabChild[] = [];
  if (coordinatorEntry && topology.coordinator?.addr) {
    const dir = resolve(dirname(resolve(opts.configPath)), 'data', 'coordinator');
    children.push({
      name: 'coordinator',
      args: [
        coordinatorEntry,
        '--addr',
        topology.coordinator.addr,
        '--workdir',
        dir,
        '--log-level',
        level,
        '--trpc-addr',
        opts.trpcAddr ?? LAB_TRPC_ADDR,
      ],
    });
  }
  for (const store of topology.stores) {
    const http = storeHttpAddress(topology, store.id, 'host');
    children.push({
      name: `store-${store.id}`,
      args: [
        nodeEntry,
        '--config',
        resolve(opts.configPath),
        '--store-id',
        String(store.id),
        '--log-level',
        level,
      ],
      ...(http ? { health: `http://${http}/healthz` } : {}),
    });
  }
  // The gateway is a client of the cluster: it starts once the coordinator and the stores are up.
  const redisEntry = appEntry('redis');
  const redisAddr = opts.redisAddr === undefined ? LAB_REDIS_ADDR : opts.redisAddr;
  const gateway: LabChild | undefined =
    redisEntry && redisAddr !== false && children.some((c) => c.name === 'coordinator')
      ? {
          name: 'redis',
          args: [
            redisEntry,
            '--addr',
            redisAddr,
            '--coordinator',
            topology.coordinator!.addr!,
            '--log-level',
            level,
          ],
          redisAddr,
        }
      : undefined;

  let cleanExits = 0;
  const exits: Promise<void>[] = [];
  const writePids = () =>
    writeFile(
      pidFile(artifacts),
      JSON.stringify(children.map((c) => ({ name: c.name, pid: c.proc?.pid ?? 0 }))),
    );
  const start = (c: LabChild) => {
    c.log = createWriteStream(join(artifacts, `${c.name}.log`), { flags: 'a' });
    // Own process group: a terminal Ctrl+C reaches only the supervisor, which stops each child once.
    const proc = spawn(process.execPath, c.args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    c.proc = proc;
    const prefix = `[${c.name}]`.padEnd(14);
    let partial = '';
    const onData = (chunk: Buffer) => {
      c.log?.write(chunk);
      const text = partial + chunk.toString();
      const lines = text.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) if (line.length > 0) print(`${prefix} ${line}`);
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', onData);
    exits.push(
      new Promise<void>((res) =>
        proc.once('exit', (code, signal) => {
          if (code === 0) cleanExits++;
          print(`${prefix} exited (${signal ?? `code ${code}`})`);
          res();
        }),
      ),
    );
  };
  for (const c of children) start(c);
  await writePids();

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      const running = (c: LabChild) =>
        c.proc !== undefined && c.proc.exitCode === null && c.proc.signalCode === null;
      const force = setTimeout(() => {
        for (const c of children) if (running(c)) c.proc!.kill('SIGKILL');
      }, 15_000);
      // Clients first: the gateway finishes its commits while the stores still serve them.
      const first = children.filter((c) => c.name === 'redis' && running(c));
      for (const c of first) c.proc!.kill('SIGTERM');
      await Promise.all(first.map((c) => new Promise((r) => c.proc!.once('exit', r))));
      for (const c of children) if (running(c)) c.proc!.kill('SIGTERM');
      await Promise.all(exits);
      clearTimeout(force);
      for (const c of children) c.log?.end();
      await rm(pidFile(artifacts), { force: true });
    })();
    return stopping;
  };
  const deadline = Date.now() + 60_000;
  /** Waits until `ready` holds (a child that dies fails the start). */
  const waitReady = async (c: LabChild, ready: () => Promise<boolean>) => {
    for (;;) {
      if (c.proc?.exitCode !== null) {
        await stop();
        throw new LabError(
          'StartFailed',
          `${c.name} exited during startup; see ${join(artifacts, `${c.name}.log`)}`,
        );
      }
      if (await ready()) return;
      if (Date.now() > deadline) {
        await stop();
        throw new LabError('StartFailed', `${c.name} did not become ready within 60 s`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  // Wait until every store answers its health check.
  for (const c of children) {
    const url = c.health;
    if (url === undefined) continue;
    await waitReady(c, () =>
      fetch(url).then(
        (r) => r.ok,
        () => false,
      ),
    );
  }
  if (gateway) {
    children.push(gateway);
    start(gateway);
    await writePids();
    await waitReady(gateway, () => gatewayServes(gateway.redisAddr!));
  }
  print('');
  print('NoKV lab is up:');
  if (children.some((c) => c.name === 'coordinator')) {
    print(
      `  coordinator  ${topology.coordinator?.addr}   tRPC http://${opts.trpcAddr ?? LAB_TRPC_ADDR} (the console's API)`,
    );
  }
  for (const s of topology.stores) {
    print(
      `  store ${s.id}      grpc ${storeAddress(topology, s.id, 'host')}   http ${storeHttpAddress(topology, s.id, 'host') ?? '-'}   workdir ${resolveWorkdir(topology, s.id, {})}`,
    );
  }
  if (gateway) print(`  redis        ${gateway.redisAddr}   (Redis protocol, transactions over the cluster)`);
  print(`  logs         ${artifacts}`);
  print('  try: pnpm nokv kv put hello world && pnpm nokv kv get hello   (Ctrl+C stops the lab)');
  if (gateway) {
    const port = gateway.redisAddr!.slice(gateway.redisAddr!.lastIndexOf(':') + 1);
    print(`       redis-cli -p ${port} set hello world && redis-cli -p ${port} get hello`);
  }
  print('');
  return {
    stop,
    // Every process stopped cleanly (e.g. `nokv lab down` from another terminal) → true.
    done: (async () => {
      // A child started after this promise was made is waited for too.
      let n = 0;
      while (n < exits.length) {
        n = exits.length;
        await Promise.all(exits);
      }
      return cleanExits === children.length;
    })(),
    topology,
  };
}

/** Stops a lab started by another `nokv lab up` (SIGTERM to the recorded pids). */
export async function labDown(opts: { artifactsDir?: string }): Promise<number> {
  const artifacts = resolve(opts.artifactsDir ?? 'artifacts/lab');
  const running = await runningPids(artifacts);
  if (running.length === 0) throw new LabError('LabNotRunning', 'no lab is running');
  // The gateway first, so it can finish its commits while the stores still serve them.
  const gateways = running.filter((p) => p.name === 'redis');
  for (const p of gateways) process.kill(p.pid, 'SIGTERM');
  const gatewayDeadline = Date.now() + 10_000;
  while (gateways.some((p) => alive(p.pid)) && Date.now() < gatewayDeadline)
    await new Promise((r) => setTimeout(r, 50));
  for (const p of running) if (p.name !== 'redis' && alive(p.pid)) process.kill(p.pid, 'SIGTERM');
  const deadline = Date.now() + 20_000;
  while (running.some((p) => alive(p.pid)) && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 100));
  for (const p of running) if (alive(p.pid)) process.kill(p.pid, 'SIGKILL');
  await rm(pidFile(artifacts), { force: true });
  return running.length;
}

/** Removes the lab's workdirs and artifacts (refuses while it runs). */
export async function labClean(opts: { configPath: string; artifactsDir?: string }): Promise<string[]> {
  const artifacts = resolve(opts.artifactsDir ?? 'artifacts/lab');
  if ((await runningPids(artifacts)).length > 0) {
    throw new LabError('LabRunning', "the lab is running; run 'nokv lab down' first");
  }
  const topology = await loadTopology(opts.configPath);
  const removed: string[] = [];
  for (const s of topology.stores) {
    const dir = resolveWorkdir(topology, s.id, {});
    await rm(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  const coordinatorDir = resolve(dirname(resolve(opts.configPath)), 'data', 'coordinator');
  await rm(coordinatorDir, { recursive: true, force: true });
  removed.push(coordinatorDir, artifacts);
  await rm(artifacts, { recursive: true, force: true });
  return removed;
}
