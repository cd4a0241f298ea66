import { type ConfChangeSingle, ConfChangeType, type ConfState } from '@nokv/proto';
import { RaftError } from '../errors.js';
import { sortIds } from '../quorum/majority-config.js';
import { Changer, type ConfigAndProgress, emptyConfig } from './changer.js';

/**
 * Rebuilds the configuration described by a ConfState (from a snapshot or storage) by replaying
 * changes through the Changer, so restored configs obey exactly the rules live changes do.
 * @throws RaftError `InvalidConfChange` if the ConfState is not a reachable configuration.
 */
export function restoreConfig(
  cs: ConfState,
  lastIndex: bigint,
  maxInflight: number,
  maxInflightBytes = 0,
): ConfigAndProgress {
  const outgoing: ConfChangeSingle[] = cs.votersOutgoing.map((id) => ({
    type: ConfChangeType.AddNode,
    nodeId: id,
  }));
  // Entering the joint config from the outgoing voters: remove them all, then add the incoming
  // voters and the learners; members in both halves are simply re-added.
  const incoming: ConfChangeSingle[] = [
    ...cs.votersOutgoing.map((id) => ({ type: ConfChangeType.RemoveNode, nodeId: id })),
    ...cs.voters.map((id) => ({ type: ConfChangeType.AddNode, nodeId: id })),
    ...cs.learners.map((id) => ({ type: ConfChangeType.AddLearnerNode, nodeId: id })),
    ...cs.learnersNext.map((id) => ({ type: ConfChangeType.AddLearnerNode, nodeId: id })),
  ];
  let current = emptyConfig();
  const step = (fn: (c: Changer) => ConfigAndProgress) => {
    current = fn(new Changer(current, lastIndex, maxInflight, maxInflightBytes));
  };
  if (outgoing.length === 0) {
    // Not joint: one change at a time, each a valid simple change.
    for (const cc of incoming) step((c) => c.simple([cc]));
  } else {
    for (const cc of outgoing) step((c) => c.simple([cc]));
    step((c) => c.enterJoint(cs.autoLeave, incoming));
  }
  // Replaying an unreachable ConfState (a learner that is also a voter, autoLeave or learners_next
  // outside a joint config, ...) yields some other configuration without failing: refuse it.
  const { config } = current;
  const same = (want: readonly bigint[], got: Iterable<bigint>) => {
    const g = sortIds(got);
    return want.length === g.length && sortIds(want).every((id, i) => id === g[i]);
  };
  if (
    !same(cs.voters, config.voters.incoming.ids) ||
    !same(cs.votersOutgoing, config.voters.outgoing.ids) ||
    !same(cs.learners, config.learners) ||
    !same(cs.learnersNext, config.learnersNext) ||
    cs.autoLeave !== config.autoLeave
  ) {
    throw new RaftError(
      'InvalidConfChange',
      `ConfState is not a reachable configuration (restores as ${config})`,
    );
  }
  return current;
}
