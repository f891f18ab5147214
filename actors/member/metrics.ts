/**
 * A member's metrics in etcd's names: one prom-client registry per member, on the member's own
 * thread. The member's parts keep plain numbers (kv-store op counts, raft-loop counts, gRPC
 * MethodStats, peer bytes); a scrape takes one sample of them and the registry's collect hooks
 * copy it into etcd's counters and gauges. Only the disk histograms are observed as things happen,
 * once per fsync or backend commit, and with --metrics extensive the gRPC handling times.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { etcdServerVersion } from '../../src/api/version.js';
import { clusterVersionLabel } from '../../src/membership/cluster-version.js';
import { eventLoopLagResolutionMs } from '../../src/lib/limits.js';
import { formatId } from '../../src/membership/ids.js';
import {
  etcdMetrics,
  grpcCodeNames,
  grpcPreinitialisedServices,
  scrapeCodes,
  type MetricSpec,
  type MetricsLevel,
} from '../../src/metrics/etcd-metrics.js';
import type { MvccOpCounts } from '../../src/mvcc/op-counts.js';
import type { GrpcRoutes } from '../client/grpc/calls.js';
import type { MethodStats } from '../client/grpc/call-stats.js';
import type { PeerBytes } from '../peer/links.js';
import type { PromotionCounts } from './cluster.js';
import type { SnapshotTimings } from './snapshots.js';

/** The member's numbers at one scrape. */
export interface MemberSample {
  memberId: bigint;
  leaderId: bigint;
  isLeader: boolean;
  isLearner: boolean;
  /** The cluster version applied ("3.4.0"), or undefined while none is. */
  clusterVersion: string | undefined;
  leaderChanges: number;
  heartbeatSendFailures: number;
  slowApplies: number;
  proposalsCommitted: number;
  proposalsApplied: number;
  proposalsPending: number;
  proposalsFailed: number;
  quotaBackendBytes: number;
  dbTotalBytes: number;
  dbInUseBytes: number;
  keys: number;
  mvcc: Readonly<MvccOpCounts>;
  peerBytes: PeerBytes;
  /** Bytes the WAL wrote, as of its last sync. */
  walWrittenBytes: number;
  /** Read transactions open on the backend. */
  openReadTransactions: number;
  /** Whether a snapshot from the leader is being installed. */
  applyingSnapshot: boolean;
  /** Read index requests failed by a leader change, and reads given up on after the request timeout. */
  readIndexesFailed: number;
  readIndexesSlow: number;
  promotions: Readonly<PromotionCounts>;
}

/** The Prometheus text format's content type, as etcd's promhttp answers it. */
export const metricsContentType = Registry.PROMETHEUS_CONTENT_TYPE;

type Labels = Record<string, string>;

function grpcLabels(stats: MethodStats): Labels {
  return { grpc_type: stats.type, grpc_service: stats.service, grpc_method: stats.method };
}

export class MemberMetrics {
  readonly registry = new Registry();
  private processMetricsRegistered = false;
  private latest: MemberSample;
  private readonly methods: MethodStats[] = [];
  private grpcRoutes: GrpcRoutes | undefined;
  private readonly walFsync: Histogram;
  private readonly backendCommit: Histogram;
  private readonly grpcHandling: Histogram | undefined;
  private readonly healthSuccess: Counter;
  private readonly healthFailures: Counter;
  private readonly defragDuration: Histogram;
  private readonly defragInflight: Gauge;
  private readonly backendSnapshot: Histogram;
  private readonly hashDuration: Histogram;
  private readonly hashRevDuration: Histogram;
  private readonly snapFsync: Histogram;
  private readonly snapDbFsync: Histogram;
  private readonly snapDbSave: Histogram;
  private readonly scrapesInFlight: Gauge;
  private readonly scrapes: Counter;
  private readonly handlingByMethod = new Map<MethodStats, Histogram.Internal<string>>();

