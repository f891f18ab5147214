/**
 * The leader's watch over the cluster version (etcd's monitorVersions): once a new leader's first
 * entry is applied, and every clusterVersionCheckIntervalMs after, the leader asks every member
 * for its server version over the peer API (GET /version), decides the cluster version from them
 * (src/membership/cluster-version.ts) and proposes it through Raft when there is none yet or it
 * should rise. Every member applies the entry in membership.ts; nothing here is on a request's path.
 */
import { errors, EtcdError } from '../../src/api/errors.js';
import { etcdServerVersion } from '../../src/api/version.js';
import { clusterVersionCheckIntervalMs, peerVersionCallTimeoutMs } from '../../src/lib/limits.js';
import {
  clusterVersionLabel,
  clusterVersionLogs,
  clusterVersionToPropose,
  decideClusterVersion,
} from '../../src/membership/cluster-version.js';
import { formatId } from '../../src/membership/ids.js';
import { RaftRole } from '../../src/raft/types.js';
import type { MemberLifecycle } from '../../machines/member-lifecycle.js';
import type { RawNode } from '../../machines/raw-node.js';
import { peerApiPaths } from '../peer/api.js';
import type { RaftTransport } from '../peer/links.js';
import type { Logger } from '../shared/logger.js';
import type { Membership } from './membership.js';
import type { RaftLoop } from './raft-loop.js';

/** What the monitor needs from the rest of the member, each given at construction. */
export interface ClusterVersionParts {
  memberId: bigint;
  membership: Pick<Membership, 'all' | 'clusterVersion'>;
  raft: Pick<RawNode, 'status'>;
  loop: Pick<RaftLoop, 'propose'>;
  transport: Pick<RaftTransport<unknown>, 'call'>;
  lifecycle: MemberLifecycle;
  logger: Logger;
}

export class ClusterVersionMonitor {
  private timer: NodeJS.Timeout | undefined;
  /** A check (asking the members, then proposing and waiting for the apply) is under way. */
  private checking = false;

  constructor(private readonly parts: ClusterVersionParts) {}

  /** Starts the periodic checks, and checks at once (a leader elected during the start missed its first entry). */
  start(): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => this.check(), clusterVersionCheckIntervalMs).unref();
    this.check();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Looks at the cluster version now if this member leads (called when a leader's empty entry is applied). */
  check(): void {
    if (this.timer === undefined || this.checking || !this.leads()) return;
    this.checking = true;
    void this.decideAndPropose().finally(() => (this.checking = false));
  }

  private leads(): boolean {
    return !this.parts.lifecycle.stopRequested && this.parts.raft.status().role === RaftRole.leader;
  }

  private async decideAndPropose(): Promise<void> {
    const decided = decideClusterVersion(await this.memberVersions());
    // Leadership may have moved while the members were asked; the new leader decides then.
    if (!this.leads()) return;
    const current = this.parts.membership.clusterVersion;
    const next = clusterVersionToPropose(current, decided);
    if (next === undefined) return;
    const { logger } = this.parts;
    const { settingUp, updating, updated, updateAborted, updateFailed } = clusterVersionLogs;
    if (current === undefined)
      logger.info({ caller: settingUp.caller, 'cluster-version': clusterVersionLabel(next) }, settingUp.msg);
    else
      logger.info(
        { caller: updating.caller, from: clusterVersionLabel(current), to: clusterVersionLabel(next) },
        updating.msg,
      );
    try {
      await this.parts.loop.propose({ type: 'clusterVersion', clusterVersion: next });
      logger.info({ caller: updated.caller, 'cluster-version': clusterVersionLabel(next) }, updated.msg);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const stopped = error instanceof EtcdError && message === errors.stopped().message;
      const line = stopped ? updateAborted : updateFailed;
      logger.warn({ caller: line.caller, error: message }, line.msg);
    }
  }

  /** Every member's server version, undefined for one that did not answer (etcd's getVersions). */
  private memberVersions(): Promise<(string | undefined)[]> {
    const { membership, memberId } = this.parts;
    return Promise.all(
      [...membership.all.values()].map((member) =>
        member.id === memberId ? Promise.resolve(etcdServerVersion) : this.remoteVersion(member.id),
      ),
    );
  }

  private async remoteVersion(id: bigint): Promise<string | undefined> {
    const call = { method: 'GET' as const, path: peerApiPaths.version, body: '' };
    try {
      const answer = await this.parts.transport.call(id, call, peerVersionCallTimeoutMs);
      if (answer.status !== 200) throw new Error(`unexpected status ${answer.status} for GET /version`);
      const server = (JSON.parse(answer.body) as { etcdserver?: unknown }).etcdserver;
      if (typeof server !== 'string') throw new Error(`no etcdserver version in ${answer.body.slice(0, 200)}`);
      return server;
    } catch (error) {
      const { remoteUnknown } = clusterVersionLogs;
      this.parts.logger.warn(
        {
          caller: remoteUnknown.caller,
          'remote-member-id': formatId(id),
          error: error instanceof Error ? error.message : String(error),
        },
        remoteUnknown.msg,
      );
      return undefined;
    }
  }
}
