/**
 * Chooses the next compaction (leveled, as in LevelDB):
 *
 * - Level 0 scores `tables / l0CompactionTrigger`; levels 1..5 score `bytes / target`, where the
 *   target of level 1 is `levelBaseBytes` and each deeper level is `levelMultiplier` times larger.
 *   The highest score at or above 1 wins; level 6 is the last and is never a source.
 * - Level 0 compacts all of its tables (they overlap) with the level-1 tables they overlap.
 * - Level n >= 1 compacts one table, chosen round-robin through the key space, with the
 *   overlapping tables of level n+1. A single table with nothing below it is moved, not rewritten.
 *
 * Plans are pure data over table metadata; the compaction job executes them.
 */

import { compareInternalKeys } from '../keys/internal-key.js';
import { NUM_LEVELS, rangesOverlap, type Version } from '../manifest/version.js';
import type { FileMetadata } from '../manifest/version-edit.js';

export interface CompactionPlan {
  level: number;
  outputLevel: number;
  /** Tables of `level`, newest first for level 0. */
  inputs: FileMetadata[];
  /** Overlapping tables of `outputLevel`. */
  outputLevelInputs: FileMetadata[];
  /** Nothing below `outputLevel` overlaps the inputs: deletes can be dropped. */
  bottommost: boolean;
  /** Move the one input table down without rewriting it. */
  trivialMove: boolean;
  score: number;
  /** Smallest minVersion of any table above `level` overlapping each tombstone is checked by the job. */
  smallest: Buffer;
  largest: Buffer;
}

export interface PickerOptions {
  l0CompactionTrigger: number;
  levelBaseBytes: number;
  levelMultiplier: number;
}

export interface LevelScore {
  level: number;
  score: number;
  targetBytes: number;
}

/** Size target of each level (index 0 unused). */
export function levelTargets(options: PickerOptions): number[] {
  const targets = [0];
  let target = options.levelBaseBytes;
  for (let level = 1; level < NUM_LEVELS; level++) {
    targets.push(target);
    target *= options.levelMultiplier;
  }
  return targets;
}

/** Compaction scores of levels 0..5. */
export function levelScores(version: Version, options: PickerOptions): LevelScore[] {
  const targets = levelTargets(options);
  const scores: LevelScore[] = [
    { level: 0, score: version.levels[0]!.length / options.l0CompactionTrigger, targetBytes: 0 },
  ];
  for (let level = 1; level < NUM_LEVELS - 1; level++) {
    scores.push({ level, score: version.levelBytes(level) / targets[level]!, targetBytes: targets[level]! });
  }
  return scores;
}

function bounds(files: readonly FileMetadata[]): [Buffer, Buffer] {
  let smallest = files[0]!.smallest;
  let largest = files[0]!.largest;
  for (const f of files) {
    if (compareInternalKeys(f.smallest, smallest) < 0) smallest = f.smallest;
    if (compareInternalKeys(f.largest, largest) > 0) largest = f.largest;
  }
  return [smallest, largest];
}

export class CompactionPicker {
  private readonly options: PickerOptions;
  /** Per level, the largest key of the last table compacted out of it (round-robin cursor). */
  private readonly cursor: (Buffer | undefined)[] = new Array(NUM_LEVELS).fill(undefined);

  constructor(options: PickerOptions) {
    this.options = options;
  }

  /** The plan for the most urgent level, or undefined when no level needs work. */
  pick(version: Version): CompactionPlan | undefined {
    const scores = levelScores(version, this.options)
      .filter((s) => s.score >= 1)
      .sort((a, b) => b.score - a.score);
    const best = scores[0];
    if (best === undefined) return undefined;
    return this.planFor(version, best.level, best.score);
  }

  /**
   * A plan rewriting the whole last level onto itself, which drops what no reader can see any
   * more (manual full compaction; background compaction never needs it).
   */
  bottomPlan(version: Version): CompactionPlan | undefined {
    const level = NUM_LEVELS - 1;
    const inputs = [...version.levels[level]!];
    if (inputs.length === 0) return undefined;
    const [smallest, largest] = bounds(inputs);
    return {
      level,
      outputLevel: level,
      inputs,
      outputLevelInputs: [],
      bottommost: true,
      trivialMove: false,
      score: 0,
      smallest,
      largest,
    };
  }

  /** A plan compacting `level` regardless of score (used by manual compaction). */
  planFor(version: Version, level: number, score = 0): CompactionPlan | undefined {
    const files = version.levels[level]!;
    if (files.length === 0 || level >= NUM_LEVELS - 1) return undefined;
    let inputs: FileMetadata[];
    if (level === 0) {
      inputs = [...files];
    } else {
      const cursor = this.cursor[level];
      const next =
        cursor === undefined ? undefined : files.find((f) => compareInternalKeys(f.smallest, cursor) > 0);
      inputs = [next ?? files[0]!];
    }
    let [smallest, largest] = bounds(inputs);
    const outputLevel = level + 1;
    const outputLevelInputs = version.overlapping(outputLevel, smallest, largest);
    if (outputLevelInputs.length > 0) [smallest, largest] = bounds([...inputs, ...outputLevelInputs]);
    let bottommost = true;
    for (let deeper = outputLevel + 1; deeper < NUM_LEVELS; deeper++) {
      if (version.overlapping(deeper, smallest, largest).length > 0) {
        bottommost = false;
        break;
      }
    }
    this.cursor[level] = inputs[inputs.length - 1]!.largest;
    return {
      level,
      outputLevel,
      inputs,
      outputLevelInputs,
      bottommost,
      trivialMove: inputs.length === 1 && outputLevelInputs.length === 0,
      score,
      smallest,
      largest,
    };
  }
}

/** Smallest minVersion among tables of levels above `level` overlapping [smallest, largest]. */
export function minVersionAbove(
  version: Version,
  level: number,
  smallest: Buffer,
  largest: Buffer,
): bigint | undefined {
  let min: bigint | undefined;
  for (let l = 0; l < level; l++) {
    for (const f of version.levels[l]!) {
      if (
        rangesOverlap(f.smallest, f.largest, smallest, largest) &&
        (min === undefined || f.minVersion < min)
      ) {
        min = f.minVersion;
      }
    }
  }
  return min;
}
