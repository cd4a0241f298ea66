/**
 * Value log GC: reclaims a segment by rewriting the values still in use and deleting the file.
 *
 * Which segment: the one with the most garbage relative to its size, as counted by compaction
 * when it drops entries that pointed into a segment (persisted in the manifest), once the ratio
 * reaches `vlogGcDiscardRatio`. The active segment is never collected.
 *
 * For each record (key K at version v) the LSM decides:
 * - K's newest version is v and points at this record: live. It is rewritten under the same
 *   internal key, in the commit loop, only if that still holds there (no write can slip between
 *   the check and the rewrite), and fsynced. The rewrite is a newer source for the same key and
 *   version, so every read prefers it from then on.
 * - A newer version of K exists and no reader can read below it (it is at or below the column
 *   family's watermark): garbage.
 * - A newer version exists but a snapshot may still read v, and the LSM still holds v pointing
 *   here: the segment cannot go yet; GC gives up on it for now.
 * - The LSM no longer points here: garbage.
 * Then the manifest records the deletion, and the file is removed once every iterator that
 * started before the rewrites has finished (they may still hold the old pointers).
 */

import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { InvalidArgumentError } from '../errors.js';
import { entryKind, KIND_PUT, META_VALUE_POINTER } from '../keys/entry.js';
import { internalKeyCf, internalKeyUserKey, internalKeyVersion, MAX_VERSION } from '../keys/internal-key.js';
import { emptyEdit } from '../manifest/version-edit.js';
import { POINTER_BYTES } from '../vlog/vlog-format.js';
import type { WriteToEncode } from '../wal/batch-codec.js';
import type { EngineCore } from './engine-core.js';
import { lookupNewest } from './read-view.js';
import type { WritePipeline } from './write-pipeline.js';

export interface ValueLogGcResult {
  segment: number | undefined;
  /** What happened: 'deleted', 'gave-up' (a snapshot still needs it), or 'nothing-to-do'. */
  outcome: 'deleted' | 'gave-up' | 'nothing-to-do';
  records: number;
  rewritten: number;
  bytesRewritten: number;
  durationMs: number;
}

export interface ValueLogGcStats {
  runs: number;
  segmentsDeleted: number;
  gaveUp: number;
  recordsRewritten: number;
  bytesRewritten: number;
  running: boolean;
  lastMs: number;
}

/** Records rewritten per commit. */
const REWRITE_BATCH = 256;
/** Records examined between yields to the event loop. */
const RECORDS_PER_YIELD = 1000;
/** How often the deletion re-checks whether older iterators are gone. */
const PIN_POLL_MS = 25;

interface Candidate {
  key: Buffer;
  expiresAt: number;
  value: Buffer;
  pointer: Buffer;
}

export class ValueLogGc {
  readonly stats: ValueLogGcStats = {
    runs: 0,
    segmentsDeleted: 0,
    gaveUp: 0,
    recordsRewritten: 0,
    bytesRewritten: 0,
    running: false,
    lastMs: 0,
  };
  private timer: NodeJS.Timeout | undefined;
  private current: Promise<ValueLogGcResult> | undefined;

  constructor(
    private readonly core: EngineCore,
    private readonly writes: WritePipeline,
  ) {}

