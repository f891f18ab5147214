/**
 * The member's recent role transitions and leader changes, for the dashboard: a ring of the last
 * roleTransitionsMax, each with the term, the roles, the leader before and after, the wall-clock
 * time and the role machine's event that caused it. The raft loop records one entry per soft-state
 * change (rare: elections and leader changes only), so keeping it costs nothing per request.
 */
import { roleTransitionsMax } from '../../src/lib/limits.js';
import { formatId } from '../../src/membership/ids.js';
import type { NodeId, RaftRole } from '../../src/raft/types.js';

/** One soft-state change as the dashboard shows it; IDs in etcd's hex. */
export interface RoleTransition {
  /** Counts this member's transitions from 1; the dashboard merges members' rings by it. */
  sequence: number;
  /** Wall-clock milliseconds since the epoch. */
  atMs: number;
  term: number;
  from: RaftRole;
  to: RaftRole;
  /** The leader before and after; '0' for none. */
  leaderBefore: string;
  leaderAfter: string;
  /**
   * The role machine's named event that entered the role (VOTE_WON, HIGHER_TERM, ...); when only
   * the leader changed, the one that entered the role the member stayed in.
   */
  cause: string;
}

/** What the raft loop tells the timeline about a soft-state change. */
export interface SoftStateChange {
  term: number;
  from: RaftRole;
  to: RaftRole;
  leaderBefore: NodeId;
  leaderAfter: NodeId;
  cause: string;
}

export class RoleTimeline {
  private readonly ring: RoleTransition[] = [];
  private sequence = 0;
  private readonly listeners = new Set<(transition: RoleTransition) => void>();

  constructor(private readonly nowMs: () => number = Date.now) {}

  /** Records a change, dropping the oldest beyond roleTransitionsMax, and tells the listeners. */
  record(change: SoftStateChange): void {
    const transition: RoleTransition = {
      sequence: ++this.sequence,
      atMs: this.nowMs(),
      term: change.term,
      from: change.from,
      to: change.to,
      leaderBefore: formatId(change.leaderBefore),
      leaderAfter: formatId(change.leaderAfter),
      cause: change.cause,
    };
    this.ring.push(transition);
    if (this.ring.length > roleTransitionsMax) this.ring.shift();
    for (const listener of this.listeners) listener(transition);
  }

  /** The kept transitions, oldest first. */
  recent(): readonly RoleTransition[] {
    return this.ring;
  }

  /** Calls `listener` with each transition from now on; returns the unsubscribe. */
  subscribe(listener: (transition: RoleTransition) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
