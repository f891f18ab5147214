/**
 * A member: the Raft node, its WAL, its MVCC store and the client API, wired along the data path.
 *
 *   client -> KvFront (kv-api.ts) -> RaftLoop.propose (raft-loop.ts) -> Ready -> WAL append +
 *   fsync (WAL thread) -> Applier (apply.ts) applies committed entries to the KvStore -> the
 *   waiting request is answered.
 *
 * This file only builds the parts in order, each from the ones before it (bootstrap.ts opens
 * what they share), connects the transport's callbacks to them, and keeps the public surface the
 * client port and the worker use. Its lifecycle (machines/member-lifecycle.ts) is what every part
 * consults to refuse work once the member stops, fails or is removed.
 */
import { AuthStore } from '../../src/auth/auth-store.js';
import { applyAuthBootstrap } from './auth-bootstrap.js';
import type { MessagePort, Worker } from 'node:worker_threads';
import type { MemberConfig } from '../../src/config/config.js';
import { errors } from '../../src/api/errors.js';
import { goDurationString } from '../../src/lib/go-duration.js';
import type {
  CompactionRequest,
  DeleteRangeRequest,
  DeleteRangeResult,
  KvService,
  PutRequest,
  PutResult,
  RangeRequest,
  RangeResult,
  ResponseHeader,
  TxnRequest,
  TxnResult,
} from '../../src/api/types.js';
import type { ClusterMember } from '../../src/membership/cluster-member.js';
import { promoteExtendMs, type LeaseTimeToLive } from '../../src/lease/lessor.js';
import { firstProposalIdAt, ProposalWaiters } from '../../src/server/proposal-waiters.js';
import { ReadIndexQueue, readIndexContextPrefix } from '../../src/server/read-index-queue.js';
import { Waiters, type Waiter } from '../../src/server/waiters.js';
import { RaftRole } from '../../src/raft/types.js';
import {
  AlarmAction,
  AlarmType,
  alarmTypeName,
  describeAlarm,
  type AlarmChange,
  type AlarmMember,
  type AlarmRequest,
} from '../../src/alarm/alarm-store.js';
import type { WatchableStore } from '../../src/watch/watchable-store.js';
import { MemberLifecycle } from '../../machines/member-lifecycle.js';
import type { MachineInspect } from '../../machines/raft-role.js';
import type { RawNode } from '../../machines/raw-node.js';
import type { LeaseApi } from '../client/grpc/lease-service.js';
import type { WatchDriver } from '../client/grpc/watch-service.js';
import { servePeerCall, type PeerApiHost } from '../peer/api.js';
import type { RaftTransport } from '../peer/links.js';
import { peerRefusals, PeerTransport } from '../peer/ws-transport.js';
import { failpointAsync, failpointsOn } from '../shared/failpoints.js';
import type { Logger } from '../shared/logger.js';
import { WalFailedError, type WalClient } from '../wal/client.js';
import { Applier, type Applied } from './apply.js';
import { AuthFront } from './auth-api.js';
import { createTokenProvider, type TokenProvider } from './auth-tokens.js';
import { PasswordPool } from './password-pool.js';
import type { CallerCredentials } from '../../src/auth/types.js';
import { checkLeaseKeys } from '../../src/auth/enforce.js';
import { openMember, type MemberIdentity, type OpenedMember } from './bootstrap.js';
import { Cluster } from './cluster.js';
import { requestTimeoutMs } from './clock.js';
import type { KeySpace } from './key-space.js';
import { KvFront } from './kv-api.js';
import { LeaseFront } from './lease-api.js';
import { Membership } from './membership.js';
import { ClusterVersionMonitor } from './cluster-version.js';
import { MemberMetrics, type MemberSample } from './metrics.js';
import { BackendQuota } from './quota.js';
import { RaftLoop } from './raft-loop.js';
import { Snapshots } from './snapshots.js';
import { defragStagingDir, finishInstall } from './snapshot-install.js';
import { CorruptionCheck } from './corruption.js';
import { AutoCompaction } from './auto-compaction.js';
import { BackupPool, type BackupParts, type BackupStream } from './backup.js';
import { RoleTimeline } from './role-timeline.js';
import { type ClusterView, gatherClusterView, type MemberView } from './dashboard-view.js';
import { formatId } from '../../src/membership/ids.js';
import { bcryptCostDefault, bcryptCostMax, bcryptCostMin } from '../../src/lib/limits.js';

