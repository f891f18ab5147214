/**
 * A member: the Raft node, its WAL, its MVCC store and the client API, wired along the data path.
 *
 *   client -> KvService method -> propose (Raft) -> Ready -> WAL append + fsync (WAL thread)
 *   -> committed entries applied to the KvStore -> the waiting request is answered.
 *
 * Linearizable reads go through Raft's ReadIndex and are served once the read index is applied.
 * One Ready is handled at a time; proposals arriving while the WAL fsyncs pile up in the Raft
 * log and go to disk together in the next Ready (group commit).
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { MemberConfig } from '../../src/config/config.js';
import { errors, EtcdError } from '../../src/api/errors.js';
import { decodeProposal, encodeProposal, mayBeMemberAttributes, type Envelope } from '../../src/api/proposal-codec.js';
import { isTxnReadOnly } from '../../src/api/txn-read-only.js';
import { CommitNoticeHold } from './commit-notices.js';
import type {
  CompactionRequest,
  DeleteRangeRequest,
  DeleteRangeResult,
  KvService,
  ProposalBody,
  ProposalResult,
  PutRequest,
  PutResult,
  RangeRequest,
  RangeResult,
  ResponseHeader,
  TxnRequest,
  TxnResult,
} from '../../src/api/types.js';
import { clusterIdFor, formatId, memberIdFor } from '../../src/membership/ids.js';
import {
  cloneMember,
  decodeMemberChange,
  encodeMemberContext,
  membersFromPeerJson,
  sameUrls,
  sortMembers,
  validPeerUrls,
  type ClusterMember,
  type MemberChange,
} from '../../src/membership/cluster-member.js';
import {
  connectedToAllVoters,
  leaderTransferTimeoutError,
  learnerInSync,
  peerHealthIntervalMs,
  readyToAddVoter,
  readyToPromote,
  readyToRemoveVoter,
  removeKeepsActiveQuorum,
  validateConfChange,
} from '../../src/membership/reconfig.js';
import { type ConfChange, ConfChangeType, decodeConfChange, encodeConfChange } from '../../src/raft/conf-change.js';
import { Wal } from '../../src/wal/wal.js';
import { RawNode } from '../../machines/raw-node.js';
import { MemoryStorage } from '../../src/raft/storage.js';
import {
  decodeMembership,
  encodeMembership,
  loadSnapFile,
  purgeSnapFiles,
  saveSnapFile,
  snapDbFileName,
  type SnapshotMembership,
} from '../../src/snap/snap-file.js';
import { storeSnapshotDb, type SnapshotBody } from '../peer/snapshot-transfer.js';
import { finishInstall, recoverSnapshotInstall, sendDirFor, snapshotInstallPending, stageReceivedDb } from './snapshot-install.js';
import { raftLogGrowthBytesMax, snapshotCatchUpBytesMax, snapshotCatchUpEntriesDefault } from '../../src/lib/limits.js';
import { type Entry, EntryType, type HardState, type Ready, RaftRole, type Snapshot } from '../../src/raft/types.js';
import type { KvStore } from '../../src/mvcc/kv-store.js';
import { openWatchableKvStore } from '../../src/watch/kv-source.js';
import type { WatchableStore } from '../../src/watch/watchable-store.js';
import { WatchDriver } from '../client/grpc/watch-service.js';
import type { MvccEvent } from '../../src/mvcc/kv-store.js';
import { applyLeaseProposal } from '../../src/lease/apply.js';
import { LeaseIdGenerator } from '../../src/lease/lease-id.js';
import { Lessor, minLeaseTtlSeconds, promoteExtendMs, type LeaseTimeToLive } from '../../src/lease/lessor.js';
import { LeaseExpiryLoop, type LeaseApi } from '../client/grpc/lease-service.js';
import { fetchClusterFromPeers, PeerTransport, peerRefusals } from '../peer/ws-transport.js';
import {
  leaseCallBody,
  leaseRefusal,
  peerApiPaths,
  type PeerApiHost,
  promoteRefusal,
  renewFromPeerJson,
  servePeerCall,
  timeToLiveFromPeerJson,
} from '../peer/api.js';
import { MessagePortTransport } from '../peer/port-transport.js';
import type { RaftTransport } from '../peer/links.js';
import type { MessagePort, Worker } from 'node:worker_threads';
import { MessageType, type Message } from '../../src/raft/types.js';
import { LmdbBackend, type LmdbBackendOptions } from '../../src/mvcc/lmdb-backend.js';
import { WalClient } from '../wal/client.js';
import type { Logger } from '../shared/logger.js';

/** What a proposal's waiter learns once its entry is applied. */
interface Applied {
  result: ProposalResult;
  /** The store's revision right after this entry was applied (its response header's revision). */
  revision: number;
}

interface Waiter<T> {
  resolve(value: T): void;
  reject(error: Error): void;
}

interface PendingRead {
  run(): void;
  fail(error: Error): void;
}

/** The identity a member runs with, decided at bootstrap and kept in the WAL metadata. */
export interface MemberIdentity {
  memberId: bigint;
  clusterId: bigint;
}

export interface MemberPaths {
  memberDir: string;
  walDir: string;
  snapDir: string;
  backendPath: string;
}

/** The applied state a member serves from: backend, lessor and the key space rebuilt from them. */
interface KeySpace {
  backend: LmdbBackend;
  lessor: Lessor;
  store: ReturnType<typeof openWatchableKvStore>['store'];
  watchable: ReturnType<typeof openWatchableKvStore>['watchable'];
  watchDriver: WatchDriver;
  /** Listeners (the lessor's key tracking, watchers) learn of every applied change in order. */
  changeListeners: ((events: MvccEvent[], revision: number) => void)[];
}

function backendOptions(config: MemberConfig): LmdbBackendOptions {
  return { batchIntervalMs: config.backendBatchIntervalMs, batchLimit: config.backendBatchLimit };
}

/** Opens the backend at `backendPath` and rebuilds the lessor and the key index from it. */
function openKeySpace(backendPath: string, config: MemberConfig, electionTicks: number): KeySpace {
  const backend = LmdbBackend.open(backendPath, backendOptions(config));
  const lessor = Lessor.open(backend, {
    minTtlSeconds: minLeaseTtlSeconds(electionTicks, config.heartbeatIntervalMs),
    expiredRetryMs: 5_000 + 2 * config.electionTimeoutMs,
    ...(config.leaseCheckpoint ? { checkpointIntervalMs: config.leaseCheckpointIntervalMs } : {}),
  });
  const changeListeners: KeySpace['changeListeners'] = [(events) => lessor.applyEvents(events)];
  const watchDriver = new WatchDriver();
  const { store, watchable } = openWatchableKvStore(
    backend,
    {
      leaseExists: (id) => lessor.exists(id),
      onChanges: (events, revision) => {
        for (const listener of changeListeners) listener(events, revision);
      },
    },
    { wake: watchDriver.wake },
  );
  watchDriver.attach(watchable);
  return { backend, lessor, store, watchable, watchDriver, changeListeners };
}

/** etcd's on-disk layout: <data-dir>/member/{wal,snap/db}. */
export function memberPaths(config: MemberConfig): MemberPaths {
  const memberDir = join(config.dataDir, 'member');
  return {
    memberDir,
    walDir: config.walDir || join(memberDir, 'wal'),
    snapDir: join(memberDir, 'snap'),
    backendPath: join(memberDir, 'snap', 'db'),
  };
}

