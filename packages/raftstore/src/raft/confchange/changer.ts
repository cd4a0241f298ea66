import { type ConfChangeSingle, ConfChangeType } from '@nokv/proto';
import { RaftError } from '../errors.js';
import { JointConfig } from '../quorum/joint-config.js';
import { Progress } from '../tracker/progress.js';
import { TrackerConfig } from '../tracker/progress-tracker.js';

/** A configuration with its progress map: what every change produces. */
export interface ConfigAndProgress {
  config: TrackerConfig;
  progress: Map<bigint, Progress>;
}

/**
 * Computes the configuration that results from membership changes, without touching the one it
 * starts from. Every method validates the result and throws RaftError `InvalidConfChange`
 * (leaving the input untouched) when the change is not allowed.
 */
export class Changer {
  constructor(
    private readonly base: ConfigAndProgress,
    /** Last log index, where newly added members start probing. */
    private readonly lastIndex: bigint,
    private readonly maxInflight: number,
    private readonly maxInflightBytes = 0,
  ) {}

  /**
   * Enters a joint configuration: the current voters become the outgoing half and `changes` are
   * applied to the incoming half. Both halves must then agree on elections and commits.
   */
  enterJoint(autoLeave: boolean, changes: readonly ConfChangeSingle[]): ConfigAndProgress {
    const next = this.copy();
    if (next.config.voters.isJoint()) throw invalid('config is already joint');
    if (next.config.voters.incoming.size === 0) throw invalid("can't make a zero-voter config joint");
    for (const id of next.config.voters.incoming.ids) next.config.voters.outgoing.ids.add(id);
    this.apply(next, changes);
    next.config.autoLeave = autoLeave;
    return checked(next);
  }

  /**
   * Leaves a joint configuration: the outgoing half is dropped, members that were only in it
   * stop being tracked, and `learnersNext` become learners.
   */
  leaveJoint(): ConfigAndProgress {
    const next = this.copy();
    const { config, progress } = next;
    if (!config.voters.isJoint()) throw invalid("can't leave a non-joint config");
    for (const id of config.learnersNext) {
      config.learners.add(id);
      progress.get(id)!.isLearner = true;
    }
    config.learnersNext.clear();
    for (const id of config.voters.outgoing.ids) {
      if (!config.voters.incoming.has(id) && !config.learners.has(id)) progress.delete(id);
    }
    config.voters.outgoing.ids.clear();
    config.autoLeave = false;
    return checked(next);
  }

  /**
   * Applies changes that alter at most one voter directly, without a joint configuration: any
   * two majorities of configurations that differ by one voter intersect, so this is safe.
   */
  simple(changes: readonly ConfChangeSingle[]): ConfigAndProgress {
    const next = this.copy();
    if (next.config.voters.isJoint()) throw invalid("can't apply simple config change in joint config");
    this.apply(next, changes);
    const before = this.base.config.voters.incoming.ids;
    const after = next.config.voters.incoming.ids;
    let changed = 0;
    for (const id of before) if (!after.has(id)) changed++;
    for (const id of after) if (!before.has(id)) changed++;
    if (changed > 1) throw invalid('more than one voter changed without entering joint config');
    return checked(next);
  }

  private copy(): ConfigAndProgress {
    checkInvariants(this.base);
    const progress = new Map<bigint, Progress>();
    for (const [id, pr] of this.base.progress) progress.set(id, pr.clone());
    return { config: this.base.config.clone(), progress };
  }

  private apply(next: ConfigAndProgress, changes: readonly ConfChangeSingle[]): void {
    for (const cc of changes) {
      if (cc.nodeId === 0n) continue; // id 0 means "no node": ignored, as the wire allows it
      switch (cc.type) {
        case ConfChangeType.AddNode:
          this.makeVoter(next, cc.nodeId);
          break;
        case ConfChangeType.AddLearnerNode:
          this.makeLearner(next, cc.nodeId);
          break;
        case ConfChangeType.RemoveNode:
          remove(next, cc.nodeId);
          break;
        case ConfChangeType.UpdateNode:
          break;
        default:
          throw invalid(`unexpected conf change type ${String(cc.type)}`);
      }
    }
    if (next.config.voters.incoming.size === 0) throw invalid('removed all voters');
  }

