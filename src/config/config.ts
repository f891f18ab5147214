/**
 * The member's configuration: etcd's flags resolved (command line, then ETCD_* environment, or a
 * YAML config file that replaces both), checked against schemas/config.schema.json and then
 * against etcd's own cross-flag rules, with etcd's error texts.
 */
import { readFileSync } from 'node:fs';
import { loadSchemaValidator, type SchemaValidator } from './schema-validator.js';
import {
  backendBatchIntervalMsDefault,
  backendBatchLimitDefault,
  leaseCheckpointIntervalMsDefault,
  autoCompactionRevisionIntervalMsDefault,
  compactionBatchLimitDefault,
  quotaBackendBytesDefault,
  electionTimeoutMsMax,
  simpleTokenTtlSecondsDefault,
} from '../lib/limits.js';
import { parseTokenOptions, TokenOptionsError, type TokenOptions } from '../auth/token-options.js';
import { goDurationErrorText, parseGoDuration } from '../lib/go-duration.js';
import { goOpenErrorText } from '../lib/go-os-errors.js';
import type { MetricsLevel } from '../metrics/etcd-metrics.js';
import { AuthBootstrapError, bootstrapSteps, type BootstrapStep } from '../auth/bootstrap-file.js';
import { serverFlags, defaultName, defaultListenPeerUrls, noCapnslogReason } from './flags.js';
import { parseInitialCluster } from './initial-cluster.js';
import {
  ConfigError,
  FlagError,
  applyConfigFile,
  applyEnvironment,
  convertFlagValue,
  emptyRawFlags,
  parseCommandLine,
  type RawFlags,
  type RawValue,
} from './parse.js';

export { ConfigError, FlagError };

export interface TlsConfig {
  certFile: string;
  keyFile: string;
  trustedCaFile: string;
  clientCertAuth: boolean;
  allowedCn?: string;
  /** --client-crl-file (or --peer-crl-file): certificates it revokes are refused at the handshake. */
  crlFile?: string;
  /** --client-cert-allowed-hostname (or --peer-cert-allowed-hostname): certificates must be valid for this hostname. */
  allowedHostname?: string;
  /** --cipher-suites, Go's names; empty means the TLS library's defaults. */
  cipherSuites?: string[];
  /** --auto-tls (or --peer-auto-tls): generate a self-signed certificate when no files are given. */
  autoTls?: boolean;
  /** The files are a generated self-signed certificate, which peers dial without verifying, as etcd's do. */
  selfSigned?: boolean;
}

export interface ClusterMemberConfig {
  name: string;
  peerUrls: string[];
}

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'dpanic' | 'panic' | 'fatal';

