/**
 * tsetcd-bench: a gRPC load generator for etcd's KV API, in the spirit of etcd's own
 * `benchmark put` / `benchmark range` / `benchmark txn-put`. Latencies go into an HDR
 * histogram; requests that complete during the warm-up are not counted.
 *
 *   tsetcd-bench --endpoints 127.0.0.1:2379 --conns 4 --clients 64 --duration 10 --op put [--rate N] [--plot FILE.svg] [--user NAME:PASSWORD]
 */
import { realpathSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import * as hdr from 'hdr-histogram-js';
import type { TlsFiles } from '../test/support/certificates.js';
import { KvConnection, type KvReply } from './kv-client.js';
import { latencyPlotSvg, type LatencyAtPercentile } from './plot.js';
import { startProgress, type ProgressSink, type ProgressSnapshot } from './progress.js';

/** Slowest latency the histogram can hold: a minute, in microseconds. */
const latencyUsMax = 60_000_000;
/** Distinct error messages kept; the rest are counted under one bucket. */
const errorKindsMax = 32;
/**
 * `items` rotated left by `shift`: the order a round runs its systems or cases in, so none always
 * goes first while the machine's load drifts.
 */
export function rotated<T>(items: readonly T[], shift: number): T[] {
  const at = items.length === 0 ? 0 : shift % items.length;
  return [...items.slice(at), ...items.slice(0, at)];
}

export const warmupMsDefault = 1_000;
export const durationMsDefault = 10_000;
/** Upper bound on any run so a typo cannot start an endless load. */
export const durationMsMax = 3_600_000;
export const requestDeadlineMsDefault = 10_000;
/** Highest --rate, in requests per second over all clients. */
export const ratePerSecMax = 10_000_000;
/**
 * Percentiles at which both load generators report latency (latencyPercentilesUs), dense in the
 * tail so a plot on a log scale of 1/(1-p) has points in every decade. bench/go-load lists the same.
 */
export const reportedPercentiles = [0, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 99.999, 100] as const;

/** The workloads; txn-put is one Txn per request whose success branch puts --txn-ops distinct keys. */
/** 'authenticate' calls Auth.Authenticate as --user on every request (the bcrypt check is the work). */
export const loadOps = ['put', 'range', 'txn-put', 'authenticate'] as const;
export type LoadOp = (typeof loadOps)[number];

export interface LoadOptions {
  readonly endpoints: readonly string[];
  readonly conns: number;
  readonly clients: number;
  /** Measured requests to send; the run still ends after `durationMs` if they take longer. */
  readonly total?: number;
  readonly durationMs: number;
  readonly warmupMs: number;
  readonly keySize: number;
  readonly valSize: number;
  readonly keySpace: number;
  readonly sequentialKeys: boolean;
  readonly op: LoadOp;
  /** 'l' linearizable or 's' serializable, for ranges. */
  readonly consistency: 'l' | 's';
  /** Puts of distinct keys in each txn-put request. */
  readonly txnOps: number;
  readonly deadlineMs: number;
  /** At most this many requests per second over all clients, warm-up included; 0 for no limit. */
  readonly ratePerSec: number;
  /** etcd benchmark's --user "name:password": every request carries a token for that user. */
  readonly user?: string;
  /** etcdctl's --cacert, --cert and --key: TLS connections, with a client certificate. */
  readonly tls?: TlsFiles;
}

export interface LatencySummaryUs {
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
  readonly mean: number;
}

export interface LoadResult {
  readonly op: LoadOp;
  readonly consistency: 'l' | 's';
  readonly txnOps: number;
  readonly conns: number;
  readonly clients: number;
  /** Successful measured requests. */
  readonly requests: number;
  readonly errors: Readonly<Record<string, number>>;
  readonly errorCount: number;
  readonly elapsedMs: number;
  readonly throughputPerSec: number;
  readonly latencyUs: LatencySummaryUs;
  /** Latency at each of reportedPercentiles, in that order. */
  readonly latencyPercentilesUs: readonly LatencyAtPercentile[];
  /** The --rate the run was paced at; 0 for none. */
  readonly ratePerSec: number;
  /** CPU this process spent during the measured window (user + system). */
  readonly clientCpuMs: number;
  readonly lastRevision: number;
}

/** Defaults for everything but the endpoints. */
export function loadOptions(partial: Partial<LoadOptions> & { endpoints: readonly string[] }): LoadOptions {
  const options: LoadOptions = {
    conns: 1,
    clients: 1,
    durationMs: durationMsDefault,
    warmupMs: warmupMsDefault,
    keySize: 8,
    valSize: 256,
    keySpace: 10_000,
    sequentialKeys: false,
    op: 'put',
    consistency: 'l',
    txnOps: 1,
    deadlineMs: requestDeadlineMsDefault,
    ratePerSec: 0,
    ...partial,
  };
  validate(options);
  return options;
}

function validate(options: LoadOptions): void {
  const positive: Array<keyof LoadOptions> = ['conns', 'clients', 'keySize', 'keySpace', 'txnOps', 'deadlineMs'];
  for (const name of positive) {
    const value = options[name];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1)
      throw new Error(`--${name} must be a positive integer, saw ${String(value)}`);
  }
  if (options.endpoints.length === 0) throw new Error('expected at least one endpoint');
  if (options.valSize < 0 || options.warmupMs < 0) throw new Error('--val-size and --warmup must not be negative');
  if (options.durationMs <= 0 || options.durationMs > durationMsMax)
    throw new Error(`--duration must be in (0, ${durationMsMax / 1000}] s`);
  if (options.total !== undefined && (!Number.isInteger(options.total) || options.total < 1))
    throw new Error('--total must be a positive integer');
  if (!loadOps.includes(options.op)) throw new Error(`--op must be ${loadOps.join(', ')}, saw ${String(options.op)}`);
  if (options.txnOps > options.keySpace)
    throw new Error(`--txn-ops must be in 1..${options.keySpace} (the key space), saw ${options.txnOps}`);
  // Truncated keys repeat, and etcd refuses a txn that puts one key twice.
  if (options.op === 'txn-put' && options.txnOps > 1 && String(options.keySpace - 1).length > options.keySize) {
    throw new Error(
      `--txn-ops above 1 needs every index of --key-space ${options.keySpace} to fit in --key-size ${options.keySize} digits`,
    );
  }
  if (options.op === 'authenticate' && !(options.user ?? '').includes(':'))
    throw new Error(`--op authenticate needs --user name:password, saw ${JSON.stringify(options.user ?? '')}`);
  if (options.consistency !== 'l' && options.consistency !== 's')
    throw new Error(`--consistency must be l or s, saw ${String(options.consistency)}`);
  if (!Number.isInteger(options.ratePerSec) || options.ratePerSec < 0 || options.ratePerSec > ratePerSecMax) {
    throw new Error(`--rate must be an integer in 0..${ratePerSecMax}, saw ${String(options.ratePerSec)}`);
  }
}