export { memberPaths, type MemberIdentity, type MemberPaths } from './bootstrap.js';

/** Proposals still waiting when the member stops are failed with etcd's "server stopped". */
export class Member implements KvService, LeaseApi {
  readonly identity: MemberIdentity;
  /** Watchers of this member's store (fed by every applied write). */
  readonly watchable: WatchableStore;
  readonly watchDriver: WatchDriver;
  /** This member's metrics in etcd's names, served at /metrics. */
  readonly metrics: MemberMetrics;
  /** This member's recent role transitions and leader changes, shown by the dashboard. */
  readonly timeline = new RoleTimeline();
  private readonly lifecycle: MemberLifecycle;
  private readonly proposals = new ProposalWaiters<Applied>(firstProposalIdAt(Date.now()));
  private readonly reads: ReadIndexQueue<Waiter<void>>;
  private readonly confChangeWaiters = new Waiters<bigint, ClusterMember[]>();
  private readonly raft: RawNode;
  private readonly storage: OpenedMember['storage'];
  private readonly wal: WalClient;
  private readonly keySpace: KeySpace;
  private readonly transport: RaftTransport<unknown>;
  private readonly quota: BackendQuota;
  private readonly membership: Membership;
  private readonly applier: Applier;
  private readonly snapshots: Snapshots;
  private readonly loop: RaftLoop;
  private readonly cluster: Cluster;
  private readonly kv: KvFront;
  private readonly lease: LeaseFront;
  private readonly paths: OpenedMember['paths'];
  private readonly corruption: CorruptionCheck;
  private readonly autoCompaction: AutoCompaction;
  private readonly versionMonitor: ClusterVersionMonitor;
  private readonly backups: BackupParts;
  private readonly backupPool = new BackupPool();
  /** The Auth service, and who a call comes from while auth is enabled. */
  readonly auth: AuthFront;
  private readonly tokens: TokenProvider;
  private readonly passwords: PasswordPool;

