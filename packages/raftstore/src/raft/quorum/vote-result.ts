/** Outcome of counting votes against a quorum. */
export const VoteResult = { Pending: 'VotePending', Lost: 'VoteLost', Won: 'VoteWon' } as const;
export type VoteResult = (typeof VoteResult)[keyof typeof VoteResult];

/** Sentinel for "no constraint": the committed index of an empty majority config. */
export const NO_LIMIT_INDEX = (1n << 64n) - 1n;
