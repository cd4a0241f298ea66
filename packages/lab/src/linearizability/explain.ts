import { describeEntry } from './history.js';
import type { Model, Operation } from './model.js';

/** Long prefixes are elided in the middle: the start sets the scene, the end is where it broke. */
const HEAD_LINES = 3;
const TAIL_LINES = 8;
const MAX_CANDIDATES = 8;

/** What the search learnt about a non-linearizable partition, in history indices. */
export interface Failure<S> {
  readonly label: string;
  readonly size: number;
  readonly longest: readonly number[];
  readonly blocked: number;
  readonly candidates: readonly number[];
  readonly state: S;
}

/**
 * A human-readable account of why a partition is not linearizable: the longest linearizable prefix
 * found, the state it leaves, and the operation that could not be placed after it. Throws whatever
 * the model's `describeOperation` / `describeState` throw.
 */
export function explainFailure<S, I, O>(
  model: Model<S, I, O>,
  history: readonly Operation<I, O>[],
  failure: Failure<S>,
): string {
  const { label, longest, blocked } = failure;
  const lines: string[] = [];
  if (longest.length === 0) {
    lines.push(`${label} is not linearizable: no operation can be linearized first.`);
  } else {
    lines.push(
      `${label} is not linearizable. The longest linearizable prefix found has ${longest.length} of ${failure.size} operations:`,
    );
    const elide = longest.length > HEAD_LINES + TAIL_LINES;
    for (let i = 0; i < longest.length; i++) {
      if (elide && i === HEAD_LINES) {
        lines.push(`  … ${longest.length - HEAD_LINES - TAIL_LINES} more …`);
        i = longest.length - TAIL_LINES;
      }
      lines.push(`  ${describeEntry(model, history, longest[i]!)}`);
    }
  }
  const state = model.describeState === undefined ? '' : ` (state: ${model.describeState(failure.state)})`;
  const after = longest.length === 0 ? 'From the initial state' : 'After it';
  const others = failure.candidates.filter((c) => c !== blocked);
  let tail = '';
  if (others.length > 0) {
    const shown = others.slice(0, MAX_CANDIDATES).map((c) => describeEntry(model, history, c));
    if (others.length > MAX_CANDIDATES) shown.push(`… ${others.length - MAX_CANDIDATES} more`);
    tail = `, nor can any other operation that could come next (${shown.join('; ')}) lead to a valid linearization`;
  }
  const ret = history[blocked]!.return;
  lines.push(
    `${after}${state}, ${describeEntry(model, history, blocked)} must take effect before it returns at ${ret}, ` +
      `but it cannot be linearized there${tail}.`,
  );
  return lines.join('\n');
}