  /** Builds the parts in order, each from the ones before it; nothing runs until run(). */
  private constructor(
    readonly config: MemberConfig,
    private readonly logger: Logger,
    private readonly onFatal: (error: Error) => void,
    opened: OpenedMember,
    peerPorts: Map<bigint, MessagePort> | undefined,
  ) {
    const { identity, raft, storage, wal, keySpace, transport, paths } = opened;
    this.identity = identity;
    this.raft = raft;
    this.storage = storage;
    this.wal = wal;
    this.keySpace = keySpace;
    this.transport = transport;
    this.paths = paths;
    this.lifecycle = new MemberLifecycle(opened.inspect);
    this.reads = new ReadIndexQueue(readIndexContextPrefix(identity.memberId, Date.now()));
    const { lifecycle, proposals, reads, confChangeWaiters } = this;
    const memberId = identity.memberId;
    const fail = (error: Error) => this.fail(error);
    this.watchable = keySpace.watchable;
    this.backups = {
      snapDir: paths.snapDir,
      backend: () => keySpace.backend,
      membership: () => this.membership.snapshotMembership(),
      alarms: () => this.alarms(),
      logger,
    };
    this.watchDriver = keySpace.watchDriver;
    this.quota = new BackendQuota(
      config.quotaBackendBytes,
      () => keySpace.backend.sizeBytes(),
      () => this.raiseAlarm(AlarmType.noSpace),
    );
    const initialVoters = storage.initialState().confState.voters;
    this.membership = new Membership(
      { memberId, clusterId: identity.clusterId, raft, transport, peerPorts, confChangeWaiters, lifecycle, logger },
      opened.snapshotMembership,
      initialVoters,
    );
    const { membership } = this;
    const extendMs = promoteExtendMs(opened.electionTicks, config.heartbeatIntervalMs);
    this.tokens = createTokenProvider(config);
    this.passwords = new PasswordPool(usableBcryptCost(config.bcryptCost, logger));
    const { tokens, passwords } = this;
    this.applier = new Applier(
      {
        memberId,
        keySpace,
        proposals,
        membership,
        raft,
        promoteExtendMs: extendMs,
        tokens,
        quota: this.quota,
        raiseNoSpace: () => {
          logger.warn(
            { 'quota-size-bytes': config.quotaBackendBytes, error: errors.noSpace().message },
            'message exceeded backend quota; raising alarm',
          );
          void this.raiseAlarm(AlarmType.noSpace);
        },
        onAlarmTransition: (change) => this.logAlarmTransition(change),
        onEmptyEntry: () => this.versionMonitor.check(),
        warningApplyMs: config.warningApplyMs,
        onSlowApply: (tookMs, warningApplyMs, entry) =>
          logger.warn(
            {
              took: goDurationString(tookMs * 1e6),
              'expected-duration': goDurationString(warningApplyMs * 1e6),
              index: entry.index,
            },
            'apply request took too long',
          ),
      },
      storage.firstIndex() - 1,
    );
    const { applier } = this;
    this.snapshots = new Snapshots(
      { config, paths, storage, wal, raft, keySpace, membership, applier, transport, lifecycle, logger, fail },
      opened.snapshotIndex,
    );
    const { snapshots } = this;
    const heartbeatIntervalMs = config.heartbeatIntervalMs;
    this.loop = new RaftLoop({
      memberId,
      heartbeatIntervalMs,
      raft,
      storage,
      wal,
      transport,
      lifecycle,
      proposals,
      reads,
      applier,
      snapshots,
      membership,
      timeline: this.timeline,
      initialElectionTickAdvance: config.initialElectionTickAdvance,
      electionTicks: opened.electionTicks,
      requestTimeoutMs: requestTimeoutMs(config),
      logger,
      fail,
    });
    const { loop, quota } = this;
    this.cluster = new Cluster({
      config,
      memberId,
      clusterId: identity.clusterId,
      membership,
      raft,
      loop,
      confChangeWaiters,
      transport,
      lifecycle,
      logger,
    });
    this.auth = new AuthFront({
      config,
      keySpace,
      loop,
      readBarrier: () => this.kv.linearizableBarrier(),
      appliedIndex: () => applier.index,
      tokens,
      passwords,
    });
    const { auth } = this;
    const requestTimeout = requestTimeoutMs(config);
    this.kv = new KvFront({
      auth,
      identity,
      keySpace,
      raft,
      loop,
      reads,
      quota,
      lifecycle,
      requestTimeoutMs: requestTimeout,
    });
    this.lease = new LeaseFront({
      config,
      memberId,
      lessor: keySpace.lessor,
      raft,
      loop,
      transport,
      quota,
      lifecycle,
      logger,
    });
    this.corruption = new CorruptionCheck({
      memberId,
      electionTimeoutMs: config.electionTimeoutMs,
      members: () => membership.all.values(),
      transport,
      hashKv: (revision) => this.hashKv(revision),
      linearizableRead: () => this.kv.linearizableBarrier(),
      isLeader: () => this.isLeader(),
      // etcd raises a CORRUPT its leader finds for member 0, not for the member that differs.
      raiseCorrupt: () => this.raiseAlarm(AlarmType.corrupt, 0n),
      logger,
    });
    this.autoCompaction = new AutoCompaction({
      config,
      currentRevision: () => keySpace.store.currentRevision,
      isLeader: () => this.isLeader(),
      compact: (revision) => loop.propose({ type: 'compaction', compaction: { revision, physical: false } }),
      logger,
    });
    this.versionMonitor = new ClusterVersionMonitor({ memberId, membership, raft, loop, transport, lifecycle, logger });
    this.metrics = new MemberMetrics(config.metrics, () => this.metricsSample());
    wal.observeSyncs((syncMs) => this.metrics.observeWalSync(syncMs));
    this.snapshots.observeTimings(this.metrics.snapshotTimings());
    keySpace.observeCommits((commit) => {
      this.metrics.observeBackendCommit(commit);
      // etcd exits when bbolt cannot commit: the WAL still holds what the commit would have kept.
      commit.catch((error: Error) => this.fail(error, 'failed to commit tx'));
    });
    lifecycle.onTaken('REMOVED', () => this.stopAfterRemoval());
  }

