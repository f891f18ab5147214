/**
 * The cluster's members as this member knows them, kept from applied conf changes and snapshots
 * (etcd's membership.RaftCluster): who is a member and a voter, which IDs were removed for good,
 * and the peer links that follow. Applying a conf change checks it against the members (the same
 * check on every member), applies it to Raft and here only when valid, and answers the waiting
 * proposer either way. It is separate from the reconfiguration requests (cluster.ts) because the
 * applier needs it before the Raft loop exists, and those requests need the loop.
 */
import { formatId } from '../../src/membership/ids.js';
import {
  clusterVersionLabel,
  clusterVersionLogs,
  isVersion,
  raisesCapabilities,
} from '../../src/membership/cluster-version.js';
import { assert } from '../../src/lib/assert.js';
import { cloneMember, sortMembers, type ClusterMember } from '../../src/membership/cluster-member.js';
import { MemberMap, type MemberMapChange } from '../../src/membership/member-map.js';
import { peerHealthIntervalMs } from '../../src/membership/reconfig.js';
import { type ConfChange, ConfChangeType, decodeConfChange } from '../../src/raft/conf-change.js';
import type { Entry } from '../../src/raft/types.js';
import type { SnapshotMembership } from '../../src/snap/snap-file.js';
import type { Waiters } from '../../src/server/waiters.js';
import type { MemberLifecycle } from '../../machines/member-lifecycle.js';
import type { RawNode } from '../../machines/raw-node.js';
import type { RaftTransport } from '../peer/links.js';
import { peerRefusals } from '../peer/ws-transport.js';
import type { MessagePort } from 'node:worker_threads';
import type { Logger } from '../shared/logger.js';

/** What membership needs from the rest of the member, each given at construction. */
export interface MembershipParts {
  memberId: bigint;
  clusterId: bigint;
  raft: Pick<RawNode, 'applyConfChange'>;
  transport: Pick<RaftTransport<unknown>, 'addPeer' | 'updatePeer' | 'removePeer' | 'activePeers'>;
  /** In single-host mode, the MessagePort to each peer member; else undefined (ws/wss to peer URLs). */
  peerPorts: Map<bigint, MessagePort> | undefined;
  /** Conf changes this member proposed, by ConfChange ID, answered with the members once applied. */
  confChangeWaiters: Waiters<bigint, ClusterMember[]>;
  lifecycle: MemberLifecycle;
  logger: Logger;
}

export class Membership {
  /** The members and the IDs removed for good, as applied conf changes (src/membership/member-map.ts) build them. */
  private readonly map = new MemberMap();
  private readonly voters = new Set<bigint>();
  private readonly connectedPeers = new Set<bigint>();
  /** When each peer's outgoing link was last seen coming up (etcd's ActiveSince), wall-clock ms. */
  private readonly peerActiveSinceMs = new Map<bigint, number>();
  /** The cluster version applied ("3.4.0"), from the log or a snapshot; undefined until one is. */
  private version: string | undefined;
  /** The version this member's capabilities were last enabled for (etcd's capability curVersion). */
  private capabilitiesFor: string | undefined;

  /**
   * Starts from the snapshot's membership (if any) and the voters of the log's ConfState; peers
   * are linked only by connectAll(), once the transport runs.
   */
  constructor(
    private readonly parts: MembershipParts,
    initial: SnapshotMembership | undefined,
    initialVoters: readonly bigint[],
  ) {
    if (initial !== undefined) {
      this.adopt(initial);
      this.recoverVersion(initial.clusterVersion);
    }
    for (const voter of initialVoters) this.voters.add(voter);
  }

  /** The cluster version the members applied ("3.4.0"), or undefined while none is. */
  get clusterVersion(): string | undefined {
    return this.version;
  }

  /** The members by ID, as they are now. */
  get all(): ReadonlyMap<bigint, ClusterMember> {
    return this.map.members;
  }

  private get members(): Map<bigint, ClusterMember> {
    return this.map.members;
  }

  /** The cluster's members, sorted by ID, as MemberList answers (copies). */
  memberList(): ClusterMember[] {
    return sortMembers(this.members.values()).map(cloneMember);
  }

  /** True when this member is a learner of the cluster (it replicates but does not vote). */
  isLearner(): boolean {
    return this.members.get(this.parts.memberId)?.isLearner ?? false;
  }

