import { formatKey, parseKey } from '@nokv/config';
import {
  type Operation,
  type OperationKind,
  type OperationSource,
  type OperationSpec,
  type OperationState,
  type OperationVars,
  type StepName,
  TERMINAL,
} from './model.js';

/** An operation as the tRPC API and the view show it (ids as strings). */
export interface OperationJson {
  id: number;
  kind: OperationKind;
  regionId: string;
  /** The spec's other fields (ids as strings, keys in the topology-file syntax). */
  params: Record<string, string | boolean | null>;
  /** Resolved along the way: the new peer id, the chosen store, the new region... */
  resolved: Record<string, string | string[]>;
  state: OperationState;
  source: OperationSource;
  reason: string;
  createdAtMs: number;
  startedAtMs: number | null;
  finishedAtMs: number | null;
  steps: StepName[];
  stepsDone: number;
  currentStep: StepName | null;
  attempts: number;
  retries: number;
  /** Running and waiting (poll or backoff): when the next try is due. */
  nextAttemptAtMs: number | null;
  lastError: string | null;
  error: string | null;
}

export function paramsOf(spec: OperationSpec): Record<string, string | boolean | null> {
  switch (spec.kind) {
    case 'add-peer':
      return { storeId: spec.storeId.toString(), learner: spec.learner };
    case 'remove-peer':
      return { peerId: spec.peerId.toString() };
    case 'transfer-leader':
      return { toPeerId: spec.toPeerId.toString() };
    case 'split-region':
      return { splitKey: formatKey(spec.splitKey) };
    case 'merge-regions':
      return { sourceRegionId: spec.sourceRegionId.toString() };
    case 'replace-replica':
      return { fromStoreId: spec.fromStoreId.toString(), toStoreId: spec.toStoreId?.toString() ?? null };
  }
}

export function specFromParams(
  kind: OperationKind,
  regionId: bigint,
  p: Record<string, string | boolean | null>,
): OperationSpec {
  const big = (k: string): bigint => {
    const v = p[k];
    if (typeof v !== 'string' || !/^\d+$/.test(v)) throw new Error(`param ${k} is not an id`);
    return BigInt(v);
  };
  switch (kind) {
    case 'add-peer':
      return { kind, regionId, storeId: big('storeId'), learner: p.learner === true };
    case 'remove-peer':
      return { kind, regionId, peerId: big('peerId') };
    case 'transfer-leader':
      return { kind, regionId, toPeerId: big('toPeerId') };
    case 'split-region':
      return { kind, regionId, splitKey: parseKey(String(p.splitKey)) };
    case 'merge-regions':
      return { kind, regionId, sourceRegionId: big('sourceRegionId') };
    case 'replace-replica':
      return {
        kind,
        regionId,
        fromStoreId: big('fromStoreId'),
        ...(p.toStoreId != null ? { toStoreId: big('toStoreId') } : {}),
      };
  }
}

function resolvedOf(v: OperationVars): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  if (v.peerId !== undefined) out.peerId = v.peerId.toString();
  if (v.toStoreId !== undefined) out.toStoreId = v.toStoreId.toString();
  if (v.newRegionId !== undefined) out.newRegionId = v.newRegionId.toString();
  if (v.newPeerIds) out.newPeerIds = v.newPeerIds.map(String);
  if (v.prepareIndex !== undefined) out.prepareIndex = v.prepareIndex.toString();
  return out;
}

export function operationJson(op: Operation): OperationJson {
  const active = op.state === 'running' || op.state === 'pending';
  return {
    id: op.id,
    kind: op.spec.kind,
    regionId: op.spec.regionId.toString(),
    params: paramsOf(op.spec),
    resolved: resolvedOf(op.vars),
    state: op.state,
    source: op.source,
    reason: op.reason,
    createdAtMs: op.createdAtMs,
    startedAtMs: op.startedAtMs ?? null,
    finishedAtMs: op.finishedAtMs ?? null,
    steps: [...op.steps],
    stepsDone: op.stepsDone,
    currentStep: TERMINAL.has(op.state) ? null : (op.steps[op.stepsDone] ?? null),
    attempts: op.attempts,
    retries: op.retries,
    nextAttemptAtMs: active && op.state === 'running' ? op.nextAttemptAtMs : null,
    lastError: op.lastError ?? null,
    error: op.error ?? null,
  };
}