/**
 * Paces requests at `ratePerSec` over all clients, as etcd's `benchmark --rate` does: slot i is
 * due at anchor + i/rate. A slot is never made up: when every client is late, the schedule
 * restarts from now instead of sending the missed slots in a burst, so due times are always at
 * least 1/rate apart and no window of a second holds more than `ratePerSec` of them.
 */
export class RatePacer {
  private anchorMs: number;
  private slot = 0;

  constructor(
    readonly ratePerSec: number,
    startMs: number,
  ) {
    if (!(ratePerSec > 0)) throw new Error(`expected a positive rate, saw ${ratePerSec}`);
    this.anchorMs = startMs;
  }

  /** Takes the next slot and returns when it is due: its schedule time, or `nowMs` if that has passed. */
  reserve(nowMs: number): number {
    let dueMs = this.anchorMs + (this.slot * 1000) / this.ratePerSec;
    if (dueMs < nowMs) {
      this.anchorMs = nowMs;
      this.slot = 0;
      dueMs = nowMs;
    }
    this.slot += 1;
    return dueMs;
  }
}

/** Shared state of one run: every client loop draws keys and records results here. */
class LoadRun {
  readonly histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: latencyUsMax,
    numberOfSignificantValueDigits: 3,
  });
  readonly errors = new Map<string, number>();
  readonly value: Buffer;
  requests = 0;
  errorCount = 0;
  /** Every answered request, warm-up and failures included, for the progress bar's rate. */
  answered = 0;
  issuedMeasured = 0;
  lastRevision = 0;
  private nextSequentialKey = 0;
  readonly startMs = performance.now();
  readonly measureStartMs: number;
  readonly measureEndMs: number;
  readonly pacer: RatePacer | undefined;

  constructor(readonly options: LoadOptions) {
    this.value = Buffer.alloc(options.valSize, 'v');
    this.pacer = options.ratePerSec > 0 ? new RatePacer(options.ratePerSec, this.startMs) : undefined;
    this.measureStartMs = this.startMs + options.warmupMs;
    // In --total mode the duration still bounds the run, so a dead server cannot hang it.
    this.measureEndMs = this.measureStartMs + options.durationMs;
  }

  /** Whether a client may issue another request, and whether it would be measured. */
  admit(nowMs: number): 'stop' | 'warmup' | 'measure' {
    if (nowMs >= this.measureEndMs) return 'stop';
    if (nowMs < this.measureStartMs) return 'warmup';
    if (this.options.total !== undefined && this.issuedMeasured >= this.options.total) return 'stop';
    this.issuedMeasured += 1;
    return 'measure';
  }

  /** `count` keys: a random or the next sequential start index and the indexes after it. */
  nextKeys(count: number): Buffer[] {
    const { keySpace, keySize, sequentialKeys } = this.options;
    if (!sequentialKeys) return consecutiveKeys(Math.floor(Math.random() * keySpace), count, keySpace, keySize);
    const start = this.nextSequentialKey % keySpace;
    this.nextSequentialKey += count;
    return consecutiveKeys(start, count, keySpace, keySize);
  }

  recordError(error: unknown): void {
    this.errorCount += 1;
    const kind = errorKind(error);
    const known = this.errors.has(kind) || this.errors.size < errorKindsMax ? kind : 'other';
    this.errors.set(known, (this.errors.get(known) ?? 0) + 1);
  }
}

