/**
 * etcd's server flags: names, kinds and defaults, as `etcd --help` lists them. Flags for parts of
 * etcd that tsetcd does not have (the v2 API, discovery services, Go's profiler) carry the reason in
 * `unsupported`: their defaults are accepted, so etcd command lines keep working, and any other
 * value is refused at start.
 */
import { goDurationString } from '../lib/go-duration.js';
import {
  authTokenDefault,
  bcryptCostDefault,
  simpleTokenTtlSecondsDefault,
  compactionBatchLimitDefault,
  electionTimeoutMsDefault,
  grpcKeepaliveIntervalMsDefault,
  grpcKeepaliveMinTimeMsDefault,
  grpcKeepaliveTimeoutMsDefault,
  heartbeatIntervalMsDefault,
  maxConcurrentStreamsDefault,
  progressNotifyIntervalMsDefault,
  requestBytesDefault,
  slowApplyMsDefault,
  snapshotCountDefault,
  txnOpsDefault,
} from '../lib/limits.js';

/** `uint32` is etcd's own flag type (--max-concurrent-streams), which reports strconv's errors as they are. */
/** `origins` is etcd's --cors: URLs as for `urls`, or '*'. */
export type FlagKind = 'string' | 'uint' | 'uint32' | 'int' | 'bool' | 'duration' | 'urls' | 'origins' | 'strings';

export interface FlagSpec {
  name: string;
  kind: FlagKind;
  /** The default as etcd spells it on the command line; undefined means "unset". */
  defaultValue?: string;
  usage: string;
  /** The default as etcd's help shows it, where that is not the value quoted ('2h' for 2h0m0s). */
  helpDefault?: string;
  /** The only values etcd's flag takes (its selective string flags); undefined for any value. */
  choices?: readonly string[];
  /** Why tsetcd cannot act on a value other than the default; undefined for flags that act. */
  unsupported?: string;
}

export const defaultName = 'default';
export const defaultListenClientUrls = 'http://localhost:2379';
export const defaultListenPeerUrls = 'http://localhost:2380';
export const defaultClusterToken = 'etcd-cluster';

/** A default in milliseconds as etcd's help prints a duration ("2h0m0s"). */
function durationText(durationMs: number): string {
  return goDurationString(durationMs * 1e6);
}

function flag(
  name: string,
  kind: FlagKind,
  defaultValue: string | undefined,
  usage: string,
  unsupported?: string,
): FlagSpec {
  return unsupported === undefined
    ? { name, kind, defaultValue, usage }
    : { name, kind, defaultValue, usage, unsupported };
}

const noDiscovery = 'tsetcd has no discovery service client; name the members with --initial-cluster';
const noProxy = 'tsetcd has no v2 proxy';
/** Why capnslog's flags take only their defaults. */
export const noCapnslogReason = 'tsetcd logs with zap only';

/** A v2 proxy timing in milliseconds; etcd's help shows these defaults unquoted. */
function proxyMsFlag(name: string, defaultMs: number, usage: string): FlagSpec {
  return { ...flag(name, 'uint', String(defaultMs), usage, noProxy), helpDefault: String(defaultMs) };
}

