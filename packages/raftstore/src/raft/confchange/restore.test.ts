import { type ConfChangeSingle, ConfChangeType, type ConfState } from '@nokv/proto';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { RaftError } from '../errors.js';
import { ProgressTracker } from '../tracker/progress-tracker.js';
import { Changer, type ConfigAndProgress, emptyConfig } from './changer.js';
import { restoreConfig } from './restore.js';

const confState = (fields: Partial<ConfState>): ConfState => ({
  voters: [],
  learners: [],
  votersOutgoing: [],
  learnersNext: [],
  autoLeave: false,
  ...fields,
});

/** The ConfState describing a configuration, as Raft reports it. */
function confStateOf(cp: ConfigAndProgress): ConfState {
  const trk = new ProgressTracker(256, 0);
  trk.config = cp.config;
  trk.progress = cp.progress;
  return trk.confState();
}

function members(cp: ConfigAndProgress): string[] {
  return [...cp.progress.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([id, pr]) => `${id}${pr.isLearner ? 'L' : ''}`);
}

describe('restoreConfig', () => {
  test.each([
    { name: 'voters', cs: confState({ voters: [1n, 2n, 3n] }), want: 'voters=(1 2 3)' },
    {
      name: 'voters and learners',
      cs: confState({ voters: [1n, 2n, 3n], learners: [4n, 5n] }),
      want: 'voters=(1 2 3) learners=(4 5)',
    },
    {
      name: 'joint',
      cs: confState({ voters: [1n, 2n, 4n], votersOutgoing: [1n, 2n, 3n] }),
      want: 'voters=(1 2 4)&&(1 2 3)',
    },
    {
      name: 'joint, disjoint halves, autoLeave',
      cs: confState({ voters: [4n, 5n, 6n], votersOutgoing: [1n, 2n, 3n], autoLeave: true }),
      want: 'voters=(4 5 6)&&(1 2 3) autoleave',
    },
    {
      name: 'joint with learners and learners_next',
      cs: confState({ voters: [1n, 2n], votersOutgoing: [1n, 2n, 3n], learners: [5n], learnersNext: [3n] }),
      want: 'voters=(1 2)&&(1 2 3) learners=(5) learners_next=(3)',
    },
  ])('rebuilds $name', ({ cs, want }) => {
    const cp = restoreConfig(cs, 10n, 256);
    expect(cp.config.toString()).toBe(want);
    expect(confStateOf(cp)).toEqual(cs);
    for (const pr of cp.progress.values()) expect(pr.next).toBe(10n);
  });

  test('an empty ConfState restores to an empty configuration', () => {
    const cp = restoreConfig(confState({}), 0n, 256);
    expect(cp.config.toString()).toBe('voters=()');
    expect(cp.progress.size).toBe(0);
  });

  test.each([
    { name: 'a learner that is also a voter', cs: confState({ voters: [1n, 2n], learners: [2n] }) },
    { name: 'learners only', cs: confState({ learners: [1n] }) },
    {
      name: 'learners_next outside the outgoing voters',
      cs: confState({ voters: [1n], votersOutgoing: [1n], learnersNext: [3n] }),
    },
    { name: 'learners_next when not joint', cs: confState({ voters: [1n], learnersNext: [1n] }) },
    { name: 'autoLeave when not joint', cs: confState({ voters: [1n], autoLeave: true }) },
  ])('refuses an unreachable ConfState: $name', ({ cs }) => {
    expect(() => restoreConfig(cs, 1n, 256)).toThrow(RaftError);
  });
});

const arbChange = fc
  .tuple(
    fc.constantFrom(ConfChangeType.AddNode, ConfChangeType.AddLearnerNode, ConfChangeType.RemoveNode),
    fc.integer({ min: 1, max: 6 }),
  )
  .map(([type, id]): ConfChangeSingle => ({ type, nodeId: BigInt(id) }));

const arbOp = fc.oneof(
  fc.record({
    kind: fc.constant('simple' as const),
    changes: fc.array(arbChange, { minLength: 1, maxLength: 3 }),
  }),
  fc.record({
    kind: fc.constant('enterJoint' as const),
    autoLeave: fc.boolean(),
    changes: fc.array(arbChange, { maxLength: 4 }),
  }),
  fc.record({ kind: fc.constant('leaveJoint' as const) }),
);

describe('restoreConfig round trip (property)', () => {
  test('every configuration reachable by valid changes restores to itself', () => {
    let checked = 0;
    fc.assert(
      fc.property(fc.array(arbOp, { maxLength: 12 }), (ops) => {
        let cp = new Changer(emptyConfig(), 5n, 16).simple([{ type: ConfChangeType.AddNode, nodeId: 1n }]);
        for (const op of ops) {
          const c = new Changer(cp, 5n, 16);
          try {
            if (op.kind === 'simple') cp = c.simple(op.changes);
            else if (op.kind === 'enterJoint') cp = c.enterJoint(op.autoLeave, op.changes);
            else cp = c.leaveJoint();
          } catch (err) {
            if (!(err instanceof RaftError && err.code === 'InvalidConfChange')) throw err;
            continue;
          }
          const cs = confStateOf(cp);
          const restored = restoreConfig(cs, 5n, 16);
          expect(confStateOf(restored)).toEqual(cs);
          expect(restored.config.toString()).toBe(cp.config.toString());
          expect(members(restored)).toEqual(members(cp));
          checked++;
        }
      }),
      { numRuns: 300 },
    );
    expect(checked).toBeGreaterThan(300);
  });
});