  /** True when another member, voter or learner, hears from this one. */
  hasPeers(): boolean {
    return this.voters.size > 1 || this.map.hasPeers(this.parts.memberId);
  }

  /** True when this member is the only voter: it need not wait out an election timeout to lead. */
  isSoleVoter(): boolean {
    return this.voters.size === 1 && this.voters.has(this.parts.memberId);
  }

  /** The membership a snapshot records: members, and the IDs removed for good. */
  snapshotMembership(): SnapshotMembership {
    const membership: SnapshotMembership = { members: this.memberList(), removed: [...this.map.removed] };
    if (this.version !== undefined) membership.clusterVersion = this.version;
    return membership;
  }

  /** Takes a snapshot's membership: peers no longer in it are dropped, new ones connected. */
  restore(membership: SnapshotMembership): void {
    const previous = [...this.members.keys()];
    this.adopt(membership);
    this.recoverVersion(membership.clusterVersion);
    for (const id of previous)
      if (!this.members.has(id) && this.connectedPeers.delete(id)) this.parts.transport.removePeer(id);
    for (const member of this.members.values()) this.connectPeer(member);
  }

  /** Links every known member, and `joinPeers` (the members a joining member was told of). */
  connectAll(joinPeers: readonly ClusterMember[]): void {
    for (const known of this.members.values()) this.connectPeer(known);
    for (const peer of joinPeers) this.connectPeer(peer);
  }

  /** Applies a committed conf change entry, or refuses it, and answers its proposer if it waits here. */
  applyConfChange(entry: Entry): void {
    const change = decodeConfChange(entry.data);
    const { memberChange, refusal } = this.map.check(change);
    if (refusal === undefined) {
      this.parts.raft.applyConfChange(change);
      this.followChange(change, this.map.apply(change, memberChange));
    } else {
      this.parts.logger.warn(
        {
          'raft-conf-change': change.type,
          'raft-conf-change-node-id': formatId(change.nodeId),
          error: refusal.message,
        },
        'refused a configuration change',
      );
    }
    const waiter = change.id === undefined ? undefined : this.parts.confChangeWaiters.take(change.id);
    if (waiter === undefined) return;
    if (refusal === undefined) waiter.resolve(this.memberList());
    else waiter.reject(refusal);
  }

  /** A member's published name and client URLs (etcd's attributes), applied from the log. */
  applyMemberAttributes(attributes: { id: bigint; name: string; clientUrls: string[] }): void {
    const known = this.members.get(attributes.id);
    if (known === undefined) return; // removed meanwhile
    known.name = attributes.name;
    known.clientUrls = attributes.clientUrls;
  }

  /** The cluster version the leader decided, applied from the log (etcd's SetVersion). */
  applyClusterVersion(version: string): void {
    assert(isVersion(version), () => `a cluster version entry holds a major.minor.patch version, not ${version}`);
    const { logger, memberId, clusterId } = this.parts;
    const ids = { 'cluster-id': formatId(clusterId), 'local-member-id': formatId(memberId) };
    const { setInitial, setUpdated } = clusterVersionLogs;
    if (this.version === undefined)
      logger.info(
        { caller: setInitial.caller, ...ids, 'cluster-version': clusterVersionLabel(version) },
        setInitial.msg,
      );
    else
      logger.info(
        {
          caller: setUpdated.caller,
          ...ids,
          from: clusterVersionLabel(this.version),
          to: clusterVersionLabel(version),
        },
        setUpdated.msg,
      );
    this.version = version;
    this.enableCapabilities();
  }

  /**
   * This member learned it was removed (it applied its own removal, or a peer refused it): the
   * lifecycle takes REMOVED once, and the member stops after a grace period (member.ts).
   */
  leave(reason: string): void {
    if (!this.parts.lifecycle.send({ type: 'REMOVED' })) return;
    this.parts.logger.warn({ 'local-member-id': formatId(this.parts.memberId), reason }, peerRefusals.memberRemoved);
  }

  /** Remembers when each peer's link came up; reconfiguration trusts only links up for a while. */
  trackPeerActivity(): void {
    // Runs every tick over a handful of peers: no Set or key copy (a Map may drop keys while iterated).
    const nowMs = Date.now();
    const active = this.parts.transport.activePeers();
    for (const id of active) if (!this.peerActiveSinceMs.has(id)) this.peerActiveSinceMs.set(id, nowMs);
    for (const id of this.peerActiveSinceMs.keys()) if (!active.includes(id)) this.peerActiveSinceMs.delete(id);
  }