/** Proposals still waiting when the member stops are failed with etcd's "server stopped". */
export class Member implements KvService, LeaseApi {
  private readonly pending = new Map<number, Waiter<Applied>>();
  /** Proposals made since the last drain, handed to Raft together by flushProposals(). */
  private unproposed: { id: number; data: Uint8Array }[] = [];
  private nextProposalId = 1;
  private readWaitersUnsent: PendingRead[] = [];
  private readonly readsByContext = new Map<string, PendingRead[]>();
  private readonly readsByIndex: { index: number; reads: PendingRead[] }[] = [];
  private nextReadContext = 1;
  private appliedIndex = 0;
  private drainScheduled = false;
  private draining = false;
  private stopped = false;
  /** Commit notices to followers that wait for the next message to them (actors/member/commit-notices.ts). */
  private readonly commitNotices = new CommitNoticeHold();
  private heldCommitNoticesTimer: NodeJS.Timeout | undefined;
  private ticker: NodeJS.Timeout | undefined;
  private readonly voters = new Set<bigint>();
  private fatalError: Error | undefined;
  private snapshotIndex = 0;
  /** Entry bytes the in-memory log held right after its last compaction (see snapshotDue). */
  private logBytesAfterCompaction = 0;
  /** True once the backend quota was exceeded (etcd's NOSPACE alarm). */
  noSpaceAlarm = false;
  private transport!: RaftTransport<unknown>;
  /** In single-host mode, the MessagePort to each peer member (keyed by member ID); else undefined. */
  private peerPorts: Map<bigint, MessagePort> | undefined;
  /** Watchers of this member's store (fed by every applied write). */
  watchable!: WatchableStore;
  watchDriver!: WatchDriver;
  /** The cluster's members, kept from applied conf changes (and snapshots). */
  readonly members = new Map<bigint, ClusterMember>();
  private readonly connectedPeers = new Set<bigint>();
  private applyChain: Promise<void> = Promise.resolve();
  private appendsInFlight = 0;
  private electionTicks = 10;
  private lessor!: Lessor;
  private leaseIds!: LeaseIdGenerator;
  private expiryLoop: LeaseExpiryLoop | undefined;
  private changeListeners: ((events: MvccEvent[], revision: number) => void)[] = [];
  private snapshotting: Promise<void> | undefined;
  /** Snapshots being sent to followers; stop() waits for them. */
  private readonly snapshotSends = new Set<Promise<void>>();
  /** Members removed from the cluster; their IDs may never come back (etcd's removed set). */
  private readonly removedIds = new Set<bigint>();
  /** Conf changes this member proposed, by ConfChange ID, answered with the members once applied. */
  private readonly confChangeWaiters = new Map<bigint, Waiter<ClusterMember[]>>();
  private confChangeSeq = 0;
  /** When each peer's outgoing link was last seen coming up (etcd's ActiveSince), wall-clock ms. */
  private readonly peerActiveSinceMs = new Map<bigint, number>();
  private removedFromCluster = false;

  private constructor(
    readonly config: MemberConfig,
    readonly identity: MemberIdentity,
    private readonly logger: Logger,
    private readonly raft: RawNode,
    private readonly storage: MemoryStorage,
    private readonly wal: WalClient,
    private readonly store: KvStore,
    private backend: LmdbBackend,
    private readonly paths: MemberPaths,
    private readonly onFatal: (error: Error) => void,
  ) {}

  /** Opens (or bootstraps) the member's data dir and starts its Raft loop; clients are served by the caller. */
  static async start(
    config: MemberConfig,
    logger: Logger,
    onFatal: (error: Error) => void,
    peerPorts?: Map<bigint, MessagePort>,
    walThread?: Worker,
  ): Promise<Member> {
    const paths = memberPaths(config);
    mkdirSync(join(paths.memberDir, 'snap'), { recursive: true });
    const self = config.initialCluster.find((member) => member.name === config.name);
    const memberIds = config.initialCluster.map((member) => memberIdFor(member.peerUrls, config.initialClusterToken));
    // A member joining a running cluster learns its ID and the cluster's from the members (etcd's
    // --initial-cluster-state existing); its log then comes from the leader, not from bootstrap.
    const joined = !Wal.exists(paths.walDir) && config.initialClusterState === 'existing' ? await joinExistingCluster(config, logger) : undefined;
    const bootIdentity: MemberIdentity = joined?.identity ?? {
      memberId: memberIdFor(self?.peerUrls ?? config.initialAdvertisePeerUrls, config.initialClusterToken),
      clusterId: clusterIdFor(memberIds),
    };
    const walOpening = WalClient.open(paths.walDir, {
      metadata: bootIdentity,
      log: (message: string) => logger.warn({ 'wal-dir': paths.walDir }, message),
      thread: walThread,
    });
    // The key space is rebuilt from the backend here while the WAL thread reads the log, unless a
    // received snapshot database waits to be installed: the WAL's snapshot decides that first.
    walOpening.catch(() => undefined); // its error is thrown by the await below
    const electionTicks = Math.max(1, Math.round(config.electionTimeoutMs / config.heartbeatIntervalMs));
    let keySpace = snapshotInstallPending(paths.snapDir) ? undefined : openKeySpace(paths.backendPath, config, electionTicks);
    const { client: wal, state, created: fresh } = await walOpening;
    const identity: MemberIdentity = fresh ? bootIdentity : { memberId: state.metadata.memberId, clusterId: state.metadata.clusterId };
    const storage = new MemoryStorage();
    const snapshot = state.snapshot.index > 0 ? loadSnapFile(paths.snapDir, state.snapshot.term, state.snapshot.index) : undefined;
    if (snapshot !== undefined) storage.applySnapshot(snapshot);
    storage.setHardState(state.hardState);
    storage.append(state.entries);
    const initialMembers: ClusterMember[] = config.initialCluster.map((member, position) => ({
      id: memberIds[position] as bigint,
      name: member.name,
      peerUrls: member.peerUrls,
      clientUrls: member.name === config.name ? config.advertiseClientUrls : [],
      isLearner: false,
    }));
    if (fresh && joined === undefined) await bootstrapLog(wal, storage, initialMembers);
    for (const step of recoverSnapshotInstall(paths.snapDir, paths.backendPath, state.snapshot.index)) logger.warn({ 'snap-dir': paths.snapDir }, step);
    keySpace ??= openKeySpace(paths.backendPath, config, electionTicks);
    const { backend, lessor, store, watchable, watchDriver, changeListeners } = keySpace;
    const orphans = lessor.recoverAttachments(store.takeRestoredLeases());
    if (orphans > 0) logger.warn({ keys: orphans }, 'keys name leases that no longer exist');
    const raft = new RawNode({
      id: identity.memberId,
      electionTicks,
      heartbeatTicks: 1,
      storage,
      // Conf changes live in the log: re-apply everything after the snapshot, the store skips
      // entries it already holds (its consistent index).
      appliedIndex: storage.firstIndex() - 1,
      preVote: config.preVote,
      checkQuorum: true,
      maxEntriesPerMessage: 4096,
      maxInflightMessages: 256,
      seed: Number(identity.memberId & 0xffffffffn),
    });
    const member = new Member(config, identity, logger, raft, storage, wal, store, backend, paths, onFatal);
    member.appliedIndex = storage.firstIndex() - 1;
    member.snapshotIndex = state.snapshot.index;
    member.lessor = lessor;
    member.watchable = watchable;
    member.watchDriver = watchDriver;
    member.leaseIds = new LeaseIdGenerator(identity.memberId, Date.now());
    member.changeListeners = changeListeners;
    member.electionTicks = electionTicks;
    if (snapshot !== undefined) member.restoreMembership(decodeMembership(snapshot.data, 'snapshot'));
    member.peerPorts = peerPorts;
    // Members in one process talk over MessagePorts with the same frames; others over ws/wss.
    const peerOptions = {
      localId: identity.memberId,
      clusterId: identity.clusterId,
      listenUrls: config.listenPeerUrls,
      tls: config.peerTls,
      log: logger,
    };
    member.transport = (
      peerPorts === undefined
        ? new PeerTransport(peerOptions)
        : new MessagePortTransport({ localId: identity.memberId, clusterId: identity.clusterId, log: logger })
    ) as RaftTransport<unknown>;
    if (member.transport instanceof PeerTransport) member.transport.onRemoved(() => member.leaveCluster('a peer refused this member as removed'));
    member.transport.onMessages((messages) => member.receive(messages));
    member.transport.onUnreachable((id) => member.raft.reportUnreachable(id));
    member.transport.onSnapshotStatus((id, ok) => member.raft.reportSnapshot(id, ok));
    member.transport.onSnapshot((message, body) => member.receiveSnapshot(message, body));
    member.transport.onCall((call) => servePeerCall(member.peerApi(), call));
    await member.transport.start();
    for (const known of member.members.values()) member.connectPeer(known);
    // A joining member talks to the members it was told of until its log names them.
    for (const peer of joined?.peers ?? []) member.connectPeer(peer);
    for (const voter of storage.initialState().confState.voters) member.voters.add(voter);
    logger.info(
      {
        'local-member-id': formatId(identity.memberId),
        'cluster-id': formatId(identity.clusterId),
        'data-dir': config.dataDir,
        'wal-entries': state.entries.length,
        'backend-consistent-index': store.consistentIndex,
        'backend-revision': store.currentRevision,
      },
      joined !== undefined ? 'joining an existing cluster' : fresh ? 'starting a new member' : 'restarting member',
    );
    await member.drain();
    await member.applyChain;
    member.startTicking();
    return member;
  }

