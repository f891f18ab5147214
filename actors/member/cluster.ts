/**
 * Reconfiguration requests, as etcd's server serves Cluster and MoveLeader: add, remove, update
 * and promote members (a conf change proposed and waited on until applied, or refused, or timed
 * out), hand leadership to another member, and publish this member's name and client URLs through
 * Raft. A follower forwards a promotion to the leader, which alone knows whether the learner
 * caught up. The membership these change is kept by membership.ts, which applies the entries.
 */
import { errors } from '../../src/api/errors.js';
import type { MemberConfig } from '../../src/config/config.js';
import {
  encodeMemberContext,
  membersFromPeerJson,
  validPeerUrls,
  type ClusterMember,
} from '../../src/membership/cluster-member.js';
import { goDurationString } from '../../src/lib/go-duration.js';
import { formatId, memberIdFor } from '../../src/membership/ids.js';
import {
  connectedToAllVoters,
  leaderTransferTimeoutError,
  learnerInSync,
  readyToAddVoter,
  readyToPromote,
  readyToRemoveVoter,
  removeKeepsActiveQuorum,
} from '../../src/membership/reconfig.js';
import { type ConfChange, ConfChangeType } from '../../src/raft/conf-change.js';
import { RaftRole } from '../../src/raft/types.js';
import type { Waiters } from '../../src/server/waiters.js';
import type { MemberLifecycle } from '../../machines/member-lifecycle.js';
import type { RawNode } from '../../machines/raw-node.js';
import { peerApiPaths, promoteRefusal } from '../peer/api.js';
import type { RaftTransport } from '../peer/links.js';
import type { Logger } from '../shared/logger.js';
import { pause, requestTimeoutMs } from './clock.js';
import type { Membership } from './membership.js';
import type { RaftLoop } from './raft-loop.js';

/** MoveLeader waits at most this many election timeouts for the transferee to lead. */
const leaderTransferTimeoutsMax = 3;

/** What reconfiguration needs from the rest of the member, each given at construction. */
export interface ClusterParts {
  config: MemberConfig;
  memberId: bigint;
  clusterId: bigint;
  membership: Pick<Membership, 'all' | 'memberList' | 'connectedLongEnough' | 'isActive' | 'longestConnectedVoter'>;
  raft: Pick<RawNode, 'status'>;
  loop: Pick<RaftLoop, 'propose' | 'proposeConfChange' | 'transferLeader'>;
  /** Conf changes proposed here, by ConfChange ID; membership.ts answers them once applied. */
  confChangeWaiters: Waiters<bigint, ClusterMember[]>;
  transport: Pick<RaftTransport<unknown>, 'call'>;
  lifecycle: MemberLifecycle;
  logger: Logger;
}

/** Learner promotions this member handled as leader. */
export interface PromotionCounts {
  successes: number;
  /** Failures by their error text. */
  readonly failures: Map<string, number>;
}

export class Cluster {
  /** For etcd's learner promotion metrics. */
  readonly promotions: PromotionCounts = { successes: 0, failures: new Map() };
  private confChangeSeq = 0;

  constructor(private readonly parts: ClusterParts) {}

  isLeader(): boolean {
    return this.parts.raft.status().role === RaftRole.leader;
  }

  /** Cluster.MemberAdd: a new member (or learner) with these peer URLs and an ID hashed from them and the time. */
  async addMember(
    peerUrls: string[],
    isLearner: boolean,
  ): Promise<{ member: ClusterMember; members: ClusterMember[] }> {
    if (!validPeerUrls(peerUrls)) throw errors.memberBadUrls();
    const { membership } = this.parts;
    const urls = [...peerUrls].sort();
    const member: ClusterMember = {
      id: memberIdFor(urls, '', Date.now() / 1000),
      name: '',
      peerUrls: urls,
      clientUrls: [],
      isLearner,
    };
    if (this.parts.config.strictReconfigCheck) {
      if (!isLearner && !readyToAddVoter(membership.all)) throw errors.memberNotEnoughStarted();
      if (!connectedToAllVoters(membership.all, (id) => membership.connectedLongEnough(id))) throw errors.unhealthy();
    }
    const type = isLearner ? ConfChangeType.addLearnerNode : ConfChangeType.addNode;
    const members = await this.configure({ type, nodeId: member.id, context: encodeMemberContext(member) });
    return { member, members };
  }

