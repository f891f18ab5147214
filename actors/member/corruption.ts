/**
 * etcd's corruption checks (etcdserver/corrupt.go), each comparing this member's HashKV with its
 * peers' at the same revision over the peer API (/members/hashkv):
 *
 * - --experimental-initial-corrupt-check: before a member with data serves, a peer whose hash
 *   differs at the same compact revision stops the start ("<id> found data inconsistency with peers");
 * - --experimental-corrupt-check-time: every interval the leader hashes, waits for a linearizable
 *   read point, hashes again, and raises CORRUPT (for member 0, as etcd does) when its own two
 *   hashes of one revision differ, or a follower is ahead of it, or a follower's hash differs at the
 *   same compact revision. With CORRUPT raised, the cluster refuses writes (apply.ts).
 */
import { EtcdError } from '../../src/api/errors.js';
import type { ClusterMember } from '../../src/membership/cluster-member.js';
import { formatId } from '../../src/membership/ids.js';
import { hashKvFromPeer, peerApiPaths, type PeerHashKv } from '../peer/api.js';
import type { RaftTransport } from '../peer/links.js';
import type { Logger } from '../shared/logger.js';
import { requestTimeoutMs } from './clock.js';

/** What the checks need from the rest of the member, each given at construction. */
export interface CorruptionCheckParts {
  memberId: bigint;
  electionTimeoutMs: number;
  members: () => Iterable<ClusterMember>;
  transport: Pick<RaftTransport<unknown>, 'call'>;
  /** This member's HashKV at `revision` (0: current). */
  hashKv: (revision: number) => { hash: number; revision: number; compactRevision: number };
  /** Resolves once everything committed before the call is applied. */
  linearizableRead: () => Promise<void>;
  isLeader: () => boolean;
  raiseCorrupt: () => Promise<void>;
  logger: Logger;
}

interface PeerHashAnswer {
  id: bigint;
  answer: PeerHashKv | EtcdError | undefined;
}

export class CorruptionCheck {
  private timer: NodeJS.Timeout | undefined;
  private checking = false;

  constructor(private readonly parts: CorruptionCheckParts) {}

  /** etcd's CheckInitialHashKV; throws when a peer's hash differs at the same compact revision. */
  async initialCheck(): Promise<void> {
    const { logger, memberId } = this.parts;
    const localId = formatId(memberId);
    logger.info({ 'local-member-id': localId, timeout: `${this.timeoutMs()}ms` }, 'starting initial corruption check');
    const local = this.parts.hashKv(0);
    let mismatches = 0;
    for (const peer of await this.peerHashes(local.revision)) {
      const { answer } = peer;
      if (answer === undefined || answer instanceof EtcdError) continue;
      if (answer.hash === local.hash) continue;
      const fields = {
        'local-member-id': localId,
        'local-member-revision': local.revision,
        'local-member-compact-revision': local.compactRevision,
        'local-member-hash': local.hash,
        'remote-peer-id': formatId(answer.memberId),
        'remote-peer-revision': answer.revision,
        'remote-peer-compact-revision': answer.compactRevision,
        'remote-peer-hash': answer.hash,
      };
      if (answer.compactRevision === local.compactRevision) {
        logger.warn(fields, 'found different hash values from remote peer');
        mismatches++;
      } else logger.warn(fields, 'found different compact revision values from remote peer');
    }
    if (mismatches > 0) throw new Error(`${localId} found data inconsistency with peers`);
    logger.info({ 'local-member-id': localId }, 'initial corruption checking passed; no corruption');
  }

  /** Starts etcd's monitorKVHash when the interval is above 0. */
  start(intervalMs: number): void {
    if (intervalMs <= 0) return;
    this.parts.logger.info(
      { 'local-member-id': formatId(this.parts.memberId), interval: `${intervalMs}ms` },
      'enabled corruption checking',
    );
    this.timer = setInterval(() => void this.checkIfLeading(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async checkIfLeading(): Promise<void> {
    if (this.checking || !this.parts.isLeader()) return;
    this.checking = true;
    try {
      await this.check();
    } catch (error) {
      this.parts.logger.warn({ error: (error as Error).message }, 'failed to check hash KV');
    } finally {
      this.checking = false;
    }
  }

  /** etcd's checkHashKV, run by the leader. */
  async check(): Promise<void> {
    const { logger } = this.parts;
    const first = this.parts.hashKv(0);
    const peers = await this.peerHashes(first.revision);
    await this.parts.linearizableRead();
    const second = this.parts.hashKv(0);
    const mismatch = once(() => void this.parts.raiseCorrupt());
    if (
      second.hash !== first.hash &&
      second.revision === first.revision &&
      second.compactRevision === first.compactRevision
    ) {
      logger.warn(
        {
          'revision-1': first.revision,
          'compact-revision-1': first.compactRevision,
          'hash-1': first.hash,
          'revision-2': second.revision,
          'compact-revision-2': second.compactRevision,
          'hash-2': second.hash,
        },
        'found hash mismatch',
      );
      mismatch();
    }
    let checked = 0;
    for (const { id, answer } of peers) {
      if (answer === undefined || answer instanceof EtcdError) continue;
      checked++;
      const follower = formatId(id);
      if (answer.revision > second.revision) {
        logger.warn(
          { 'leader-revision': second.revision, 'follower-revision': answer.revision, 'follower-peer-id': follower },
          "revision from follower must be less than or equal to leader's",
        );
        mismatch();
      }
      if (answer.compactRevision > second.compactRevision) {
        logger.warn(
          {
            'leader-compact-revision': second.compactRevision,
            'follower-compact-revision': answer.compactRevision,
            'follower-peer-id': follower,
          },
          "compact revision from follower must be less than or equal to leader's",
        );
        mismatch();
      }
      if (answer.compactRevision === first.compactRevision && answer.hash !== first.hash) {
        logger.warn(
          {
            'leader-compact-revision': second.compactRevision,
            'leader-hash': first.hash,
            'follower-compact-revision': answer.compactRevision,
            'follower-hash': answer.hash,
            'follower-peer-id': follower,
          },
          'same compact revision then hashes must match',
        );
        mismatch();
      }
    }
    logger.info({ 'number-of-peers-checked': checked }, 'finished peer corruption check');
  }

  /** etcd's ReqTimeout: 5 s and two election timeouts. */
  private timeoutMs(): number {
    return requestTimeoutMs(this.parts);
  }

  /** Every other member's HashKV at `revision`; a peer that cannot answer is logged and left undefined. */
  private async peerHashes(revision: number): Promise<PeerHashAnswer[]> {
    const peers = [...this.parts.members()].filter((member) => member.id !== this.parts.memberId);
    return Promise.all(
      peers.map(async (peer): Promise<PeerHashAnswer> => {
        const call = { method: 'POST' as const, path: peerApiPaths.hashKv, body: JSON.stringify({ revision }) };
        try {
          return {
            id: peer.id,
            answer: hashKvFromPeer(await this.parts.transport.call(peer.id, call, this.timeoutMs())),
          };
        } catch (error) {
          this.parts.logger.warn(
            {
              'local-member-id': formatId(this.parts.memberId),
              'requested-revision': revision,
              'remote-peer-id': formatId(peer.id),
              error: (error as Error).message,
            },
            'failed hash kv request',
          );
          return { id: peer.id, answer: undefined };
        }
      }),
    );
  }
}

function once(run: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    run();
  };
}
