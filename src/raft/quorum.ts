/** Majority arithmetic over a set of voters: committed index and election outcome. */
import type { NodeId } from './types.js';

export type VoteResult = 'won' | 'lost' | 'pending';

/** The largest index acknowledged by a majority of `voters`; `matchOf` gives each voter's match. */
export function majorityCommittedIndex(voters: ReadonlySet<NodeId>, matchOf: (id: NodeId) => number): number {
  if (voters.size === 0) return Number.MAX_SAFE_INTEGER; // An empty config commits nothing by itself.
  const matches: number[] = [];
  for (const id of voters) matches.push(matchOf(id));
  matches.sort((a, b) => b - a);
  return matches[Math.floor(voters.size / 2)] as number;
}

/** Outcome of an election given the votes so far. */
export function majorityVoteResult(voters: ReadonlySet<NodeId>, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.size === 0) return 'won';
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const vote = votes.get(id);
    if (vote === undefined) missing += 1;
    else if (vote) granted += 1;
  }
  const quorum = Math.floor(voters.size / 2) + 1;
  if (granted >= quorum) return 'won';
  if (granted + missing >= quorum) return 'pending';
  return 'lost';
}

/** Whether the voters that `isActive` accepts form a majority. */
export function hasQuorum(voters: ReadonlySet<NodeId>, isActive: (id: NodeId) => boolean): boolean {
  let active = 0;
  for (const id of voters) if (isActive(id)) active += 1;
  return active >= Math.floor(voters.size / 2) + 1;
}