  /** Cluster.MemberRemove. */
  async removeMember(id: bigint): Promise<ClusterMember[]> {
    const { membership } = this.parts;
    const target = membership.all.get(id);
    if (this.parts.config.strictReconfigCheck && target?.isLearner !== true) {
      if (!readyToRemoveVoter(membership.all, id)) throw errors.memberNotEnoughStarted();
      // A peer that is down is no part of the active quorum, so removing it is always safe.
      const targetActive = id === this.parts.memberId || membership.isActive(id);
      if (targetActive && !removeKeepsActiveQuorum(membership.all, (voter) => membership.connectedLongEnough(voter)))
        throw errors.unhealthy();
    }
    return this.configure({ type: ConfChangeType.removeNode, nodeId: id });
  }

  /** Cluster.MemberUpdate: new peer URLs for a member. */
  async updateMember(id: bigint, peerUrls: string[]): Promise<ClusterMember[]> {
    if (!validPeerUrls(peerUrls)) throw errors.memberBadUrls();
    const member: ClusterMember = { id, name: '', peerUrls: [...peerUrls], clientUrls: [], isLearner: false };
    return this.configure({ type: ConfChangeType.updateNode, nodeId: id, context: encodeMemberContext(member) });
  }

  /**
   * Cluster.MemberPromote. Only the leader knows whether the learner caught up, so a follower
   * hands the request to the leader over the peer port, as etcd does.
   */
  async promoteMember(id: bigint): Promise<ClusterMember[]> {
    if (this.isLeader()) return this.promoteAsLeader(id);
    return this.forwardPromote(id);
  }

  /**
   * A promotion on the leader, from a client here or forwarded by a follower (the peer API),
   * counted as etcd's learner promotion metrics count it: a success, or a failure by its error
   * text unless this member turned out not to lead.
   */
  async promoteAsLeader(id: bigint): Promise<ClusterMember[]> {
    try {
      const members = await this.promoteLeading(id);
      this.promotions.successes++;
      return members;
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      if (reason !== errors.notLeader().message)
        this.promotions.failures.set(reason, (this.promotions.failures.get(reason) ?? 0) + 1);
      throw error;
    }
  }

  private async promoteLeading(id: bigint): Promise<ClusterMember[]> {
    const raftStatus = this.parts.raft.status();
    if (raftStatus.progress === undefined) throw errors.notLeader();
    if (!learnerInSync(raftStatus.progress, raftStatus.id, id)) throw errors.learnerNotReady();
    if (this.parts.config.strictReconfigCheck && !readyToPromote(this.parts.membership.all))
      throw errors.memberNotEnoughStarted();
    const context = encodeMemberContext({ id, name: '', peerUrls: [], clientUrls: [], isLearner: false }, true);
    return this.configure({ type: ConfChangeType.addNode, nodeId: id, context });
  }

