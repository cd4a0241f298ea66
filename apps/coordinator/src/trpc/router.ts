/**
 * The coordinator's tRPC API for the console (see README "tRPC API"): the cluster view, the event
 * log and its live stream, and two operator actions. Everything is JSON-safe (ids and other
 * 64-bit values as decimal strings); ids in inputs may be strings or numbers.
 */

import { keyProblem, parseKey } from '@nokv/config';
import { initTRPC, TRPCError, tracked } from '@trpc/server';
import { z } from 'zod';
import { CLUSTER_EVENT_KINDS, type ClusterEvent } from '../cluster-events.js';
import type { Coordinator } from '../coordinator.js';
import { isCoordinatorError } from '../errors.js';

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

/** Coordinator errors → tRPC codes. */
async function guard<T>(fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (err) {
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
     * Queues a transfer of the region's leadership to `toPeerId`; the next heartbeat of the leader's
     * store carries it. NOT_FOUND: unknown region; BAD_REQUEST: not a voter of the region;
     * PRECONDITION_FAILED: no known leader.
     */
    transferLeader: adminProcedure
      .input(z.object({ regionId: id('regionId'), toPeerId: id('toPeerId') }))
      .mutation(({ ctx, input }) => {
        const r = ctx.coordinator.requestTransferLeader(input.regionId, input.toPeerId);
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
});

export type AppRouter = typeof appRouter;
