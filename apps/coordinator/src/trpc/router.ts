/**
 * The coordinator's tRPC API for the console (see README "tRPC API"): the cluster view, the event
 * log and its live stream, the operator queue, the scheduler, and operator actions. Everything is
 * JSON-safe (ids and other 64-bit values as decimal strings); ids in inputs may be strings or
 * numbers.
 */

import { keyProblem, parseKey } from '@nokv/config';
import { initTRPC, TRPCError, tracked } from '@trpc/server';
import { z } from 'zod';
import { CLUSTER_EVENT_KINDS, type ClusterEvent } from '../cluster-events.js';
import type { Coordinator } from '../coordinator.js';
import { isCoordinatorError, isOperatorError, type OperatorErrorCode } from '../errors.js';
import { MigrationBusyError } from '../migration-jobs.js';
import {
  OPERATION_KINDS,
  OPERATION_STATES,
  type OperationKind,
  type OperationSpec,
  type OperationState,
  operationJson,
} from '../operators.js';
import { SCHEDULER_RULES, type SchedulerRule } from '../scheduler.js';

/** Who may call mutations on this listener. */
export type MutationAuth =
  /** The listener is on a loopback address: anyone who can connect. */
  | { kind: 'loopback' }
  /** `authorization: Bearer <token>` required. */
  | { kind: 'token'; check(presented: string): boolean }
  /** Not loopback and no token configured: mutations are refused. */
  | { kind: 'refuse' };

export interface TrpcContext {
  coordinator: Coordinator;
  auth: MutationAuth;
  /** The request's `authorization` header. */
  authorization: string | undefined;
}

const t = initTRPC.context<TrpcContext>().create({
  // No stack traces in error replies.
  isDev: false,
  // A ping keeps idle event streams alive through proxies; the client reconnects (with the last
  // event id) when it hears nothing for twice that long.
  sse: { ping: { enabled: true, intervalMs: 10_000 }, client: { reconnectAfterInactivityMs: 25_000 } },
});

const MAX_U64 = (1n << 64n) - 1n;

/** A non-zero u64 id, as a decimal string or a (safe) integer. */
const id = (what: string) =>
  z
    .union([z.string().regex(/^[1-9][0-9]{0,19}$/, `${what} must be a positive decimal integer`), z.number()])
    .refine(
      (v) =>
        typeof v === 'number'
          ? Number.isSafeInteger(v) && v > 0
          : /^[1-9][0-9]{0,19}$/.test(v) && BigInt(v) <= MAX_U64,
      `${what} must be a positive 64-bit integer`,
    )
    .transform((v) => BigInt(v));

/** A key in the topology-file syntax: plain UTF-8, or `hex:` + hex digits; '' = -inf / +inf. */
const key = z.string().refine((s) => keyProblem(s) === undefined, {
  message: 'not a valid key (hex: needs pairs of hex digits)',
});

const regionsInput = z
  .object({
    startKey: key.optional(),
    endKey: key.optional(),
    /** 0 or absent = all. */
    limit: z.number().int().min(0).max(100_000).optional(),
  })
  .refine(
    (v) => {
      if (!v.startKey || !v.endKey || keyProblem(v.startKey) || keyProblem(v.endKey)) return true;
      return Buffer.compare(parseKey(v.startKey), parseKey(v.endKey)) < 0;
    },
    { message: 'startKey must be below endKey', path: ['startKey'] },
  )
  .optional();

const recentInput = z
  .object({
    /** Events with a larger seq; absent = the newest `limit`. */
    afterSeq: z.number().int().min(0).optional(),
    /** Default 100, at most 10 000. */
    limit: z.number().int().min(1).max(10_000).optional(),
  })
  .optional();

const streamInput = z
  .object({
    /** Resume after this event (its seq); sent back automatically by httpSubscriptionLink on reconnect. */
    lastEventId: z
      .string()
      .regex(/^[0-9]{1,15}$/, 'lastEventId must be an event seq')
      .nullish(),
    /** Only these kinds (default all). */
    kinds: z
      .array(z.enum(CLUSTER_EVENT_KINDS as [ClusterEvent['kind'], ...ClusterEvent['kind'][]]))
      .optional(),
  })
  .optional();

const hostPort = z.string().regex(/^[^\s:]+:\d{1,5}$/, 'expected host:port');
const workdir = z.string().min(1, 'workdir is required');

