/**
 * Versioned access for the layers above the engine (the transaction layer and the raftstore):
 * any column family, caller-chosen versions, every stored version visible. Public `set`/`get`
 * are the special case "default column family, versions from the counter, newest only".
 */

import { ClosedError, InvalidArgumentError } from '../errors.js';
import { VersionIterator, type VersionRecord } from '../iterator/db-iterator.js';
import type { InternalIterator } from '../iterator/internal-iterator.js';
import { entryKind, KIND_DELETE, META_VALUE_POINTER } from '../keys/entry.js';
import { CF_DEFAULT, COLUMN_FAMILIES, type ColumnFamily, cfId, MAX_VERSION } from '../keys/internal-key.js';
import { copyOut } from '../util/bytes.js';
import type { EngineCore } from './engine-core.js';
import { lookupNewest, type ReadView, tombstoneIndexes } from './read-view.js';
import {
  type BytesInput,
  checkKey,
  checkValue,
  deleteWrite,
  type PendingWrite,
  putWrite,
  rangeDeleteWrite,
} from './write-batch.js';
import type { WritePipeline } from './write-pipeline.js';

/** Whether a record from `internal.scan` is a deletion (a tombstone version) rather than a value. */
export function isDeleteRecord(rec: VersionRecord): boolean {
  return entryKind(rec.meta) === KIND_DELETE;
}

export interface InternalWrite {
  cf: ColumnFamily;
  op: 'put' | 'delete' | 'deleteRange';
  key: BytesInput;
  /** Explicit version; omitted, the entry gets the next version of the counter. */
  version?: bigint;
  /** For put. */
  value?: BytesInput;
  /** For deleteRange: exclusive end key. */
  end?: BytesInput;
  /** For put: absolute expiry in Unix milliseconds (0 or omitted = never). */
  expiresAt?: number;
}

export interface InternalRecord {
  version: bigint;
  kind: 'put' | 'delete';
  value: Buffer;
  expiresAt: number;
}

export interface InternalScanOptions {
  cf: ColumnFamily;
  gte?: BytesInput;
  lt?: BytesInput;
  reverse?: boolean;
  /** Read version (default: every version). */
  version?: bigint;
  limit?: number;
}

function checkCf(cf: unknown): number {
  if (!COLUMN_FAMILIES.includes(cf as ColumnFamily)) {
    throw new InvalidArgumentError(
      'InvalidArgument',
      `unknown column family ${JSON.stringify(cf)}; use one of ${COLUMN_FAMILIES.join(', ')}`,
    );
  }
  return cfId(cf as ColumnFamily);
}

function checkVersion(v: unknown): bigint {
  if (typeof v !== 'bigint' || v < 0n || v >= MAX_VERSION) {
    throw new InvalidArgumentError(
      'InvalidArgument',
      `version must be a bigint in [0, 2^64 - 1); got ${String(v)}`,
    );
  }
  return v;
}

export class InternalApi {
  constructor(
    private readonly core: EngineCore,
    private readonly writes: WritePipeline,
    private readonly merged: (view: ReadView, reverse: boolean) => InternalIterator,
  ) {}

