/**
 * The Lease API as etcd's v3 server serves it: grants and revocations go through Raft; renewals
 * and TTL queries are answered by the leader's lessor, the only one that times leases, so a
 * follower forwards them to the leader over the peer port; the leader revokes expired leases and
 * proposes lease checkpoints on a timer. Leases have their own leader-only path and their own
 * timers, which is why they are apart from the KV front.
 */
import type { AuthInfo } from '../../src/auth/types.js';
import { errors } from '../../src/api/errors.js';
import type { MemberConfig } from '../../src/config/config.js';
import { LeaseIdGenerator } from '../../src/lease/lease-id.js';
import type { Lessor, LeaseTimeToLive } from '../../src/lease/lessor.js';
import { formatId } from '../../src/membership/ids.js';
import type { MemberLifecycle } from '../../machines/member-lifecycle.js';
import type { RawNode } from '../../machines/raw-node.js';
import { LeaseExpiryLoop } from '../client/grpc/lease-service.js';
import { leaseCallBody, leaseRefusal, peerApiPaths, renewFromPeerJson, timeToLiveFromPeerJson } from '../peer/api.js';
import type { RaftTransport } from '../peer/links.js';
import type { Logger } from '../shared/logger.js';
import { leaseClockMs, pause, requestTimeoutMs } from './clock.js';
import { leaseCostBytes, type BackendQuota } from './quota.js';
import type { RaftLoop } from './raft-loop.js';

/** Pause between rounds of a forwarded lease call (etcd throttles its retries the same way). */
const leaseForwardRetryMs = 50;

/** What the lease front needs from the rest of the member, each given at construction. */
export interface LeaseFrontParts {
  config: MemberConfig;
  memberId: bigint;
  lessor: Lessor;
  raft: Pick<RawNode, 'status'>;
  loop: Pick<RaftLoop, 'propose'>;
  transport: Pick<RaftTransport<unknown>, 'call'>;
  quota: Pick<BackendQuota, 'check'>;
  lifecycle: MemberLifecycle;
  logger: Logger;
}

export class LeaseFront {
  private readonly leaseIds: LeaseIdGenerator;
  private readonly expiryLoop: LeaseExpiryLoop;

  constructor(private readonly parts: LeaseFrontParts) {
    this.leaseIds = new LeaseIdGenerator(parts.memberId, Date.now());
    this.expiryLoop = new LeaseExpiryLoop({
      expired: (nowMs, max) => (parts.lessor.isPrimary ? parts.lessor.expiredLeases(nowMs, max) : []),
      revoke: (id) => this.revoke(id),
      checkpoint: (nowMs) => this.proposeCheckpoints(nowMs),
      onError: (id, error) =>
        parts.logger.warn({ lease: formatId(id), error: String(error) }, 'failed to revoke an expired lease'),
      now: leaseClockMs,
    });
  }

  /** Starts revoking expired leases and proposing checkpoints (on the leader, whose lessor is primary). */
  startExpiryLoop(): void {
    this.expiryLoop.start();
  }

  stop(): void {
    this.expiryLoop.stop();
  }

  async grant(id: bigint, ttlSeconds: number): Promise<{ id: bigint; ttlSeconds: number }> {
    await this.parts.quota.check(leaseCostBytes);
    const leaseId = id === 0n ? this.leaseIds.next() : id;
    const { result: outcome } = await this.parts.loop.propose({
      type: 'leaseGrant',
      leaseGrant: { id: leaseId, ttlSeconds },
    });
    return (outcome as { leaseGrant: { id: bigint; ttlSeconds: number } }).leaseGrant;
  }

  /** `caller`: who asks, while auth is enabled (the apply checks their permissions again). */
  async revoke(id: bigint, caller?: AuthInfo): Promise<void> {
    await this.parts.loop.propose({ type: 'leaseRevoke', leaseRevoke: { id } }, caller);
  }

