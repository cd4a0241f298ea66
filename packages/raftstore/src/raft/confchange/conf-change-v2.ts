import { ConfChangeTransition, ConfChangeType, type ConfChangeV2 } from '@nokv/proto';

/**
 * True if `cc` asks to leave a joint configuration: no changes and the Auto transition (its
 * context is ignored).
 */
export function isLeaveJoint(cc: ConfChangeV2): boolean {
  return cc.changes.length === 0 && cc.transition === ConfChangeTransition.Auto;
}

/**
 * Whether applying `cc` enters a joint configuration, and if so whether it is left automatically.
 * Several changes, or an explicit joint transition, go through a joint config; a single change
 * with the Auto transition is applied directly.
 */
export function enterJoint(cc: ConfChangeV2): { joint: boolean; autoLeave: boolean } {
  if (cc.transition === ConfChangeTransition.Auto && cc.changes.length <= 1)
    return { joint: false, autoLeave: false };
  return { joint: true, autoLeave: cc.transition !== ConfChangeTransition.JointExplicit };
}

const typeLetter: Record<number, string> = {
  [ConfChangeType.AddNode]: 'v',
  [ConfChangeType.AddLearnerNode]: 'l',
  [ConfChangeType.RemoveNode]: 'r',
  [ConfChangeType.UpdateNode]: 'u',
};

/** `v2 l3 r4`: add voter 2, add learner 3, remove 4 (update is `u`). */
export function describeConfChanges(cc: ConfChangeV2): string {
  return cc.changes.map((c) => `${typeLetter[c.type] ?? '?'}${c.nodeId}`).join(' ');
}
