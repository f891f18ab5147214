/**
 * `etcdctl check perf` and `check datascale`. perf: puts at a fixed rate from many clients for a minute, then judges the
 * throughput, the slowest request and the spread of latencies with etcdctl's thresholds, and
 * deletes what it wrote. datascale: puts a number of key-values as fast as the clients go and
 * reports how much the member's resident memory grew.
 */
import { randomInt } from 'node:crypto';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { rpcErrorText, type EtcdConnection } from './client.js';
import type { CommandContext } from './context.js';
import { prefixRangeEnd } from './kv-commands.js';
import { CtlExit, ExitCode, exitWithError } from './output.js';
import { ProgressBar } from './progress-bar.js';
import { monotonicMs } from './monotonic-clock.js';
import { nodeTls } from './lazy-modules.js';
import { clientSecurity } from './security.js';

interface PerfLoad {
  /** Puts per second. */
  readonly limit: number;
  readonly clients: number;
  readonly durationSeconds: number;
}

/** etcdctl's workload models. */
const perfLoads: Record<string, PerfLoad> = {
  s: { limit: 150, clients: 50, durationSeconds: 60 },
  m: { limit: 1000, clients: 200, durationSeconds: 60 },
  l: { limit: 8000, clients: 500, durationSeconds: 60 },
  xl: { limit: 15000, clients: 1000, durationSeconds: 60 },
};
const loadAliases: Record<string, string> = {
  s: 's',
  small: 's',
  m: 'm',
  medium: 'm',
  l: 'l',
  large: 'l',
  xl: 'xl',
  xLarge: 'xl',
};
/** The key suffix and value sizes etcdctl writes. */
const perfKeyBytes = 256;
const perfValueBytes = 1024;
/** etcdctl's verdicts: at least 90% of the asked rate, no request over 0.5 s, a spread under 0.1 s. */
const perfThroughputShare = 0.9;
const perfSlowestSecondsMax = 0.5;
const perfStddevSecondsMax = 0.1;
/** The perf check's clean-up delete's deadline, and each compaction's and defragmentation's. */
const perfCleanupMs = 30_000;
const maintenanceTimeoutMs = 30_000;

/** Go's binary.PutVarint of a random int63 into a zeroed suffix of `suffixBytes`. */
function checkKey(prefix: string, suffixBytes: number): Buffer {
  const suffix = Buffer.alloc(suffixBytes);
  let value = BigInt(randomInt(2 ** 47)) * BigInt(2 ** 16) + BigInt(randomInt(2 ** 16));
  value <<= 1n; // zig-zag of a non-negative number
  let index = 0;
  while (value >= 0x80n) {
    suffix[index++] = Number(value & 0x7fn) | 0x80;
    value >>= 7n;
  }
  suffix[index] = Number(value);
  return Buffer.concat([Buffer.from(prefix), suffix]);
}

/** The clients' connections, made as etcdctl makes one client per simulated user. */
function openClients(context: CommandContext, endpoints: readonly string[], count: number): EtcdConnection[] {
  return Array.from({ length: count }, () => context.open(endpoints));
}

/** Exits as etcdctl does when the check's prefix already holds keys. */
async function requireEmptyPrefix(
  context: CommandContext,
  client: EtcdConnection,
  prefix: string,
  timeoutMs: number | undefined,
): Promise<void> {
  const existing = await client.call('KV', 'Range', { ...prefixRange(prefix), limit: '1' }, timeoutMs);
  if ((existing.kvs as unknown[]).length > 0)
    exitWithError(
      context.output,
      ExitCode.invalidInput,
      `prefix "${prefix}" has keys. Delete with etcdctl del --prefix ${prefix} first`,
    );
}

function prefixRange(prefix: string): { key: Buffer; range_end: Buffer } {
  return { key: Buffer.from(prefix), range_end: prefixRangeEnd(Buffer.from(prefix)) };
}