  /** The numbers a metrics scrape reports, read from the parts that keep them. */
  private metricsSample(): MemberSample {
    const raftStatus = this.raft.status();
    const { store, backend } = this.keySpace;
    const dbBytes = backend.sizeBytes();
    return {
      memberId: this.identity.memberId,
      leaderId: raftStatus.leaderId,
      isLeader: raftStatus.role === RaftRole.leader,
      isLearner: this.isLearner(),
      clusterVersion: this.clusterVersion(),
      leaderChanges: this.loop.counts.leaderChanges,
      heartbeatSendFailures: this.loop.counts.heartbeatSendFailures,
      slowApplies: this.applier.slowApplies,
      proposalsCommitted: raftStatus.commit,
      proposalsApplied: this.applier.index,
      proposalsPending: this.proposals.size,
      proposalsFailed: this.proposals.failed,
      quotaBackendBytes: this.config.quotaBackendBytes,
      dbTotalBytes: dbBytes,
      dbInUseBytes: backend.sizeInUseBytes(),
      keys: store.liveKeys,
      mvcc: store.opCounts,
      peerBytes: this.transport.peerBytes(),
      walWrittenBytes: this.wal.writtenBytes(),
      openReadTransactions: backend.openReadTransactions(),
      applyingSnapshot: this.snapshots.installing,
      readIndexesFailed: this.reads.failedRequests,
      readIndexesSlow: this.reads.timedOutReads,
      promotions: this.cluster.promotions,
    };
  }

  /** Opens (or bootstraps) the member's data dir and starts its Raft loop; the caller publishes it (publish) and serves clients. */
  static async start(
    config: MemberConfig,
    logger: Logger,
    onFatal: (error: Error) => void,
    peerPorts?: Map<bigint, MessagePort>,
    walThread?: Worker,
    inspect?: MachineInspect,
  ): Promise<Member> {
    const opened = await openMember(config, logger, peerPorts, walThread, inspect);
    const member = new Member(config, logger, onFatal, opened, peerPorts);
    await member.run(opened);
    return member;
  }

  /** Links the peers, replays the log up to what is committed, then ticks and serves. */
  private async run(opened: OpenedMember): Promise<void> {
    this.connectTransport();
    await this.transport.start();
    this.membership.connectAll(opened.joinPeers);
    this.logger.info(opened.startLog.fields, opened.startLog.message);
    await this.loop.catchUp();
    if (this.config.initialCorruptCheck && opened.restarted) await this.corruption.initialCheck();
    this.lifecycle.send({ type: 'STARTED' });
    if (this.lifecycle.stopRequested) return;
    this.loop.startTicking();
    this.lease.startExpiryLoop();
    this.corruption.start(this.config.corruptCheckTimeMs);
    this.autoCompaction.start();
    this.versionMonitor.start();
    if (opened.newCluster && this.config.authBootstrapFile !== '') void this.bootstrapAuth();
  }

  /**
   * Publishes this member's name and client URLs through Raft (etcd's publish); resolves once
   * they landed, and never when the member stops first. The caller binds the client URLs before
   * and serves them after, as etcd does.
   */
  publish(): Promise<void> {
    return this.cluster.publishAttributes();
  }

  /**
   * Starts the password-checking thread now if auth is enabled, once the member serves: the first
   * Authenticate after a start would otherwise also pay for the thread and its bcrypt load.
   */
  preparePasswordChecks(): void {
    if (this.keySpace.auth.enabled) this.passwords.prestart();
  }

  /** --auth-bootstrap-file, applied by the first leader of a new cluster (auth-bootstrap.ts). */
  private async bootstrapAuth(): Promise<void> {
    const { keySpace, raft, lifecycle } = this;
    await applyAuthBootstrap({
      config: this.config,
      auth: this.auth,
      authUntouched: () => !keySpace.auth.enabled && keySpace.auth.revision === AuthStore.decode(undefined).revision,
      leaderId: () => raft.status().leaderId,
      memberId: this.identity.memberId,
      readBarrier: () => this.kv.linearizableBarrier(),
      stopRequested: () => lifecycle.stopRequested,
      logger: this.logger,
    });
  }