/**
 * The keys of indexes start, start + 1, ... wrapping at `keySpace`: each index in decimal,
 * zero-padded to `keySize` and keeping its last `keySize` digits. They are distinct while
 * `count <= keySpace` and no index is truncated.
 */
export function consecutiveKeys(start: number, count: number, keySpace: number, keySize: number): Buffer[] {
  return Array.from({ length: count }, (_, i) =>
    Buffer.from(((start + i) % keySpace).toString().padStart(keySize, '0').slice(-keySize)),
  );
}

function errorKind(error: unknown): string {
  const status = error as Partial<grpc.StatusObject>;
  if (typeof status.code === 'number')
    return `${grpc.status[status.code] ?? status.code}: ${String(status.details ?? '').slice(0, 120)}`;
  return String((error as Error).message ?? error).slice(0, 120);
}

/** Sends one request of the run's op. */
function send(run: LoadRun, connection: KvConnection, keys: readonly Buffer[]): Promise<KvReply> {
  const { op, consistency, deadlineMs } = run.options;
  if (op === 'txn-put') return connection.txnPut(keys, run.value, deadlineMs);
  if (op === 'authenticate') return authenticateOnce(connection, run.options);
  const key = keys[0] as Buffer;
  return op === 'put'
    ? connection.put(key, run.value, deadlineMs)
    : connection.range(key, consistency === 's', deadlineMs);
}

/**
 * Waits for the next paced slot and returns its time, or undefined when that slot falls after the
 * run. The slot's time, not the wake-up's, decides whether it is measured, so a late timer cannot
 * move a warm-up request into the count.
 */