  /**
   * LeaseKeepAlive. Only the leader times leases, so a follower hands the renewal to the leader
   * over the peer port, as etcd's followers do.
   */
  async renew(id: bigint): Promise<number> {
    const local = () => this.parts.lessor.renew(id, leaseClockMs());
    return this.onLeaseLeader(local, peerApiPaths.leaseRenew, leaseCallBody(id), renewFromPeerJson);
  }

  /** LeaseTimeToLive with the leader's remaining TTL; a follower asks the leader for it. */
  async timeToLive(id: bigint, withKeys: boolean): Promise<LeaseTimeToLive> {
    const local = () => this.parts.lessor.timeToLive(id, leaseClockMs(), withKeys);
    return this.onLeaseLeader(local, peerApiPaths.leaseTtl, leaseCallBody(id, withKeys), timeToLiveFromPeerJson);
  }

  async leases(): Promise<bigint[]> {
    return this.parts.lessor.leases();
  }

  /** A renewal a follower forwarded; refused with "not leader" unless this lessor is primary. */
  renewAsLeader(id: bigint): number {
    return this.asLeader(() => this.parts.lessor.renew(id, leaseClockMs()));
  }

  /** A TTL query a follower forwarded; refused with "not leader" unless this lessor is primary. */
  timeToLiveAsLeader(id: bigint, withKeys: boolean): LeaseTimeToLive {
    return this.asLeader(() => this.parts.lessor.timeToLive(id, leaseClockMs(), withKeys));
  }

  /** The lessor, not Raft's role, decides: a fresh leader times leases only once it is primary. */
  private asLeader<T>(run: () => T): T {
    if (this.parts.lifecycle.stopRequested || !this.parts.lessor.isPrimary) throw errors.notLeader();
    return run();
  }

  /** The leader's due lease checkpoints (--experimental-enable-lease-checkpoint), proposed as one entry. */
  private proposeCheckpoints(nowMs: number): void {
    const checkpoints = this.parts.lessor.dueCheckpoints(nowMs);
    if (checkpoints.length === 0) return;
    this.parts.loop
      .propose({ type: 'leaseCheckpoint', leaseCheckpoint: { checkpoints } })
      .catch((error: Error) =>
        this.parts.logger.warn({ leases: checkpoints.length, error: error.message }, 'failed to checkpoint leases'),
      );
  }

  /**
   * Runs a lease call on the leader: here when this member's lessor is primary, else over the
   * leader's peer URLs, retried until etcd's request timeout (the leader may change meanwhile).
   * Without a known leader it waits for one for as long, as etcd's waitLeader does: a leader back
   * within the request timeout answers the call; none by then fails it with "no leader", and a
   * leader that never answered with "request timed out".
   */
  private async onLeaseLeader<T>(local: () => T, path: string, body: string, decode: (body: string) => T): Promise<T> {
    const { config, lessor, raft, transport, lifecycle } = this.parts;
    const deadline = Date.now() + requestTimeoutMs(config);
    while (Date.now() < deadline) {
      if (lifecycle.stopRequested) throw errors.stopped();
      if (lessor.isPrimary) return local();
      const leaderId = raft.status().leaderId;
      // A member that was just elected promotes its lessor on the next apply; wait for that.
      if (leaderId !== 0n && leaderId !== this.parts.memberId) {
        const timeoutMs = Math.min(Math.max(1, deadline - Date.now()), config.electionTimeoutMs);
        const answer = await transport.call(leaderId, { method: 'POST', path, body }, timeoutMs).catch(() => undefined);
        if (answer?.status === 200) return decode(answer.body);
        // A refusal as not (or no longer) the leader, or no answer: look again.
        const refusal = answer === undefined ? undefined : leaseRefusal(answer.body);
        if (refusal !== undefined) throw refusal;
      }
      await pause(leaseForwardRetryMs);
    }
    throw raft.status().leaderId === 0n ? errors.noLeader() : errors.timeout();
  }
}