const migrationStartInput = z.discriminatedUnion('step', [
  z.object({ step: z.literal('plan'), workdir }),
  z.object({
    step: z.literal('report'),
    workdir,
    addr: hostPort.optional(),
    regionId: id('regionId').optional(),
  }),
  z.object({
    step: z.literal('init'),
    workdir,
    storeId: id('storeId'),
    regionId: id('regionId'),
    peerId: id('peerId'),
  }),
  z.object({
    step: z.literal('expand'),
    addr: hostPort,
    regionId: id('regionId'),
    targets: z
      .array(z.object({ storeId: id('storeId'), peerId: id('peerId'), addr: hostPort.optional() }))
      .min(1, 'at least one target'),
    workdir: workdir.optional(),
    waitMs: z.number().int().min(0).max(600_000).optional(),
  }),
  z.object({
    step: z.enum(['transfer-leader', 'remove-peer']),
    addr: hostPort,
    targetAddr: hostPort,
    regionId: id('regionId'),
    peerId: id('peerId'),
    workdir: workdir.optional(),
    waitMs: z.number().int().min(0).max(600_000).optional(),
  }),
]);

const OPERATOR_ERROR_TRPC: Record<OperatorErrorCode, TRPCError['code']> = {
  RegionNotFound: 'NOT_FOUND',
  StoreNotFound: 'NOT_FOUND',
  PeerNotFound: 'NOT_FOUND',
  OperationNotFound: 'NOT_FOUND',
  InvalidOperation: 'BAD_REQUEST',
  StoreNotUp: 'PRECONDITION_FAILED',
  InvalidState: 'PRECONDITION_FAILED',
  QueueFull: 'TOO_MANY_REQUESTS',
};

const operationId = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);

const operatorsListInput = z
  .object({
    /** Only these states (default all). */
    states: z.array(z.enum(OPERATION_STATES as unknown as [OperationState, ...OperationState[]])).optional(),
    kinds: z.array(z.enum(OPERATION_KINDS as unknown as [OperationKind, ...OperationKind[]])).optional(),
    source: z.enum(['operator', 'scheduler']).optional(),
    regionId: id('regionId').optional(),
    /** Operations naming this store (a peer added there, a replica leaving it). */
    storeId: id('storeId').optional(),
    /** Newest first, at most this many (default 200). */
    limit: z.number().int().min(1).max(10_000).optional(),
  })
  .optional();

/** `paused: true` queues it paused (resume to start it). */
const common = { regionId: id('regionId'), paused: z.boolean().optional() };
const operatorsAddInput = z.discriminatedUnion('kind', [
  z.object({
    kind: z.literal('add-peer'),
    ...common,
    storeId: id('storeId'),
    learner: z.boolean().optional(),
  }),
  z.object({ kind: z.literal('remove-peer'), ...common, peerId: id('peerId') }),
  z.object({ kind: z.literal('transfer-leader'), ...common, toPeerId: id('toPeerId') }),
  z.object({
    kind: z.literal('split-region'),
    ...common,
    splitKey: key.refine((k) => k !== '', 'splitKey must not be empty'),
  }),
  z.object({ kind: z.literal('merge-regions'), ...common, sourceRegionId: id('sourceRegionId') }),
  z.object({
    kind: z.literal('replace-replica'),
    ...common,
    fromStoreId: id('fromStoreId'),
    toStoreId: id('toStoreId').optional(),
  }),
]);

function specOf(input: z.infer<typeof operatorsAddInput>): OperationSpec {
  switch (input.kind) {
    case 'add-peer':
      return {
        kind: input.kind,
        regionId: input.regionId,
        storeId: input.storeId,
        learner: input.learner ?? false,
      };
    case 'remove-peer':
      return { kind: input.kind, regionId: input.regionId, peerId: input.peerId };
    case 'transfer-leader':
      return { kind: input.kind, regionId: input.regionId, toPeerId: input.toPeerId };
    case 'split-region':
      return { kind: input.kind, regionId: input.regionId, splitKey: parseKey(input.splitKey) };
    case 'merge-regions':
      return { kind: input.kind, regionId: input.regionId, sourceRegionId: input.sourceRegionId };
    case 'replace-replica':
      return {
        kind: input.kind,
        regionId: input.regionId,
        fromStoreId: input.fromStoreId,
        ...(input.toStoreId !== undefined ? { toStoreId: input.toStoreId } : {}),
      };
  }
}

const ruleInput = z
  .object({
    /** One rule; all when absent. */
    rule: z.enum(SCHEDULER_RULES as unknown as [SchedulerRule, ...SchedulerRule[]]).optional(),
  })
  .optional();

/** Coordinator and operator errors → tRPC codes (the typed code stays in `cause`). */
async function guard<T>(fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (isOperatorError(err)) {
      throw new TRPCError({ code: OPERATOR_ERROR_TRPC[err.code], message: err.message, cause: err });
    }
    if (isCoordinatorError(err)) {
      const code =
        err.code === 'InvalidArgument'
          ? 'BAD_REQUEST'
          : err.code === 'FailedPrecondition'
            ? 'PRECONDITION_FAILED'
            : err.code === 'Closed'
              ? 'SERVICE_UNAVAILABLE'
              : 'INTERNAL_SERVER_ERROR';
      throw new TRPCError({ code, message: err.message, cause: err });
    }
    throw err;
  }
}