async function pacedSendMs(run: LoadRun, pacer: RatePacer): Promise<number | undefined> {
  let nowMs = performance.now();
  const dueMs = pacer.reserve(nowMs);
  if (dueMs >= run.measureEndMs) return undefined;
  // Node truncates timer delays to whole milliseconds and may fire a little early: sleep again until due.
  while (nowMs < dueMs) {
    await sleep(Math.ceil(dueMs - nowMs));
    nowMs = performance.now();
  }
  return dueMs;
}

async function clientLoop(run: LoadRun, connection: KvConnection): Promise<void> {
  const keysPerRequest = run.options.op === 'txn-put' ? run.options.txnOps : 1;
  for (;;) {
    // Without --rate no await is added, so the unlimited loop is as before.
    const sendMs = run.pacer === undefined ? performance.now() : await pacedSendMs(run, run.pacer);
    const phase = sendMs === undefined ? 'stop' : run.admit(sendMs);
    if (phase === 'stop') return;
    const keys = run.nextKeys(keysPerRequest);
    const startMs = performance.now();
    try {
      const reply = await send(run, connection, keys);
      run.answered += 1;
      if (phase !== 'measure') continue;
      run.histogram.recordValue(Math.max(1, Math.round((performance.now() - startMs) * 1000)));
      run.requests += 1;
      run.lastRevision = Math.max(run.lastRevision, reply.revision);
    } catch (error) {
      run.answered += 1;
      if (phase === 'measure') run.recordError(error);
    }
  }
}

/** --user split at its first colon; throws unless it is name:password. */
function userOf(options: LoadOptions): { name: string; password: string } {
  const user = options.user ?? '';
  const colon = user.indexOf(':');
  if (colon <= 0) throw new Error(`--user must be name:password, saw ${JSON.stringify(user)}`);
  return { name: user.slice(0, colon), password: user.slice(colon + 1) };
}

/** One Authenticate call as --user; an answer carries no revision the bench reads. */
async function authenticateOnce(connection: KvConnection, options: LoadOptions): Promise<KvReply> {
  const { name, password } = userOf(options);
  await connection.authenticate(name, password, options.deadlineMs);
  return { revision: 0, count: 0 };
}

/** Authenticates --user once, on the first endpoint; every connection then carries the token. */
async function tokenFor(options: LoadOptions): Promise<string> {
  const { name, password } = userOf(options);
  const connection = new KvConnection(options.endpoints[0] as string, undefined, options.tls);
  try {
    return await connection.authenticate(name, password, options.deadlineMs);
  } finally {
    connection.close();
  }
}

/** Runs one workload and returns its measured summary; with a `progress` sink, draws a progress bar on it meanwhile. */
export async function runLoad(options: LoadOptions, progress?: ProgressSink): Promise<LoadResult> {
  validate(options);
  // With --op authenticate the calls themselves log in; a token would go unused.
  const token = options.user === undefined || options.op === 'authenticate' ? undefined : await tokenFor(options);
  const connections = Array.from(
    { length: options.conns },
    (_, i) => new KvConnection(options.endpoints[i % options.endpoints.length] as string, token, options.tls),
  );
  const run = new LoadRun(options);
  const stopProgress = progress === undefined ? undefined : startProgress(progress, () => progressOf(run));
  let cpuAtStart: NodeJS.CpuUsage | undefined;
  let measuredStartMs = 0;
  const cpuMark = setTimeout(() => {
    cpuAtStart = process.cpuUsage();
    measuredStartMs = performance.now();
  }, options.warmupMs);
  try {
    await Promise.all(
      Array.from({ length: options.clients }, (_, i) =>
        clientLoop(run, connections[i % connections.length] as KvConnection),
      ),
    );
  } finally {
    clearTimeout(cpuMark);
    stopProgress?.();
    for (const connection of connections) connection.close();
  }
  const cpu = process.cpuUsage(cpuAtStart);
  const elapsedMs = measuredStartMs === 0 ? 0 : performance.now() - measuredStartMs;
  return summarise(run, elapsedMs, cpuAtStart === undefined ? 0 : (cpu.user + cpu.system) / 1000);
}

