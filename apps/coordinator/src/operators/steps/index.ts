import type { Operation, StepName } from '../model.js';
import type { StepContext, StepOutcome } from './context.js';
import { transferLeader } from './leader.js';
import { commitMerge, prepareMerge, waitMergeApplied } from './merge.js';
import { addPeer, chooseTarget, leaveLeadership, removePeer, waitReplica } from './replicas.js';
import { splitRegion } from './split.js';

export { type StepContext, StepError, type StepOutcome } from './context.js';
export { pickTargetStore } from './replicas.js';

export function runStep(ctx: StepContext, name: StepName, op: Operation): Promise<StepOutcome> {
  switch (name) {
    case 'choose-target':
      return chooseTarget(ctx, op);
    case 'add-peer':
      return addPeer(ctx, op);
    case 'wait-replica':
      return waitReplica(ctx, op);
    case 'leave-leadership':
      return leaveLeadership(ctx, op);
    case 'remove-peer':
      return removePeer(ctx, op);
    case 'transfer-leader':
      return transferLeader(ctx, op);
    case 'split-region':
      return splitRegion(ctx, op);
    case 'prepare-merge':
      return prepareMerge(ctx, op);
    case 'wait-merge-applied':
      return waitMergeApplied(ctx, op);
    case 'commit-merge':
      return commitMerge(ctx, op);
  }
}