  constructor(
    level: MetricsLevel,
    private readonly sample: () => MemberSample,
  ) {
    this.latest = sample();
    this.registerServer();
    this.registerMvcc();
    this.registerNetwork();
    this.registerGrpc();
    this.walFsync = this.histogram(etcdMetrics.walFsyncDuration);
    this.backendCommit = this.histogram(etcdMetrics.backendCommitDuration);
    if (level === 'extensive') this.grpcHandling = this.histogram(etcdMetrics.grpcHandlingSeconds);
    this.healthSuccess = this.eventCounter(etcdMetrics.healthSuccess);
    this.healthFailures = this.eventCounter(etcdMetrics.healthFailures);
    this.defragDuration = this.histogram(etcdMetrics.backendDefragDuration);
    this.defragInflight = new Gauge({ ...this.options(etcdMetrics.defragInflight) });
    this.backendSnapshot = this.histogram(etcdMetrics.backendSnapshotDuration);
    this.hashDuration = this.histogram(etcdMetrics.hashDuration);
    this.hashRevDuration = this.histogram(etcdMetrics.hashRevDuration);
    this.snapFsync = this.histogram(etcdMetrics.snapFsyncDuration);
    this.snapDbFsync = this.histogram(etcdMetrics.snapDbFsyncDuration);
    this.snapDbSave = this.histogram(etcdMetrics.snapDbSaveDuration);
    this.registerFileDescriptors();
    this.scrapesInFlight = new Gauge(this.options(etcdMetrics.scrapesInFlight));
    this.scrapes = new Counter({ ...this.options(etcdMetrics.scrapes), labelNames: etcdMetrics.scrapes.labelNames });
    for (const code of scrapeCodes) this.scrapes.inc({ code }, 0);
  }

