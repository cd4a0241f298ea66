import { type ConfChangeSingle, ConfChangeType } from '@nokv/proto';
import { describe, expect, test } from 'vitest';
import { RaftError } from '../errors.js';
import { JointConfig } from '../quorum/joint-config.js';
import { MajorityConfig } from '../quorum/majority-config.js';
import { TrackerConfig } from '../tracker/progress-tracker.js';
import { Changer, type ConfigAndProgress, emptyConfig } from './changer.js';

const v = (id: number): ConfChangeSingle => ({ type: ConfChangeType.AddNode, nodeId: BigInt(id) });
const l = (id: number): ConfChangeSingle => ({ type: ConfChangeType.AddLearnerNode, nodeId: BigInt(id) });
const r = (id: number): ConfChangeSingle => ({ type: ConfChangeType.RemoveNode, nodeId: BigInt(id) });
const u = (id: number): ConfChangeSingle => ({ type: ConfChangeType.UpdateNode, nodeId: BigInt(id) });

const LAST_INDEX = 10n;
const changer = (base: ConfigAndProgress) => new Changer(base, LAST_INDEX, 256);

/** Builds a configuration by simple changes, one at a time. */
function build(...changes: ConfChangeSingle[]): ConfigAndProgress {
  let cp = emptyConfig();
  for (const c of changes) cp = changer(cp).simple([c]);
  return cp;
}

/** Everything observable about a configuration, to compare before and after. */
function dump(cp: ConfigAndProgress): string {
  const prs = [...cp.progress.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([id, pr]) => `${id}:${pr.match}/${pr.next}${pr.isLearner ? 'L' : ''}`);
  return `${cp.config} | ${prs.join(' ')}`;
}

function expectInvalid(fn: () => unknown, message: RegExp | string): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(RaftError);
  expect((err as RaftError).code).toBe('InvalidConfChange');
  expect((err as RaftError).message).toMatch(message);
}

describe('Changer.simple', () => {
  test('adds voters and learners, starting them at the last index', () => {
    const cp = build(v(1), v(2), l(3));
    expect(cp.config.toString()).toBe('voters=(1 2) learners=(3)');
    const pr = cp.progress.get(3n)!;
    expect([pr.match, pr.next, pr.isLearner, pr.recentActive]).toEqual([0n, LAST_INDEX, true, true]);
    // An empty log still probes from index 1.
    expect(new Changer(emptyConfig(), 0n, 256).simple([v(1)]).progress.get(1n)!.next).toBe(1n);
  });

  test('promotes a learner, keeping its progress', () => {
    const base = build(v(1), v(2), l(3));
    base.progress.get(3n)!.match = 7n;
    const cp = changer(base).simple([v(3)]);
    expect(cp.config.toString()).toBe('voters=(1 2 3)');
    expect(cp.progress.get(3n)!.isLearner).toBe(false);
    expect(cp.progress.get(3n)!.match).toBe(7n);
  });

  test('demotes a voter to learner', () => {
    const cp = changer(build(v(1), v(2), v(3))).simple([l(3)]);
    expect(cp.config.toString()).toBe('voters=(1 2) learners=(3)');
    expect(cp.progress.get(3n)!.isLearner).toBe(true);
  });

  test('removes voters and learners, forgetting their progress', () => {
    const cp = changer(changer(build(v(1), v(2), l(3))).simple([r(2)])).simple([r(3)]);
    expect(cp.config.toString()).toBe('voters=(1)');
    expect([...cp.progress.keys()]).toEqual([1n]);
  });

  test('no-ops: removing an unknown node, re-adding a member, updates and node id 0', () => {
    const base = build(v(1), v(2), l(3));
    for (const changes of [[r(9)], [v(2)], [l(3)], [u(1)], [v(0)], [r(0)], [v(4), r(4)]]) {
      expect(dump(changer(base).simple(changes))).toBe(dump(base));
    }
  });

  test('allows one voter change together with learner changes', () => {
    const cp = changer(build(v(1))).simple([v(2), l(3), l(4)]);
    expect(cp.config.toString()).toBe('voters=(1 2) learners=(3 4)');
  });

  test.each([
    { name: 'two voters added', changes: [v(2), v(3)] },
    { name: 'a voter replaced', changes: [r(1), v(2)] },
    { name: 'a voter added and one demoted', changes: [v(2), l(1)] },
  ])('refuses more than one voter change ($name)', ({ changes }) => {
    expectInvalid(() => changer(build(v(1))).simple(changes), 'more than one voter changed');
  });

  test('refuses removing every voter', () => {
    expectInvalid(() => changer(build(v(1), l(2))).simple([r(1)]), 'removed all voters');
    expectInvalid(() => changer(build(v(1))).simple([l(1)]), 'removed all voters');
  });

  test('refuses a simple change in a joint configuration', () => {
    const joint = changer(build(v(1), v(2))).enterJoint(false, [v(3)]);
    expectInvalid(() => changer(joint).simple([v(4)]), "can't apply simple config change in joint config");
  });
});

