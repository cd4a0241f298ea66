import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { acked, bruteCommitted, bruteVote } from '../testing/quorum.js';
import { JointConfig } from './joint-config.js';
import { MajorityConfig } from './majority-config.js';
import { NO_LIMIT_INDEX, VoteResult } from './vote-result.js';

const joint = (incoming: number[], outgoing: number[] = []) =>
  new JointConfig(new MajorityConfig(incoming.map(BigInt)), new MajorityConfig(outgoing.map(BigInt)));
const votes = (v: Partial<Record<number, boolean>>) =>
  new Map(Object.entries(v).map(([id, g]) => [BigInt(id), g === true]));

describe('JointConfig.committedIndex', () => {
  test('an entirely empty config places no constraint', () => {
    expect(joint([]).committedIndex(acked({ 1: 3 }))).toBe(NO_LIMIT_INDEX);
  });

  test.each([
    // not joint: the incoming half alone decides
    { incoming: [1, 2, 3], outgoing: [], acks: { 1: 5, 2: 6, 3: 7 }, want: 6 },
    // both halves the same
    { incoming: [1, 2, 3], outgoing: [1, 2, 3], acks: { 1: 5, 2: 6, 3: 7 }, want: 6 },
    // the smaller of the two majorities' indexes
    { incoming: [1, 2, 3], outgoing: [4, 5, 6], acks: { 1: 5, 2: 6, 3: 7, 4: 1, 5: 2, 6: 3 }, want: 2 },
    { incoming: [4, 5, 6], outgoing: [1, 2, 3], acks: { 1: 5, 2: 6, 3: 7, 4: 1, 5: 2, 6: 3 }, want: 2 },
    // overlapping halves: (1 2 3) has 6, (3 4 5) has only 0 (4 and 5 never acknowledged)
    { incoming: [1, 2, 3], outgoing: [3, 4, 5], acks: { 1: 5, 2: 6, 3: 7 }, want: 0 },
    { incoming: [1, 2, 3], outgoing: [3, 4, 5], acks: { 1: 5, 2: 6, 3: 7, 4: 9 }, want: 6 },
    // only the outgoing half populated (a transient state) still decides
    { incoming: [], outgoing: [1, 2], acks: { 1: 4, 2: 3 }, want: 3 },
  ])('$incoming && $outgoing with acks $acks -> $want', ({ incoming, outgoing, acks, want }) => {
    expect(joint(incoming, outgoing).committedIndex(acked(acks))).toBe(BigInt(want));
  });

  test('is the smaller of the halves (property)', () => {
    const ids = fc.uniqueArray(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 6 });
    fc.assert(
      fc.property(
        ids,
        ids,
        fc.dictionary(fc.integer({ min: 1, max: 9 }).map(String), fc.bigInt({ min: 0n, max: 20n })),
        (a, b, acks) => {
          const inc = a.map(BigInt);
          const out = b.map(BigInt);
          const ack = (id: bigint) => acks[String(id)];
          const x = bruteCommitted(inc, ack);
          const y = bruteCommitted(out, ack);
          expect(new JointConfig(new MajorityConfig(inc), new MajorityConfig(out)).committedIndex(ack)).toBe(
            x < y ? x : y,
          );
        },
      ),
    );
  });
});

describe('JointConfig.voteResult', () => {
  test.each([
    { incoming: [], outgoing: [], v: {}, want: VoteResult.Won },
    { incoming: [1, 2, 3], outgoing: [], v: { 1: true, 2: true }, want: VoteResult.Won },
    // must win in both halves
    { incoming: [1, 2, 3], outgoing: [4, 5, 6], v: { 1: true, 2: true }, want: VoteResult.Pending },
    {
      incoming: [1, 2, 3],
      outgoing: [4, 5, 6],
      v: { 1: true, 2: true, 4: true, 5: true },
      want: VoteResult.Won,
    },
    // losing either half loses
    {
      incoming: [1, 2, 3],
      outgoing: [4, 5, 6],
      v: { 1: true, 2: true, 4: false, 5: false },
      want: VoteResult.Lost,
    },
    {
      incoming: [1, 2, 3],
      outgoing: [4, 5, 6],
      v: { 1: false, 2: false, 4: true, 5: true },
      want: VoteResult.Lost,
    },
    { incoming: [1, 2, 3], outgoing: [4, 5, 6], v: { 1: false, 2: false }, want: VoteResult.Lost },
    // a shared voter counts in both
    { incoming: [1, 2, 3], outgoing: [1, 4, 5], v: { 1: true, 2: true }, want: VoteResult.Pending },
    { incoming: [1, 2, 3], outgoing: [1, 4, 5], v: { 1: true, 2: true, 4: true }, want: VoteResult.Won },
  ])('$incoming && $outgoing, votes $v -> $want', ({ incoming, outgoing, v, want }) => {
    expect(joint(incoming, outgoing).voteResult(votes(v))).toBe(want);
  });

  test('won iff both halves won, lost iff either lost (property)', () => {
    const ids = fc.uniqueArray(fc.integer({ min: 1, max: 8 }), { maxLength: 6 });
    fc.assert(
      fc.property(
        ids,
        ids,
        fc.dictionary(fc.integer({ min: 1, max: 9 }).map(String), fc.boolean()),
        (a, b, v) => {
          const inc = a.map(BigInt);
          const out = b.map(BigInt);
          const m = new Map(Object.entries(v).map(([id, g]) => [BigInt(id), g]));
          const x = bruteVote(inc, m);
          const y = bruteVote(out, m);
          const want =
            x === VoteResult.Won && y === VoteResult.Won
              ? VoteResult.Won
              : x === VoteResult.Lost || y === VoteResult.Lost
                ? VoteResult.Lost
                : VoteResult.Pending;
          expect(new JointConfig(new MajorityConfig(inc), new MajorityConfig(out)).voteResult(m)).toBe(want);
        },
      ),
    );
  });
});

describe('JointConfig basics', () => {
  test('membership, joint-ness and notation', () => {
    const j = joint([1, 2, 3], [3, 4]);
    expect(j.isJoint()).toBe(true);
    expect(j.ids()).toEqual([1n, 2n, 3n, 4n]);
    expect(j.has(4n)).toBe(true);
    expect(j.has(5n)).toBe(false);
    expect(j.toString()).toBe('(1 2 3)&&(3 4)');
    const simple = joint([2, 1]);
    expect(simple.isJoint()).toBe(false);
    expect(simple.toString()).toBe('(1 2)');
  });
});
