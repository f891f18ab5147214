/**
 * The order in which a member handles Readies, as etcd's raft loop does, in one place for the
 * member's raft loop (actors/member/raft-loop.ts) and the Raft simulator: whose messages may
 * leave before the Ready's writes are durable, and how many Readies may wait on the disk at once.
 */
import { readiesInFlightMax } from '../lib/limits.js';
import { EntryType, RaftRole, type Ready } from './types.js';

/**
 * Whether a Ready's messages may leave before its writes are durable: a leader's may, in parallel
 * with its own fsync (Raft thesis 10.2.1, as etcd does); a follower must not acknowledge entries
 * it could still lose, nor a candidate ask for votes before its own vote is on disk.
 */
export function sendsBeforeDurable(role: RaftRole): boolean {
  return role === RaftRole.leader;
}

/**
 * How many Readies may wait on the disk at once. The member calls advance() as it hands a Ready
 * to the disk, so Raft takes its entries as stable before they are durable; a commit index in a
 * later Ready's messages could then count entries the leader may still lose. So only a member no
 * one hears from pipelines; with any peer, voter or learner, the next Ready waits for the fsync.
 * (A lone voter commits as it appends: pipelined, it would tell its learner of such commits.)
 */
export function readiesInFlight(hasPeers: boolean): number {
  return hasPeers ? 1 : readiesInFlightMax;
}

/**
 * Whether advance() must wait until the Ready's committed entries are applied: when they hold a
 * conf change, as etcd's raft loop waits for its apply. advance() marks them applied in Raft, and
 * until the member applies the change Raft's configuration is still the old one: it could start a
 * campaign it may not (a removed voter, or one elected by a removed member's vote).
 */
export function advancesOnceApplied(ready: Ready): boolean {
  return ready.committedEntries.some((entry) => entry.type !== EntryType.normal);
}