/** Deletes the check's keys, then compacts and defragments each endpoint as the flags ask, saying so as etcdctl does. */
async function cleanUp(
  context: CommandContext,
  client: EtcdConnection,
  endpoints: readonly string[],
  prefix: string,
  deleteTimeoutMs: number | undefined,
): Promise<void> {
  const { output, flags } = context;
  const deleted = await client.call('KV', 'DeleteRange', prefixRange(prefix), deleteTimeoutMs);
  if (flags.bool('auto-compact')) {
    const revision = String(deleted.header.revision);
    output.out(`Compacting with revision ${revision}\n`);
    await client.call('KV', 'Compact', { revision, physical: true }, maintenanceTimeoutMs);
    output.out(`Compacted with revision ${revision}\n`);
  }
  if (!flags.bool('auto-defrag')) return;
  for (const endpoint of endpoints) {
    output.out(`Defragmenting ${goQuote(endpoint)}\n`);
    await context.open([endpoint]).call('Maintenance', 'Defragment', {}, maintenanceTimeoutMs);
    output.out(`Defragmented ${goQuote(endpoint)}\n`);
  }
}

function goQuote(text: string): string {
  return JSON.stringify(text);
}

/** `etcdctl check perf [--load s|m|l|xl] [--prefix p] [--auto-compact] [--auto-defrag]`. */
export async function runCheckPerf(context: CommandContext): Promise<void> {
  const { output, flags } = context;
  const model = loadAliases[flags.string('load')];
  const load = model === undefined ? undefined : perfLoads[model];
  if (load === undefined) exitWithError(output, ExitCode.badFeature, `unknown load option ${flags.string('load')}`);
  const prefix = flags.string('prefix');
  const endpoints = context.resolveEndpoints();
  const clients = openClients(context, endpoints, load.clients);
  const first = clients[0]!;
  try {
    await requireEmptyPrefix(context, first, prefix, load.durationSeconds * 1000);
    // etcdctl's clients are dialled before the run; these are connected on their first call, so
    // each makes one read first, lest connection set-up count in the first put's latency.
    const range = { ...prefixRange(prefix), limit: '1' };
    await Promise.all(clients.map((client) => client.call('KV', 'Range', range, load.durationSeconds * 1000)));
    // The bar counts the run's seconds, whatever the requests do.
    const bar = new ProgressBar(output, load.durationSeconds);
    const barDone = tickEachSecond(bar, load.durationSeconds);
    const results = await putAtRate(clients, load, prefix);
    await barDone;
    await cleanUp(context, first, endpoints, prefix, perfCleanupMs);
    const verdict = perfVerdict(latencyStats(results), load.limit);
    output.out(verdict.lines.map((line) => `${line}\n`).join(''));
    if (!verdict.ok) throw new CtlExit(ExitCode.error);
  } catch (error) {
    if (error instanceof CtlExit) throw error;
    exitWithError(output, ExitCode.error, rpcErrorText(error));
  }
}

/** Adds one to the bar each second for `seconds`, then finishes it. */
async function tickEachSecond(bar: ProgressBar, seconds: number): Promise<void> {
  for (let second = 0; second < seconds; second++) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    bar.add(1);
  }
  bar.finish();
}

interface PutResults {
  readonly latenciesSeconds: number[];
  readonly errors: Map<string, number>;
  readonly elapsedSeconds: number;
}

/**
 * etcdctl's rate limiter (golang.org/x/time/rate with a burst of one): a put may go when a token
 * is there; tokens accrue at the rate but never more than one, so a sender held up (every client
 * busy) does not catch up afterwards, and timer lateness does not add up because the schedule
 * is kept in tokens rather than in wake-up times.
 */
export class PutLimiter {
  private tokens = 1;
  private lastMs = 0;

  constructor(private readonly intervalMs: number) {}

  /** How long after `nowMs` the next put may go (0: at once); takes its token. */
  reserve(nowMs: number): number {
    this.tokens = Math.min(1, this.tokens + (nowMs - this.lastMs) / this.intervalMs);
    this.lastMs = nowMs;
    this.tokens -= 1;
    return this.tokens < 0 ? -this.tokens * this.intervalMs : 0;
  }
}