  /**
   * The whole registry in Prometheus' text format, from one fresh sample. The process metrics
   * (process_*, nodejs_*) are registered at the first scrape: their event loop delay monitor runs
   * a timer and their GC counters a callback per collection, which a member nobody scrapes is
   * spared.
   */
  async text(): Promise<string> {
    if (!this.processMetricsRegistered) {
      collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: eventLoopLagResolutionMs });
      this.processMetricsRegistered = true;
    }
    // As etcd's promhttp handler: the scrape being served shows in flight, and counts once answered.
    this.scrapesInFlight.inc();
    try {
      this.latest = this.sample();
      const text = await this.registry.metrics();
      this.scrapes.inc({ code: '200' });
      return text;
    } catch (error) {
      this.scrapes.inc({ code: '500' });
      throw error;
    } finally {
      this.scrapesInFlight.dec();
    }
  }

  /** How long snap files and received snapshot databases take to store, for etcd's etcd_snap_* histograms. */
  snapshotTimings(): SnapshotTimings {
    return {
      snapFileSynced: (seconds) => this.snapFsync.observe(seconds),
      fsynced: (seconds) => this.snapDbFsync.observe(seconds),
      saved: (seconds) => this.snapDbSave.observe(seconds),
    };
  }

  /** gRPC calls started so far over every method: the sum of grpc_server_started_total. */
  grpcCallsStarted(): number {
    let started = 0;
    for (const stats of this.methods) started += stats.started;
    return started;
  }

  /** An fdatasync of the WAL took `syncMs`. */
  observeWalSync(syncMs: number): void {
    this.walFsync.observe(syncMs / 1000);
  }

  /** Times a backend commit from now until it settles. */
  observeBackendCommit(commit: Promise<unknown>): void {
    const startedAt = performance.now();
    const done = () => this.backendCommit.observe(secondsSince(startedAt));
    commit.then(done, done);
  }

  /** A /health check answered healthy or not. */
  countHealthCheck(healthy: boolean): void {
    (healthy ? this.healthSuccess : this.healthFailures).inc();
  }

  /** Runs a defragmentation, shown in flight while it runs and timed when it settles. */
  async defragmenting<T>(run: () => Promise<T>): Promise<T> {
    const startedAt = performance.now();
    this.defragInflight.set(1);
    try {
      return await run();
    } finally {
      this.defragInflight.set(0);
      this.defragDuration.observe(secondsSince(startedAt));
    }
  }

  /** A hash of the whole backend (Maintenance.Hash) started at `startedAt` (performance.now()) is done. */
  observeHash(startedAt: number): void {
    this.hashDuration.observe(secondsSince(startedAt));
  }

  /** A hash of the store by revision (HashKV) started at `startedAt` (performance.now()) is done. */
  observeHashRev(startedAt: number): void {
    this.hashRevDuration.observe(secondsSince(startedAt));
  }

  /** A backend snapshot (Maintenance.Snapshot) started at `startedAt` (performance.now()) was sent or dropped. */
  observeBackendSnapshot(startedAt: number): void {
    this.backendSnapshot.observe(secondsSince(startedAt));
  }

  /** The gRPC server whose calls the gRPC metrics report (every client URL shares it). */
  attachGrpc(routes: GrpcRoutes): void {
    this.grpcRoutes = routes;
    for (const route of routes.byPath.values()) this.methods.push(route.stats);
    const histogram = this.grpcHandling;
    if (histogram === undefined) return;
    for (const stats of this.methods) {
      const child = histogram.labels(grpcLabels(stats));
      this.handlingByMethod.set(stats, child);
      if (grpcPreinitialisedServices.has(stats.service)) histogram.zero(grpcLabels(stats));
    }
    routes.traffic.handlingObserver = (stats, seconds) => this.handlingByMethod.get(stats)?.observe(seconds);
  }

  private registerServer(): void {
    const sample = () => this.latest;
    this.gauge(etcdMetrics.hasLeader, () => Number(sample().leaderId !== 0n));
    this.gauge(etcdMetrics.isLeader, () => Number(sample().isLeader));
    this.gauge(etcdMetrics.isLearner, () => Number(sample().isLearner));
    this.counter(etcdMetrics.leaderChanges, () => sample().leaderChanges);
    this.counter(etcdMetrics.heartbeatSendFailures, () => sample().heartbeatSendFailures);
    this.counter(etcdMetrics.slowApplies, () => sample().slowApplies);
    this.gauge(etcdMetrics.proposalsCommitted, () => sample().proposalsCommitted);
    this.gauge(etcdMetrics.proposalsApplied, () => sample().proposalsApplied);
    this.gauge(etcdMetrics.proposalsPending, () => sample().proposalsPending);
    this.counter(etcdMetrics.proposalsFailed, () => sample().proposalsFailed);
    this.gauge(etcdMetrics.quotaBackendBytes, () => sample().quotaBackendBytes);
    this.gauge(etcdMetrics.walWriteBytes, () => sample().walWrittenBytes);
    this.gauge(etcdMetrics.snapshotApplyInProgress, () => Number(sample().applyingSnapshot));
    this.counter(etcdMetrics.readIndexesFailed, () => sample().readIndexesFailed);
    this.counter(etcdMetrics.slowReadIndexes, () => sample().readIndexesSlow);
    this.counter(etcdMetrics.learnerPromoteSuccesses, () => sample().promotions.successes);
    this.labelledCounter(etcdMetrics.learnerPromoteFailures, function () {
      this.reset();
      for (const [reason, count] of sample().promotions.failures) this.inc({ Reason: reason }, count);
    });
    const clientRequests = () => this.grpcRoutes?.traffic.clientRequests;
    this.labelledCounter(etcdMetrics.clientRequests, function () {
      this.reset();
      const byType = clientRequests();
      if (byType === undefined) return;
      for (const [type, byVersion] of Object.entries(byType))
        for (const [version, count] of byVersion) this.inc({ type, client_api_version: version }, count);
    });
    this.info(etcdMetrics.serverId, () => ({ server_id: formatId(sample().memberId) }));
    this.info(etcdMetrics.serverVersion, () => ({ server_version: etcdServerVersion }));
    // etcd's cluster_version label is the major.minor of the applied cluster version; no series before one is.
    this.info(etcdMetrics.clusterVersion, () => {
      const version = sample().clusterVersion;
      return version === undefined ? undefined : { cluster_version: clusterVersionLabel(version) };
    });
  }

  private registerMvcc(): void {
    const sample = () => this.latest;
    this.gauge(etcdMetrics.dbTotalSize, () => sample().dbTotalBytes);
    this.gauge(etcdMetrics.dbTotalSizeInUse, () => sample().dbInUseBytes);
    this.counter(etcdMetrics.mvccPut, () => sample().mvcc.put);
    this.counter(etcdMetrics.mvccDelete, () => sample().mvcc.delete);
    this.counter(etcdMetrics.mvccRange, () => sample().mvcc.range);
    this.counter(etcdMetrics.mvccTxn, () => sample().mvcc.txn);
    this.gauge(etcdMetrics.mvccKeys, () => sample().keys);
    this.gauge(etcdMetrics.dbOpenReadTransactions, () => sample().openReadTransactions);
  }

  private registerNetwork(): void {
    const byPeer = (label: string, counts: () => ReadonlyMap<bigint, number>) =>
      function (this: Counter) {
        this.reset();
        for (const [peer, bytes] of counts()) this.inc({ [label]: formatId(peer) }, bytes);
      };
    this.labelledCounter(
      etcdMetrics.peerSentBytes,
      byPeer('To', () => this.latest.peerBytes.sent),
    );
    this.labelledCounter(
      etcdMetrics.peerReceivedBytes,
      byPeer('From', () => this.latest.peerBytes.received),
    );
    this.counter(etcdMetrics.clientGrpcSentBytes, () => this.grpcRoutes?.traffic.sentBytes ?? 0);
    this.counter(etcdMetrics.clientGrpcReceivedBytes, () => this.grpcRoutes?.traffic.receivedBytes ?? 0);
  }

  private registerGrpc(): void {
    const methods = () => this.reportedMethods();
    const perMethod = (spec: MetricSpec, read: (stats: MethodStats) => number) =>
      this.labelledCounter(spec, function () {
        this.reset();
        for (const stats of methods()) this.inc(grpcLabels(stats), read(stats));
      });
    perMethod(etcdMetrics.grpcStarted, (stats) => stats.started);
    perMethod(etcdMetrics.grpcMsgReceived, (stats) => stats.received);
    perMethod(etcdMetrics.grpcMsgSent, (stats) => stats.sent);
    this.labelledCounter(etcdMetrics.grpcHandled, function () {
      this.reset();
      for (const stats of methods()) {
        const labels = grpcLabels(stats);
        stats.handled.forEach((count, code) => this.inc({ ...labels, grpc_code: grpcCodeNames[code]! }, count));
      }
    });
  }

  /** Methods etcd lists from the start, and any other once it was called. */
  private reportedMethods(): MethodStats[] {
    return this.methods.filter((stats) => grpcPreinitialisedServices.has(stats.service) || stats.started > 0);
  }

  /**
   * etcd's os_fd_used and os_fd_limit, read at each scrape (etcd samples them every few minutes):
   * the process's open descriptors and its soft limit on them, 0 where /proc does not tell.
   */
  private registerFileDescriptors(): void {
    this.gauge(etcdMetrics.fdUsed, openFileDescriptors);
    this.gauge(etcdMetrics.fdLimit, fileDescriptorLimit);
    this.gauge(etcdMetrics.virtualMemoryMax, virtualMemoryLimit);
  }

  /** A counter moved as things happen (one inc, no labels). */
  private eventCounter(spec: MetricSpec): Counter {
    return new Counter(this.options(spec));
  }

  private options(spec: MetricSpec): { name: string; help: string; registers: Registry[] } {
    return { name: spec.name, help: spec.help, registers: [this.registry] };
  }

  private counter(spec: MetricSpec, read: () => number): void {
    this.labelledCounter(spec, function () {
      this.reset();
      this.inc(read());
    });
  }

  private labelledCounter(spec: MetricSpec, collect: (this: Counter) => void): void {
    new Counter({ name: spec.name, help: spec.help, labelNames: spec.labelNames, registers: [this.registry], collect });
  }

  private gauge(spec: MetricSpec, read: () => number): void {
    new Gauge({
      name: spec.name,
      help: spec.help,
      registers: [this.registry],
      collect() {
        this.set(read());
      },
    });
  }

  /** etcd's info gauges: one series at 1, whose label carries the value (none while `labels` gives undefined). */
  private info(spec: MetricSpec, labels: () => Labels | undefined): void {
    new Gauge({
      name: spec.name,
      help: spec.help,
      labelNames: spec.labelNames,
      registers: [this.registry],
      collect() {
        this.reset();
        const current = labels();
        if (current !== undefined) this.set(current, 1);
      },
    });
  }

  private histogram(spec: MetricSpec): Histogram {
    return new Histogram({
      name: spec.name,
      help: spec.help,
      labelNames: spec.labelNames,
      buckets: [...(spec.buckets ?? [])],
      registers: [this.registry],
    });
  }
}