export interface MemberConfig {
  name: string;
  dataDir: string;
  walDir: string;
  snapshotCount: number;
  heartbeatIntervalMs: number;
  electionTimeoutMs: number;
  initialElectionTickAdvance: boolean;
  listenPeerUrls: string[];
  listenClientUrls: string[];
  /** --listen-metrics-urls: further URLs serving /metrics and /health only. */
  listenMetricsUrls: string[];
  /** --metrics: 'extensive' adds the gRPC handling-time histograms; any other value is etcd's basic. */
  metrics: MetricsLevel;
  initialAdvertisePeerUrls: string[];
  advertiseClientUrls: string[];
  initialCluster: ClusterMemberConfig[];
  initialClusterState: 'new' | 'existing';
  initialClusterToken: string;
  quotaBackendBytes: number;
  /** --backend-batch-interval: the longest applied writes wait for their backend commit. */
  backendBatchIntervalMs: number;
  /** --backend-batch-limit: a backend commit is due once this many operations wait. */
  backendBatchLimit: number;
  maxRequestBytes: number;
  maxTxnOps: number;
  maxSnapshots: number;
  maxWals: number;
  strictReconfigCheck: boolean;
  preVote: boolean;
  logLevel: LogLevel;
  logOutputs: string[];
  unsafeNoFsync: boolean;
  /** --max-concurrent-streams: streams one client connection may have open at once (0 means no limit, as in grpc-go). */
  maxConcurrentStreams: number;
  grpcKeepaliveMinTimeMs: number;
  grpcKeepaliveIntervalMs: number;
  grpcKeepaliveTimeoutMs: number;
  watchProgressNotifyIntervalMs: number;
  /** --experimental-enable-lease-checkpoint: the leader records remaining TTLs through Raft. */
  leaseCheckpoint: boolean;
  /** How often the leader checkpoints a lease (etcd's 5 minutes; not a flag in etcd either, tests shorten it). */
  leaseCheckpointIntervalMs: number;
  /** --experimental-initial-corrupt-check: compare HashKV with the peers before serving. */
  initialCorruptCheck: boolean;
  /** --experimental-corrupt-check-time: how often the leader compares HashKV with followers; 0 never. */
  corruptCheckTimeMs: number;
  clientTls: TlsConfig;
  peerTls: TlsConfig;
  /** --auth-token, parsed. */
  authToken: TokenOptions;
  /** --bcrypt-cost as given; the member falls back to the default for a cost bcrypt refuses, as etcd's auth store does. */
  bcryptCost: number;
  /** --auth-token-ttl: how long a simple token lives after its last use. */
  authTokenTtlSeconds: number;
  /** --auth-bootstrap-file: users, roles and permissions applied when a new cluster starts; '' for none. */
  authBootstrapFile: string;
  /** --audit-log-path: where audit records are appended; '' for no audit log. */
  auditLogPath: string;
  /** --inspect-url: where the member streams its machines' inspection events; '' for nowhere. */
  inspectUrl: string;
  /** --inspect-all-events: also stream ticks, heartbeats and other events that change no state. */
  inspectAllEvents: boolean;
  /** --auto-compaction-mode. */
  autoCompactionMode: AutoCompactionMode;
  /**
   * --auto-compaction-retention as the mode reads it: the period in milliseconds (periodic) or the
   * revisions kept (revision); 0 turns auto compaction off.
   */
  autoCompactionRetention: number;
  /** How often revision mode looks at the revision (etcd's 5 minutes; not a flag in etcd either, tests shorten it). */
  autoCompactionRevisionIntervalMs: number;
  /** --experimental-compaction-batch-limit: revisions a compaction deletes per backend batch. */
  compactionBatchLimit: number;
  /** --experimental-warning-apply-duration: applies slower than this are logged and counted. */
  warningApplyMs: number;
  /** --force-new-cluster: restart this member's data as a one-member cluster. */
  forceNewCluster: boolean;
  /** --enable-grpc-gateway: serve the JSON gateway (/v3/...) on the client URLs. */
  enableGrpcGateway: boolean;
  /** --cors: origins the HTTP answers allow; empty or '*' allows all. */
  cors: string[];
  /** --host-whitelist: Host names plain-HTTP requests may name; empty or '*' allows all. */
  hostWhitelist: string[];
}

export type AutoCompactionMode = 'periodic' | 'revision';

export interface LoadedConfig {
  config: MemberConfig;
  printVersion: boolean;
  printHelp: boolean;
  /** Notes for the log: ignored inputs. */
  warnings: string[];
}

export interface ConfigSources {
  argv: readonly string[];
  env: NodeJS.ProcessEnv;
  readFile?: (path: string) => string;
}

function valueOf(raw: RawFlags, name: string): RawValue {
  const explicit = raw.values.get(name);
  if (explicit !== undefined) return explicit;
  const spec = serverFlags.find((candidate) => candidate.name === name);
  if (spec === undefined) throw new Error(`no flag named ${name}`);
  return convertFlagValue(spec, spec.defaultValue ?? '');
}