  private connectTransport(): void {
    const { transport, loop, raft, snapshots } = this;
    if (transport instanceof PeerTransport)
      transport.onRemoved(() => this.membership.leave('a peer refused this member as removed'));
    transport.onMessages((messages) => loop.receive(messages));
    transport.onUnreachable((id) => raft.reportUnreachable(id));
    transport.onSnapshotStatus((id, ok) => raft.reportSnapshot(id, ok));
    transport.onSnapshot(async (message, body) => {
      await snapshots.storeReceived(message, body);
      loop.receive([message]);
    });
    const peerApi = this.peerApi();
    transport.onCall((call) => servePeerCall(peerApi, call));
  }

  /** What the peer API (actors/peer/api.ts) answers followers with. */
  private peerApi(): PeerApiHost {
    return {
      members: () => this.membership.all.values(),
      promoteAsLeader: (id) => this.cluster.promoteAsLeader(id),
      renewAsLeader: (id) => this.lease.renewAsLeader(id),
      timeToLiveAsLeader: (id, withKeys) => this.lease.timeToLiveAsLeader(id, withKeys),
      hashKv: (revision) => ({ memberId: this.identity.memberId, ...this.hashKv(revision) }),
      dashboardView: () => this.dashboardView(),
      clusterVersion: () => this.membership.clusterVersion,
    };
  }

  /** What the dashboard shows of this member (dashboard-view.ts). */
  dashboardView(): MemberView {
    const status = this.status();
    const { opCounts } = this.keySpace.store;
    return {
      id: formatId(status.memberId),
      name: this.config.name,
      role: status.role,
      term: status.raftTerm,
      leader: formatId(status.leaderId),
      commit: this.raft.status().commit,
      applied: status.raftAppliedIndex,
      revision: status.revision,
      dbSizeBytes: status.backendBytes,
      dbSizeInUseBytes: status.backendBytesInUse,
      isLearner: status.isLearner,
      requests: {
        put: opCounts.put,
        range: opCounts.range,
        delete: opCounts.delete,
        txn: opCounts.txn,
        grpc: this.metrics.grpcCallsStarted(),
      },
      atMs: Date.now(),
      transitions: this.timeline.recent(),
    };
  }

  /** Every member's dashboard view as this member gathers it: its own, and its peers' over the peer API. */
  clusterView(): Promise<ClusterView> {
    return gatherClusterView({
      memberId: this.identity.memberId,
      members: () => this.membership.all.values(),
      localView: () => this.dashboardView(),
      transport: this.transport,
    });
  }

  /** The header every response carries, as of the store's current revision. */
  header(): ResponseHeader {
    return this.kv.header();
  }

  /** The header of a write's answer: the revision its own apply left the store at. */
  headerAt(revision: number): ResponseHeader {
    return this.kv.headerAt(revision);
  }

  status(): MemberRunStatus {
    const raftStatus = this.raft.status();
    const { store } = this.keySpace;
    return {
      memberId: this.identity.memberId,
      clusterId: this.identity.clusterId,
      leaderId: raftStatus.leaderId,
      role: raftStatus.role,
      raftTerm: raftStatus.term,
      raftIndex: this.storage.lastIndex(),
      raftAppliedIndex: this.applier.index,
      revision: store.currentRevision,
      compactRevision: store.compactRevision,
      backendBytes: this.keySpace.backend.sizeBytes(),
      backendBytesInUse: this.keySpace.backend.sizeInUseBytes(),
      isLearner: this.isLearner(),
    };
  }

  /** Whether this member knows a leader (clientv3's WithRequireLeader asks). */
  hasLeader(): boolean {
    return this.raft.status().leaderId !== 0n;
  }

  /** Status.errors as etcd fills it: "etcdserver: no leader" without a leader, then each alarm. */
  statusErrors(): string[] {
    const found = this.raft.status().leaderId === 0n ? [errors.noLeader().message] : [];
    return [...found, ...this.alarms().map(describeAlarm)];
  }

