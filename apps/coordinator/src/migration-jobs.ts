import {
  expand,
  init,
  jsonBigint,
  type MigrationStage,
  plan,
  removePeer,
  report,
  transferLeader,
} from '@nokv/raftstore/migrate';

// The migration steps as jobs the console can start one click at a time and watch: each job runs
// one `nokv migrate` step in this process and keeps its progress lines, its checkpoints and its
// result (or typed error) for polling. Steps that need a workdir run against a path on this
// machine (the lab's coordinator shares the machine with its stores).

export type MigrationStep = 'plan' | 'init' | 'report' | 'expand' | 'transfer-leader' | 'remove-peer';

export interface MigrationJob {
  id: number;
  step: MigrationStep;
  state: 'running' | 'finished' | 'failed';
  startedAt: number;
  finishedAt?: number;
  /** Progress lines, oldest first. */
  messages: string[];
  /** Checkpoints reached, in order. */
  stages: string[];
  /** JSON-safe result of the step. */
  result?: unknown;
  error?: { code: string; message: string };
}

export type MigrationJobInput =
  | { step: 'plan'; workdir: string }
  | { step: 'report'; workdir: string; addr?: string; regionId?: bigint }
  | { step: 'init'; workdir: string; storeId: bigint; regionId: bigint; peerId: bigint }
  | {
      step: 'expand';
      addr: string;
      regionId: bigint;
      targets: { storeId: bigint; peerId: bigint; addr?: string }[];
      workdir?: string;
      waitMs?: number;
    }
  | {
      step: 'transfer-leader' | 'remove-peer';
      addr: string;
      targetAddr: string;
      regionId: bigint;
      peerId: bigint;
      workdir?: string;
      waitMs?: number;
    };

const KEEP = 50;

/** Runs migration steps as jobs; one step at a time per workdir or region. */
export class MigrationJobs {
  private readonly jobs = new Map<number, MigrationJob>();
  private readonly busy = new Set<string>();
  private nextId = 1;

  list(): MigrationJob[] {
    return [...this.jobs.values()].sort((a, b) => b.id - a.id);
  }

  get(id: number): MigrationJob | undefined {
    return this.jobs.get(id);
  }

  /** Starts a step; returns its job at once (poll `get` for progress). */
  start(input: MigrationJobInput): MigrationJob {
    const lock =
      'workdir' in input && input.workdir
        ? `dir:${input.workdir}`
        : `region:${'regionId' in input ? input.regionId : ''}`;
    if (input.step !== 'plan' && input.step !== 'report' && this.busy.has(lock)) {
      throw new MigrationBusyError(
        `another migration step is running on ${lock.slice(lock.indexOf(':') + 1)}`,
      );
    }
    const job: MigrationJob = {
      id: this.nextId++,
      step: input.step,
      state: 'running',
      startedAt: Date.now(),
      messages: [],
      stages: [],
    };
    this.jobs.set(job.id, job);
    this.trim();
    const onProgress = (m: string) => job.messages.push(m);
    const afterCheckpoint = (s: MigrationStage) => job.stages.push(s);
    const mutating = input.step !== 'plan' && input.step !== 'report';
    if (mutating) this.busy.add(lock);
    void (async () => {
      try {
        let result: unknown;
        switch (input.step) {
          case 'plan':
            result = await plan(input.workdir);
            break;
          case 'report':
            result = await report({
              workdir: input.workdir,
              write: true,
              ...(input.addr ? { addr: input.addr } : {}),
              ...(input.regionId ? { regionId: input.regionId } : {}),
            });
            break;
          case 'init':
            result = await init({ ...input, onProgress, afterCheckpoint });
            break;
          case 'expand':
            result = await expand({ ...input, onProgress, afterCheckpoint });
            break;
          case 'transfer-leader':
            result = await transferLeader({ ...input, onProgress });
            break;
          case 'remove-peer':
            result = await removePeer({ ...input, onProgress });
            break;
        }
        job.result = JSON.parse(JSON.stringify(result, jsonBigint)) as unknown;
        job.state = 'finished';
      } catch (err) {
        const e = err as Error & { code?: unknown };
        job.error = { code: typeof e.code === 'string' ? e.code : 'Internal', message: e.message };
        job.state = 'failed';
      } finally {
        job.finishedAt = Date.now();
        if (mutating) this.busy.delete(lock);
      }
    })();
    return job;
  }

  private trim(): void {
    const done = [...this.jobs.values()].filter((j) => j.state !== 'running');
    for (const j of done.slice(0, Math.max(0, done.length - KEEP))) this.jobs.delete(j.id);
  }
}

export class MigrationBusyError extends Error {
  override readonly name = 'MigrationBusyError';
  readonly code = 'MigrationBusy';
}