  /** How many peer links are up now (etcd's transport ActivePeers). */
  activePeerCount(): number {
    return this.parts.transport.activePeers().length;
  }

  /** True when the link to peer `id` is up now. */
  isActive(id: bigint): boolean {
    return this.peerActiveSinceMs.has(id);
  }

  /** etcd's isConnectedSince(now - HealthInterval): this member, or a peer linked for a health interval. */
  connectedLongEnough(id: bigint): boolean {
    if (id === this.parts.memberId) return true;
    const since = this.peerActiveSinceMs.get(id);
    return since !== undefined && Date.now() - since >= peerHealthIntervalMs;
  }

  /** The voting peer whose link has been up longest (etcd's longestConnected), or undefined when none is up. */
  longestConnectedVoter(): bigint | undefined {
    let longest: bigint | undefined;
    let oldestMs = Infinity;
    // Asked of the transport now too: the times are refreshed once a tick, and a peer may have just gone.
    const active = this.parts.transport.activePeers();
    for (const [id, sinceMs] of this.peerActiveSinceMs) {
      if (this.all.get(id)?.isLearner !== false || sinceMs >= oldestMs || !active.includes(id)) continue;
      longest = id;
      oldestMs = sinceMs;
    }
    return longest;
  }

  /** A snapshot's cluster version taken as this member's (etcd's Recover): logged when there is one. */
  private recoverVersion(version: string | undefined): void {
    this.version = version;
    this.enableCapabilities();
    if (version === undefined) return;
    const { setFromStore } = clusterVersionLogs;
    this.parts.logger.info(
      { caller: setFromStore.caller, 'cluster-version': clusterVersionLabel(version) },
      setFromStore.msg,
    );
  }

  /** etcd's UpdateCapability: the capabilities follow the cluster version when it rises. */
  private enableCapabilities(): void {
    if (!raisesCapabilities(this.capabilitiesFor, this.version) || this.version === undefined) return;
    this.capabilitiesFor = this.version;
    const { capabilities } = clusterVersionLogs;
    this.parts.logger.info(
      { caller: capabilities.caller, 'cluster-version': clusterVersionLabel(this.version) },
      capabilities.msg,
    );
  }

  private adopt(membership: SnapshotMembership): void {
    this.map.adopt(membership);
    this.voters.clear();
    for (const member of this.members.values()) if (!member.isLearner) this.voters.add(member.id);
  }

  /** What follows an applied change here: voters, peer links and the log. */
  private followChange(change: ConfChange, applied: MemberMapChange): void {
    switch (applied.type) {
      case 'added':
      case 'promoted':
        if (applied.type === 'added') this.connectPeer(applied.member);
        if (change.type === ConfChangeType.addNode) this.voters.add(change.nodeId);
        this.parts.logger.info(
          {
            'member-id': formatId(change.nodeId),
            'peer-urls': applied.member.peerUrls,
            promoted: applied.type === 'promoted',
          },
          'added or promoted member',
        );
        return;
      case 'removed':
        return this.remove(applied.id);
      case 'updated':
        this.connectPeer(applied.member);
        this.parts.logger.info(
          { 'member-id': formatId(change.nodeId), 'peer-urls': applied.member.peerUrls },
          'updated member peer URLs',
        );
        return;
      case 'unchanged':
        return;
    }
  }

  private remove(id: bigint): void {
    this.voters.delete(id);
    this.peerActiveSinceMs.delete(id);
    this.parts.logger.info({ 'removed-member-id': formatId(id) }, 'removed member');
    if (id === this.parts.memberId) this.leave('this member applied its own removal');
    else if (this.connectedPeers.delete(id)) this.parts.transport.removePeer(id);
  }

  private connectPeer(member: ClusterMember): void {
    if (member.id === this.parts.memberId) return;
    const { peerPorts, transport } = this.parts;
    const endpoint = peerPorts === undefined ? member.peerUrls : peerPorts.get(member.id);
    if (endpoint === undefined) {
      this.parts.logger.warn(
        { peer: formatId(member.id) },
        'no in-process channel to this member; it stays unreachable',
      );
      return;
    }
    if (this.connectedPeers.has(member.id)) {
      if (peerPorts === undefined) transport.updatePeer(member.id, endpoint);
      return;
    }
    this.connectedPeers.add(member.id);
    transport.addPeer(member.id, endpoint);
  }
}