function secondsSince(startedAt: number): number {
  return (performance.now() - startedAt) / 1000;
}

/** The process's open file descriptors, as etcd counts them (the entries of /proc/self/fd). */
function openFileDescriptors(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return 0;
  }
}

/** The soft limit on open files (/proc/self/limits' "Max open files"), 0 when unreadable or unlimited. */
function fileDescriptorLimit(): number {
  const limit = softLimit('Max open files');
  return limit === 'unlimited' ? 0 : limit;
}

/**
 * The soft limit on the address space (/proc/self/limits' "Max address space"), as Go's process
 * collector reports it: 2^64 - 1 when unlimited, 0 when unreadable.
 */
function virtualMemoryLimit(): number {
  const limit = softLimit('Max address space');
  return limit === 'unlimited' ? 2 ** 64 - 1 : limit;
}

/** The soft limit `name` of /proc/self/limits: a number, 'unlimited', or 0 when unreadable. */
function softLimit(name: string): number | 'unlimited' {
  try {
    const line = new RegExp(`^${name}\\s+(\\d+|unlimited)\\s`, 'm').exec(readFileSync('/proc/self/limits', 'utf8'));
    if (line === null) return 0;
    return line[1] === 'unlimited' ? 'unlimited' : Number(line[1]);
  } catch {
    return 0;
  }
}