  /** Writes `ops` as one atomic request. */
  write(ops: readonly InternalWrite[], options?: { sync?: boolean }): Promise<void> {
    try {
      this.core.checkWritable();
      const writes: PendingWrite[] = [];
      if (!Array.isArray(ops)) {
        throw new InvalidArgumentError('InvalidArgument', 'internal.write() takes an array of operations');
      }
      for (const op of ops as readonly unknown[] as readonly InternalWrite[]) {
        if (op === null || typeof op !== 'object') {
          throw new InvalidArgumentError(
            'InvalidArgument',
            `internal write operation must be an object; got ${String(op)}`,
          );
        }
        const cf = checkCf(op.cf);
        const key = checkKey(op.key);
        const version = op.version === undefined ? undefined : checkVersion(op.version);
        let w: PendingWrite;
        switch (op.op) {
          case 'put': {
            const expiresAt = op.expiresAt ?? 0;
            if (!Number.isSafeInteger(expiresAt) || expiresAt < 0) {
              throw new InvalidArgumentError(
                'InvalidArgument',
                `expiresAt must be a non-negative integer; got ${expiresAt}`,
              );
            }
            w = putWrite(cf, key, checkValue(op.value, key), expiresAt, version);
            break;
          }
          case 'delete':
            w = deleteWrite(cf, key, version);
            break;
          case 'deleteRange':
            w = rangeDeleteWrite(cf, key, checkKey(op.end, 'range end'), version);
            break;
          default:
            throw new InvalidArgumentError(
              'InvalidArgument',
              `unknown op ${JSON.stringify((op as { op: unknown }).op)}`,
            );
        }
        writes.push(w);
      }
      return this.writes.write(writes, options?.sync ?? false);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * The newest version of `key` in `cf` at or below `version`, deletes included (the caller looks
   * at `kind` and `expiresAt`); undefined when there is none or a range tombstone hides it.
   */
  get(
    cf: ColumnFamily,
    key: BytesInput,
    version: bigint = MAX_VERSION - 1n,
  ): Promise<InternalRecord | undefined> {
    try {
      const core = this.core;
      core.checkOpen();
      const cfNum = checkCf(cf);
      const k = checkKey(key);
      const readVersion = checkVersion(version);
      const view = core.view();
      const found = lookupNewest(view, cfNum, k, readVersion);
      if (found === undefined) return Promise.resolve(undefined);
      const tombstones = tombstoneIndexes(view);
      for (const t of tombstones) {
        if (t.maxCoveringVersion(cfNum, k, readVersion) > found.version) return Promise.resolve(undefined);
      }
      const kind = entryKind(found.meta) === KIND_DELETE ? 'delete' : 'put';
      return Promise.resolve({
        version: found.version,
        kind,
        value:
          found.meta & META_VALUE_POINTER
            ? core.resolveValue(found.key, found.meta, found.value)
            : copyOut(found.value),
        expiresAt: found.expiresAt,
      });
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Every stored version in the range (newest first within a key), as of `version`. */
  scan(options: InternalScanOptions): AsyncIterable<VersionRecord> {
    const core = this.core;
    core.checkOpen();
    if (options === null || typeof options !== 'object') {
      throw new InvalidArgumentError('InvalidArgument', 'internal.scan() takes an options object');
    }
    const cf = checkCf(options.cf);
    const lower = options.gte === undefined ? undefined : checkKey(options.gte, 'gte');
    const upper = options.lt === undefined ? undefined : checkKey(options.lt, 'lt');
    const readVersion = options.version === undefined ? MAX_VERSION - 1n : checkVersion(options.version);
    const limit = options.limit;
    if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 0)) {
      throw new InvalidArgumentError('InvalidArgument', `limit must be a non-negative integer; got ${limit}`);
    }
    const reverse = options.reverse === true;
    const merged = this.merged;
    return {
      async *[Symbol.asyncIterator]() {
        const view = core.view();
        view.version.ref();
        const epoch = core.pinView();
        try {
          const it = new VersionIterator(merged(view, reverse), {
            cf,
            lower,
            upper,
            reverse,
            readVersion,
            nowMs: core.options.clock(),
            tombstones: tombstoneIndexes(view),
            resolvePointer: (key, pointer) => core.resolveValue(key, META_VALUE_POINTER, pointer),
          });
          let n = 0;
          for (;;) {
            if (core.closing) throw new ClosedError('the database was closed during a scan');
            const rec = it.next();
            if (rec === undefined) return;
            yield rec;
            if (limit !== undefined && ++n >= limit) return;
          }
        } finally {
          view.version.unref();
          core.unpinView(epoch);
        }
      },
    };
  }

  /**
   * Lets compaction drop history of `cf` below `version`: versions a newer version at or below it
   * shadows, and (at the last level) deletes. The caller promises no reads or writes below it.
   * Not for the default column family, whose watermark follows snapshots.
   */
  setGcWatermark(cf: ColumnFamily, version: bigint): void {
    const id = checkCf(cf);
    if (id === CF_DEFAULT) {
      throw new InvalidArgumentError(
        'InvalidArgument',
        'the default column family follows snapshots; it has no manual watermark',
      );
    }
    const v = checkVersion(version);
    const current = this.core.gcWatermarks.get(id) ?? 0n;
    if (v > current) this.core.gcWatermarks.set(id, v);
  }
}
