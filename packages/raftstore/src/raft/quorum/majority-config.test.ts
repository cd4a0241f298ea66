import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { acked, bruteCommitted, bruteVote } from '../testing/quorum.js';
import { MajorityConfig, sortIds } from './majority-config.js';
import { NO_LIMIT_INDEX, VoteResult } from './vote-result.js';

const cfg = (...ids: number[]) => new MajorityConfig(ids.map(BigInt));
const votes = (v: Partial<Record<number, boolean>>) =>
  new Map(Object.entries(v).map(([id, g]) => [BigInt(id), g === true]));

describe('MajorityConfig.committedIndex', () => {
  test('an empty config places no constraint', () => {
    expect(cfg().committedIndex(acked({ 1: 5 }))).toBe(NO_LIMIT_INDEX);
    expect(NO_LIMIT_INDEX).toBe(2n ** 64n - 1n);
  });

  test.each([
    // one voter
    { voters: [1], acks: {}, want: 0 },
    { voters: [1], acks: { 1: 12 }, want: 12 },
    // two voters: both must have it
    { voters: [1, 2], acks: { 1: 100, 2: 101 }, want: 100 },
    { voters: [1, 2], acks: { 1: 100 }, want: 0 },
    { voters: [1, 2], acks: { 1: 0, 2: 0 }, want: 0 },
    // three voters: the middle value
    { voters: [1, 2, 3], acks: { 1: 100, 2: 101, 3: 99 }, want: 100 },
    { voters: [1, 2, 3], acks: { 1: 5 }, want: 0 },
    { voters: [1, 2, 3], acks: { 1: 5, 2: 6 }, want: 5 },
    { voters: [1, 2, 3], acks: { 1: 7, 2: 7, 3: 7 }, want: 7 },
    // four voters: three must have it
    { voters: [1, 2, 3, 4], acks: { 1: 10, 2: 20, 3: 30, 4: 40 }, want: 20 },
    { voters: [1, 2, 3, 4], acks: { 1: 10, 2: 20, 3: 30 }, want: 10 },
    { voters: [1, 2, 3, 4], acks: { 3: 30, 4: 40 }, want: 0 },
    // five voters: three must have it
    { voters: [1, 2, 3, 4, 5], acks: { 1: 1, 2: 2, 3: 3, 4: 4, 5: 5 }, want: 3 },
    { voters: [1, 2, 3, 4, 5], acks: { 4: 4, 5: 5 }, want: 0 },
    { voters: [1, 2, 3, 4, 5], acks: { 3: 3, 4: 4, 5: 5 }, want: 3 },
    // acknowledgements from non-voters do not count
    { voters: [1, 2, 3], acks: { 1: 9, 4: 9, 5: 9 }, want: 0 },
  ])('voters $voters with acks $acks -> $want', ({ voters, acks, want }) => {
    expect(cfg(...voters).committedIndex(acked(acks))).toBe(BigInt(want));
  });

  test('is the largest index acknowledged by a majority (property)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: 12 }), { maxLength: 9 }),
        fc.dictionary(fc.integer({ min: 1, max: 14 }).map(String), fc.bigInt({ min: 0n, max: 30n })),
        (ids, acks) => {
          const voters = ids.map(BigInt);
          const ack = (id: bigint) => acks[String(id)];
          expect(new MajorityConfig(voters).committedIndex(ack)).toBe(bruteCommitted(voters, ack));
        },
      ),
    );
  });
});

describe('MajorityConfig.voteResult', () => {
  test.each([
    { voters: [], v: {}, want: VoteResult.Won },
    { voters: [1], v: {}, want: VoteResult.Pending },
    { voters: [1], v: { 1: true }, want: VoteResult.Won },
    { voters: [1], v: { 1: false }, want: VoteResult.Lost },
    { voters: [1, 2], v: { 1: true }, want: VoteResult.Pending },
    { voters: [1, 2], v: { 1: true, 2: true }, want: VoteResult.Won },
    { voters: [1, 2], v: { 1: true, 2: false }, want: VoteResult.Lost },
    { voters: [1, 2, 3], v: { 1: true, 2: true }, want: VoteResult.Won },
    { voters: [1, 2, 3], v: { 1: true, 2: false }, want: VoteResult.Pending },
    { voters: [1, 2, 3], v: { 1: false, 2: false }, want: VoteResult.Lost },
    { voters: [1, 2, 3, 4], v: { 1: true, 2: true }, want: VoteResult.Pending },
    { voters: [1, 2, 3, 4], v: { 1: true, 2: false, 3: false }, want: VoteResult.Lost },
    { voters: [1, 2, 3, 4, 5], v: { 1: true, 2: true, 3: false, 4: false }, want: VoteResult.Pending },
    { voters: [1, 2, 3, 4, 5], v: { 1: true, 2: true, 3: true }, want: VoteResult.Won },
    // votes of non-voters are ignored
    { voters: [1, 2, 3], v: { 1: true, 4: true, 5: true }, want: VoteResult.Pending },
  ])('voters $voters, votes $v -> $want', ({ voters, v, want }) => {
    expect(cfg(...voters).voteResult(votes(v))).toBe(want);
  });

  test('agrees with the definition (property)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: 9 }), { maxLength: 7 }),
        fc.dictionary(fc.integer({ min: 1, max: 10 }).map(String), fc.boolean()),
        (ids, v) => {
          const voters = ids.map(BigInt);
          const m = new Map(Object.entries(v).map(([id, g]) => [BigInt(id), g]));
          expect(new MajorityConfig(voters).voteResult(m)).toBe(bruteVote(voters, m));
        },
      ),
    );
  });
});

describe('MajorityConfig basics', () => {
  test('ids are deduplicated, sorted numerically and printed in scenario notation', () => {
    const c = cfg(10, 2, 2, 1);
    expect(c.size).toBe(3);
    expect(c.sorted()).toEqual([1n, 2n, 10n]);
    expect(c.toString()).toBe('(1 2 10)');
    expect(c.has(10n)).toBe(true);
    expect(c.has(3n)).toBe(false);
    expect(cfg().toString()).toBe('()');
    expect(sortIds([3n, 2n ** 63n, 1n])).toEqual([1n, 3n, 2n ** 63n]);
  });
});