const str = (raw: RawFlags, name: string) => valueOf(raw, name) as string;
const num = (raw: RawFlags, name: string) => valueOf(raw, name) as number;
const bool = (raw: RawFlags, name: string) => valueOf(raw, name) as boolean;
const list = (raw: RawFlags, name: string) => valueOf(raw, name) as string[];

function tlsConfig(raw: RawFlags, prefix: '' | 'peer-'): TlsConfig {
  const tls: TlsConfig = {
    certFile: str(raw, `${prefix}cert-file`),
    keyFile: str(raw, `${prefix}key-file`),
    trustedCaFile: str(raw, `${prefix}trusted-ca-file`),
    clientCertAuth: bool(raw, `${prefix}client-cert-auth`),
    cipherSuites: list(raw, 'cipher-suites'),
    autoTls: bool(raw, `${prefix}auto-tls`),
  };
  const side = prefix === 'peer-' ? 'peer' : 'client';
  if (prefix === 'peer-') tls.allowedCn = str(raw, 'peer-cert-allowed-cn');
  tls.crlFile = str(raw, `${side}-crl-file`);
  tls.allowedHostname = str(raw, `${side}-cert-allowed-hostname`);
  return tls;
}

function resolve(raw: RawFlags): MemberConfig {
  const name = str(raw, 'name');
  let initialClusterText = str(raw, 'initial-cluster');
  // etcd: a renamed member with the default cluster string bootstraps as "<name>=<default peer url>".
  if (name !== defaultName && !raw.values.has('initial-cluster'))
    initialClusterText = `${name}=${defaultListenPeerUrls}`;
  const listenClientSet = raw.values.has('listen-client-urls');
  const advertiseClientSet = raw.values.has('advertise-client-urls');
  const quota = num(raw, 'quota-backend-bytes');
  return {
    name,
    dataDir: str(raw, 'data-dir') || `${name}.etcd`,
    walDir: str(raw, 'wal-dir'),
    snapshotCount: num(raw, 'snapshot-count'),
    heartbeatIntervalMs: num(raw, 'heartbeat-interval'),
    electionTimeoutMs: num(raw, 'election-timeout'),
    initialElectionTickAdvance: bool(raw, 'initial-election-tick-advance'),
    listenPeerUrls: list(raw, 'listen-peer-urls'),
    listenClientUrls: list(raw, 'listen-client-urls'),
    listenMetricsUrls: list(raw, 'listen-metrics-urls'),
    metrics: str(raw, 'metrics') === 'extensive' ? 'extensive' : 'basic',
    initialAdvertisePeerUrls: list(raw, 'initial-advertise-peer-urls'),
    advertiseClientUrls: listenClientSet && !advertiseClientSet ? [] : list(raw, 'advertise-client-urls'),
    initialCluster: parseInitialCluster(initialClusterText),
    initialClusterState: str(raw, 'initial-cluster-state') as 'new' | 'existing',
    initialClusterToken: str(raw, 'initial-cluster-token'),
    quotaBackendBytes: quota > 0 ? quota : quotaBackendBytesDefault,
    backendBatchIntervalMs: num(raw, 'backend-batch-interval') || backendBatchIntervalMsDefault,
    backendBatchLimit: num(raw, 'backend-batch-limit') || backendBatchLimitDefault,
    maxRequestBytes: num(raw, 'max-request-bytes'),
    maxTxnOps: num(raw, 'max-txn-ops'),
    maxSnapshots: num(raw, 'max-snapshots'),
    maxWals: num(raw, 'max-wals'),
    strictReconfigCheck: bool(raw, 'strict-reconfig-check'),
    preVote: bool(raw, 'pre-vote'),
    // etcd 3.4's deprecated --debug asks for debug-level logs whatever --log-level says.
    logLevel: (bool(raw, 'debug') ? 'debug' : str(raw, 'log-level')) as LogLevel,
    logOutputs: logOutputsOf(raw),
    unsafeNoFsync: bool(raw, 'unsafe-no-fsync'),
    maxConcurrentStreams: num(raw, 'max-concurrent-streams'),
    grpcKeepaliveMinTimeMs: num(raw, 'grpc-keepalive-min-time'),
    grpcKeepaliveIntervalMs: num(raw, 'grpc-keepalive-interval'),
    grpcKeepaliveTimeoutMs: num(raw, 'grpc-keepalive-timeout'),
    watchProgressNotifyIntervalMs: num(raw, 'experimental-watch-progress-notify-interval'),
    leaseCheckpoint: bool(raw, 'experimental-enable-lease-checkpoint'),
    leaseCheckpointIntervalMs: leaseCheckpointIntervalMsDefault,
    initialCorruptCheck: bool(raw, 'experimental-initial-corrupt-check'),
    corruptCheckTimeMs: num(raw, 'experimental-corrupt-check-time'),
    clientTls: tlsConfig(raw, ''),
    peerTls: tlsConfig(raw, 'peer-'),
    authToken: tokenOptions(str(raw, 'auth-token')),
    bcryptCost: num(raw, 'bcrypt-cost'),
    authTokenTtlSeconds: num(raw, 'auth-token-ttl') || simpleTokenTtlSecondsDefault,
    authBootstrapFile: str(raw, 'auth-bootstrap-file'),
    auditLogPath: str(raw, 'audit-log-path'),
    inspectUrl: str(raw, 'inspect-url'),
    inspectAllEvents: bool(raw, 'inspect-all-events'),
    autoCompactionMode: str(raw, 'auto-compaction-mode') as AutoCompactionMode,
    autoCompactionRetention: compactionRetention(
      str(raw, 'auto-compaction-mode'),
      str(raw, 'auto-compaction-retention'),
    ),
    autoCompactionRevisionIntervalMs: autoCompactionRevisionIntervalMsDefault,
    compactionBatchLimit: num(raw, 'experimental-compaction-batch-limit') || compactionBatchLimitDefault,
    warningApplyMs: num(raw, 'experimental-warning-apply-duration'),
    forceNewCluster: bool(raw, 'force-new-cluster'),
    enableGrpcGateway: bool(raw, 'enable-grpc-gateway'),
    cors: list(raw, 'cors'),
    hostWhitelist: list(raw, 'host-whitelist'),
  };
}