function progressOf(run: LoadRun): ProgressSnapshot {
  const { warmupMs, durationMs, total } = run.options;
  return {
    elapsedMs: performance.now() - run.startMs,
    warmupMs,
    durationMs,
    total,
    requests: run.requests,
    errorCount: run.errorCount,
    answered: run.answered,
  };
}

function summarise(run: LoadRun, elapsedMs: number, clientCpuMs: number): LoadResult {
  const h = run.histogram;
  // Every percentile, 100 included, is read the same way so the list never decreases (maxValue
  // can sit below the top bucket's highest equivalent value that getValueAtPercentile reports).
  const at = (percentile: number): number => (h.totalCount === 0 ? 0 : h.getValueAtPercentile(percentile));
  return {
    op: run.options.op,
    consistency: run.options.consistency,
    txnOps: run.options.txnOps,
    conns: run.options.conns,
    clients: run.options.clients,
    requests: run.requests,
    errors: Object.fromEntries(run.errors),
    errorCount: run.errorCount,
    elapsedMs: Math.round(elapsedMs),
    throughputPerSec: elapsedMs > 0 ? Math.round((run.requests * 1000) / elapsedMs) : 0,
    latencyUs: {
      p50: at(50),
      p90: at(90),
      p99: at(99),
      p999: at(99.9),
      max: h.totalCount === 0 ? 0 : h.maxValue,
      mean: Math.round(h.mean),
    },
    latencyPercentilesUs: reportedPercentiles.map((percentile) => ({ percentile, us: at(percentile) })),
    ratePerSec: run.options.ratePerSec,
    clientCpuMs: Math.round(clientCpuMs),
    lastRevision: run.lastRevision,
  };
}

function opDetail(result: LoadResult): string {
  if (result.op === 'range') return ` consistency=${result.consistency}`;
  return result.op === 'txn-put' ? ` txn-ops=${result.txnOps}` : '';
}

/** The workload of a result in one line, e.g. "op=put conns=8 clients=64 rate=500/s". */
export function describeWorkload(result: LoadResult): string {
  const rate = result.ratePerSec > 0 ? ` rate=${result.ratePerSec}/s` : '';
  return `op=${result.op}${opDetail(result)} conns=${result.conns} clients=${result.clients}${rate}`;
}

/** A human-readable summary, in milliseconds. */
export function formatLoadResult(result: LoadResult): string {
  const ms = (us: number): string => (us / 1000).toFixed(3);
  const l = result.latencyUs;
  const lines = [
    describeWorkload(result),
    `requests: ${result.requests} ok, ${result.errorCount} errors in ${(result.elapsedMs / 1000).toFixed(2)} s`,
    `throughput: ${result.throughputPerSec} req/s`,
    `latency ms: p50 ${ms(l.p50)}  p90 ${ms(l.p90)}  p99 ${ms(l.p99)}  p99.9 ${ms(l.p999)}  max ${ms(l.max)}  mean ${ms(l.mean)}`,
    `client cpu: ${result.clientCpuMs} ms`,
  ];
  for (const [kind, count] of Object.entries(result.errors)) lines.push(`error x${count}: ${kind}`);
  return lines.join('\n');
}

const usage = `usage: tsetcd-bench [--endpoints h:p,...] [--conns N] [--clients N] [--total N | --duration S]
  [--warmup S] [--key-size B] [--val-size B] [--key-space N] [--sequential-keys]
  [--op put|range|txn-put|authenticate] [--consistency l|s] [--txn-ops N] [--deadline S] [--rate N]
  [--json] [--plot FILE.svg] [--user NAME:PASSWORD] [--cacert FILE --cert FILE --key FILE]`;

