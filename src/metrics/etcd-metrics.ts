/**
 * The metrics etcd exposes at /metrics, as facts: names, help texts, types, label names and
 * histogram buckets, so dashboards and alert rules written for etcd read tsetcd unchanged.
 * Where the values come from is the actors' business (actors/member/metrics.ts).
 */

export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface MetricSpec {
  name: string;
  help: string;
  type: MetricType;
  labelNames: readonly string[];
  /** Upper bounds of a histogram's buckets, in seconds. */
  buckets?: readonly number[];
}

/** Buckets that double from `start`, `count` of them (Prometheus' ExponentialBuckets). */
export function exponentialBuckets(start: number, factor: number, count: number): number[] {
  return Array.from({ length: count }, (_unused, position) => start * factor ** position);
}

/** Prometheus' DefBuckets, which go-grpc-prometheus' handling-time histogram uses. */
export const defaultBuckets: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** etcd's disk latency buckets: 1 ms up to 8.192 s. */
export const diskDurationBuckets: readonly number[] = exponentialBuckets(0.001, 2, 14);

/** gRPC status code names as go-grpc-prometheus labels them, indexed by code. */
export { grpcCodeNames } from '../api/errors.js';

/** go-grpc-prometheus' grpc_type label. */
export type GrpcType = 'unary' | 'client_stream' | 'server_stream' | 'bidi_stream';

/**
 * Services whose methods etcd's gRPC server lists in every gRPC metric from its start (with zero
 * counts): those registered before the metrics are initialised. Lock and Election appear once called.
 */
export const grpcPreinitialisedServices: ReadonlySet<string> = new Set([
  'etcdserverpb.KV',
  'etcdserverpb.Watch',
  'etcdserverpb.Lease',
  'etcdserverpb.Cluster',
  'etcdserverpb.Auth',
  'etcdserverpb.Maintenance',
  'grpc.health.v1.Health',
]);

function spec(name: string, type: MetricType, help: string, labelNames: readonly string[] = []): MetricSpec {
  return { name, help, type, labelNames };
}

const grpcLabels = ['grpc_type', 'grpc_service', 'grpc_method'] as const;