  /** Starts periodic GC (when enabled and the database is writable). */
  start(): void {
    const o = this.core.options;
    if (o.readOnly || o.vlogGcIntervalMs === 0) return;
    this.timer = setInterval(() => {
      if (this.current !== undefined || this.core.closing || this.core.backgroundError !== undefined) return;
      void this.run({}).catch((err: unknown) => {
        o.logger.warn({ err: (err as Error).message }, 'value log GC failed');
      });
    }, o.vlogGcIntervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    await this.current?.catch(() => undefined);
  }

  /** Garbage ratio of each collectable segment, best candidate first. */
  candidates(): { segment: number; size: number; discardBytes: number; ratio: number }[] {
    const vlog = this.core.vlog;
    const discard = this.core.versions.vlog.discard;
    return vlog
      .list()
      .filter((s) => !s.active && s.size > 0)
      .map((s) => {
        const discardBytes = discard.get(s.number) ?? 0;
        return { segment: s.number, size: s.size, discardBytes, ratio: Math.min(1, discardBytes / s.size) };
      })
      .sort((a, b) => b.ratio - a.ratio);
  }

  /**
   * One GC round: collects `options.segment`, or the best candidate whose garbage ratio is at
   * least `options.discardRatio` (default: the configured ratio). One round at a time.
   */
  run(options: { segment?: number; discardRatio?: number }): Promise<ValueLogGcResult> {
    if (this.current !== undefined)
      return Promise.reject(
        new InvalidArgumentError('InvalidArgument', 'a value log GC round is already running'),
      );
    const round = this.collect(options).finally(() => {
      this.current = undefined;
      this.stats.running = false;
    });
    this.current = round;
    this.stats.running = true;
    return round;
  }

  private async collect(options: { segment?: number; discardRatio?: number }): Promise<ValueLogGcResult> {
    const core = this.core;
    core.checkWritable();
    const started = performance.now();
    const result: ValueLogGcResult = {
      segment: undefined,
      outcome: 'nothing-to-do',
      records: 0,
      rewritten: 0,
      bytesRewritten: 0,
      durationMs: 0,
    };
    let segment = options.segment;
    if (segment !== undefined) {
      if (!core.vlog.has(segment) || segment === core.vlog.activeSegment) {
        throw new InvalidArgumentError(
          'InvalidArgument',
          `value log segment ${segment} is not a collectable segment`,
        );
      }
    } else {
      const ratio = options.discardRatio ?? core.options.vlogGcDiscardRatio;
      segment = this.candidates().find((c) => c.ratio >= ratio)?.segment;
    }
    if (segment === undefined) return result;
    result.segment = segment;
    this.stats.runs++;

    const pending: Candidate[] = [];
    let sinceYield = 0;
    for (const { offset, length, record } of core.vlog.records(segment)) {
      result.records++;
      if (++sinceYield >= RECORDS_PER_YIELD) {
        sinceYield = 0;
        await yieldToEventLoop();
        core.checkWritable();
      }
      const verdict = this.judge(record.key, segment, offset, length);
      if (verdict === 'needed') {
        this.stats.gaveUp++;
        result.outcome = 'gave-up';
        result.durationMs = performance.now() - started;
        return result;
      }
      if (verdict === undefined) continue;
      pending.push({
        key: Buffer.from(record.key),
        expiresAt: verdict.expiresAt,
        value: Buffer.from(record.value),
        pointer: pointerBytes(segment, offset, length),
      });
      if (pending.length >= REWRITE_BATCH) await this.rewrite(pending.splice(0), result);
    }
    if (pending.length > 0) await this.rewrite(pending.splice(0), result);

    // The rewrites are durable; record the deletion, then wait out iterators that began before.
    const edit = emptyEdit();
    edit.vlogDeleted = [segment];
    await core.versions.logAndApply(edit);
    const epoch = core.nextViewEpoch();
    while (!core.viewsReleasedBefore(epoch)) {
      if (core.closing) break; // the next open deletes it (the manifest says so)
      await new Promise((resolve) => setTimeout(resolve, PIN_POLL_MS));
    }
    if (!core.closing) await core.vlog.deleteSegment(segment);
    this.stats.segmentsDeleted++;
    result.outcome = 'deleted';
    result.durationMs = performance.now() - started;
    this.stats.lastMs = result.durationMs;
    return result;
  }

  /** What the LSM says of the record with internal key `key` at `segment`/`offset`. */
  private judge(
    key: Buffer,
    segment: number,
    offset: number,
    length: number,
  ): { expiresAt: number } | 'needed' | undefined {
    const core = this.core;
    const cf = internalKeyCf(key);
    const userKey = internalKeyUserKey(key);
    const version = internalKeyVersion(key);
    const view = core.view();
    const newest = lookupNewest(view, cf, userKey, MAX_VERSION);
    if (newest === undefined || newest.version < version) return undefined;
    const pointsHere = (e: { meta: number; value: Buffer }) =>
      (e.meta & META_VALUE_POINTER) !== 0 && pointerMatches(e.value, segment, offset, length);
    if (newest.version === version) {
      return entryKind(newest.meta) === KIND_PUT && pointsHere(newest)
        ? { expiresAt: newest.expiresAt }
        : undefined;
    }
    if (newest.version <= core.watermark(cf)) return undefined;
    const atVersion = lookupNewest(view, cf, userKey, version);
    return atVersion !== undefined && atVersion.version === version && pointsHere(atVersion)
      ? 'needed'
      : undefined;
  }

  /** Rewrites `batch` in the commit loop, keeping only records still current there. */
  private async rewrite(batch: Candidate[], result: ValueLogGcResult): Promise<void> {
    const core = this.core;
    let bytes = 0;
    const written = await this.writes.writeIfCurrent(() => {
      const writes: WriteToEncode[] = [];
      bytes = 0;
      const view = core.view();
      for (const c of batch) {
        const cf = internalKeyCf(c.key);
        const version = internalKeyVersion(c.key);
        const newest = lookupNewest(view, cf, internalKeyUserKey(c.key), MAX_VERSION);
        if (newest === undefined || newest.version !== version || (newest.meta & META_VALUE_POINTER) === 0)
          continue;
        if (!newest.value.equals(c.pointer)) continue;
        writes.push({
          cf,
          kind: KIND_PUT,
          key: internalKeyUserKey(c.key),
          value: c.value,
          expiresAt: c.expiresAt,
          version,
        });
        bytes += c.value.length;
      }
      return writes;
    });
    result.rewritten += written;
    result.bytesRewritten += bytes;
    this.stats.recordsRewritten += written;
    this.stats.bytesRewritten += bytes;
  }
}

function pointerBytes(segment: number, offset: number, length: number): Buffer {
  const p = Buffer.allocUnsafe(POINTER_BYTES);
  p.writeUInt32LE(segment, 0);
  p.writeUInt32LE(offset, 4);
  p.writeUInt32LE(length, 8);
  return p;
}

function pointerMatches(value: Buffer, segment: number, offset: number, length: number): boolean {
  return (
    value.length === POINTER_BYTES &&
    value.readUInt32LE(0) === segment &&
    value.readUInt32LE(4) === offset &&
    value.readUInt32LE(8) === length
  );
}
