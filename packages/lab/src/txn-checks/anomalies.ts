import type { AnomalyType, Consistency } from './types.js';

/** What each anomaly means, and which consistency models forbid it. */
export const ANOMALIES: Readonly<
  Record<AnomalyType, { readonly description: string; readonly allowedBy: readonly Consistency[] }>
> = {
  G0: { description: 'write cycle (dirty write): a cycle of ww edges', allowedBy: [] },
  G1a: {
    description: 'aborted read: a committed read observed an append of a failed transaction',
    allowedBy: [],
  },
  G1b: {
    description: "intermediate read: a committed read observed another transaction's non-final append",
    allowedBy: [],
  },
  G1c: {
    description: 'circular information flow: a cycle of ww and wr edges, at least one wr',
    allowedBy: [],
  },
  'G-single': {
    description: 'read skew: a cycle with exactly one rw (anti-dependency) edge',
    allowedBy: [],
  },
  G2: {
    description: 'write skew: a cycle that needs at least two rw edges',
    allowedBy: ['snapshot-isolation'],
  },
  'G0-realtime': { description: 'G0, but the cycle needs a real-time edge', allowedBy: [] },
  'G1c-realtime': { description: 'G1c, but the cycle needs a real-time edge', allowedBy: [] },
  'G-single-realtime': { description: 'G-single, but the cycle needs a real-time edge', allowedBy: [] },
  'G2-realtime': {
    description: 'G2, but the cycle needs a real-time edge',
    allowedBy: ['snapshot-isolation'],
  },
  LostUpdate: {
    description:
      'lost update: two committed transactions read the same version of a key and both appended to it',
    allowedBy: [],
  },
  IncompatibleOrder: {
    description:
      'two committed reads of a key are not prefixes of one another: no single version order exists',
    allowedBy: [],
  },
  GarbageRead: { description: 'a committed read observed a value no transaction appended', allowedBy: [] },
  DuplicateElements: {
    description: 'a committed read observed the same appended value twice',
    allowedBy: [],
  },
  Internal: {
    description: "a transaction's read contradicts its own earlier reads and appends of that key",
    allowedBy: [],
  },
};

/** Whether `consistency` forbids anomaly `type`. */
export function isForbidden(type: AnomalyType, consistency: Consistency): boolean {
  return !ANOMALIES[type].allowedBy.includes(consistency);
}