/** Parses command-line flags into load options (durations in seconds). */
export function parseLoadArgs(argv: readonly string[]): { options: LoadOptions; json: boolean; plotPath?: string } {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      endpoints: { type: 'string', default: '127.0.0.1:2379' },
      conns: { type: 'string', default: '1' },
      clients: { type: 'string', default: '1' },
      total: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      'key-size': { type: 'string', default: '8' },
      'val-size': { type: 'string', default: '256' },
      'key-space': { type: 'string', default: '10000' },
      'sequential-keys': { type: 'boolean', default: false },
      op: { type: 'string', default: 'put' },
      consistency: { type: 'string', default: 'l' },
      'txn-ops': { type: 'string', default: '1' },
      deadline: { type: 'string' },
      rate: { type: 'string', default: '0' },
      json: { type: 'boolean', default: false },
      plot: { type: 'string' },
      user: { type: 'string' },
      cacert: { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
    },
  });
  const seconds = (text: string | undefined, fallbackMs: number): number =>
    text === undefined ? fallbackMs : Math.round(Number(text) * 1000);
  const options = loadOptions({
    endpoints: String(values.endpoints)
      .split(',')
      .filter((e) => e !== ''),
    conns: Number(values.conns),
    clients: Number(values.clients),
    ...(values.total === undefined ? {} : { total: Number(values.total) }),
    durationMs: seconds(values.duration, values.total === undefined ? durationMsDefault : durationMsMax),
    warmupMs: seconds(values.warmup, warmupMsDefault),
    keySize: Number(values['key-size']),
    valSize: Number(values['val-size']),
    keySpace: Number(values['key-space']),
    sequentialKeys: values['sequential-keys'] === true,
    op: values.op as LoadOp,
    consistency: values.consistency as 'l' | 's',
    txnOps: Number(values['txn-ops']),
    deadlineMs: seconds(values.deadline, requestDeadlineMsDefault),
    ratePerSec: Number(values.rate),
    ...(values.user === undefined ? {} : { user: values.user }),
    ...tlsOf(values.cacert, values.cert, values.key),
  });
  return { options, json: values.json === true, plotPath: values.plot };
}

/** --cacert, --cert and --key as LoadOptions' tls: all three or none. */
function tlsOf(caFile?: string, certFile?: string, keyFile?: string): { tls?: TlsFiles } {
  if (caFile === undefined && certFile === undefined && keyFile === undefined) return {};
  if (caFile === undefined || certFile === undefined || keyFile === undefined)
    throw new Error('--cacert, --cert and --key go together (the servers verify client certificates)');
  return { tls: { trustedCaFile: caFile, certFile, keyFile } };
}

/** The latency plot of one run, titled with its workload. */
export function loadPlotSvg(result: LoadResult, endpoints: readonly string[]): string {
  const title = `latency by percentile (${describeWorkload(result)})`;
  const subtitle = `${result.requests} requests, ${result.errorCount} errors, ${result.throughputPerSec} req/s`;
  return latencyPlotSvg({
    title,
    subtitle,
    series: [{ label: endpoints.join(','), points: result.latencyPercentilesUs }],
  });
}

/** The tsetcd-bench entry point; returns the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let parsed: ReturnType<typeof parseLoadArgs>;
  try {
    parsed = parseLoadArgs(argv);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${usage}\n`);
    return 2;
  }
  // The bar is for a person watching a terminal; piped or --json output stays as it was.
  const progress = !parsed.json && process.stderr.isTTY ? process.stderr : undefined;
  const result = await runLoad(parsed.options, progress);
  process.stdout.write(parsed.json ? `${JSON.stringify(result)}\n` : `${formatLoadResult(result)}\n`);
  if (parsed.plotPath !== undefined) {
    writeFileSync(parsed.plotPath, loadPlotSvg(result, parsed.options.endpoints));
    if (!parsed.json) process.stdout.write(`latency plot: ${parsed.plotPath}\n`);
  }
  return result.requests > 0 ? 0 : 1;
}

/** True when `moduleUrl` is the script node was started with. */
export function isMainModule(moduleUrl: string): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return pathToFileURL(realpathSync(script)).href === moduleUrl;
  } catch {
    return false;
  }
}

if (isMainModule(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
