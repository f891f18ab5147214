/**
 * etcd's rules for changing the membership, as pure functions over the member map: what a conf
 * change must satisfy when it is applied (checked identically on every member, so all agree), and
 * what --strict-reconfig-check demands before a change is even proposed.
 */
import { errors, type EtcdError } from '../api/errors.js';
import { ConfChangeType } from '../raft/conf-change.js';
import type { ClusterMember, MemberChange } from './cluster-member.js';

/** etcd allows at most this many learners at once (membership.maxLearners). */
export const learnersMax = 1;
/** A learner may be promoted once its match index reaches this share of the leader's (readyPercent). */
export const learnerReadyShare = 0.9;
/** A peer counts as connected for reconfiguration once its link has been up this long (etcd's HealthInterval). */
export const peerHealthIntervalMs = 5_000;

/**
 * etcd's ErrTimeoutLeaderTransfer, whose text lives in errors.ts with the others. An alias for the
 * member, which is being split into parts; it can import errors.timeoutLeaderTransfer afterwards.
 */
export const leaderTransferTimeoutError = errors.timeoutLeaderTransfer;

/** The checks etcd's ValidateConfigurationChange makes when a conf change is applied; undefined when it may be applied. */
export function validateConfChange(
  members: ReadonlyMap<bigint, ClusterMember>,
  removed: ReadonlySet<bigint>,
  type: ConfChangeType,
  nodeId: bigint,
  change: MemberChange,
): EtcdError | undefined {
  if (removed.has(nodeId)) return errors.memberNotFound();
  const existing = members.get(nodeId);
  switch (type) {
    case ConfChangeType.addNode:
    case ConfChangeType.addLearnerNode:
      if (change.isPromote) {
        if (existing === undefined) return errors.memberNotFound();
        return existing.isLearner ? undefined : errors.memberNotLearner();
      }
      if (existing !== undefined) return errors.memberExist();
      if (usesPeerUrl(members, change.member.peerUrls, undefined)) return errors.peerUrlExist();
      if (change.member.isLearner && learnerCount(members) + 1 > learnersMax) return errors.tooManyLearners();
      return undefined;
    case ConfChangeType.removeNode:
      return existing === undefined ? errors.memberNotFound() : undefined;
    case ConfChangeType.updateNode:
      if (existing === undefined) return errors.memberNotFound();
      return usesPeerUrl(members, change.member.peerUrls, nodeId) ? errors.peerUrlExist() : undefined;
  }
  return undefined;
}

function usesPeerUrl(
  members: ReadonlyMap<bigint, ClusterMember>,
  urls: readonly string[],
  except: bigint | undefined,
): boolean {
  for (const member of members.values()) {
    if (member.id === except) continue;
    if (member.peerUrls.some((url) => urls.includes(url))) return true;
  }
  return false;
}

function learnerCount(members: ReadonlyMap<bigint, ClusterMember>): number {
  return [...members.values()].filter((member) => member.isLearner).length;
}

/** Voting members; etcd calls a member started once it has published its name. */
function votersOf(members: ReadonlyMap<bigint, ClusterMember>): ClusterMember[] {
  return [...members.values()].filter((member) => !member.isLearner);
}

const isStarted = (member: ClusterMember) => member.name !== '';

/** etcd's IsReadyToAddVotingMember: the started voters stay a quorum of the grown cluster. */
export function readyToAddVoter(members: ReadonlyMap<bigint, ClusterMember>): boolean {
  const voters = votersOf(members);
  const total = voters.length + 1;
  const started = voters.filter(isStarted).length;
  // Adding a second member to a one-member cluster is how a cluster is restored; etcd allows it.
  if (started === 1 && total === 2) return true;
  return started >= Math.floor(total / 2) + 1;
}

/** etcd's IsReadyToRemoveVotingMember: the started voters left are a quorum of the shrunk cluster. */
export function readyToRemoveVoter(members: ReadonlyMap<bigint, ClusterMember>, id: bigint): boolean {
  const voters = votersOf(members).filter((member) => member.id !== id);
  const started = voters.filter(isStarted).length;
  return started >= Math.floor(voters.length / 2) + 1;
}

/** etcd's IsReadyToPromoteMember: the learner counts as a started voter of the grown cluster. */
export function readyToPromote(members: ReadonlyMap<bigint, ClusterMember>): boolean {
  const voters = votersOf(members);
  const total = voters.length + 1;
  const started = voters.filter(isStarted).length + 1;
  return started >= Math.floor(total / 2) + 1;
}

/** etcd's isLearnerReady, on the leader's progress: the learner's match is close enough to the leader's. */
export function learnerInSync(
  progress: ReadonlyMap<bigint, { match: number }>,
  leaderId: bigint,
  learnerId: bigint,
): boolean {
  const learner = progress.get(learnerId);
  if (learner === undefined) return true; // Not a member or not a learner: the apply-time check answers.
  const leaderMatch = progress.get(leaderId)?.match ?? 0;
  return learner.match >= leaderMatch * learnerReadyShare;
}

/**
 * etcd's active-quorum check before removing a voter: with `connected` telling which voters this
 * member has been linked to for a health interval (itself always), the rest must keep a quorum.
 */
export function removeKeepsActiveQuorum(
  members: ReadonlyMap<bigint, ClusterMember>,
  connected: (id: bigint) => boolean,
): boolean {
  const voters = votersOf(members);
  const active = voters.filter((member) => connected(member.id)).length;
  return active - 1 >= 1 + Math.floor((voters.length - 1) / 2);
}

/** etcd's isConnectedFullySince over the voters: every voter linked for a health interval. */
export function connectedToAllVoters(
  members: ReadonlyMap<bigint, ClusterMember>,
  connected: (id: bigint) => boolean,
): boolean {
  return votersOf(members).every((member) => connected(member.id));
}