  private startTicking(): void {
    if (this.voters.size === 1 && this.voters.has(this.identity.memberId)) {
      // A single voter need not wait out an election timeout to lead.
      this.raft.campaign();
      this.scheduleDrain();
    }
    this.ticker = setInterval(() => {
      this.raft.tick();
      this.trackPeerActivity();
      this.scheduleDrain();
    }, this.config.heartbeatIntervalMs);
    this.ticker.unref();
    this.expiryLoop = new LeaseExpiryLoop({
      expired: (nowMs, max) => (this.lessor.isPrimary ? this.lessor.expiredLeases(nowMs, max) : []),
      revoke: (id) => this.revoke(id),
      checkpoint: (nowMs) => this.proposeCheckpoints(nowMs),
      onError: (id, error) => this.logger.warn({ lease: formatId(id), error: String(error) }, 'failed to revoke an expired lease'),
      now: leaseClockMs,
    });
    this.expiryLoop.start();
    this.publishAttributes();
  }

  /** The header of a write's answer: the revision its own apply left the store at. */
  headerAt(revision: number): ResponseHeader {
    return { ...this.header(), revision };
  }

  /** The header every response carries, as of the store's current revision. */
  header(): ResponseHeader {
    return {
      clusterId: this.identity.clusterId,
      memberId: this.identity.memberId,
      revision: this.store.currentRevision,
      raftTerm: this.raft.status().term,
    };
  }

  status() {
    const raftStatus = this.raft.status();
    return {
      memberId: this.identity.memberId,
      clusterId: this.identity.clusterId,
      leaderId: raftStatus.leaderId,
      role: raftStatus.role,
      raftTerm: raftStatus.term,
      raftIndex: this.storage.lastIndex(),
      raftAppliedIndex: this.appliedIndex,
      revision: this.store.currentRevision,
      compactRevision: this.store.compactRevision,
      backendBytes: this.backend.sizeBytes(),
      isLearner: this.isLearner(),
    };
  }

  /** True when this member is a learner of the cluster (it replicates but does not vote). */
  isLearner(): boolean {
    return this.members.get(this.identity.memberId)?.isLearner ?? false;
  }

  /** The cluster's members, sorted by ID, as MemberList answers. */
  memberList(): ClusterMember[] {
    return sortMembers(this.members.values()).map(cloneMember);
  }

  /** etcd's HashKV over the store at `revision` (0: current). */
  hashKv(revision: number): { hash: number; revision: number; compactRevision: number } {
    return this.store.hashKV(revision);
  }

  /** True when this member knows a leader and has not failed. */
  healthy(): boolean {
    return !this.noSpaceAlarm && !this.stopped && this.fatalError === undefined && this.raft.status().leaderId !== 0n;
  }

  isLeader(): boolean {
    return this.raft.status().role === RaftRole.leader;
  }

  /**
   * etcd's backend quota (--quota-backend-bytes): a write that would take the backend past it
   * raises the NOSPACE alarm, and from then on every write is refused with "database space
   * exceeded" and /health reports the alarm. Unlike etcd, the alarm is this member's alone and
   * lasts until restart (the Alarm API that replicates and disarms it is not built yet).
   */
  private checkQuota(costBytes: number): void {
    if (!this.noSpaceAlarm && this.backend.sizeBytes() + costBytes > this.config.quotaBackendBytes) {
      this.noSpaceAlarm = true;
      this.logger.warn({ 'quota-backend-bytes': this.config.quotaBackendBytes, 'backend-bytes': this.backend.sizeBytes() }, 'raised NOSPACE alarm: backend quota exceeded');
    }
    if (this.noSpaceAlarm) throw errors.noSpace();
  }


  async range(request: RangeRequest): Promise<{ header: ResponseHeader; result: RangeResult }> {
    if (!request.serializable) await this.linearizableBarrier();
    const result = this.store.range(request);
    return { header: this.header(), result };
  }

  async put(request: PutRequest): Promise<{ header: ResponseHeader; result: PutResult }> {
    this.checkQuota(putCostBytes(request));
    const { result: outcome, revision } = await this.propose({ type: 'put', put: request });
    return { header: this.headerAt(revision), result: (outcome as { put: PutResult }).put };
  }

  async deleteRange(request: DeleteRangeRequest): Promise<{ header: ResponseHeader; result: DeleteRangeResult }> {
    const { result: outcome, revision } = await this.propose({ type: 'deleteRange', deleteRange: request });
    return { header: this.headerAt(revision), result: (outcome as { deleteRange: DeleteRangeResult }).deleteRange };
  }

  async txn(request: TxnRequest): Promise<{ header: ResponseHeader; result: TxnResult }> {
    if (isTxnReadOnly(request)) {
      // A read-only txn needs no log entry, only a linearizable read point, as in etcd.
      await this.linearizableBarrier();
      return { header: this.header(), result: this.store.txn(request) };
    }
    this.checkQuota(txnCostBytes(request));
    const { result: outcome, revision } = await this.propose({ type: 'txn', txn: request });
    return { header: this.headerAt(revision), result: (outcome as { txn: TxnResult }).txn };
  }

  async compact(request: CompactionRequest): Promise<{ header: ResponseHeader }> {
    const { revision } = await this.propose({ type: 'compaction', compaction: request });
    if (request.physical) await this.backend.flush();
    return { header: this.headerAt(revision) };
  }

  async grant(id: bigint, ttlSeconds: number): Promise<{ id: bigint; ttlSeconds: number }> {
    this.checkQuota(leaseCostBytes);
    const leaseId = id === 0n ? this.leaseIds.next() : id;
    const { result: outcome } = await this.propose({ type: 'leaseGrant', leaseGrant: { id: leaseId, ttlSeconds } });
    return (outcome as { leaseGrant: { id: bigint; ttlSeconds: number } }).leaseGrant;
  }

