/**
 * Majority arithmetic, as pure functions (etcd-io/raft `quorum/majority.go` is the model).
 *
 * @module
 */

/** Votes needed among `voterCount` voters. */
export function majority(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/**
 * The highest value that a majority of `values` have reached: the commit index when `values`
 * are the voters' match indexes. Returns 0 for no voters.
 *
 * @example
 * ```ts
 * committedIndex([5, 3, 9]); // 5
 * ```
 */
export function committedIndex(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => b - a);
  return sorted[majority(values.length) - 1]!;
}

/** The outcome of an election or poll so far. */
export type VoteResult = 'won' | 'lost' | 'pending';

/**
 * Tally `votes` (voter id to granted) among `voters`: won once a majority granted, lost once a
 * majority can no longer be reached. Votes from non-voters do not count.
 */
export function tallyVotes(
  voters: readonly string[],
  votes: ReadonlyMap<string, boolean>,
): VoteResult {
  let granted = 0;
  let refused = 0;
  for (const id of voters) {
    const vote = votes.get(id);
    if (vote === true) granted++;
    else if (vote === false) refused++;
  }
  const needed = majority(voters.length);
  if (granted >= needed) return 'won';
  if (refused > voters.length - needed) return 'lost';
  return 'pending';
}
