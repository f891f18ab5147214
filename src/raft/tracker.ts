/** The leader's bookkeeping: the configuration, each member's progress, and votes in an election. */
import type { ConfState, NodeId } from './types.js';
import { Progress } from './progress.js';
import { type VoteResult, hasQuorum, majorityCommittedIndex, majorityVoteResult } from './quorum.js';

export class ProgressTracker {
  readonly voters = new Set<NodeId>();
  readonly learners = new Set<NodeId>();
  readonly progress = new Map<NodeId, Progress>();
  readonly votes = new Map<NodeId, boolean>();
  readonly inflightMax: number;

  constructor(inflightMax: number) {
    this.inflightMax = inflightMax;
  }

  /** Replaces the configuration with `confState`; every member starts probing at `next`. */
  resetFromConfState(confState: ConfState, next: number): void {
    this.voters.clear();
    this.learners.clear();
    this.progress.clear();
    for (const id of confState.voters) this.addMember(id, false, next);
    for (const id of confState.learners) this.addMember(id, true, next);
  }

  addMember(id: NodeId, isLearner: boolean, next: number): void {
    (isLearner ? this.learners : this.voters).add(id);
    (isLearner ? this.voters : this.learners).delete(id);
    const existing = this.progress.get(id);
    if (existing) {
      existing.isLearner = isLearner;
      return;
    }
    const progress = new Progress(next, this.inflightMax, isLearner);
    // A new member counts as active so check-quorum does not fire before it has had a chance.
    progress.recentActive = true;
    this.progress.set(id, progress);
  }

  removeMember(id: NodeId): void {
    this.voters.delete(id);
    this.learners.delete(id);
    this.progress.delete(id);
    this.votes.delete(id);
  }

  confState(): ConfState {
    const sorted = (ids: Set<NodeId>): NodeId[] => [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return {
      voters: sorted(this.voters),
      learners: sorted(this.learners),
      votersOutgoing: [],
      learnersNext: [],
      autoLeave: false,
    };
  }

  isSingleton(): boolean {
    return this.voters.size === 1;
  }

  committed(): number {
    return majorityCommittedIndex(this.voters, (id) => this.progress.get(id)?.match ?? 0);
  }

  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const id of this.voters) {
      const vote = this.votes.get(id);
      if (vote === true) granted += 1;
      else if (vote === false) rejected += 1;
    }
    return { granted, rejected, result: majorityVoteResult(this.voters, this.votes) };
  }

  resetVotes(): void {
    this.votes.clear();
  }

  /** Whether a majority of voters was recently active (the leader itself always counts). */
  quorumActive(self: NodeId): boolean {
    return hasQuorum(this.voters, (id) => id === self || this.progress.get(id)?.recentActive === true);
  }
}