  /**
   * Maintenance.MoveLeader: hands leadership to `targetId` and waits until it leads, at most
   * `waitMs` (a few election timeouts unless given).
   */
  async moveLeader(
    targetId: bigint,
    waitMs = leaderTransferTimeoutsMax * this.parts.config.electionTimeoutMs,
  ): Promise<void> {
    if (!this.isLeader()) throw errors.notLeader();
    const target = this.parts.membership.all.get(targetId);
    if (target === undefined || target.isLearner) throw errors.badLeaderTransferee();
    const { logger, memberId } = this.parts;
    const startedMs = Date.now();
    logger.info(
      {
        'local-member-id': formatId(memberId),
        'current-leader-member-id': formatId(memberId),
        'transferee-member-id': formatId(targetId),
      },
      'leadership transfer starting',
    );
    this.parts.loop.transferLeader(targetId);
    while (this.parts.raft.status().leaderId !== targetId) {
      if (this.parts.lifecycle.stopRequested) throw errors.stopped();
      if (Date.now() - startedMs >= waitMs) throw leaderTransferTimeoutError();
      await pause(this.parts.config.heartbeatIntervalMs);
    }
    logger.info(
      {
        'local-member-id': formatId(memberId),
        'old-leader-member-id': formatId(memberId),
        'new-leader-member-id': formatId(targetId),
        took: goDurationString((Date.now() - startedMs) * 1e6),
      },
      'leadership transfer finished',
    );
  }

  /**
   * Before a stop, as etcd does: a leader among several voters hands leadership to the voter
   * linked longest and waits for it (up to the request timeout), so the cluster need not wait
   * out an election; a follower or a lone voter logs why it skips that. A failed transfer is
   * logged and the stop goes on.
   */
  async transferLeadershipBeforeStop(): Promise<void> {
    const { logger, memberId, membership } = this.parts;
    const leaderFields = {
      'local-member-id': formatId(memberId),
      'current-leader-member-id': formatId(this.parts.raft.status().leaderId),
    };
    if (!this.isLeader())
      return void logger.info(leaderFields, 'skipped leadership transfer; local server is not leader');
    const voters = [...membership.all.values()].filter((member) => !member.isLearner).length;
    if (voters <= 1)
      return void logger.info(leaderFields, 'skipped leadership transfer for single voting member cluster');
    try {
      const transferee = membership.longestConnectedVoter();
      if (transferee === undefined) throw errors.unhealthy();
      await this.moveLeader(transferee, requestTimeoutMs(this.parts.config));
    } catch (error) {
      logger.warn(
        { 'local-member-id': formatId(memberId), error: (error as Error).message },
        'leadership transfer failed',
      );
    }
  }

  /**
   * Publishes this member's name and client URLs through Raft, again after each failure, until it
   * lands (etcd's publish): resolves then, and never when the member stops first. Clients are
   * served only after it.
   */
  publishAttributes(): Promise<void> {
    const { config, memberId, clusterId, lifecycle, logger } = this.parts;
    // The fields etcd logs on these lines: the attributes as Go's %+v prints them, the v2 path it wrote.
    const member = {
      'local-member-id': formatId(memberId),
      'local-member-attributes': `{Name:${config.name} ClientURLs:[${config.advertiseClientUrls.join(' ')}]}`,
    };
    const requestPath = `/0/members/${formatId(memberId)}/attributes`;
    const publishTimeout = goDurationString(requestTimeoutMs(config) * 1e6);
    const published = {
      caller: 'etcdserver/server.go:2069',
      ...member,
      'request-path': requestPath,
      'cluster-id': formatId(clusterId),
      'publish-timeout': publishTimeout,
    };
    const body = {
      type: 'memberAttributes' as const,
      memberAttributes: { id: memberId, name: config.name, clientUrls: config.advertiseClientUrls },
    };
    return new Promise<void>((resolve) => {
      const attempt = () => {
        if (lifecycle.stopRequested) {
          const fields = { ...member, 'publish-timeout': publishTimeout, error: errors.stopped().message };
          return logger.warn(fields, 'stopped publish because server is stopped');
        }
        this.parts.loop.propose(body).then(
          () => {
            logger.info(published, 'published local member to cluster through raft');
            resolve();
          },
          (error: Error) => {
            if (!lifecycle.stopRequested) {
              const fields = { ...member, 'request-path': requestPath, 'publish-timeout': publishTimeout };
              // etcd 3.4 publishes through its v2 request path, where a proposal Raft never took
              // (no leader) also fails with "request timed out".
              const message =
                error.message === errors.deadlineExceeded().message ? errors.timeout().message : error.message;
              logger.warn({ ...fields, error: message }, 'failed to publish local member to cluster through raft');
            }
            setTimeout(attempt, lifecycle.stopRequested ? 0 : publishRetryPauseMs(error, config)).unref();
          },
        );
      };
      attempt();
    });
  }