  /**
   * etcd's Defragment: the backend is rewritten compactly while applies wait, then the compacted
   * copy takes the backend's place on disk.
   */
  async defragment(): Promise<void> {
    if (this.lifecycle.stopRequested) throw errors.stopped();
    const { backendPath } = this.paths;
    const stagingDir = defragStagingDir(backendPath);
    this.logger.info({}, 'starting defragment');
    const before = this.keySpace.backend.sizeBytes();
    await this.metrics.defragmenting(() =>
      this.loop.holdingApplies(async () => {
        if (failpointsOn) await failpointAsync('defragBeforeCopy');
        await this.keySpace.backend.defragment(stagingDir);
        if (failpointsOn) await failpointAsync('defragBeforeRename');
        finishInstall(stagingDir, backendPath);
      }),
    );
    this.logger.info(
      { 'current-db-size-bytes': before, 'new-db-size-bytes': this.keySpace.backend.sizeBytes() },
      'finished defragment',
    );
  }

  /** etcd's Hash over the whole backend in etcd's bucket layout, so it equals etcd's for the same history. */
  async hash(): Promise<{ hash: number; revision: number }> {
    const revision = this.keySpace.store.currentRevision;
    const startedAt = performance.now();
    const hash = await this.backupPool.hash(this.backups);
    this.metrics.observeHash(startedAt);
    return { hash, revision };
  }

  /** The cluster version the members applied ("3.4.0"), or undefined while none is (/version's not_decided). */
  clusterVersion(): string | undefined {
    return this.membership.clusterVersion;
  }

  /** True when this member is a learner of the cluster (it replicates but does not vote). */
  isLearner(): boolean {
    return this.membership.isLearner();
  }

  /** The cluster's members, sorted by ID, as MemberList answers. */
  memberList(): ClusterMember[] {
    return this.membership.memberList();
  }

  /** etcd's HashKV over the store at `revision` (0: current). */
  hashKv(revision: number): { hash: number; revision: number; compactRevision: number } {
    const startedAt = performance.now();
    const hashed = this.kv.hashKv(revision);
    this.metrics.observeHashRev(startedAt);
    return hashed;
  }

  /** True when no alarm stands and this member knows a leader and has not failed or stopped. */
  healthy(): boolean {
    return this.unhealthyReason() === undefined;
  }

  /**
   * Why /health answers false ("ALARM NOSPACE", "RAFT NO LEADER"; kept for the logs, etcd 3.4's body has no reason), or undefined;
   * alarms named in `excludedAlarms` (etcd's /health?exclude=NOSPACE) do not count.
   */
  unhealthyReason(excludedAlarms: ReadonlySet<string> = new Set()): string | undefined {
    const { lifecycle } = this;
    const raised = this.alarms().find((member) => !excludedAlarms.has(alarmTypeName(member.alarm)));
    if (raised !== undefined) return `ALARM ${alarmTypeName(raised.alarm)}`;
    if (lifecycle.stopRequested || lifecycle.fatalError !== undefined) return 'SERVER STOPPED';
    if (this.raft.status().leaderId === 0n) return 'RAFT NO LEADER';
    return undefined;
  }

  /** The alarms raised in the cluster, as this member has applied them. */
  alarms(): AlarmMember[] {
    return this.keySpace.alarms.get(AlarmType.none);
  }

  /** etcd's Alarm RPC: GET, ACTIVATE and DEACTIVATE all go through Raft, as in etcd. */
  async alarm(request: AlarmRequest): Promise<{ header: ResponseHeader; alarms: AlarmMember[] }> {
    const { result } = await this.loop.propose({ type: 'alarm', alarm: request });
    return { header: this.header(), alarms: (result as { alarm: { alarms: AlarmMember[] } }).alarm.alarms };
  }

  /** Proposes this member's alarm of `alarm`; a failed proposal is logged, as etcd ignores it. */
  async raiseAlarm(alarm: AlarmType, memberId = this.identity.memberId): Promise<void> {
    const request = { action: AlarmAction.activate, memberId, alarm };
    try {
      await this.loop.propose({ type: 'alarm', alarm: request });
    } catch (error) {
      this.logger.warn({ alarm: alarmTypeName(alarm), error: (error as Error).message }, 'failed to raise alarm');
    }
  }

  private logAlarmTransition(change: AlarmChange): void {
    const member = change.alarms[0];
    if (member === undefined) return;
    const fields = { alarm: alarmTypeName(member.alarm), from: member.memberId.toString(16) };
    this.logger.warn(fields, change.transition === 'raised' ? 'alarm raised' : 'alarm disarmed');
  }