/**
 * etcd's reading of --auto-compaction-retention: a bare non-negative integer is hours (periodic) or
 * revisions (revision); anything else must be a Go duration.
 */
export function compactionRetention(mode: string, text: string): number {
  if (/^[+-]?\d+$/.test(text) && Number(text) >= 0) {
    const count = Number(text);
    return mode === 'periodic' ? count * 60 * 60 * 1_000 : mode === 'revision' ? count : 0;
  }
  const parsed = parseGoDuration(text);
  if (!parsed.ok) throw new ConfigError(`error parsing CompactionRetention: ${goDurationErrorText(text, parsed)}`);
  if (mode === 'revision') return parsed.durationNs;
  return parsed.durationNs / 1e6;
}

function tokenOptions(text: string): TokenOptions {
  try {
    return parseTokenOptions(text);
  } catch (error) {
    if (error instanceof TokenOptionsError) throw new ConfigError(error.message);
    throw error;
  }
}

let schemaValidator: SchemaValidator | undefined;

function checkSchema(config: MemberConfig): void {
  schemaValidator ??= loadSchemaValidator('config');
  if (!schemaValidator(config)) {
    const problems = (schemaValidator.errors ?? []).map((error) => `${error.instancePath || '/'} ${error.message}`);
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
}

let bootstrapValidator: SchemaValidator | undefined;

/** The steps --auth-bootstrap-file asks for; a ConfigError (exit 1) when it cannot be read or applied. */
export function authBootstrapSteps(
  path: string,
  readFile = (file: string) => readFileSync(file, 'utf8'),
): BootstrapStep[] {
  let source: string;
  try {
    source = readFile(path);
  } catch (error) {
    throw new ConfigError(
      `error loading auth bootstrap file: ${goOpenErrorText(path, error as NodeJS.ErrnoException)}`,
    );
  }
  bootstrapValidator ??= loadSchemaValidator('auth-bootstrap');
  try {
    return bootstrapSteps(path, source, bootstrapValidator);
  } catch (error) {
    if (error instanceof AuthBootstrapError) throw new ConfigError(error.message);
    throw error;
  }
}

/**
 * Refuses flags for parts of etcd tsetcd does not have when they are set to anything but their
 * default (the default is accepted, so etcd command lines that spell defaults out still work).
 */
function checkSupported(raw: RawFlags): void {
  for (const [name, value] of raw.values) {
    const spec = serverFlags.find((candidate) => candidate.name === name);
    if (spec?.unsupported === undefined) continue;
    const defaultValue = convertFlagValue(spec, spec.defaultValue ?? '');
    if (JSON.stringify(value) === JSON.stringify(defaultValue)) continue;
    throw new ConfigError(`--${name} is not supported: ${spec.unsupported}`);
  }
  const logger = valueOf(raw, 'logger');
  if (logger === 'capnslog') throw new ConfigError(`--logger=capnslog is not supported: ${noCapnslogReason}`);
  const mode = str(raw, 'auto-compaction-mode');
  if (mode !== 'periodic' && mode !== 'revision') {
    throw new ConfigError(`unknown auto-compaction-mode ${JSON.stringify(mode)}`);
  }
}

/**
 * --log-outputs, or etcd 3.4's deprecated --log-output when it names more outputs; as etcd's
 * setupLogging, the two naming one and the same output other than the default are refused.
 */
function logOutputsOf(raw: RawFlags): string[] {
  const outputs = list(raw, 'log-outputs');
  const deprecated = list(raw, 'log-output');
  if (deprecated.length !== outputs.length) return deprecated.length > outputs.length ? deprecated : outputs;
  if (outputs.length > 1)
    throw new ConfigError("both '--log-output' and '--log-outputs' are set; only set '--log-outputs'");
  if (outputs.length < 1) throw new ConfigError("either '--log-output' or '--log-outputs' flag must be set");
  if (deprecated[0] === outputs[0] && outputs[0] !== 'default') {
    const quoted = JSON.stringify(outputs);
    throw new ConfigError(
      `'--log-output=${quoted}' and '--log-outputs=${quoted}' are incompatible; only set --log-outputs`,
    );
  }
  return outputs;
}

/** etcd's cross-flag checks, in etcd's order and with its messages. */
function checkRules(config: MemberConfig, raw: RawFlags): void {
  const logger = str(raw, 'logger');
  if (logger !== 'zap') throw new ConfigError(`unknown logger option ${JSON.stringify(logger)}`);
  if (config.initialClusterState !== 'new' && config.initialClusterState !== 'existing') {
    throw new ConfigError(`unexpected clusterState "${config.initialClusterState}"`);
  }
  if (config.heartbeatIntervalMs <= 0) {
    throw new ConfigError(`--heartbeat-interval must be >0 (set to ${config.heartbeatIntervalMs}ms)`);
  }
  if (config.electionTimeoutMs <= 0) {
    throw new ConfigError(`--election-timeout must be >0 (set to ${config.electionTimeoutMs}ms)`);
  }
  if (5 * config.heartbeatIntervalMs > config.electionTimeoutMs) {
    throw new ConfigError(
      `--election-timeout[${config.electionTimeoutMs}ms] should be at least as 5 times as --heartbeat-interval[${config.heartbeatIntervalMs}ms]`,
    );
  }
  if (config.electionTimeoutMs > electionTimeoutMsMax) {
    throw new ConfigError(
      `--election-timeout[${config.electionTimeoutMs}ms] is too long, and should be set less than ${electionTimeoutMsMax}ms`,
    );
  }
  if (config.advertiseClientUrls.length === 0) {
    throw new ConfigError('--advertise-client-urls is required when --listen-client-urls is set explicitly');
  }
  if (config.inspectUrl !== '' && !/^wss?:\/\/[^/]/.test(config.inspectUrl)) {
    throw new ConfigError(`--inspect-url must be a ws:// or wss:// URL (set to "${config.inspectUrl}")`);
  }
  if (config.logOutputs.length > 1 && config.logOutputs.includes('default')) {
    throw new ConfigError('multi logoutput for "default" is not supported yet');
  }
}

/**
 * etcd's check of client URLs against the client TLS flags (embed.configureClientListeners): an
 * https:// URL needs --cert-file or --key-file. Returns the error text, or undefined when fine.
 */
export function clientUrlsTlsProblem(config: MemberConfig): string | undefined {
  const tlsEmpty = config.clientTls.certFile === '' && config.clientTls.keyFile === '';
  const secure = config.listenClientUrls.find((url) => url.startsWith('https://') || url.startsWith('unixs://'));
  if (secure === undefined || !tlsEmpty) return undefined;
  return `TLS key/cert (--cert-file, --key-file) must be provided for client url ${secure} with HTTPS scheme`;
}

/** Loads the configuration etcd would run with; throws FlagError (exit 2) or ConfigError (exit 1). */
export function loadConfig(sources: ConfigSources): LoadedConfig {
  const raw = emptyRawFlags();
  parseCommandLine(sources.argv, raw);
  const configFile = raw.values.get('config-file') as string | undefined;
  if (configFile) {
    const readFile = sources.readFile ?? ((path: string) => readFileSync(path, 'utf8'));
    let text: string;
    try {
      text = readFile(configFile);
    } catch (error) {
      throw new ConfigError(`error loading config file "${configFile}": ${(error as Error).message}`);
    }
    const fileRaw = emptyRawFlags();
    applyConfigFile(text, fileRaw);
    fileRaw.warnings.push(
      `loaded server configuration from "${configFile}"; other flags and environment variables are ignored`,
    );
    return finish(fileRaw, bool(raw, 'version'), bool(raw, 'help'));
  }
  applyEnvironment(sources.env, raw);
  return finish(raw, bool(raw, 'version'), bool(raw, 'help'));
}

function finish(raw: RawFlags, printVersion: boolean, printHelp: boolean): LoadedConfig {
  const warnings = [...raw.warnings];
  if (printVersion || printHelp) return { config: resolve(raw), printVersion, printHelp, warnings };
  checkSupported(raw);
  const config = resolve(raw);
  checkSchema(config);
  checkRules(config, raw);
  if (config.authBootstrapFile !== '') authBootstrapSteps(config.authBootstrapFile);
  return { config, printVersion, printHelp, warnings };
}

/** The usage text printed with flag errors and --help. */
export function usageText(): string {
  const lines = [
    'Usage:',
    '',
    '  tsetcd [flags]',
    '    Start an etcd-compatible member.',
    '  tsetcd cluster [--members N] [flags]',
    '    Start N members (default 3) as threads of one process, on ports 2379/2380, 22379/22380, 32379/32380, ...',
    '  tsetcd inspect [--listen ws://HOST:PORT]',
    "    Relay members' --inspect-url streams to Stately's inspector and print their role changes.",
    '  tsetcd machines --export DIR',
    "    Write each state machine definition as DIR/<id>.json for Stately's visualiser.",
    '',
    'Flags:',
  ];
  // Each flag as etcd's help shows it: the name and its default, then the text indented.
  for (const spec of serverFlags) {
    lines.push(`  --${spec.name} ${spec.helpDefault ?? `'${spec.defaultValue ?? ''}'`}`);
    for (const line of spec.usage.split('\n')) lines.push(`    ${line}`);
  }
  return lines.join('\n');
}
