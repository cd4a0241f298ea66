import { ModelError } from '../errors.js';
import type { Model, Operation, Partition } from './model.js';

/**
 * Groups a history's operations by a key derived from each input (e.g. the KV key), one partition
 * per distinct key in order of first appearance. A helper for `Model.partition` implementations.
 * Throws whatever `keyOf` or `labelOf` throws.
 */
export function partitionByKey<I, O>(
  history: readonly Operation<I, O>[],
  keyOf: (input: I) => string,
  labelOf: (key: string) => string,
): Partition[] {
  const groups = new Map<string, number[]>();
  for (let i = 0; i < history.length; i++) {
    const key = keyOf(history[i]!.input);
    const group = groups.get(key);
    if (group === undefined) groups.set(key, [i]);
    else group.push(i);
  }
  return Array.from(groups, ([key, operations]) => ({ label: labelOf(key), operations }));
}

/**
 * The partitions the checker searches: the model's own, or the whole history as one. Throws
 * `ModelError` when the model's partitions do not cover every operation exactly once (a lost
 * operation would go unchecked; a duplicated one would be applied twice).
 */
export function resolvePartitions<S, I, O>(
  model: Model<S, I, O>,
  history: readonly Operation<I, O>[],
): readonly Partition[] {
  if (model.partition === undefined) {
    return [{ label: 'history', operations: history.map((_, i) => i) }];
  }
  const partitions = model.partition(history);
  const owner = new Int32Array(history.length).fill(-1);
  for (let p = 0; p < partitions.length; p++) {
    const partition = partitions[p]!;
    for (const index of partition.operations) {
      if (!Number.isInteger(index) || index < 0 || index >= history.length) {
        throw new ModelError(
          `partition ${p} (${partition.label}) names operation ${index}, but the history has ${history.length} operations`,
        );
      }
      const previous = owner[index]!;
      if (previous !== -1) {
        throw new ModelError(
          `operation #${index} is in partition ${previous} (${partitions[previous]!.label}) and again in partition ${p} (${partition.label})`,
        );
      }
      owner[index] = p;
    }
  }
  const lost = owner.indexOf(-1);
  if (lost !== -1) {
    throw new ModelError(`operation #${lost} is in no partition, so it would go unchecked`);
  }
  return partitions;
}