/** Every flag the member understands; order follows etcd's help text. */
export const serverFlags: readonly FlagSpec[] = [
  flag(
    'config-file',
    'string',
    '',
    'Path to the server configuration file (YAML); when given, other flags and environment variables are ignored.',
  ),
  flag('name', 'string', defaultName, 'Human-readable name for this member.'),
  { ...flag('data-dir', 'string', '', 'Path to the data directory.'), helpDefault: "'${name}.etcd'" },
  flag('wal-dir', 'string', '', 'Path to the dedicated wal directory.'),
  flag(
    'snapshot-count',
    'uint',
    String(snapshotCountDefault),
    'Number of committed transactions to trigger a snapshot to disk.',
  ),
  flag(
    'heartbeat-interval',
    'uint',
    String(heartbeatIntervalMsDefault),
    'Time (in milliseconds) of a heartbeat interval.',
  ),
  flag(
    'election-timeout',
    'uint',
    String(electionTimeoutMsDefault),
    'Time (in milliseconds) for an election to timeout. See tuning documentation for details.',
  ),
  flag(
    'initial-election-tick-advance',
    'bool',
    'true',
    'Whether to fast-forward initial election ticks on boot for faster election.',
  ),
  flag('listen-peer-urls', 'urls', defaultListenPeerUrls, 'List of URLs to listen on for peer traffic.'),
  flag('listen-client-urls', 'urls', defaultListenClientUrls, 'List of URLs to listen on for client traffic.'),
  flag('listen-metrics-urls', 'urls', '', 'List of URLs to listen on for the metrics and health endpoints.'),
  flag('max-snapshots', 'uint', '5', 'Maximum number of snapshot files to retain (0 is unlimited).'),
  flag('max-wals', 'uint', '5', 'Maximum number of wal files to retain (0 is unlimited).'),
  flag(
    'quota-backend-bytes',
    'int',
    '0',
    'Raise alarms when backend size exceeds the given quota (0 defaults to low space quota).',
  ),
  {
    ...flag(
      'backend-batch-interval',
      'duration',
      '0s',
      'BackendBatchInterval is the maximum time before commit the backend transaction.',
    ),
    helpDefault: "''",
  },
  flag(
    'backend-batch-limit',
    'int',
    '0',
    'BackendBatchLimit is the maximum operations before commit the backend transaction.',
  ),
  flag('max-txn-ops', 'uint', String(txnOpsDefault), 'Maximum number of operations permitted in a transaction.'),
  flag(
    'max-request-bytes',
    'uint',
    String(requestBytesDefault),
    'Maximum client request size in bytes the server will accept.',
  ),
  flag(
    'grpc-keepalive-min-time',
    'duration',
    durationText(grpcKeepaliveMinTimeMsDefault),
    'Minimum duration interval that a client should wait before pinging server.',
  ),
  {
    ...flag(
      'grpc-keepalive-interval',
      'duration',
      durationText(grpcKeepaliveIntervalMsDefault),
      'Frequency duration of server-to-client ping to check if a connection is alive (0 to disable).',
    ),
    helpDefault: "'2h'",
  },
  flag(
    'grpc-keepalive-timeout',
    'duration',
    durationText(grpcKeepaliveTimeoutMsDefault),
    'Additional duration of wait before closing a non-responsive connection (0 to disable).',
  ),
  {
    ...flag(
      'max-concurrent-streams',
      'uint32',
      String(maxConcurrentStreamsDefault),
      'Maximum concurrent streams that each client can open at a time.',
    ),
    helpDefault: "'math.MaxUint32'",
  },
  flag(
    'initial-advertise-peer-urls',
    'urls',
    defaultListenPeerUrls,
    "List of this member's peer URLs to advertise to the rest of the cluster.",
  ),
  flag(
    'initial-cluster',
    'string',
    `${defaultName}=${defaultListenPeerUrls}`,
    'Initial cluster configuration for bootstrapping.',
  ),
  {
    ...flag('initial-cluster-state', 'string', 'new', "Initial cluster state ('new' or 'existing')."),
    choices: ['new', 'existing'],
  },
  flag(
    'initial-cluster-token',
    'string',
    defaultClusterToken,
    'Initial cluster token for the etcd cluster during bootstrap.\nSpecifying this can protect you from unintended cross-cluster interaction when running multiple clusters.',
  ),
  flag(
    'advertise-client-urls',
    'urls',
    defaultListenClientUrls,
    "List of this member's client URLs to advertise to the public.\nThe client URLs advertised should be accessible to machines that talk to etcd cluster. etcd client libraries parse these URLs to connect to the cluster.",
  ),
  flag('discovery', 'string', '', 'Discovery URL used to bootstrap the cluster.', noDiscovery),
  {
    ...flag(
      'discovery-fallback',
      'string',
      'proxy',
      "Expected behavior ('exit' or 'proxy') when discovery services fails.\n\"proxy\" supports v2 API only.",
      noDiscovery,
    ),
    choices: ['proxy', 'exit'],
  },
  flag('discovery-proxy', 'string', '', 'HTTP proxy to use for traffic to discovery service.', noDiscovery),
  flag('discovery-srv', 'string', '', 'DNS srv domain used to bootstrap the cluster.', noDiscovery),
  flag('discovery-srv-name', 'string', '', 'Suffix to the dns srv name queried when bootstrapping.', noDiscovery),
  flag('strict-reconfig-check', 'bool', 'true', 'Reject reconfiguration requests that would cause quorum loss.'),
  flag('pre-vote', 'bool', 'false', 'Enable to run an additional Raft election phase.'),
  flag(
    'auto-compaction-retention',
    'string',
    '0',
    'Auto compaction retention length. 0 means disable auto compaction.',
  ),
  flag(
    'auto-compaction-mode',
    'string',
    'periodic',
    "Interpret 'auto-compaction-retention' one of: periodic|revision. 'periodic' for duration based retention, defaulting to hours if no time unit is provided (e.g. '5m'). 'revision' for revision number based retention.",
  ),
  flag('enable-v2', 'bool', 'false', 'Accept etcd V2 client requests.', 'tsetcd serves the v3 API only'),
  flag('enable-grpc-gateway', 'bool', 'true', 'Enable GRPC gateway.'),
  flag('cert-file', 'string', '', 'Path to the client server TLS cert file.'),
  flag('key-file', 'string', '', 'Path to the client server TLS key file.'),
  flag('client-cert-auth', 'bool', 'false', 'Enable client cert authentication.'),
  flag('client-crl-file', 'string', '', 'Path to the client certificate revocation list file.'),
  flag('client-cert-allowed-hostname', 'string', '', 'Allowed TLS hostname for client cert authentication.'),
  flag('trusted-ca-file', 'string', '', 'Path to the client server TLS trusted CA cert file.'),
  flag('auto-tls', 'bool', 'false', 'Client TLS using generated certificates.'),
  flag('peer-cert-file', 'string', '', 'Path to the peer server TLS cert file.'),
  flag('peer-key-file', 'string', '', 'Path to the peer server TLS key file.'),
  flag('peer-client-cert-auth', 'bool', 'false', 'Enable peer client cert authentication.'),
  flag('peer-trusted-ca-file', 'string', '', 'Path to the peer server TLS trusted CA file.'),
  flag('peer-cert-allowed-cn', 'string', '', 'Required CN for client certs connecting to the peer endpoint.'),
  flag('peer-cert-allowed-hostname', 'string', '', 'Allowed TLS hostname for inter peer authentication.'),
  flag(
    'peer-auto-tls',
    'bool',
    'false',
    'Peer TLS using self-generated certificates if --peer-key-file and --peer-cert-file are not provided.',
  ),
  flag('peer-crl-file', 'string', '', 'Path to the peer certificate revocation list file.'),
  flag(
    'cipher-suites',
    'strings',
    '',
    'Comma-separated list of supported TLS cipher suites between client/server and peers.',
  ),
  flag(
    'cors',
    'origins',
    '*',
    'Comma-separated whitelist of origins for CORS, or cross-origin resource sharing, (empty or * means allow all).',
  ),
  flag(
    'host-whitelist',
    'strings',
    '*',
    'Acceptable hostnames from HTTP client requests, if server is not secure (empty or * means allow all).',
  ),
  flag(
    'auth-token',
    'string',
    authTokenDefault,
    "Specify a v3 authentication token type and its options ('simple' or 'jwt').",
  ),
  {
    ...flag(
      'bcrypt-cost',
      'uint',
      String(bcryptCostDefault),
      'Specify the cost / strength of the bcrypt algorithm for hashing auth passwords. Valid values are between 4 and 31.',
    ),
    helpDefault: String(bcryptCostDefault),
  },
  {
    ...flag('auth-token-ttl', 'uint', String(simpleTokenTtlSecondsDefault), 'Time (in seconds) of the auth-token-ttl.'),
    helpDefault: String(simpleTokenTtlSecondsDefault),
  },
  flag(
    'auth-bootstrap-file',
    'string',
    '',
    'Path to a YAML or JSON file of users, roles and permissions (and whether auth is enabled) applied once when a new cluster starts.',
  ),
  flag(
    'audit-log-path',
    'string',
    '',
    'Path to a JSON Lines audit log of authentication attempts, denied requests and requests that change the cluster.',
  ),
  flag(
    'inspect-url',
    'string',
    '',
    "WebSocket URL (ws://HOST:PORT) of a Stately inspector or `tsetcd inspect` to stream this member's state machines to; empty for none.",
  ),
  flag(
    'inspect-all-events',
    'bool',
    'false',
    'Also stream the high-rate machine events (ticks, heartbeats, appends, proposals) that change no state.',
  ),
  flag('logger', 'string', 'zap', "Currently only supports 'zap' for structured logging."),
  flag(
    'log-outputs',
    'strings',
    'default',
    "Specify 'stdout' or 'stderr' to skip journald logging even when running under systemd, or list of comma separated output targets.",
  ),
  flag('log-output', 'strings', 'default', "[TO BE DEPRECATED IN v3.5] use '--log-outputs'."),
  flag('log-level', 'string', 'info', 'Configures log level. Only supports debug, info, warn, error, panic, or fatal.'),
  flag(
    'debug',
    'bool',
    'false',
    "Enable debug-level logging for etcd. [WARN] Will be deprecated in v3.5. Use '--log-level=debug' instead.",
  ),
  flag(
    'log-package-levels',
    'string',
    '',
    "Specify a particular log level for each etcd package (eg: 'etcdmain=CRITICAL,etcdserver=DEBUG').",
    noCapnslogReason,
  ),
  {
    ...flag('proxy', 'string', 'off', "Proxy mode setting ('off', 'readonly' or 'on').", noProxy),
    choices: ['off', 'readonly', 'on'],
  },
  proxyMsFlag('proxy-failure-wait', 5_000, 'Time (in milliseconds) an endpoint will be held in a failed state.'),
  proxyMsFlag('proxy-refresh-interval', 30_000, 'Time (in milliseconds) of the endpoints refresh interval.'),
  proxyMsFlag('proxy-dial-timeout', 1_000, 'Time (in milliseconds) for a dial to timeout.'),
  proxyMsFlag('proxy-write-timeout', 5_000, 'Time (in milliseconds) for a write to timeout.'),
  proxyMsFlag('proxy-read-timeout', 0, 'Time (in milliseconds) for a read to timeout.'),
  flag(
    'enable-pprof',
    'bool',
    'false',
    'Enable runtime profiling data via HTTP server. Address is at client URL + "/debug/pprof/"',
    'tsetcd runs on Node.js and has no Go runtime to profile',
  ),
  flag(
    'metrics',
    'string',
    'basic',
    "Set level of detail for exported metrics, specify 'extensive' to include histogram metrics.",
  ),
  flag('force-new-cluster', 'bool', 'false', 'Force to create a new one-member cluster.'),
  flag('unsafe-no-fsync', 'bool', 'false', 'Disables fsync, unsafe, will cause data loss.'),
  flag(
    'experimental-initial-corrupt-check',
    'bool',
    'false',
    'Enable to check data corruption before serving any client/peer traffic.',
  ),
  flag(
    'experimental-corrupt-check-time',
    'duration',
    '0s',
    'Duration of time between cluster corruption check passes.',
  ),
  flag(
    'experimental-enable-v2v3',
    'string',
    '',
    'Serve v2 requests through the v3 backend under a given prefix.',
    'tsetcd serves the v3 API only',
  ),
  flag(
    'experimental-backend-bbolt-freelist-type',
    'string',
    'array',
    'ExperimentalBackendFreelistType specifies the type of freelist that boltdb backend uses(array and map are supported types).',
    "tsetcd's backend is not bbolt",
  ),
  flag(
    'experimental-enable-lease-checkpoint',
    'bool',
    'false',
    'ExperimentalEnableLeaseCheckpoint enables primary lessor to persist lease remainingTTL to prevent indefinite auto-renewal of long lived leases.',
  ),
  {
    ...flag(
      'experimental-compaction-batch-limit',
      'int',
      String(compactionBatchLimitDefault),
      'ExperimentalCompactionBatchLimit sets the maximum revisions deleted in each compaction batch.',
    ),
    helpDefault: String(compactionBatchLimitDefault),
  },
  {
    ...flag(
      'experimental-watch-progress-notify-interval',
      'duration',
      durationText(progressNotifyIntervalMsDefault),
      'Duration of periodical watch progress notification.',
    ),
    helpDefault: "'10m'",
  },
  flag(
    'experimental-warning-apply-duration',
    'duration',
    durationText(slowApplyMsDefault),
    'Warning is generated if requests take more than this duration.',
  ),
  flag('version', 'bool', 'false', 'Print the version and exit.'),
  flag('help', 'bool', 'false', 'Show this help.'),
];

export const serverFlagsByName: ReadonlyMap<string, FlagSpec> = new Map(serverFlags.map((spec) => [spec.name, spec]));