/**
 * Puts at `load.limit` a second for its duration, as etcdctl's generator and clients do: the
 * generator takes a token, then queues the put, waiting while `clients` puts are queued already;
 * each client sends the next queued put once its last one is answered.
 */
async function putAtRate(clients: readonly EtcdConnection[], load: PerfLoad, prefix: string): Promise<PutResults> {
  const value = Buffer.alloc(perfValueBytes);
  const latenciesSeconds: number[] = [];
  const errors = new Map<string, number>();
  const started = monotonicMs();
  const durationMs = load.durationSeconds * 1000;
  const limiter = new PutLimiter(1000 / load.limit);
  const queue: Buffer[] = [];
  let generating = true;
  const idleClients: Array<() => void> = [];
  let queueHasRoom: (() => void) | undefined;
  const send = async (client: EtcdConnection): Promise<void> => {
    for (;;) {
      const key = queue.shift();
      if (key === undefined) {
        if (!generating) return;
        await new Promise<void>((resolve) => idleClients.push(resolve));
        continue;
      }
      queueHasRoom?.();
      const sent = monotonicMs();
      try {
        await client.call('KV', 'Put', { key, value }, undefined);
        latenciesSeconds.push((monotonicMs() - sent) / 1000);
      } catch (error) {
        countError(errors, error);
      }
    }
  };
  const sending = clients.map(send);
  for (;;) {
    const nowMs = monotonicMs() - started;
    const waitMs = limiter.reserve(nowMs);
    // Like the limiter's Wait, it stops at once when the put would be due after the deadline.
    if (nowMs + waitMs > durationMs) break;
    if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
    while (queue.length >= clients.length) await new Promise<void>((resolve) => (queueHasRoom = resolve));
    queue.push(checkKey(prefix, perfKeyBytes));
    idleClients.shift()?.();
  }
  generating = false;
  for (const wake of idleClients.splice(0)) wake();
  await Promise.all(sending);
  return { latenciesSeconds, errors, elapsedSeconds: (monotonicMs() - started) / 1000 };
}

function countError(errors: Map<string, number>, error: unknown): void {
  const text = rpcErrorText(error);
  errors.set(text, (errors.get(text) ?? 0) + 1);
}

/** The figures etcdctl's report takes from a run (seconds; NaN where it divides by no requests). */
export interface LatencyStats {
  readonly requestsPerSecond: number;
  readonly slowestSeconds: number;
  readonly stddevSeconds: number;
  readonly errors: ReadonlyMap<string, number>;
}

/** Throughput over the run, slowest latency and population standard deviation of the successful puts. */
export function latencyStats(results: PutResults): LatencyStats {
  const latencies = results.latenciesSeconds;
  const mean = latencies.reduce((sum, latency) => sum + latency, 0) / latencies.length;
  const variance = latencies.reduce((sum, latency) => sum + (latency - mean) ** 2, 0) / latencies.length;
  return {
    requestsPerSecond: latencies.length / results.elapsedSeconds,
    slowestSeconds: latencies.length === 0 ? 0 : Math.max(...latencies),
    stddevSeconds: Math.sqrt(variance),
    errors: results.errors,
  };
}