/** The metrics tsetcd serves, keyed by a short name; help texts and types are etcd 3.4's. */
export const etcdMetrics = {
  hasLeader: spec('etcd_server_has_leader', 'gauge', 'Whether or not a leader exists. 1 is existence, 0 is not.'),
  isLeader: spec('etcd_server_is_leader', 'gauge', 'Whether or not this member is a leader. 1 if is, 0 otherwise.'),
  isLearner: spec('etcd_server_is_learner', 'gauge', 'Whether or not this member is a learner. 1 if is, 0 otherwise.'),
  leaderChanges: spec('etcd_server_leader_changes_seen_total', 'counter', 'The number of leader changes seen.'),
  heartbeatSendFailures: spec(
    'etcd_server_heartbeat_send_failures_total',
    'counter',
    'The total number of leader heartbeat send failures (likely overloaded from slow disk).',
  ),
  slowApplies: spec(
    'etcd_server_slow_apply_total',
    'counter',
    'The total number of slow apply requests (likely overloaded from slow disk).',
  ),
  // etcd keeps the committed and applied indexes as gauges, despite their names.
  proposalsCommitted: spec(
    'etcd_server_proposals_committed_total',
    'gauge',
    'The total number of consensus proposals committed.',
  ),
  proposalsApplied: spec(
    'etcd_server_proposals_applied_total',
    'gauge',
    'The total number of consensus proposals applied.',
  ),
  proposalsPending: spec(
    'etcd_server_proposals_pending',
    'gauge',
    'The current number of pending proposals to commit.',
  ),
  proposalsFailed: spec('etcd_server_proposals_failed_total', 'counter', 'The total number of failed proposals seen.'),
  quotaBackendBytes: spec('etcd_server_quota_backend_bytes', 'gauge', 'Current backend storage quota size in bytes.'),
  serverId: spec(
    'etcd_server_id',
    'gauge',
    "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.",
    ['server_id'],
  ),
  serverVersion: spec(
    'etcd_server_version',
    'gauge',
    "Which version is running. 1 for 'server_version' label with current version.",
    ['server_version'],
  ),
  clusterVersion: spec(
    'etcd_cluster_version',
    'gauge',
    "Which version is running. 1 for 'cluster_version' label with current cluster version",
    ['cluster_version'],
  ),
  walFsyncDuration: {
    ...spec('etcd_disk_wal_fsync_duration_seconds', 'histogram', 'The latency distributions of fsync called by WAL.'),
    buckets: diskDurationBuckets,
  },
  backendCommitDuration: {
    ...spec(
      'etcd_disk_backend_commit_duration_seconds',
      'histogram',
      'The latency distributions of commit called by backend.',
    ),
    buckets: diskDurationBuckets,
  },
  // A gauge in etcd, despite its name.
  walWriteBytes: spec('etcd_disk_wal_write_bytes_total', 'gauge', 'Total number of bytes written in WAL.'),
  dbTotalSize: spec(
    'etcd_mvcc_db_total_size_in_bytes',
    'gauge',
    'Total size of the underlying database physically allocated in bytes.',
  ),
  dbTotalSizeInUse: spec(
    'etcd_mvcc_db_total_size_in_use_in_bytes',
    'gauge',
    'Total size of the underlying database logically in use in bytes.',
  ),
  mvccPut: spec('etcd_mvcc_put_total', 'counter', 'Total number of puts seen by this member.'),
  mvccDelete: spec('etcd_mvcc_delete_total', 'counter', 'Total number of deletes seen by this member.'),
  mvccRange: spec('etcd_mvcc_range_total', 'counter', 'Total number of ranges seen by this member.'),
  mvccTxn: spec('etcd_mvcc_txn_total', 'counter', 'Total number of txns seen by this member.'),
  mvccKeys: spec('etcd_debugging_mvcc_keys_total', 'gauge', 'Total number of keys.'),
  peerSentBytes: spec('etcd_network_peer_sent_bytes_total', 'counter', 'The total number of bytes sent to peers.', [
    'To',
  ]),
  peerReceivedBytes: spec(
    'etcd_network_peer_received_bytes_total',
    'counter',
    'The total number of bytes received from peers.',
    ['From'],
  ),
  clientGrpcSentBytes: spec(
    'etcd_network_client_grpc_sent_bytes_total',
    'counter',
    'The total number of bytes sent to grpc clients.',
  ),
  clientGrpcReceivedBytes: spec(
    'etcd_network_client_grpc_received_bytes_total',
    'counter',
    'The total number of bytes received from grpc clients.',
  ),
  grpcStarted: spec('grpc_server_started_total', 'counter', 'Total number of RPCs started on the server.', grpcLabels),
  grpcHandled: spec(
    'grpc_server_handled_total',
    'counter',
    'Total number of RPCs completed on the server, regardless of success or failure.',
    [...grpcLabels, 'grpc_code'],
  ),
  grpcMsgReceived: spec(
    'grpc_server_msg_received_total',
    'counter',
    'Total number of RPC stream messages received on the server.',
    grpcLabels,
  ),
  grpcMsgSent: spec(
    'grpc_server_msg_sent_total',
    'counter',
    'Total number of gRPC stream messages sent by the server.',
    grpcLabels,
  ),
  grpcHandlingSeconds: {
    ...spec(
      'grpc_server_handling_seconds',
      'histogram',
      'Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.',
      grpcLabels,
    ),
    buckets: defaultBuckets,
  },
  healthSuccess: spec('etcd_server_health_success', 'counter', 'The total number of successful health checks'),
  healthFailures: spec('etcd_server_health_failures', 'counter', 'The total number of failed health checks'),
  backendDefragDuration: {
    ...spec(
      'etcd_disk_backend_defrag_duration_seconds',
      'histogram',
      'The latency distribution of backend defragmentation.',
    ),
    buckets: exponentialBuckets(0.1, 2, 13),
  },
  defragInflight: spec(
    'etcd_disk_defrag_inflight',
    'gauge',
    'Whether or not defrag is active on the member. 1 means active, 0 means not.',
  ),
  backendSnapshotDuration: {
    ...spec(
      'etcd_disk_backend_snapshot_duration_seconds',
      'histogram',
      'The latency distribution of backend snapshots.',
    ),
    buckets: exponentialBuckets(0.01, 2, 17),
  },
  hashDuration: {
    ...spec('etcd_mvcc_hash_duration_seconds', 'histogram', 'The latency distribution of storage hash operation.'),
    buckets: exponentialBuckets(0.01, 2, 15),
  },
  hashRevDuration: {
    ...spec(
      'etcd_mvcc_hash_rev_duration_seconds',
      'histogram',
      'The latency distribution of storage hash by revision operation.',
    ),
    buckets: exponentialBuckets(0.01, 2, 15),
  },
  clientRequests: spec(
    'etcd_server_client_requests_total',
    'counter',
    'The total number of client requests per client version.',
    ['type', 'client_api_version'],
  ),
  learnerPromoteSuccesses: spec(
    'etcd_server_learner_promote_successes',
    'counter',
    'The total number of successful learner promotions while this member is leader.',
  ),
  learnerPromoteFailures: spec(
    'etcd_server_learner_promote_failures',
    'counter',
    'The total number of failed learner promotions (likely learner not ready) while this member is leader.',
    ['Reason'],
  ),
  // A gauge in etcd, despite its name.
  snapshotApplyInProgress: spec(
    'etcd_server_snapshot_apply_in_progress_total',
    'gauge',
    '1 if the server is applying the incoming snapshot. 0 if none.',
  ),
  slowReadIndexes: spec(
    'etcd_server_slow_read_indexes_total',
    'counter',
    "The total number of pending read indexes not in sync with leader's or timed out read index requests.",
  ),
  readIndexesFailed: spec(
    'etcd_server_read_indexes_failed_total',
    'counter',
    'The total number of failed read indexes seen.',
  ),
  dbOpenReadTransactions: spec(
    'etcd_mvcc_db_open_read_transactions',
    'gauge',
    'The number of currently open read transactions',
  ),
  snapFsyncDuration: {
    ...spec('etcd_snap_fsync_duration_seconds', 'histogram', 'The latency distributions of fsync called by snap.'),
    buckets: diskDurationBuckets,
  },
  snapDbSaveDuration: {
    ...spec(
      'etcd_snap_db_save_total_duration_seconds',
      'histogram',
      'The total latency distributions of v3 snapshot save',
    ),
    buckets: exponentialBuckets(0.1, 2, 10),
  },
  snapDbFsyncDuration: {
    ...spec('etcd_snap_db_fsync_duration_seconds', 'histogram', 'The latency distributions of fsyncing .snap.db file'),
    buckets: diskDurationBuckets,
  },
  virtualMemoryMax: spec(
    'process_virtual_memory_max_bytes',
    'gauge',
    'Maximum amount of virtual memory available in bytes.',
  ),
  scrapesInFlight: spec(
    'promhttp_metric_handler_requests_in_flight',
    'gauge',
    'Current number of scrapes being served.',
  ),
  scrapes: spec('promhttp_metric_handler_requests_total', 'counter', 'Total number of scrapes by HTTP status code.', [
    'code',
  ]),
  fdUsed: spec('os_fd_used', 'gauge', 'The number of used file descriptors.'),
  fdLimit: spec('os_fd_limit', 'gauge', 'The file descriptor limit.'),
} as const satisfies Record<string, MetricSpec>;

/** The HTTP codes etcd's scrape counter lists from the start (promhttp's). */
export const scrapeCodes: readonly string[] = ['200', '500', '503'];

/** etcd's client_requests_total type label: every streaming call counts as a stream. */
export type ClientRequestType = 'unary' | 'stream';

/** The client_api_version label of a call whose metadata names no client API version. */
export const unknownClientApiVersion = 'unknown';

/** The gRPC metadata key in which clientv3 names its API version ("3.4"). */
export const clientApiVersionKey = 'client-api-version';

/** etcd's --metrics levels: extensive adds the gRPC handling-time histograms. */
export type MetricsLevel = 'basic' | 'extensive';