function bearer(header: string | undefined): string | undefined {
  const m = header ? /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header) : null;
  return m?.[1];
}

/** Mutations: open on a loopback listener, else the admin token (see README). */
const adminProcedure = t.procedure.use(({ ctx, next }) => {
  const auth = ctx.auth;
  if (auth.kind === 'refuse') {
    throw new TRPCError({
      code: 'FORBIDDEN',
      message:
        'mutations are disabled: the tRPC listener is not on loopback and no admin token is configured',
    });
  }
  if (auth.kind === 'token') {
    const presented = bearer(ctx.authorization);
    if (presented === undefined) {
      throw new TRPCError({
        code: 'UNAUTHORIZED',
        message: 'an admin token is required (authorization: Bearer <token>)',
      });
    }
    if (!auth.check(presented)) throw new TRPCError({ code: 'UNAUTHORIZED', message: 'wrong admin token' });
  }
  return next();
});

export const appRouter = t.router({
  operators: t.router({
    /** Operations, newest first, filtered; plus the counts by state. */
    list: t.procedure.input(operatorsListInput).query(({ ctx, input }) => {
      const q = ctx.coordinator.operators;
      const ops = q.list({
        ...(input?.states ? { states: input.states } : {}),
        ...(input?.kinds ? { kinds: input.kinds } : {}),
        ...(input?.source ? { source: input.source } : {}),
        ...(input?.regionId !== undefined ? { regionId: input.regionId } : {}),
        ...(input?.storeId !== undefined ? { storeId: input.storeId } : {}),
        ...(input?.limit !== undefined ? { limit: input.limit } : {}),
      });
      return { operations: ops.map(operationJson), counts: q.counts() };
    }),
    /** One operation. NOT_FOUND: unknown id (or dropped from the kept history). */
    get: t.procedure.input(z.object({ id: operationId })).query(({ ctx, input }) => {
      const op = ctx.coordinator.operators.get(input.id);
      if (!op) throw new TRPCError({ code: 'NOT_FOUND', message: `operation ${input.id} is not known` });
      return operationJson(op);
    }),
    /**
     * Queues an operation (source `operator`). NOT_FOUND: unknown region, store or peer;
     * BAD_REQUEST: it makes no sense (key outside the region, a peer already there, merging
     * regions that are not adjacent...); PRECONDITION_FAILED: the target store is not up;
     * TOO_MANY_REQUESTS: the queue is full.
     */
    add: adminProcedure.input(operatorsAddInput).mutation(({ ctx, input }) =>
      guard(() =>
        operationJson(
          ctx.coordinator.operators.add(specOf(input), {
            source: 'operator',
            ...(input.paused ? { paused: true } : {}),
          }),
        ),
      ),
    ),
    /** Pending/running → paused (a step in flight completes first). PRECONDITION_FAILED when it ended. */
    pause: adminProcedure
      .input(z.object({ id: operationId }))
      .mutation(({ ctx, input }) => guard(() => operationJson(ctx.coordinator.operators.pause(input.id)))),
    /** Paused → pending or running. PRECONDITION_FAILED when it ended. */
    resume: adminProcedure
      .input(z.object({ id: operationId }))
      .mutation(({ ctx, input }) => guard(() => operationJson(ctx.coordinator.operators.resume(input.id)))),
    /** Ends an unfinished operation (steps done stay done). PRECONDITION_FAILED when it finished or failed. */
    cancel: adminProcedure
      .input(z.object({ id: operationId }))
      .mutation(({ ctx, input }) => guard(() => operationJson(ctx.coordinator.operators.cancel(input.id)))),
  }),
  scheduler: t.router({
    /** Rules, their thresholds and what they see (down stores, counts), recent decisions. */
    status: t.procedure.query(({ ctx }) => ctx.coordinator.scheduler.status()),
    /** Stops one rule (or all) from adding operations; running operations continue. */
    pause: adminProcedure.input(ruleInput).mutation(({ ctx, input }) => {
      ctx.coordinator.scheduler.pause(input?.rule);
      return ctx.coordinator.scheduler.status();
    }),
    resume: adminProcedure.input(ruleInput).mutation(({ ctx, input }) => {
      ctx.coordinator.scheduler.resume(input?.rule);
      return ctx.coordinator.scheduler.status();
    }),
  }),
  cluster: t.router({
    /** The whole JSON view (what GET /view serves): stores, regions, problems, scheduler, allocators, durable state. */
    view: t.procedure.query(({ ctx }) => ctx.coordinator.viewJson()),
    /** Stores by id: state, heartbeat age, stats, region and leader counts. */
    stores: t.procedure.query(({ ctx }) => ctx.coordinator.view.storesJson()),
    /** Regions overlapping [startKey, endKey) in key order ('' end = +inf), at most `limit`. */
    regions: t.procedure.input(regionsInput).query(({ ctx, input }) => {
      const v = ctx.coordinator.view;
      const regions = v.scanRegions(
        parseKey(input?.startKey ?? ''),
        parseKey(input?.endKey ?? ''),
        input?.limit ?? 0,
      );
      return v.regionsJson(regions);
    }),
    /** downReplicas, missingReplicas, noLeader. */
    problems: t.procedure.query(({ ctx }) => ctx.coordinator.view.problems()),
  }),
  events: t.router({
    /** Kept events after `afterSeq` (or the newest ones), oldest first. */
    recent: t.procedure.input(recentInput).query(({ ctx, input }) => {
      const log = ctx.coordinator.events;
      const limit = input?.limit ?? 100;
      const events = input?.afterSeq === undefined ? log.latest(limit) : log.since(input.afterSeq, limit);
      return { events, firstSeq: log.firstSeq, lastSeq: log.lastSeq, startedAtMs: log.startedAtMs };
    }),
    /**
     * New events as they happen (each `tracked` with its seq as the id). With `lastEventId`, the
     * kept events after it come first. A lastEventId beyond the log (a restarted coordinator)
     * replays what is kept.
     */
    stream: t.procedure.input(streamInput).subscription(async function* ({ ctx, input, signal }) {
      const log = ctx.coordinator.events;
      let after = input?.lastEventId != null ? Number(input.lastEventId) : log.lastSeq;
      if (after > log.lastSeq) after = 0;
      const kinds = input?.kinds ? new Set(input.kinds) : undefined;
      for await (const e of log.follow(after, signal)) {
        if (kinds && !kinds.has(e.kind)) continue;
        yield tracked(String(e.seq), e);
      }
    }),
  }),
  admin: t.router({
    /**
     * Queues a transfer of the region's leadership to `toPeerId` as a transfer-leader operation
     * (`operation`; none when the target leads already). NOT_FOUND: unknown region; BAD_REQUEST:
     * not a voter of the region; PRECONDITION_FAILED: no known leader.
     */
    transferLeader: adminProcedure
      .input(z.object({ regionId: id('regionId'), toPeerId: id('toPeerId') }))
      .mutation(async ({ ctx, input }) => {
        const r = await guard(() => ctx.coordinator.requestTransferLeader(input.regionId, input.toPeerId));
        if (!r.ok) {
          const code =
            r.reason === 'region-not-found'
              ? 'NOT_FOUND'
              : r.reason === 'no-leader'
                ? 'PRECONDITION_FAILED'
                : 'BAD_REQUEST';
          throw new TRPCError({ code, message: r.message });
        }
        return {
          regionId: input.regionId.toString(),
          toPeerId: input.toPeerId.toString(),
          fromStoreId: r.fromStoreId?.toString() ?? null,
          toStoreId: r.toStoreId.toString(),
          /** The target leads already: nothing was queued. */
          alreadyLeader: r.alreadyLeader,
          operation: r.operation ?? null,
        };
      }),
    /** Operator state: offline / tombstone, or up (= follows heartbeats again). Persisted. */
    setStoreState: adminProcedure
      .input(z.object({ storeId: id('storeId'), state: z.enum(['offline', 'tombstone', 'up']) }))
      .mutation(async ({ ctx, input }) => {
        const store = await guard(() =>
          ctx.coordinator.setStoreAdminState(input.storeId, input.state === 'up' ? 'normal' : input.state),
        );
        if (!store)
          throw new TRPCError({ code: 'NOT_FOUND', message: `store ${input.storeId} is not known` });
        return store;
      }),
  }),
  /**
   * The `nokv migrate` steps, one click at a time: `start` runs one step as a job and returns it at
   * once; `job` / `jobs` poll its progress lines, checkpoints, result or typed error. Workdir paths
   * are paths on the coordinator's machine. PRECONDITION_FAILED: another step runs on that
   * workdir or region.
   */
  migration: t.router({
    jobs: t.procedure.query(({ ctx }) => ctx.coordinator.migrations.list()),
    job: t.procedure.input(z.object({ id: operationId })).query(({ ctx, input }) => {
      const job = ctx.coordinator.migrations.get(input.id);
      if (!job) throw new TRPCError({ code: 'NOT_FOUND', message: `migration job ${input.id} is not known` });
      return job;
    }),
    start: adminProcedure.input(migrationStartInput).mutation(({ ctx, input }) => {
      try {
        return ctx.coordinator.migrations.start(input);
      } catch (err) {
        if (err instanceof MigrationBusyError) {
          throw new TRPCError({ code: 'PRECONDITION_FAILED', message: err.message });
        }
        throw err;
      }
    }),
  }),
});

export type AppRouter = typeof appRouter;