/** etcdctl's verdict lines for a perf run against `limit` puts a second; not ok means exit 1. */
export function perfVerdict(stats: LatencyStats, limit: number): { lines: string[]; ok: boolean } {
  const lines: string[] = [];
  let ok = true;
  if (stats.errors.size > 0) {
    lines.push('FAIL: too many errors');
    for (const [text, count] of stats.errors) lines.push(`FAIL: ERROR(${text}) -> ${count}`);
    ok = false;
  }
  // Go's int() truncates toward zero, then etcdctl adds one.
  const writes = Math.trunc(stats.requestsPerSecond) + 1;
  if (stats.requestsPerSecond / limit <= perfThroughputShare) {
    lines.push(`FAIL: Throughput too low: ${writes} writes/s`);
    ok = false;
  } else lines.push(`PASS: Throughput is ${writes} writes/s`);
  if (stats.slowestSeconds > perfSlowestSecondsMax) {
    lines.push(`Slowest request took too long: ${goFloat(stats.slowestSeconds)}s`);
    ok = false;
  } else lines.push(`PASS: Slowest request took ${goFloat(stats.slowestSeconds)}s`);
  if (stats.stddevSeconds > perfStddevSecondsMax) {
    lines.push(`Stddev too high: ${goFloat(stats.stddevSeconds)}s`);
    ok = false;
  } else lines.push(`PASS: Stddev is ${goFloat(stats.stddevSeconds)}s`);
  lines.push(ok ? 'PASS' : 'FAIL');
  return { lines, ok };
}

/** Go's %f: six decimals, NaN as "NaN". */
function goFloat(value: number): string {
  return Number.isNaN(value) ? 'NaN' : value.toFixed(6);
}

interface DatascaleLoad {
  readonly count: number;
  readonly clients: number;
}

/** etcdctl's datascale models: key-values written (of 1 KiB: 512-byte key suffix, 512-byte value). */
const datascaleLoads: Record<string, DatascaleLoad> = {
  s: { count: 10_000, clients: 50 },
  m: { count: 100_000, clients: 200 },
  l: { count: 1_000_000, clients: 500 },
  xl: { count: 3_000_000, clients: 1000 },
};
const datascaleKeyBytes = 512;
const datascaleValueBytes = 512;
const bytesPerMebibyte = 1024 * 1024;

const residentMemoryMetric = 'process_resident_memory_bytes';

/** Node's codes for a server certificate no trusted root vouches for: Go's "unknown authority". */
const unknownAuthorityCodes: ReadonlySet<string> = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
]);

/** Go's words for a failed GET of `url`, as etcdctl prints them after "fetch error: ". */
function fetchErrorText(url: string, error: unknown): string {
  const cause = (error as { cause?: { code?: string } }).cause ?? (error as { code?: string });
  const reason =
    cause.code === 'ECONNREFUSED'
      ? `dial tcp ${new URL(url).host}: connect: connection refused`
      : unknownAuthorityCodes.has(cause.code ?? '')
        ? 'x509: certificate signed by unknown authority'
        : String(cause);
  return `Get "${url}": ${reason}`;
}

/**
 * GETs an https /metrics as etcdctl does: with the client certificate of --cert and --key and
 * --insecure-skip-tls-verify, but verifying the server against the default roots (with
 * NODE_EXTRA_CA_CERTS, as Go's with SSL_CERT_FILE), not --cacert, which etcdctl leaves out here.
 */
function httpsText(context: CommandContext, url: string): Promise<string> {
  const tls = clientSecurity(context.flags, context.output).tls;
  if (tls?.cert === undefined || tls.key === undefined)
    throw new MetricsError('client certificate error: open : no such file or directory');
  const secureContext = nodeTls().createSecureContext({ cert: tls.cert, key: tls.key });
  return new Promise((resolve, reject) => {
    const request = httpsRequest(
      url,
      { secureContext, rejectUnauthorized: !tls.skipVerify, agent: false } as RequestOptions,
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve(Buffer.concat(chunks).toString()));
        response.on('error', reject);
      },
    );
    request.on('error', (error) => reject(new MetricsError(`fetch error: ${fetchErrorText(url, error)}`)));
    request.end();
  });
}

/** A failure to read /metrics, worded as etcdctl prints it. */
class MetricsError extends Error {}

/**
 * process_resident_memory_bytes from the endpoint's /metrics, or 0 after printing why not (on
 * standard output, as etcdctl does).
 */
