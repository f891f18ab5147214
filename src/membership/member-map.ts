/**
 * The cluster's members as committed conf changes build them (etcd's RaftCluster: the members
 * and the IDs removed for good): the check etcd makes when a change is applied, and the change
 * itself. Pure, so the member (actors/member/membership.ts) and the Raft simulator apply conf
 * changes with the same code; the member adds the peer links and logs from what apply() reports.
 */
import type { EtcdError } from '../api/errors.js';
import { type ConfChange, ConfChangeType } from '../raft/conf-change.js';
import type { SnapshotMembership } from '../snap/snap-file.js';
import { type ClusterMember, type MemberChange, cloneMember, decodeMemberChange } from './cluster-member.js';
import { validateConfChange } from './reconfig.js';

/** What applying a conf change did to the members. */
export type MemberMapChange =
  | { type: 'added'; member: ClusterMember }
  | { type: 'promoted'; member: ClusterMember }
  | { type: 'removed'; id: bigint }
  | { type: 'updated'; member: ClusterMember }
  /** An update of a member that is no longer known changes nothing. */
  | { type: 'unchanged' };

export class MemberMap {
  readonly members = new Map<bigint, ClusterMember>();
  /** Members removed from the cluster; their IDs may never come back (etcd's removed set). */
  readonly removed = new Set<bigint>();

  /** Takes a snapshot's membership: its members replace ours, its removed IDs join ours. */
  adopt({ members, removed }: SnapshotMembership): void {
    this.members.clear();
    for (const member of members) this.members.set(member.id, cloneMember(member));
    for (const id of removed) this.removed.add(id);
  }

  /** True when a member other than `self`, voter or learner, is in the cluster. */
  hasPeers(self: bigint): boolean {
    for (const id of this.members.keys()) if (id !== self) return true;
    return false;
  }

  /** The member a conf change is about (from its context, or for a removal the known member) and etcd's refusal, if any. */
  check(change: ConfChange): { memberChange: MemberChange; refusal: EtcdError | undefined } {
    const memberChange = this.memberChangeOf(change);
    const refusal = validateConfChange(this.members, this.removed, change.type, change.nodeId, memberChange);
    return { memberChange, refusal };
  }

  /** Applies a change check() accepted. */
  apply(change: ConfChange, { member, isPromote }: MemberChange): MemberMapChange {
    const id = change.nodeId;
    const known = this.members.get(id);
    switch (change.type) {
      case ConfChangeType.addNode:
      case ConfChangeType.addLearnerNode: {
        if (isPromote && known !== undefined) {
          known.isLearner = false;
          return { type: 'promoted', member: known };
        }
        const added = { ...cloneMember(member), id, isLearner: change.type === ConfChangeType.addLearnerNode };
        this.members.set(id, added);
        return { type: 'added', member: added };
      }
      case ConfChangeType.removeNode:
        this.members.delete(id);
        this.removed.add(id);
        return { type: 'removed', id };
      case ConfChangeType.updateNode:
        if (known === undefined) return { type: 'unchanged' };
        known.peerUrls = [...member.peerUrls];
        return { type: 'updated', member: known };
    }
    return { type: 'unchanged' };
  }

  private memberChangeOf(change: ConfChange): MemberChange {
    if ((change.context?.length ?? 0) > 0) return decodeMemberChange(change.context, change.nodeId);
    const known = this.members.get(change.nodeId);
    return {
      member: known === undefined ? decodeMemberChange(undefined, change.nodeId).member : cloneMember(known),
      isPromote: false,
    };
  }
}
