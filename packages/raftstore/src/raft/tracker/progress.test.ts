import { describe, expect, test } from 'vitest';
import { RaftAssertionError } from '../errors.js';
import { Progress, ProgressState } from './progress.js';

function progress(
  fields: { match?: bigint; next: bigint; state?: ProgressState; pendingSnapshot?: bigint },
  maxInflight = 256,
): Progress {
  const pr = new Progress({ match: fields.match, next: fields.next, maxInflight });
  pr.state = fields.state ?? ProgressState.Probe;
  pr.pendingSnapshot = fields.pendingSnapshot ?? 0n;
  return pr;
}

describe('Progress state transitions', () => {
  test.each([
    // the snapshot is ahead of match: probe right after it
    { match: 1n, pending: 10n, next: 11n },
    // match already passed the snapshot
    { match: 12n, pending: 10n, next: 13n },
    // the snapshot was aborted (pending cleared): probe after match
    { match: 3n, pending: 0n, next: 4n },
  ])('becomeProbe from snapshot state (match $match, pending $pending) -> next $next', (tt) => {
    const pr = progress({ match: tt.match, next: tt.pending + 1n, state: ProgressState.Snapshot });
    pr.pendingSnapshot = tt.pending;
    pr.becomeProbe();
    expect(pr.state).toBe(ProgressState.Probe);
    expect(pr.next).toBe(tt.next);
    expect(pr.match).toBe(tt.match);
    expect(pr.pendingSnapshot).toBe(0n);
  });

  test('becomeProbe from replicate restarts after match and forgets the inflight window', () => {
    const pr = progress({ match: 5n, next: 6n });
    pr.becomeReplicate();
    pr.sentEntries(2, 8n, 10);
    expect(pr.next).toBe(9n);
    expect(pr.inflights.size).toBe(1);
    pr.becomeProbe();
    expect(pr.state).toBe(ProgressState.Probe);
    expect(pr.next).toBe(6n);
    expect(pr.inflights.size).toBe(0);
    expect(pr.msgAppFlowPaused).toBe(false);
  });

  test('becomeReplicate and becomeSnapshot set next', () => {
    const pr = progress({ match: 5n, next: 3n });
    pr.becomeReplicate();
    expect(pr.state).toBe(ProgressState.Replicate);
    expect(pr.next).toBe(6n);
    pr.becomeSnapshot(20n);
    expect(pr.state).toBe(ProgressState.Snapshot);
    expect(pr.pendingSnapshot).toBe(20n);
    expect(pr.next).toBe(21n);
    expect(pr.match).toBe(5n);
  });
});

describe('Progress.maybeUpdate', () => {
  test.each([
    { update: 2n, match: 3n, next: 5n, ok: false }, // stale ack
    { update: 3n, match: 3n, next: 5n, ok: false }, // repeated ack
    { update: 4n, match: 4n, next: 5n, ok: true },
    { update: 5n, match: 5n, next: 6n, ok: true },
    { update: 6n, match: 6n, next: 7n, ok: true }, // ack beyond next moves next too
  ])('match 3 next 5, ack $update -> match $match next $next', (tt) => {
    const pr = progress({ match: 3n, next: 5n });
    pr.msgAppFlowPaused = true;
    expect(pr.maybeUpdate(tt.update)).toBe(tt.ok);
    expect(pr.match).toBe(tt.match);
    expect(pr.next).toBe(tt.next);
    // Progress unpauses a probe.
    expect(pr.msgAppFlowPaused).toBe(!tt.ok);
  });
});