async function residentMemoryBytes(context: CommandContext, endpoint: string): Promise<number> {
  const host = /^https?:\/\//.test(endpoint) ? endpoint : `http://${endpoint}`;
  const url = `${host}/metrics`;
  let body: string;
  try {
    body = url.startsWith('https://') ? await httpsText(context, url) : await (await fetch(url)).text();
  } catch (error) {
    context.output.out(
      `${error instanceof MetricsError ? error.message : `fetch error: ${fetchErrorText(url, error)}`}\n`,
    );
    return 0;
  }
  const line = body.split('\n').find((text) => text.startsWith(residentMemoryMetric));
  if (line === undefined) {
    context.output.out(`could not find: ${residentMemoryMetric}\n`);
    return 0;
  }
  const text = line.slice(residentMemoryMetric.length).trim();
  const bytes = Number(text);
  if (text === '' || Number.isNaN(bytes)) {
    context.output.out(`parse error: strconv.ParseFloat: parsing ${JSON.stringify(text)}: invalid syntax\n`);
    return 0;
  }
  return bytes;
}

/** `etcdctl check datascale [--load s|m|l|xl] [--prefix p] [--auto-compact] [--auto-defrag]`. */
export async function runCheckDatascale(context: CommandContext): Promise<void> {
  const { output, flags } = context;
  const model = loadAliases[flags.string('load')];
  const load = model === undefined ? undefined : datascaleLoads[model];
  if (load === undefined) exitWithError(output, ExitCode.badFeature, `unknown load option ${flags.string('load')}`);
  const prefix = flags.string('prefix');
  const endpoints = context.resolveEndpoints();
  const clients = openClients(context, endpoints, load.clients);
  const first = clients[0]!;
  // etcdctl looks the endpoints up a second time here (discovery's notices print twice).
  const endpoint = context.resolveEndpoints()[0] ?? '';
  try {
    await requireEmptyPrefix(context, first, prefix, undefined);
    const before = await residentMemoryBytes(context, endpoint);
    if (before === 0) {
      output.out('FAIL: Could not read process_resident_memory_bytes before the put operations.\n');
      throw new CtlExit(ExitCode.error);
    }
    output.out(
      `Start data scale check for work load [${load.count} key-value pairs, ${datascaleKeyBytes + datascaleValueBytes} bytes per key-value, ${load.clients} concurrent clients].\n`,
    );
    const bar = new ProgressBar(output, load.count);
    const errors = await putAll(clients, load, prefix, bar);
    bar.finish();
    const after = await residentMemoryBytes(context, endpoint);
    if (after === 0) {
      output.out('FAIL: Could not read process_resident_memory_bytes after the put operations.\n');
      throw new CtlExit(ExitCode.error);
    }
    await cleanUp(context, first, endpoints, prefix, undefined);
    if (errors.size > 0) {
      output.out('FAIL: too many errors\n');
      for (const [text, count] of errors) output.out(`FAIL: ERROR(${text}) -> ${count}\n`);
      throw new CtlExit(ExitCode.error);
    }
    output.out(`PASS: Approximate system memory used : ${((after - before) / bytesPerMebibyte).toFixed(2)} MB.\n`);
  } catch (error) {
    if (error instanceof CtlExit) throw error;
    exitWithError(output, ExitCode.error, rpcErrorText(error));
  }
}

/** Puts `load.count` key-values, one request out per client at a time, counting each on the bar. */
async function putAll(
  clients: readonly EtcdConnection[],
  load: DatascaleLoad,
  prefix: string,
  bar: ProgressBar,
): Promise<Map<string, number>> {
  const value = Buffer.alloc(datascaleValueBytes);
  const errors = new Map<string, number>();
  let next = 0;
  const worker = async (client: EtcdConnection): Promise<void> => {
    while (next < load.count) {
      next += 1;
      try {
        await client.call('KV', 'Put', { key: checkKey(prefix, datascaleKeyBytes), value }, undefined);
      } catch (error) {
        countError(errors, error);
      }
      bar.add(1);
    }
  };
  await Promise.all(clients.map(worker));
  return errors;
}