describe('Changer.enterJoint / leaveJoint', () => {
  test('replacing a voter goes through the joint configuration and back', () => {
    const base = build(v(1), v(2), v(3));
    const joint = changer(base).enterJoint(false, [v(4), r(3)]);
    expect(joint.config.toString()).toBe('voters=(1 2 4)&&(1 2 3)');
    // The outgoing voter is still tracked while joint.
    expect([...joint.progress.keys()].sort()).toEqual([1n, 2n, 3n, 4n]);
    const left = changer(joint).leaveJoint();
    expect(left.config.toString()).toBe('voters=(1 2 4)');
    expect(left.progress.has(3n)).toBe(false);
  });

  test('demoting a voter while joint goes through learners_next', () => {
    const joint = changer(build(v(1), v(2), v(3))).enterJoint(false, [l(3)]);
    expect(joint.config.toString()).toBe('voters=(1 2)&&(1 2 3) learners_next=(3)');
    // Still a voter of the outgoing half, so not a learner yet.
    expect(joint.progress.get(3n)!.isLearner).toBe(false);
    const left = changer(joint).leaveJoint();
    expect(left.config.toString()).toBe('voters=(1 2) learners=(3)');
    expect(left.progress.get(3n)!.isLearner).toBe(true);
  });

  test('a node demoted and promoted again in one change stays a voter', () => {
    const joint = changer(build(v(1), v(2), v(3))).enterJoint(false, [l(3), v(3), v(4)]);
    expect(joint.config.toString()).toBe('voters=(1 2 3 4)&&(1 2 3)');
  });

  test('promoting a learner and removing a voter', () => {
    const joint = changer(build(v(1), v(2), l(3))).enterJoint(false, [v(3), r(1)]);
    expect(joint.config.toString()).toBe('voters=(2 3)&&(1 2)');
    expect(changer(joint).leaveJoint().config.toString()).toBe('voters=(2 3)');
  });

  test('autoLeave is recorded while joint and cleared on leaving', () => {
    const joint = changer(build(v(1))).enterJoint(true, [v(2), v(3)]);
    expect(joint.config.autoLeave).toBe(true);
    expect(joint.config.toString()).toBe('voters=(1 2 3)&&(1) autoleave');
    const left = changer(joint).leaveJoint();
    expect(left.config.autoLeave).toBe(false);
    expect(left.config.toString()).toBe('voters=(1 2 3)');
  });

  test('refuses to enter a joint configuration twice', () => {
    const joint = changer(build(v(1), v(2))).enterJoint(false, [v(3)]);
    expectInvalid(() => changer(joint).enterJoint(false, [v(4)]), 'config is already joint');
  });

  test('refuses to make a zero-voter configuration joint', () => {
    expectInvalid(
      () => changer(emptyConfig()).enterJoint(false, [v(1)]),
      "can't make a zero-voter config joint",
    );
    expectInvalid(() => changer(build(v(1), l(2))).enterJoint(false, [r(1)]), 'removed all voters');
  });

  test('refuses to leave a configuration that is not joint', () => {
    expectInvalid(() => changer(build(v(1), v(2))).leaveJoint(), "can't leave a non-joint config");
  });
});

describe('Changer never mutates its input', () => {
  const joint = () => changer(build(v(1), v(2), v(3), l(5))).enterJoint(true, [l(3), v(4)]);
  test.each([
    {
      name: 'two voters in a simple change',
      base: () => build(v(1)),
      op: (c: Changer) => c.simple([v(2), v(3)]),
    },
    {
      name: 'removing all voters',
      base: () => build(v(1), v(2), l(3)),
      op: (c: Changer) => c.enterJoint(false, [r(1), r(2)]),
    },
    { name: 'simple change while joint', base: joint, op: (c: Changer) => c.simple([r(5)]) },
    { name: 'joint while joint', base: joint, op: (c: Changer) => c.enterJoint(false, [r(1)]) },
    { name: 'leave when not joint', base: () => build(v(1), l(2)), op: (c: Changer) => c.leaveJoint() },
    // successful changes must not touch the input either
    {
      name: 'a successful simple change',
      base: () => build(v(1), v(2), l(3)),
      op: (c: Changer) => c.simple([v(3)]),
    },
    {
      name: 'a successful enterJoint',
      base: () => build(v(1), v(2), l(3)),
      op: (c: Changer) => c.enterJoint(true, [v(3), l(1)]),
    },
    { name: 'a successful leaveJoint', base: joint, op: (c: Changer) => c.leaveJoint() },
  ])('$name', ({ base, op }) => {
    const cp = base();
    const before = dump(cp);
    const learnerFlags = [...cp.progress.values()].map((pr) => pr.isLearner);
    try {
      op(changer(cp));
    } catch (err) {
      expect(err).toBeInstanceOf(RaftError);
    }
    expect(dump(cp)).toBe(before);
    expect([...cp.progress.values()].map((pr) => pr.isLearner)).toEqual(learnerFlags);
  });
});

describe('Changer validates its input configuration', () => {
  test('a voter without progress is refused', () => {
    const bad: ConfigAndProgress = {
      config: new TrackerConfig(new JointConfig(new MajorityConfig([1n]))),
      progress: new Map(),
    };
    expectInvalid(() => changer(bad).simple([v(2)]), 'no progress for voter 1');
  });
});