  /**
   * A point-in-time copy of the backend as an etcd database file, for Maintenance.Snapshot; the
   * caller streams it and disposes of it.
   */
  backup(): Promise<BackupStream> {
    if (this.lifecycle.stopRequested) return Promise.reject(errors.stopped());
    const startedAt = performance.now();
    const timed = (stream: BackupStream) => onDispose(stream, () => this.metrics.observeBackendSnapshot(startedAt));
    return this.backupPool.open(this.backups).then(timed);
  }

  isLeader(): boolean {
    return this.cluster.isLeader();
  }

  range(
    request: RangeRequest,
    credentials?: CallerCredentials,
  ): Promise<{ header: ResponseHeader; result: RangeResult }> {
    return this.kv.range(request, credentials);
  }

  put(request: PutRequest, credentials?: CallerCredentials): Promise<{ header: ResponseHeader; result: PutResult }> {
    return this.kv.put(request, credentials);
  }

  deleteRange(
    request: DeleteRangeRequest,
    credentials?: CallerCredentials,
  ): Promise<{ header: ResponseHeader; result: DeleteRangeResult }> {
    return this.kv.deleteRange(request, credentials);
  }

  txn(request: TxnRequest, credentials?: CallerCredentials): Promise<{ header: ResponseHeader; result: TxnResult }> {
    return this.kv.txn(request, credentials);
  }

  compact(request: CompactionRequest, credentials?: CallerCredentials): Promise<{ header: ResponseHeader }> {
    return this.kv.compact(request, credentials);
  }

  /**
   * With auth enabled, the caller must be a user, as later etcd releases check; with auth
   * disabled, a token nobody issued is refused, as for every proposal.
   */
  async grant(
    id: bigint,
    ttlSeconds: number,
    credentials?: CallerCredentials,
  ): Promise<{ id: bigint; ttlSeconds: number }> {
    if (this.auth.enabled) await this.auth.requireUser(credentials);
    else if (credentials?.token !== undefined) await this.auth.refuseUnknownToken(credentials);
    return this.lease.grant(id, ttlSeconds);
  }

  /** With auth enabled, the caller is a user with write on every key the lease holds (checked again at apply). */
  async revoke(id: bigint, credentials?: CallerCredentials): Promise<void> {
    if (!this.auth.enabled) {
      if (credentials?.token !== undefined) await this.auth.refuseUnknownToken(credentials);
      return this.lease.revoke(id);
    }
    const caller = await this.auth.requireUser(credentials);
    checkLeaseKeys(this.keySpace.auth, caller, id, this.keySpace.lessor);
    return this.lease.revoke(id, caller);
  }

  /** With auth enabled, the caller is a user with write on every key the lease holds (later etcd's checkLeaseRenew). */
  async renew(id: bigint, credentials?: CallerCredentials): Promise<number> {
    if (this.auth.enabled) {
      const caller = await this.auth.requireUser(credentials);
      checkLeaseKeys(this.keySpace.auth, caller, id, this.keySpace.lessor);
    }
    return this.lease.renew(id);
  }

  /** With auth enabled, the caller is a user, who needs read on the lease's keys to list them, as later etcd releases check. */
  async timeToLive(id: bigint, withKeys: boolean, credentials?: CallerCredentials): Promise<LeaseTimeToLive> {
    const caller = this.auth.enabled ? await this.auth.requireUser(credentials) : undefined;
    if (caller !== undefined && withKeys) {
      for (const key of this.keySpace.lessor.keysOf(id)) this.keySpace.auth.checkRange(caller, key, new Uint8Array(0));
    }
    return this.lease.timeToLive(id, withKeys);
  }

  /** With auth enabled, the caller needs read on every key any lease holds (later etcd's checkLeaseLeases). */
  async leases(credentials?: CallerCredentials): Promise<bigint[]> {
    const ids = await this.lease.leases();
    const caller = this.auth.enabled ? await this.auth.requireUser(credentials) : undefined;
    if (caller === undefined) return ids;
    for (const id of ids) {
      for (const key of this.keySpace.lessor.keysOf(id)) this.keySpace.auth.checkRange(caller, key, new Uint8Array(0));
    }
    return ids;
  }

  addMember(peerUrls: string[], isLearner: boolean): Promise<{ member: ClusterMember; members: ClusterMember[] }> {
    return this.cluster.addMember(peerUrls, isLearner);
  }