  private async forwardPromote(id: bigint): Promise<ClusterMember[]> {
    const { raft, transport, lifecycle } = this.parts;
    const deadline = Date.now() + requestTimeoutMs(this.parts.config);
    while (Date.now() < deadline && !lifecycle.stopRequested) {
      const leaderId = raft.status().leaderId;
      if (leaderId !== 0n && leaderId !== this.parts.memberId) {
        const call = { method: 'POST' as const, path: `${peerApiPaths.promotePrefix}${id.toString()}`, body: '' };
        const answer = await transport.call(leaderId, call, Math.max(1, deadline - Date.now())).catch(() => undefined);
        if (answer?.status === 200) return membersFromPeerJson(answer.body);
        const known = answer === undefined ? undefined : promoteRefusal(answer.status, answer.body);
        if (known !== undefined) throw known;
      }
      await pause(this.parts.config.heartbeatIntervalMs);
    }
    throw errors.timeout();
  }

  /**
   * A ConfChange ID unique across members, as etcd's request IDs are: the low 16 bits of the
   * member ID above 48 bits of milliseconds and a counter.
   */
  private nextConfChangeId(): bigint {
    const counter = (BigInt(Date.now()) << 8n) + BigInt(this.confChangeSeq++);
    return ((this.parts.memberId & 0xffffn) << 48n) | (counter & 0xffffffffffffn);
  }

  /** Proposes a conf change and resolves with the members once it is applied (etcd's configure). */
  private configure(change: ConfChange): Promise<ClusterMember[]> {
    const { lifecycle, confChangeWaiters } = this.parts;
    if (lifecycle.stopRequested || lifecycle.removed) return Promise.reject(errors.stopped());
    const id = this.nextConfChangeId();
    return new Promise<ClusterMember[]>((resolve, reject) => {
      // Raft turns a conf change proposed while another is pending into an empty entry, which
      // never answers; like etcd, the request then times out.
      const timer = setTimeout(
        () => confChangeWaiters.take(id)?.reject(errors.timeout()),
        requestTimeoutMs(this.parts.config),
      );
      const settle =
        <T>(answer: (value: T) => void) =>
        (value: T) => (clearTimeout(timer), answer(value));
      confChangeWaiters.register(id, settle(resolve), settle(reject));
      this.proposeOnceLed({ ...change, id });
    });
  }

  /**
   * Proposes a conf change once a leader is known, as etcd's proposal waits for Raft to take it;
   * without one it looks again every heartbeat until the change's waiter is answered (its timeout).
   */
  private proposeOnceLed(change: ConfChange & { id: bigint }): void {
    const { raft, loop, confChangeWaiters, config } = this.parts;
    if (!confChangeWaiters.has(change.id)) return;
    if (raft.status().leaderId === 0n) {
      setTimeout(() => this.proposeOnceLed(change), config.heartbeatIntervalMs).unref();
      return;
    }
    try {
      loop.proposeConfChange(change);
    } catch {
      confChangeWaiters.take(change.id)?.reject(errors.proposalDropped());
    }
  }
}

/**
 * How long a failed publish waits before its next try. As in etcd, one that waited out its request
 * timeout goes again at once, so a leader elected meanwhile takes it without delay; one refused at
 * once (a dropped proposal) waits an election timeout rather than spinning.
 */
export function publishRetryPauseMs(error: Error, config: Pick<MemberConfig, 'electionTimeoutMs'>): number {
  const timedOut = [errors.deadlineExceeded(), errors.timeout(), errors.timeoutDueToLeaderFail()].some(
    (timeout) => timeout.message === error.message,
  );
  return timedOut ? 0 : config.electionTimeoutMs;
}