  async revoke(id: bigint): Promise<void> {
    await this.propose({ type: 'leaseRevoke', leaseRevoke: { id } });
  }

  /** The leader's due lease checkpoints (--experimental-enable-lease-checkpoint), proposed as one entry. */
  private proposeCheckpoints(nowMs: number): void {
    const checkpoints = this.lessor.dueCheckpoints(nowMs);
    if (checkpoints.length === 0) return;
    this.propose({ type: 'leaseCheckpoint', leaseCheckpoint: { checkpoints } }).catch((error: Error) =>
      this.logger.warn({ leases: checkpoints.length, error: error.message }, 'failed to checkpoint leases'),
    );
  }

  /**
   * LeaseKeepAlive. Only the leader times leases, so a follower hands the renewal to the leader
   * over the peer port, as etcd's followers do.
   */
  async renew(id: bigint): Promise<number> {
    return this.onLeaseLeader(() => this.lessor.renew(id, leaseClockMs()), peerApiPaths.leaseRenew, leaseCallBody(id), renewFromPeerJson);
  }

  /** LeaseTimeToLive with the leader's remaining TTL; a follower asks the leader for it. */
  async timeToLive(id: bigint, withKeys: boolean): Promise<LeaseTimeToLive> {
    const local = () => this.lessor.timeToLive(id, leaseClockMs(), withKeys);
    return this.onLeaseLeader(local, peerApiPaths.leaseTtl, leaseCallBody(id, withKeys), timeToLiveFromPeerJson);
  }

  /**
   * Runs a lease call on the leader: here when this member's lessor is primary, else over the
   * leader's peer URLs, retried until etcd's request timeout (the leader may change meanwhile).
   * Waits at most an election timeout for a leader to be known, then fails with "no leader".
   */
  private async onLeaseLeader<T>(local: () => T, path: string, body: string, decode: (body: string) => T): Promise<T> {
    const deadline = Date.now() + this.requestTimeoutMs();
    const leaderWaitDeadline = Date.now() + this.config.electionTimeoutMs;
    while (Date.now() < deadline) {
      if (this.stopped) throw errors.stopped();
      if (this.lessor.isPrimary) return local();
      const leaderId = this.raft.status().leaderId;
      if (leaderId === 0n && Date.now() >= leaderWaitDeadline) throw errors.noLeader();
      // A member that was just elected promotes its lessor on the next apply; wait for that.
      if (leaderId !== 0n && leaderId !== this.identity.memberId) {
        const timeoutMs = Math.min(Math.max(1, deadline - Date.now()), this.config.electionTimeoutMs);
        const answer = await this.transport.call(leaderId, { method: 'POST', path, body }, timeoutMs).catch(() => undefined);
        if (answer?.status === 200) return decode(answer.body);
        // A refusal as not (or no longer) the leader, or no answer: look again.
        const refusal = answer === undefined ? undefined : leaseRefusal(answer.body);
        if (refusal !== undefined) throw refusal;
      }
      await new Promise((resolve) => setTimeout(resolve, leaseForwardRetryMs));
    }
    throw errors.timeout();
  }

  /** What the peer API (actors/peer/api.ts) answers followers with. */
  private peerApi(): PeerApiHost {
    // The lessor, not Raft's role, decides: a fresh leader times leases only once it is primary.
    const asLeader = <T>(run: () => T): T => {
      if (this.stopped || !this.lessor.isPrimary) throw errors.notLeader();
      return run();
    };
    return {
      members: () => this.members.values(),
      promoteAsLeader: (id) => this.promoteAsLeader(id),
      renewAsLeader: (id) => asLeader(() => this.lessor.renew(id, leaseClockMs())),
      timeToLiveAsLeader: (id, withKeys) => asLeader(() => this.lessor.timeToLive(id, leaseClockMs(), withKeys)),
    };
  }

  async leases(): Promise<bigint[]> {
    return this.lessor.leases();
  }