describe('Progress.maybeDecrTo', () => {
  test.each([
    // replicate: a rejection at or below match is stale
    { state: ProgressState.Replicate, match: 5n, next: 10n, rejected: 5n, hint: 5n, ok: false, wnext: 10n },
    { state: ProgressState.Replicate, match: 5n, next: 10n, rejected: 4n, hint: 4n, ok: false, wnext: 10n },
    // replicate: otherwise fall back to match + 1 (the hint is not used)
    { state: ProgressState.Replicate, match: 5n, next: 10n, rejected: 9n, hint: 2n, ok: true, wnext: 6n },
    // probe: only a rejection of the last probe (next - 1) counts
    { state: ProgressState.Probe, match: 0n, next: 0n, rejected: 0n, hint: 0n, ok: false, wnext: 0n },
    { state: ProgressState.Probe, match: 0n, next: 10n, rejected: 5n, hint: 5n, ok: false, wnext: 10n },
    // probe: next goes back to the rejected index...
    { state: ProgressState.Probe, match: 0n, next: 10n, rejected: 9n, hint: 9n, ok: true, wnext: 9n },
    { state: ProgressState.Probe, match: 0n, next: 2n, rejected: 1n, hint: 1n, ok: true, wnext: 1n },
    { state: ProgressState.Probe, match: 0n, next: 1n, rejected: 0n, hint: 0n, ok: true, wnext: 1n },
    // ...or further, to just after the hint...
    { state: ProgressState.Probe, match: 0n, next: 10n, rejected: 9n, hint: 2n, ok: true, wnext: 3n },
    { state: ProgressState.Probe, match: 0n, next: 10n, rejected: 9n, hint: 0n, ok: true, wnext: 1n },
    // ...but never to or below match
    { state: ProgressState.Probe, match: 5n, next: 10n, rejected: 9n, hint: 2n, ok: true, wnext: 6n },
  ])('$state match $match next $next, rejected $rejected hint $hint -> $ok, next $wnext', (tt) => {
    const pr = progress({ match: tt.match, next: tt.next, state: tt.state });
    pr.msgAppFlowPaused = true;
    expect(pr.maybeDecrTo(tt.rejected, tt.hint)).toBe(tt.ok);
    expect(pr.next).toBe(tt.wnext);
    expect(pr.match).toBe(tt.match);
    if (tt.state === ProgressState.Probe) expect(pr.msgAppFlowPaused).toBe(!tt.ok);
  });
});

describe('Progress.isPaused and sentEntries', () => {
  test('a probe pauses after each append until it hears back', () => {
    const pr = progress({ match: 0n, next: 1n });
    expect(pr.isPaused()).toBe(false);
    pr.sentEntries(3, 3n, 30);
    expect(pr.isPaused()).toBe(true);
    expect(pr.next).toBe(1n); // probing does not move next optimistically
    expect(pr.inflights.size).toBe(0);
    pr.maybeUpdate(3n);
    expect(pr.isPaused()).toBe(false);
    // An empty probe pauses too.
    pr.sentEntries(0, 3n, 0);
    expect(pr.isPaused()).toBe(true);
  });

  test('replicate moves next optimistically and pauses only when the window is full', () => {
    const pr = progress({ match: 0n, next: 1n }, 2);
    pr.becomeReplicate();
    pr.sentEntries(2, 2n, 20);
    expect(pr.next).toBe(3n);
    expect(pr.isPaused()).toBe(false);
    pr.sentEntries(0, 2n, 0); // an empty append (commit update) is not tracked
    expect(pr.inflights.size).toBe(1);
    pr.sentEntries(1, 3n, 10);
    expect(pr.next).toBe(4n);
    expect(pr.isPaused()).toBe(true);
    pr.inflights.freeLE(2n);
    expect(pr.isPaused()).toBe(false);
  });

  test('snapshot state is always paused and must not send appends', () => {
    const pr = progress({ match: 0n, next: 1n });
    pr.becomeSnapshot(10n);
    expect(pr.isPaused()).toBe(true);
    expect(() => pr.sentEntries(1, 11n, 1)).toThrow(RaftAssertionError);
  });

  test('clone copies the fields but not the inflight window', () => {
    const pr = new Progress({
      match: 4n,
      next: 5n,
      isLearner: true,
      recentActive: true,
      maxInflight: 3,
      maxInflightBytes: 9,
    });
    pr.becomeReplicate();
    pr.sentEntries(1, 6n, 1);
    const c = pr.clone();
    expect([c.match, c.next, c.state, c.isLearner, c.recentActive]).toEqual([
      4n,
      7n,
      ProgressState.Replicate,
      true,
      true,
    ]);
    expect(c.inflights.size).toBe(0);
    expect(c.inflights.capacity).toBe(3);
    expect(c.inflights.maxBytes).toBe(9);
    c.match = 100n;
    expect(pr.match).toBe(4n);
  });

  test('toString summarizes the state', () => {
    const pr = progress({ match: 1n, next: 2n });
    pr.sentEntries(1, 2n, 1);
    expect(pr.toString()).toBe('StateProbe match=1 next=2 paused inactive');
  });
});