  private makeVoter({ config, progress }: ConfigAndProgress, id: bigint): void {
    const pr = progress.get(id);
    if (!pr) {
      this.initProgress({ config, progress }, id, false);
      return;
    }
    pr.isLearner = false;
    config.learners.delete(id);
    config.learnersNext.delete(id);
    config.voters.incoming.ids.add(id);
  }

  private makeLearner(next: ConfigAndProgress, id: bigint): void {
    const pr = next.progress.get(id);
    if (!pr) {
      this.initProgress(next, id, true);
      return;
    }
    if (pr.isLearner) return;
    remove(next, id);
    // Keep tracking it: it stays a member, only its role changes.
    next.progress.set(id, pr);
    // A voter of the outgoing half cannot be a learner yet; it becomes one on leaving the joint config.
    if (next.config.voters.outgoing.has(id)) {
      next.config.learnersNext.add(id);
    } else {
      pr.isLearner = true;
      next.config.learners.add(id);
    }
  }

  private initProgress({ config, progress }: ConfigAndProgress, id: bigint, isLearner: boolean): void {
    if (isLearner) config.learners.add(id);
    else config.voters.incoming.ids.add(id);
    progress.set(
      id,
      new Progress({
        // Probe from the end of the log; the leader walks back on rejection.
        next: this.lastIndex > 0n ? this.lastIndex : 1n,
        match: 0n,
        isLearner,
        // Counted as active so that CheckQuorum does not step the leader down before the new
        // member has had a chance to answer.
        recentActive: true,
        maxInflight: this.maxInflight,
        maxInflightBytes: this.maxInflightBytes,
      }),
    );
  }
}

function remove({ config, progress }: ConfigAndProgress, id: bigint): void {
  if (!progress.has(id)) return;
  config.voters.incoming.ids.delete(id);
  config.learners.delete(id);
  config.learnersNext.delete(id);
  // Still a voter of the outgoing half: keep its progress until the joint config is left.
  if (!config.voters.outgoing.has(id)) progress.delete(id);
}

function invalid(message: string): RaftError {
  return new RaftError('InvalidConfChange', message);
}

/** Checks the structural rules of a configuration; a violation is InvalidConfChange. */
export function checkInvariants({ config, progress }: ConfigAndProgress): void {
  for (const id of config.voters.ids()) {
    if (!progress.has(id)) throw invalid(`no progress for voter ${id}`);
  }
  for (const id of config.learners) {
    if (!progress.has(id)) throw invalid(`no progress for learner ${id}`);
    if (config.voters.has(id)) throw invalid(`${id} is in learners and voters`);
    if (!progress.get(id)!.isLearner) throw invalid(`${id} is in learners, but is not marked as learner`);
  }
  for (const id of config.learnersNext) {
    if (!progress.has(id)) throw invalid(`no progress for learner(next) ${id}`);
    if (!config.voters.outgoing.has(id)) throw invalid(`${id} is in learners_next, but not outgoing`);
    if (progress.get(id)!.isLearner)
      throw invalid(`${id} is in learners_next, but is already marked as learner`);
  }
  if (!config.voters.isJoint()) {
    if (config.learnersNext.size > 0) throw invalid('learners_next must be empty when not joint');
    if (config.autoLeave) throw invalid('autoLeave must be false when not joint');
  }
}

function checked(next: ConfigAndProgress): ConfigAndProgress {
  checkInvariants(next);
  return next;
}

/** A fresh, empty configuration (no voters). */
export function emptyConfig(): ConfigAndProgress {
  return { config: new TrackerConfig(new JointConfig()), progress: new Map() };
}