  private propose(body: ProposalBody): Promise<Applied> {
    if (this.stopped) return Promise.reject(errors.stopped());
    if (this.fatalError !== undefined) return Promise.reject(errors.corrupt());
    const id = this.nextProposalId++;
    const envelope: Envelope = { origin: this.identity.memberId, id, body };
    return new Promise<Applied>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.unproposed.push({ id, data: encodeProposal(envelope) });
      this.scheduleDrain();
    });
  }

  /**
   * Hands every proposal made since the last drain to Raft as one batch: one machine event and one
   * append broadcast for all of them. Without a leader to take them, they all fail with "no leader".
   */
  private flushProposals(): void {
    if (this.unproposed.length === 0) return;
    const batch = this.unproposed;
    this.unproposed = [];
    try {
      this.raft.proposeMany(batch.map((proposal) => proposal.data));
    } catch {
      for (const { id } of batch) {
        const waiter = this.pending.get(id);
        this.pending.delete(id);
        waiter?.reject(errors.noLeader());
      }
    }
  }

  /** Resolves once everything committed before the call is applied (Raft ReadIndex). */
  private linearizableBarrier(): Promise<void> {
    if (this.stopped) return Promise.reject(errors.stopped());
    return new Promise<void>((resolve, reject) => {
      this.readWaitersUnsent.push({ run: resolve, fail: reject });
      this.scheduleDrain();
    });
  }

  private scheduleDrain(): void {
    if (this.drainScheduled || this.stopped) return;
    this.drainScheduled = true;
    setImmediate(() => {
      this.drainScheduled = false;
      void this.drain();
    });
  }

  /** Handles Readies one at a time until the node has nothing more to hand over. */
  private async drain(): Promise<void> {
    if (this.draining || this.fatalError !== undefined) return;
    this.draining = true;
    try {
      this.flushProposals();
      this.flushReadRequests();
      while (this.raft.hasReady()) {
        // Bound the pipeline: at most appendsInFlightMax Readies wait on the WAL at once.
        if (this.appendsInFlight >= this.pipelineDepth()) await this.applyChain;
        // Proposals that came in while this loop waited join this Ready.
        this.flushProposals();
        const ready = this.raft.ready();
        this.startReady(ready);
        this.raft.advance(ready);
        this.flushProposals();
        this.flushReadRequests();
      }
    } catch (error) {
      this.fail(error as Error);
    } finally {
      this.draining = false;
    }
  }

  private flushReadRequests(): void {
    if (this.readWaitersUnsent.length === 0) return;
    if (this.raft.status().leaderId === 0n) return; // wait for a leader; the ticker retries
    const context = String(this.nextReadContext++);
    this.readsByContext.set(context, this.readWaitersUnsent);
    this.readWaitersUnsent = [];
    this.raft.readIndex(new TextEncoder().encode(context));
  }

  /**
   * Hands a Ready's entries to the WAL thread and queues the rest of its work behind their fsync,
   * so the next Ready can be written while this one syncs: nothing is applied, answered or read
   * until it is durable, and Readies finish in order because the WAL acknowledges in order.
   */
  /**
   * A single voter may pipeline Readies behind the fsync. With peers, the next Ready waits for the
   * previous one's fsync (etcd's model): a leader sends before it persists, so a commit index it
   * announces must never count entries of its own that are not yet durable.
   */
  private pipelineDepth(): number {
    return this.voters.size > 1 ? 1 : appendsInFlightMax;
  }

  private startReady(ready: Ready): void {
    // A leader's messages go out at once, in parallel with its own fsync; everyone else's wait
    // for durability (a follower must not acknowledge what it could still lose).
    const sentEarly = this.raft.status().role === RaftRole.leader;
    if (sentEarly) this.sendMessages(this.holdCommitNotices(ready.messages, ready.committedEntries));
    const snapshot = ready.snapshot;
    // A snapshot from the leader is on disk (its database and this file) before the WAL names it.
    if (snapshot !== undefined) saveSnapFile(this.paths.snapDir, snapshot);
    const marker = snapshot === undefined ? undefined : { index: snapshot.metadata.index, term: snapshot.metadata.term };
    // A Ready that only moves the commit index need not wait for the disk (Raft's mustSync is false).
    const mustPersist = ready.mustSync || marker !== undefined;
    if (!mustPersist && ready.hardState !== undefined) this.wal.writeCommit(ready.hardState);
    const durable = mustPersist ? this.wal.append(ready.entries, ready.hardState, marker) : Promise.resolve();
    if (ready.hardState !== undefined) this.storage.setHardState(ready.hardState);
    if (snapshot !== undefined) this.storage.applySnapshot(snapshot);
    if (ready.entries.length > 0) this.storage.append(ready.entries);
    this.appendsInFlight++;
    const complete = () => {
      this.appendsInFlight--;
      if (this.fatalError === undefined) this.finishReady(ready, sentEarly);
    };
    this.applyChain = this.applyChain
      .then(() => durable)
      .then(() => (snapshot === undefined ? complete() : this.installSnapshot(snapshot).then(complete)))
      .catch((error: Error) => this.fail(error));
  }

  private finishReady(ready: Ready, sentEarly: boolean): void {
    if (ready.softState !== undefined) {
      if (ready.softState.role !== RaftRole.leader && this.lessor.isPrimary) this.lessor.demote();
      this.logger.info(
        { role: ready.softState.role, leader: formatId(ready.softState.leaderId), term: this.raft.status().term },
        'raft role changed',
      );
    }
    // Non-leaders' messages leave only once this Ready is durable: a follower never acknowledges
    // entries it could still lose, and a candidate never asks for votes before its own is on disk.
    if (!sentEarly) this.sendMessages(ready.messages);
    this.applyEntries(ready.committedEntries);
    if (this.snapshotting === undefined && this.snapshotDue()) {
      this.snapshotting = this.takeSnapshot().finally(() => {
        this.snapshotting = undefined;
      });
    }
    for (const readState of ready.readStates) {
      const context = new TextDecoder().decode(readState.requestCtx);
      const reads = this.readsByContext.get(context);
      if (reads === undefined) continue;
      this.readsByContext.delete(context);
      this.readsByIndex.push({ index: readState.index, reads });
    }
    this.serveReads();
  }

  private applyEntries(entries: Entry[]): void {
    for (const entry of entries) {
      if (entry.type === EntryType.normal && entry.data.length > 0) {
        this.applyProposal(entry);
      } else {
        if (entry.type === EntryType.confChange) this.applyConfChange(entry);
        if (entry.type === EntryType.normal) this.promoteLessorIfLeading(entry);
        // Entries that do not touch the key space still move the applied index, so a restart
        // does not replay them into the store.
        if (entry.index > this.store.consistentIndex) this.store.recordApplied(entry.index, entry.term);
      }
      this.appliedIndex = entry.index;
    }
  }

  /** A new leader's empty entry, once applied, is where its lessor starts timing leases (as etcd). */
  private promoteLessorIfLeading(entry: Entry): void {
    const raftStatus = this.raft.status();
    if (raftStatus.role !== RaftRole.leader || entry.term !== raftStatus.term || this.lessor.isPrimary) return;
    this.lessor.promote(leaseClockMs(), promoteExtendMs(this.electionTicks, this.config.heartbeatIntervalMs));
  }

  /**
   * Applies a committed conf change as etcd does: checked against the members first (identically
   * on every member), applied to Raft and the member map only when valid, and answered to the
   * proposer either way.
   */
  private applyConfChange(entry: Entry): void {
    const change = decodeConfChange(entry.data);
    const memberChange = this.memberChangeOf(change);
    const refusal = validateConfChange(this.members, this.removedIds, change.type, change.nodeId, memberChange);
    if (refusal === undefined) {
      this.raft.applyConfChange(change);
      this.applyMembership(change, memberChange);
    } else {
      this.logger.warn({ 'raft-conf-change': change.type, 'raft-conf-change-node-id': formatId(change.nodeId), error: refusal.message }, 'refused a configuration change');
    }
    const waiter = change.id === undefined ? undefined : this.confChangeWaiters.get(change.id);
    if (waiter === undefined) return;
    this.confChangeWaiters.delete(change.id as bigint);
    if (refusal === undefined) waiter.resolve(this.memberList());
    else waiter.reject(refusal);
  }

  /** The member a conf change is about: from its context, or (removals) from the member map. */
  private memberChangeOf(change: ConfChange): MemberChange {
    if ((change.context?.length ?? 0) > 0) return decodeMemberChange(change.context, change.nodeId);
    const known = this.members.get(change.nodeId);
    return { member: known === undefined ? decodeMemberChange(undefined, change.nodeId).member : cloneMember(known), isPromote: false };
  }

  private applyMembership(change: ConfChange, { member, isPromote }: MemberChange): void {
    const id = change.nodeId;
    switch (change.type) {
      case ConfChangeType.addNode:
      case ConfChangeType.addLearnerNode: {
        const known = this.members.get(id);
        if (isPromote && known !== undefined) {
          known.isLearner = false;
        } else {
          this.members.set(id, { ...cloneMember(member), id, isLearner: change.type === ConfChangeType.addLearnerNode });
          this.connectPeer(this.members.get(id) as ClusterMember);
        }
        if (change.type === ConfChangeType.addNode) this.voters.add(id);
        this.logger.info({ 'member-id': formatId(id), 'peer-urls': this.members.get(id)?.peerUrls, promoted: isPromote }, 'added or promoted member');
        return;
      }
      case ConfChangeType.removeNode:
        this.voters.delete(id);
        this.members.delete(id);
        this.removedIds.add(id);
        this.peerActiveSinceMs.delete(id);
        this.logger.info({ 'removed-member-id': formatId(id) }, 'removed member');
        if (id === this.identity.memberId) this.leaveCluster('this member applied its own removal');
        else if (this.connectedPeers.delete(id)) this.transport?.removePeer(id);
        return;
      case ConfChangeType.updateNode: {
        const known = this.members.get(id);
        if (known === undefined) return;
        known.peerUrls = [...member.peerUrls];
        this.connectPeer(known);
        this.logger.info({ 'member-id': formatId(id), 'peer-urls': known.peerUrls }, 'updated member peer URLs');
        return;
      }
    }
  }

  /**
   * Stops for good once this member knows it was removed, as etcd does; the grace period lets the
   * answer to the removal request and the last Raft messages leave first.
   */
  private leaveCluster(reason: string): void {
    if (this.removedFromCluster || this.stopped) return;
    this.removedFromCluster = true;
    this.logger.warn({ 'local-member-id': formatId(this.identity.memberId), reason }, peerRefusals.memberRemoved);
    const timer = setTimeout(() => {
      void this.stop().finally(() => this.onFatal(new Error(peerRefusals.memberRemoved)));
    }, this.config.electionTimeoutMs);
    timer.unref();
  }

  /** Remembers when each peer's link came up; reconfiguration trusts only links up for a while. */
  private trackPeerActivity(): void {
    const nowMs = Date.now();
    const active = new Set(this.transport.activePeers());
    for (const id of active) if (!this.peerActiveSinceMs.has(id)) this.peerActiveSinceMs.set(id, nowMs);
    for (const id of [...this.peerActiveSinceMs.keys()]) if (!active.has(id)) this.peerActiveSinceMs.delete(id);
  }

  /** etcd's isConnectedSince(now - HealthInterval): this member, or a peer linked for a health interval. */
  private connectedLongEnough(id: bigint): boolean {
    if (id === this.identity.memberId) return true;
    const since = this.peerActiveSinceMs.get(id);
    return since !== undefined && Date.now() - since >= peerHealthIntervalMs;
  }

  /** etcd's request timeout: how long a conf change may take to be applied. */
  private requestTimeoutMs(): number {
    return requestTimeoutBaseMs + 2 * this.config.electionTimeoutMs;
  }

  /**
   * A ConfChange ID unique across members, as etcd's request IDs are: the low 16 bits of the
   * member ID above 48 bits of milliseconds and a counter.
   */
  private nextConfChangeId(): bigint {
    const counter = (BigInt(Date.now()) << 8n) + BigInt(this.confChangeSeq++);
    return ((this.identity.memberId & 0xffffn) << 48n) | (counter & 0xffffffffffffn);
  }

  /** Proposes a conf change and resolves with the members once it is applied (etcd's configure). */
  private configure(change: ConfChange): Promise<ClusterMember[]> {
    if (this.stopped || this.removedFromCluster) return Promise.reject(errors.stopped());
    const id = this.nextConfChangeId();
    return new Promise<ClusterMember[]>((resolve, reject) => {
      // Raft turns a conf change proposed while another is pending into an empty entry, which
      // never answers; like etcd, the request then times out.
      const timer = setTimeout(() => {
        this.confChangeWaiters.delete(id);
        reject(errors.timeout());
      }, this.requestTimeoutMs());
      const settle = { resolve: (members: ClusterMember[]) => (clearTimeout(timer), resolve(members)), reject: (error: Error) => (clearTimeout(timer), reject(error)) };
      this.confChangeWaiters.set(id, settle);
      try {
        this.raft.proposeConfChange({ ...change, id });
      } catch {
        this.confChangeWaiters.delete(id);
        settle.reject(errors.noLeader());
        return;
      }
      this.scheduleDrain();
    });
  }

  /** Cluster.MemberAdd: a new member (or learner) with these peer URLs and an ID hashed from them and the time. */
  async addMember(peerUrls: string[], isLearner: boolean): Promise<{ member: ClusterMember; members: ClusterMember[] }> {
    if (!validPeerUrls(peerUrls)) throw errors.memberBadUrls();
    const urls = [...peerUrls].sort();
    const member: ClusterMember = { id: memberIdFor(urls, '', Date.now() / 1000), name: '', peerUrls: urls, clientUrls: [], isLearner };
    if (this.config.strictReconfigCheck) {
      if (!isLearner && !readyToAddVoter(this.members)) throw errors.memberNotEnoughStarted();
      if (!connectedToAllVoters(this.members, (id) => this.connectedLongEnough(id))) throw errors.unhealthy();
    }
    const type = isLearner ? ConfChangeType.addLearnerNode : ConfChangeType.addNode;
    const members = await this.configure({ type, nodeId: member.id, context: encodeMemberContext(member) });
    return { member, members };
  }

  /** Cluster.MemberRemove. */
  async removeMember(id: bigint): Promise<ClusterMember[]> {
    const target = this.members.get(id);
    if (this.config.strictReconfigCheck && target?.isLearner !== true) {
      if (!readyToRemoveVoter(this.members, id)) throw errors.memberNotEnoughStarted();
      // A peer that is down is no part of the active quorum, so removing it is always safe.
      const targetActive = id === this.identity.memberId || this.peerActiveSinceMs.has(id);
      if (targetActive && !removeKeepsActiveQuorum(this.members, (voter) => this.connectedLongEnough(voter))) throw errors.unhealthy();
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

  private async promoteAsLeader(id: bigint): Promise<ClusterMember[]> {
    const raftStatus = this.raft.status();
    if (raftStatus.progress === undefined) throw errors.notLeader();
    if (!learnerInSync(raftStatus.progress, raftStatus.id, id)) throw errors.learnerNotReady();
    if (this.config.strictReconfigCheck && !readyToPromote(this.members)) throw errors.memberNotEnoughStarted();
    const context = encodeMemberContext({ id, name: '', peerUrls: [], clientUrls: [], isLearner: false }, true);
    return this.configure({ type: ConfChangeType.addNode, nodeId: id, context });
  }

  private async forwardPromote(id: bigint): Promise<ClusterMember[]> {
    const deadline = Date.now() + this.requestTimeoutMs();
    while (Date.now() < deadline && !this.stopped) {
      const leaderId = this.raft.status().leaderId;
      if (leaderId !== 0n && leaderId !== this.identity.memberId) {
        const call = { method: 'POST' as const, path: `${peerApiPaths.promotePrefix}${id.toString()}`, body: '' };
        const answer = await this.transport.call(leaderId, call, Math.max(1, deadline - Date.now())).catch(() => undefined);
        if (answer?.status === 200) return membersFromPeerJson(answer.body);
        const known = answer === undefined ? undefined : promoteRefusal(answer.status, answer.body);
        if (known !== undefined) throw known;
      }
      await new Promise((resolve) => setTimeout(resolve, this.config.heartbeatIntervalMs));
    }
    throw errors.timeout();
  }

  /** Maintenance.MoveLeader: hands leadership to `targetId` and waits until it leads. */
  async moveLeader(targetId: bigint): Promise<void> {
    if (!this.isLeader()) throw errors.notLeader();
    const target = this.members.get(targetId);
    if (target === undefined || target.isLearner) throw errors.badLeaderTransferee();
    this.logger.info({ 'transferee-member-id': formatId(targetId) }, 'leadership transfer starting');
    this.raft.transferLeader(targetId);
    this.scheduleDrain();
    const deadline = Date.now() + leaderTransferTimeoutsMax * this.config.electionTimeoutMs;
    while (this.raft.status().leaderId !== targetId) {
      if (this.stopped) throw errors.stopped();
      if (Date.now() >= deadline) throw leaderTransferTimeoutError();
      await new Promise((resolve) => setTimeout(resolve, this.config.heartbeatIntervalMs));
    }
    this.logger.info({ 'new-leader-member-id': formatId(targetId) }, 'leadership transfer finished');
  }

  private applyMemberAttributes(attributes: { id: bigint; name: string; clientUrls: string[] }): void {
    const known = this.members.get(attributes.id);
    if (known === undefined) return; // removed meanwhile
    known.name = attributes.name;
    known.clientUrls = attributes.clientUrls;
  }

  /** Publishes this member's name and client URLs through Raft until it lands (etcd's publish). */
  private publishAttributes(): void {
    const attempt = () => {
      if (this.stopped) return;
      const body = { type: 'memberAttributes' as const, memberAttributes: { id: this.identity.memberId, name: this.config.name, clientUrls: this.config.advertiseClientUrls } };
      this.propose(body).then(
        () => this.logger.info({ 'client-urls': this.config.advertiseClientUrls }, 'published local member to cluster through raft'),
        () => setTimeout(attempt, this.config.electionTimeoutMs).unref(),
      );
    };
    attempt();
  }

  private connectPeer(member: ClusterMember): void {
    if (member.id === this.identity.memberId || this.transport === undefined) return;
    const endpoint = this.peerPorts === undefined ? member.peerUrls : this.peerPorts.get(member.id);
    if (endpoint === undefined) {
      this.logger.warn({ peer: formatId(member.id) }, 'no in-process channel to this member; it stays unreachable');
      return;
    }
    if (this.connectedPeers.has(member.id)) {
      if (this.peerPorts === undefined) this.transport.updatePeer(member.id, endpoint);
      return;
    }
    this.connectedPeers.add(member.id);
    this.transport.addPeer(member.id, endpoint);
  }

  /** Inbound Raft messages from peers: stepped as one batch, then the loop runs. */
  private receive(messages: Message[]): void {
    if (this.stopped || this.fatalError !== undefined || this.removedFromCluster) return;
    try {
      this.raft.stepMany(messages);
    } catch (error) {
      this.logger.warn({ error: (error as Error).message }, 'dropped Raft messages the core refused');
    }
    this.scheduleDrain();
  }

  /** The leader's messages of a Ready, with commit notices no client waits on held back a while. */
  private holdCommitNotices(messages: Message[], committed: readonly Entry[]): Message[] {
    const out = this.commitNotices.route(messages, committed);
    if (this.commitNotices.size > 0) this.heldCommitNoticesTimer ??= setTimeout(() => this.sendHeldCommitNotices(), commitNoticeHoldMs);
    return out;
  }

  private sendHeldCommitNotices(): void {
    this.heldCommitNoticesTimer = undefined;
    if (!this.stopped) this.sendMessages(this.commitNotices.takeAll());
  }

  /** Sends a finished Ready's messages; a snapshot goes on its own stream with the backend database. */
  private sendMessages(messages: Message[]): void {
    if (messages.length === 0 || this.transport === undefined) return;
    // Nearly every Ready has no snapshot: check before building filtered copies.
    if (!messages.some((message) => message.type === MessageType.snap)) return this.transport.send(messages);
    for (const message of messages) if (message.type === MessageType.snap) this.trackSnapshotSend(this.sendSnapshot(message));
    this.transport.send(messages.filter((message) => message.type !== MessageType.snap));
  }

  private trackSnapshotSend(sending: Promise<void>): void {
    this.snapshotSends.add(sending);
    void sending.finally(() => this.snapshotSends.delete(sending));
  }

  /**
   * etcd's snapshot sender: a copy of the backend database goes to the follower with the MsgSnap,
   * and Raft learns how it went (a failure also marks the follower unreachable, so it is probed).
   */
  private async sendSnapshot(message: Message): Promise<void> {
    const to = formatId(message.to);
    const index = message.snapshot?.metadata.index;
    const dir = sendDirFor(this.paths.snapDir, message.to);
    let ok = false;
    try {
      const dbPath = await this.backend.copyTo(dir);
      this.logger.info({ 'remote-peer-id': to, index }, 'sending database snapshot');
      await this.transport.sendSnapshot(message, dbPath);
      ok = true;
      this.logger.info({ 'remote-peer-id': to, index }, 'sent database snapshot');
    } catch (error) {
      this.logger.warn({ 'remote-peer-id': to, index, error: (error as Error).message }, 'failed to send database snapshot');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    if (this.stopped) return;
    if (!ok) this.raft.reportUnreachable(message.to);
    this.raft.reportSnapshot(message.to, ok);
    this.scheduleDrain();
  }

  /** etcd's snapshot handler: the database is stored durably, then Raft steps the MsgSnap. */
  private async receiveSnapshot(message: Message, body: SnapshotBody): Promise<void> {
    if (this.stopped || this.fatalError !== undefined || this.removedFromCluster) throw errors.stopped();
    const index = (message.snapshot as Snapshot).metadata.index;
    const bytes = await storeSnapshotDb(body, join(this.paths.snapDir, snapDbFileName(index)));
    this.logger.info({ 'remote-peer-id': formatId(message.from), index, 'db-bytes': bytes }, 'received and saved database snapshot');
    this.receive([message]);
  }

  /**
   * Replaces the state with a snapshot Raft accepted (etcd's applySnapshot): the received database
   * becomes the backend, the store, lessor and membership are rebuilt from it, and watchers re-read
   * history. It serves from the new backend at once; the old one is closed and removed behind it.
   */
  private async installSnapshot(snapshot: Snapshot): Promise<void> {
    const { index, term } = snapshot.metadata;
    const staged = stageReceivedDb(this.paths.snapDir, this.paths.backendPath, index);
    const old = this.backend;
    this.backend = LmdbBackend.open(staged, backendOptions(this.config));
    this.store.restoreFrom(this.backend);
    if (this.lessor.isPrimary) this.lessor.demote();
    this.lessor.recover(this.backend);
    this.lessor.recoverAttachments(this.store.takeRestoredLeases());
    this.watchable.resync();
    this.restoreMembership(decodeMembership(snapshot.data, `snapshot at index ${index}`));
    this.appliedIndex = index;
    this.snapshotIndex = index;
    this.logBytesAfterCompaction = 0;
    await old.close();
    finishInstall(staged, this.paths.backendPath);
    purgeSnapFiles(this.paths.snapDir, this.config.maxSnapshots);
    this.logger.info(
      { index, term, 'backend-consistent-index': this.store.consistentIndex, 'backend-revision': this.store.currentRevision },
      'applied snapshot from the leader',
    );
  }

  /** The membership a snapshot records: members, and the IDs removed for good. */
  private membership(): SnapshotMembership {
    return { members: sortMembers(this.members.values()).map(cloneMember), removed: [...this.removedIds] };
  }

  /** Takes a snapshot's membership: peers no longer in it are dropped, new ones connected. */
  private restoreMembership({ members, removed }: SnapshotMembership): void {
    const previous = [...this.members.keys()];
    this.members.clear();
    this.voters.clear();
    for (const member of members) {
      this.members.set(member.id, cloneMember(member));
      if (!member.isLearner) this.voters.add(member.id);
    }
    for (const id of removed) this.removedIds.add(id);
    for (const id of previous) if (!this.members.has(id) && this.connectedPeers.delete(id)) this.transport.removePeer(id);
    for (const member of this.members.values()) this.connectPeer(member);
  }

  private applyProposal(entry: Entry): void {
    // An entry replayed after a restart that the store already holds changes nothing, and nobody
    // waits for it; only member attributes, which live with the membership, are applied again.
    // Skipping the decode keeps a restart over a long WAL tail short.
    if (entry.index <= this.store.consistentIndex && this.pending.size === 0 && !mayBeMemberAttributes(entry.data)) return;
    const envelope = decodeProposal(entry.data);
    const mine = envelope.origin === this.identity.memberId;
    const waiter = mine ? this.pending.get(envelope.id) : undefined;
    if (waiter !== undefined) this.pending.delete(envelope.id);
    const body = envelope.body;
    // Member attributes live with the membership, not in the backend: replayed entries set them again.
    if (body.type === 'memberAttributes') this.applyMemberAttributes(body.memberAttributes);
    if (entry.index <= this.store.consistentIndex) {
      waiter?.reject(errors.stopped());
      return;
    }
    let result: ProposalResult;
    try {
      if (body.type === 'memberAttributes') {
        this.store.recordApplied(entry.index, entry.term);
        result = { type: 'memberAttributes' };
      } else {
        result =
          body.type === 'leaseGrant' || body.type === 'leaseRevoke' || body.type === 'leaseCheckpoint'
            ? applyLeaseProposal(this.lessor, this.store, entry, body, leaseClockMs())
            : this.store.apply(entry.index, entry.term, body);
      }
    } catch (error) {
      if (!(error instanceof EtcdError)) throw error;
      waiter?.reject(error);
      return;
    }
    waiter?.resolve({ result, revision: this.store.currentRevision });
  }

  private serveReads(): void {
    while (this.readsByIndex.length > 0 && (this.readsByIndex[0] as { index: number }).index <= this.appliedIndex) {
      const due = this.readsByIndex.shift() as { reads: PendingRead[] };
      for (const read of due.reads) read.run();
    }
  }

  /**
   * A snapshot is due every --snapshot-count applied entries, as in etcd, and also once the
   * in-memory log has grown by raftLogGrowthBytesMax since its last compaction: a log of large
   * entries (big values, batched txns) would otherwise hold hundreds of MB until the count is
   * reached, where the WAL already holds every entry on disk.
   */
  private snapshotDue(): boolean {
    if (this.appliedIndex <= this.snapshotIndex) return false;
    if (this.appliedIndex - this.snapshotIndex >= this.config.snapshotCount) return true;
    return this.storage.entryBytes() - this.logBytesAfterCompaction >= raftLogGrowthBytesMax;
  }

  /**
   * Records a snapshot at the applied index, as etcd does every --snapshot-count entries: the
   * backend is flushed (it holds the state up to that index), the membership is saved in a snap
   * file, the WAL notes the snapshot and drops segments behind it, and the in-memory log keeps
   * only a tail for followers to catch up from: etcd's 5,000 entries, or fewer when those would
   * hold more than snapshotCatchUpBytesMax. A follower further behind gets the snapshot.
   */
  private async takeSnapshot(): Promise<void> {
    const index = this.appliedIndex;
    const term = this.storage.term(index);
    const confState = this.raft.confState();
    try {
      await this.backend.flush();
      const data = encodeMembership(this.membership());
      saveSnapFile(this.paths.snapDir, { data, metadata: { index, term, confState } });
      this.storage.createSnapshot(index, confState, data);
      await this.wal.saveSnapshot(index, term);
      const compactIndex = Math.max(index - snapshotCatchUpEntriesDefault, this.storage.compactIndexKeeping(index, snapshotCatchUpBytesMax));
      if (compactIndex > this.storage.firstIndex()) this.storage.compact(compactIndex);
      this.logBytesAfterCompaction = this.storage.entryBytes();
      await this.wal.releaseTo(index);
      purgeSnapFiles(this.paths.snapDir, this.config.maxSnapshots);
      this.snapshotIndex = index;
      this.logger.info({ index, term }, 'saved snapshot');
    } catch (error) {
      this.fail(error as Error);
    }
  }

  private fail(error: Error): void {
    this.fatalError = error;
    this.logger.fatal({ error: error.message, stack: error.stack }, 'member failed; stopping');
    this.onFatal(error);
  }

  /** Stops serving, fails whatever still waits, flushes the backend and closes the WAL. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.ticker !== undefined) clearInterval(this.ticker);
    clearTimeout(this.heldCommitNoticesTimer);
    this.expiryLoop?.stop();
    this.watchDriver?.stop();
    for (const waiter of this.pending.values()) waiter.reject(errors.stopped());
    this.pending.clear();
    for (const waiter of this.confChangeWaiters.values()) waiter.reject(errors.stopped());
    this.confChangeWaiters.clear();
    const reads = [...this.readWaitersUnsent, ...[...this.readsByContext.values()].flat(), ...this.readsByIndex.flatMap((item) => item.reads)];
    for (const read of reads) read.fail(errors.stopped());
    while (this.draining) await new Promise((resolve) => setTimeout(resolve, 1));
    await this.applyChain;
    await this.snapshotting;
    await this.transport?.close();
    await Promise.all(this.snapshotSends);
    await this.backend.close();
    await this.wal.close();
  }
}

/** What a lease grant adds to the backend, as etcd's quota counts it. */
const leaseCostBytes = 64;
/** Per-key overhead etcd's quota adds to a put's key and value bytes. */
const putOverheadBytes = 128;

function putCostBytes(put: PutRequest): number {
  return put.key.length + put.value.length + putOverheadBytes;
}

/** A txn costs what its costlier branch writes (etcd's rule), nested txns included. */
function txnCostBytes(txn: TxnRequest): number {
  const branchCost = (ops: TxnRequest['success']) =>
    ops.reduce((sum, op) => sum + (op.type === 'put' ? putCostBytes(op.put) : op.type === 'txn' ? txnCostBytes(op.txn) : 0), 0);
  return Math.max(branchCost(txn.success), branchCost(txn.failure));
}

/** Readies whose WAL writes may be in flight at once (the pipeline depth of the Raft loop). */
const appendsInFlightMax = 4;
/** The longest a commit notice to a follower with no client waiting waits for company. */
const commitNoticeHoldMs = 5;
/** etcd's request timeout is 5 s plus two election timeouts. */
const requestTimeoutBaseMs = 5_000;
/** MoveLeader waits at most this many election timeouts for the transferee to lead. */
const leaderTransferTimeoutsMax = 3;
/** Rounds of asking the --initial-cluster peers for the member list when joining. */
const joinFetchAttemptsMax = 10;
/** Pause between those rounds, and each request's timeout. */
const joinFetchRetryMs = 500;
const joinFetchTimeoutMs = 1_000;
/** Pause between rounds of a forwarded lease call (etcd throttles its retries the same way). */
const leaseForwardRetryMs = 50;

/** etcd's join: the members named in --initial-cluster (other than this one) tell who this member is. */
async function joinExistingCluster(config: MemberConfig, logger: Logger): Promise<{ identity: MemberIdentity; peers: ClusterMember[] }> {
  const ownUrls = config.initialCluster.find((member) => member.name === config.name)?.peerUrls ?? config.initialAdvertisePeerUrls;
  const peerUrls = config.initialCluster.filter((member) => member.name !== config.name).flatMap((member) => member.peerUrls);
  let failures: string[] = ['no peer URLs in --initial-cluster besides this member'];
  for (let attempt = 0; attempt < joinFetchAttemptsMax && peerUrls.length > 0; attempt++) {
    if (attempt > 0) await new Promise((resolve) => setTimeout(resolve, joinFetchRetryMs));
    const fetched = await fetchClusterFromPeers(peerUrls, joinFetchTimeoutMs, config.peerTls);
    if ('failures' in fetched) {
      failures = fetched.failures;
      continue;
    }
    const self = fetched.members.find((member) => sameUrls(member.peerUrls, ownUrls));
    if (self === undefined) {
      throw new Error(`error validating peerURLs: member with peer URLs ${ownUrls.join(',')} is not in the cluster's member list from ${fetched.from} (add it with member add first)`);
    }
    logger.info({ 'local-member-id': formatId(self.id), 'cluster-id': formatId(fetched.clusterId), from: fetched.from }, 'learned identity from the existing cluster');
    return { identity: { memberId: self.id, clusterId: fetched.clusterId }, peers: fetched.members.filter((member) => member.id !== self.id) };
  }
  throw new Error(`cannot fetch cluster info from peer urls: could not retrieve cluster information from the given URLs (${failures.join('; ')})`);
}

/** One monotonic clock for every lease time, immune to wall-clock jumps. */
function leaseClockMs(): number {
  return performance.timeOrigin + performance.now();
}

/** A new cluster's first entries: one committed AddNode per initial member, as etcd bootstraps. */
async function bootstrapLog(wal: WalClient, storage: MemoryStorage, members: ClusterMember[]): Promise<void> {
  const entries: Entry[] = members.map((member, position) => ({
    term: 1,
    index: position + 1,
    type: EntryType.confChange,
    data: encodeConfChange({ type: ConfChangeType.addNode, nodeId: member.id, context: encodeMemberContext(member) }),
  }));
  const hardState: HardState = { term: 1, vote: 0n, commit: entries.length };
  await wal.append(entries, hardState);
  storage.append(entries);
  storage.setHardState(hardState);
}
