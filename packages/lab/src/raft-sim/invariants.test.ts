import { type Entry, EntryType } from '@nokv/proto';
import { describe, expect, test } from 'vitest';
import { InvariantChecker } from './invariants.js';

const entry = (index: bigint, term: bigint, data = ''): Entry => ({
  index,
  term,
  type: EntryType.Normal,
  data: Buffer.from(data),
});

describe('InvariantChecker', () => {
  test('two leaders in one term break Election Safety; one leader observed twice does not', () => {
    const c = new InvariantChecker();
    c.observeLeader(1n, 3n);
    c.observeLeader(1n, 3n);
    c.observeLeader(2n, 4n);
    expect(c.violations).toEqual([]);
    c.observeLeader(2n, 3n);
    expect(c.violations.map((v) => v.property)).toEqual(['ElectionSafety']);
    expect(c.violations[0]!.detail).toBe('nodes 1 and 2 were both leader in term 3');
  });

  test('one (index, term) with two payloads or two predecessors breaks Log Matching', () => {
    const c = new InvariantChecker();
    c.observeEntries(1n, [entry(5n, 2n, 'a')], () => 1n);
    c.observeEntries(2n, [entry(5n, 2n, 'a')], () => 1n);
    expect(c.violations).toEqual([]);
    c.observeEntries(3n, [entry(5n, 2n, 'b')], () => 1n);
    c.observeEntries(3n, [entry(5n, 2n, 'a')], () => 2n);
    expect(c.violations.map((v) => v.property)).toEqual(['LogMatching', 'LogMatching']);
  });

  test('different committed entries at one index break State Machine Safety', () => {
    const c = new InvariantChecker();
    c.observeCommitted(1n, [entry(1n, 1n, 'x'), entry(2n, 1n, 'y')], 1n);
    c.observeCommitted(2n, [entry(2n, 1n, 'y')], 1n);
    expect(c.violations).toEqual([]);
    c.observeCommitted(3n, [entry(2n, 2n, 'z')], 2n);
    expect(c.violations.map((v) => v.property)).toEqual(['StateMachineSafety']);
  });

  test('a new leader missing an entry committed in an earlier term breaks Leader Completeness', () => {
    const c = new InvariantChecker();
    c.observeCommitted(1n, [entry(1n, 1n), entry(2n, 1n)], 1n);
    const termAt = (i: bigint) => (i === 1n ? 1n : i === 2n ? 2n : undefined);
    // Covered by its snapshot: fine.
    c.checkLeaderCompleteness(2n, 2n, termAt, 2n);
    expect(c.violations).toEqual([]);
    c.checkLeaderCompleteness(2n, 2n, termAt, 0n);
    expect(c.violations.map((v) => v.property)).toEqual(['LeaderCompleteness']);
    expect(c.violations[0]!.detail).toMatch(/index 2/);
  });

  test('an entry committed in a later term than the new leader is not held against it', () => {
    const c = new InvariantChecker();
    c.observeCommitted(1n, [entry(7n, 5n)], 6n);
    c.checkLeaderCompleteness(2n, 5n, () => undefined, 0n);
    expect(c.violations).toEqual([]);
  });

  test('replicas reaching different states at one index break State Machine Safety', () => {
    const c = new InvariantChecker();
    c.observeApplied(1n, 4n, 'd1', 'entry');
    c.observeApplied(2n, 4n, 'd1', 'snapshot');
    expect(c.violations).toEqual([]);
    c.observeApplied(3n, 4n, 'd2', 'entry');
    expect(c.violations.map((v) => v.property)).toEqual(['StateMachineSafety']);
  });

  test('a persisted term going backwards, or two votes in one term, break the durable-state rules', () => {
    const c = new InvariantChecker();
    c.observeDurable(1n, { term: 2n, vote: 1n, commit: 0n });
    c.observeDurable(1n, { term: 2n, vote: 1n, commit: 3n });
    expect(c.violations).toEqual([]);
    c.observeDurable(1n, { term: 2n, vote: 3n, commit: 3n });
    c.observeDurable(1n, { term: 1n, vote: 0n, commit: 3n });
    expect(c.violations.map((v) => v.property)).toEqual(['DurableState', 'DurableState']);
  });
});
