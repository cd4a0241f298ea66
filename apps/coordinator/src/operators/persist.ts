import { open as openFile, readFile, rename } from 'node:fs/promises';
import { decodeRegionMeta, encodeRegionMeta } from '@nokv/proto';
import { CoordinatorError } from '../errors.js';
import { type OperationJson, operationJson, specFromParams } from './json.js';
import { OPERATION_KINDS, OPERATION_STATES, type Operation, PLANS } from './model.js';

interface OperationRecord extends Omit<OperationJson, 'resolved' | 'currentStep' | 'nextAttemptAtMs'> {
  vars: {
    peerId?: string;
    toStoreId?: string;
    newRegionId?: string;
    newPeerIds?: string[];
    prepareIndex?: string;
    /** base64 of nokv.meta.v1.RegionMeta */
    mergeSource?: string;
  };
}

interface OperationsFile {
  version: 1;
  nextId: number;
  operations: OperationRecord[];
}

function toRecord(op: Operation): OperationRecord {
  const { resolved: _r, currentStep: _c, nextAttemptAtMs: _n, ...rest } = operationJson(op);
  const v = op.vars;
  return {
    ...rest,
    vars: {
      ...(v.peerId !== undefined ? { peerId: v.peerId.toString() } : {}),
      ...(v.toStoreId !== undefined ? { toStoreId: v.toStoreId.toString() } : {}),
      ...(v.newRegionId !== undefined ? { newRegionId: v.newRegionId.toString() } : {}),
      ...(v.newPeerIds ? { newPeerIds: v.newPeerIds.map(String) } : {}),
      ...(v.prepareIndex !== undefined ? { prepareIndex: v.prepareIndex.toString() } : {}),
      ...(v.mergeSource
        ? { mergeSource: Buffer.from(encodeRegionMeta(v.mergeSource)).toString('base64') }
        : {}),
    },
  };
}

function fromRecord(r: OperationRecord, now: number): Operation {
  if (!OPERATION_KINDS.includes(r.kind)) throw new Error(`unknown kind ${String(r.kind)}`);
  if (!OPERATION_STATES.includes(r.state)) throw new Error(`unknown state ${String(r.state)}`);
  const v = r.vars ?? {};
  const steps = PLANS[r.kind];
  return {
    id: r.id,
    spec: specFromParams(r.kind, BigInt(r.regionId), r.params),
    source: r.source,
    reason: r.reason,
    state: r.state,
    createdAtMs: r.createdAtMs,
    startedAtMs: r.startedAtMs ?? undefined,
    finishedAtMs: r.finishedAtMs ?? undefined,
    steps,
    stepsDone: Math.min(r.stepsDone, steps.length),
    attempts: r.attempts,
    retries: r.retries,
    nextAttemptAtMs: now,
    lastError: r.lastError ?? undefined,
    error: r.error ?? undefined,
    vars: {
      ...(v.peerId !== undefined ? { peerId: BigInt(v.peerId) } : {}),
      ...(v.toStoreId !== undefined ? { toStoreId: BigInt(v.toStoreId) } : {}),
      ...(v.newRegionId !== undefined ? { newRegionId: BigInt(v.newRegionId) } : {}),
      ...(v.newPeerIds ? { newPeerIds: v.newPeerIds.map((x) => BigInt(x)) } : {}),
      ...(v.prepareIndex !== undefined ? { prepareIndex: BigInt(v.prepareIndex) } : {}),
      ...(v.mergeSource ? { mergeSource: decodeRegionMeta(Buffer.from(v.mergeSource, 'base64')) } : {}),
    },
  };
}

async function writeAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp`;
  const fh = await openFile(tmp, 'w');
  try {
    await fh.writeFile(text);
    await fh.datasync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

/**
 * Reads operations.json; undefined when there is none yet. `now` becomes every operation's next
 * attempt, so what was running goes on at once.
 */
export async function readOperationsFile(
  path: string,
  now: () => number,
): Promise<{ nextId: number; operations: Operation[] } | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const file = JSON.parse(text) as OperationsFile;
    if (file.version !== 1 || !Array.isArray(file.operations)) throw new Error('not a version 1 file');
    const at = now();
    return { nextId: file.nextId, operations: file.operations.map((r) => fromRecord(r, at)) };
  } catch (err) {
    throw new CoordinatorError('Corruption', `${path}: ${(err as Error).message}`, {
      file: path,
      offset: 0,
      cause: err,
    });
  }
}

/** Snapshots `operations` before it first awaits, so later changes wait for the next write. */
export async function writeOperationsFile(
  path: string,
  nextId: number,
  operations: readonly Operation[],
): Promise<void> {
  const file: OperationsFile = { version: 1, nextId, operations: operations.map(toRecord) };
  await writeAtomic(path, `${JSON.stringify(file)}\n`);
}