  removeMember(id: bigint): Promise<ClusterMember[]> {
    return this.cluster.removeMember(id);
  }

  updateMember(id: bigint, peerUrls: string[]): Promise<ClusterMember[]> {
    return this.cluster.updateMember(id, peerUrls);
  }

  promoteMember(id: bigint): Promise<ClusterMember[]> {
    return this.cluster.promoteMember(id);
  }

  moveLeader(targetId: bigint): Promise<void> {
    return this.cluster.moveLeader(targetId);
  }

  /** The host:port addresses the peer port listens on (none for members linked by MessagePorts). */
  peerServingAddresses(): string[] {
    return this.transport instanceof PeerTransport ? this.transport.servingAddresses() : [];
  }

  /** Hands leadership to another voter before a stop when this member leads (etcd's TransferLeadership). */
  transferLeadershipBeforeStop(): Promise<void> {
    return this.cluster.transferLeadershipBeforeStop();
  }

  /** Stops serving, fails whatever still waits, flushes the backend and closes the WAL. */
  async stop(): Promise<void> {
    if (!this.lifecycle.send({ type: 'STOP' })) return;
    this.loop.stopTicking();
    this.lease.stop();
    this.corruption.stop();
    this.autoCompaction.stop();
    this.versionMonitor.stop();
    this.watchDriver.stop();
    this.proposals.failAll(errors.stopped);
    this.confChangeWaiters.failAll(errors.stopped);
    for (const read of this.reads.takeAll()) read.reject(errors.stopped());
    await this.loop.settle();
    await this.snapshots.settleTaking();
    await this.transport.close();
    await this.snapshots.settleSending();
    await this.keySpace.backend.close();
    await this.wal.close();
    this.tokens.close();
    await this.passwords.close();
    await this.backupPool.close();
    this.lifecycle.send({ type: 'STOPPED' });
  }

  private fail(error: Error, message = 'member failed; stopping'): void {
    if (this.lifecycle.fatalError !== undefined) return;
    this.lifecycle.send({ type: 'FATAL', error });
    // etcd exits with this message when its WAL cannot save a Ready (a failed write or fsync).
    if (error instanceof WalFailedError) message = 'failed to save Raft hard state and entries';
    this.logger.fatal({ error: error.message, stack: error.stack }, message);
    this.onFatal(error);
  }

  /**
   * Stops for good once this member knows it was removed, as etcd does; the grace period lets the
   * answer to the removal request and the last Raft messages leave first.
   */
  private stopAfterRemoval(): void {
    const timer = setTimeout(() => {
      void this.stop().finally(() => this.onFatal(new Error(peerRefusals.memberRemoved)));
    }, this.config.electionTimeoutMs);
    timer.unref();
  }
}

/** What status() reports: identity, Raft's view, the applied state and the backend's size. */
export interface MemberRunStatus {
  memberId: bigint;
  clusterId: bigint;
  leaderId: bigint;
  role: RaftRole;
  raftTerm: number;
  raftIndex: number;
  raftAppliedIndex: number;
  revision: number;
  compactRevision: number;
  backendBytes: number;
  /** The bytes of the backend's file its data uses (etcd's dbSizeInUse); the rest is free pages. */
  backendBytesInUse: number;
  isLearner: boolean;
}

/** --bcrypt-cost, or the default with etcd's warning when bcrypt refuses the cost given (etcd's NewAuthStore). */
function usableBcryptCost(given: number, logger: Logger): number {
  if (given >= bcryptCostMin && given <= bcryptCostMax) return given;
  logger.warn(
    { 'min-cost': bcryptCostMin, 'max-cost': bcryptCostMax, 'default-cost': bcryptCostDefault, 'given-cost': given },
    'use default bcrypt cost instead of the invalid given cost',
  );
  return bcryptCostDefault;
}

/** `stream` with `disposed` called once, after its first dispose(). */
function onDispose(stream: BackupStream, disposed: () => void): BackupStream {
  let done = false;
  return {
    get bytes() {
      return stream.bytes;
    },
    next: () => stream.next(),
    sha256: () => stream.sha256(),
    dispose: () => {
      stream.dispose();
      if (done) return;
      done = true;
      disposed();
    },
  };
}
