import { describe, expect, test } from 'vitest';
import { type RaftConfig, resolveConfig } from './config.js';
import { RaftError } from './errors.js';
import { MemoryStorage } from './memory-storage.js';
import { Raft } from './raft.js';
import { ReadOnlyOption } from './read-only.js';
import { confState } from './testing/network.js';

const base = (): RaftConfig => ({
  id: 1n,
  electionTick: 10,
  heartbeatTick: 1,
  storage: MemoryStorage.withConfState(confState([1n])),
});

function invalid(fn: () => unknown): RaftError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(RaftError);
    expect((err as RaftError).code).toBe('InvalidConfig');
    return err as RaftError;
  }
  throw new Error('expected an InvalidConfig error');
}

describe('resolveConfig', () => {
  test('fills in the documented defaults', () => {
    const c = resolveConfig(base());
    expect(c).toMatchObject({
      applied: 0n,
      maxSizePerMsg: 1024 * 1024,
      maxCommittedSizePerReady: 64 * 1024 * 1024,
      maxUncommittedEntriesSize: 0,
      maxInflightMsgs: 256,
      maxInflightBytes: 0,
      checkQuorum: true,
      preVote: true,
      readOnlyOption: ReadOnlyOption.Safe,
      disableProposalForwarding: false,
    });
  });

  test('keeps explicit values, including false ones', () => {
    const c = resolveConfig({
      ...base(),
      checkQuorum: false,
      preVote: false,
      maxInflightMsgs: 3,
      applied: 7n,
    });
    expect([c.checkQuorum, c.preVote, c.maxInflightMsgs, c.applied]).toEqual([false, false, 3, 7n]);
  });

  test.each([
    { name: 'id 0', patch: { id: 0n }, message: /id 0/ },
    {
      name: 'heartbeatTick 0',
      patch: { heartbeatTick: 0 },
      message: /heartbeatTick must be a positive integer, got 0/,
    },
    { name: 'negative heartbeatTick', patch: { heartbeatTick: -1 }, message: /heartbeatTick .* got -1/ },
    { name: 'fractional heartbeatTick', patch: { heartbeatTick: 1.5 }, message: /heartbeatTick .* got 1.5/ },
    {
      name: 'electionTick equal to heartbeatTick',
      patch: { electionTick: 1 },
      message: /electionTick \(1\) must be an integer greater than heartbeatTick \(1\)/,
    },
    {
      name: 'electionTick below heartbeatTick',
      patch: { electionTick: 2, heartbeatTick: 3 },
      message: /electionTick \(2\).*heartbeatTick \(3\)/,
    },
    { name: 'fractional electionTick', patch: { electionTick: 10.5 }, message: /electionTick \(10.5\)/ },
    {
      name: 'maxInflightMsgs 0',
      patch: { maxInflightMsgs: 0 },
      message: /maxInflightMsgs must be a positive integer, got 0/,
    },
    {
      name: 'negative maxInflightBytes',
      patch: { maxInflightBytes: -1 },
      message: /maxInflightBytes must be >= 0, got -1/,
    },
    {
      name: 'maxSizePerMsg 0',
      patch: { maxSizePerMsg: 0 },
      message: /maxSizePerMsg must be positive, got 0/,
    },
    {
      name: 'lease reads without CheckQuorum',
      patch: { readOnlyOption: ReadOnlyOption.LeaseBased, checkQuorum: false },
      message: /LeaseBased requires checkQuorum/,
    },
    { name: 'negative applied', patch: { applied: -1n }, message: /applied must be >= 0, got -1/ },
  ])('refuses $name', ({ patch, message }) => {
    const err = invalid(() => resolveConfig({ ...base(), ...patch }));
    expect(err.message).toMatch(message);
    // The node constructor reports the same error.
    invalid(() => new Raft({ ...base(), ...patch }));
  });

  test('lease reads with CheckQuorum are fine', () => {
    expect(resolveConfig({ ...base(), readOnlyOption: ReadOnlyOption.LeaseBased }).readOnlyOption).toBe(
      ReadOnlyOption.LeaseBased,
    );
  });
});

describe('Raft construction from storage', () => {
  test.each([
    { name: 'a voter that is also a learner', cs: confState([1n, 2n], [2n]) },
    { name: 'learners without voters', cs: confState([], [1n]) },
    { name: 'autoLeave outside a joint configuration', cs: { ...confState([1n]), autoLeave: true } },
  ])('refuses a stored configuration that cannot be restored: $name', ({ cs }) => {
    const err = invalid(() => new Raft({ ...base(), storage: MemoryStorage.withConfState(cs) }));
    expect(err.message).toMatch(/cannot be restored/);
  });
});
