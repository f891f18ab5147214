/**
 * tsetcd-bench: a gRPC load generator for etcd's KV API, in the spirit of etcd's own
 * `benchmark put` / `benchmark range` / `benchmark txn-put`. Latencies go into an HDR
 * histogram; requests that complete during the warm-up are not counted.
 *
 *   tsetcd-bench --endpoints 127.0.0.1:2379 --conns 4 --clients 64 --duration 10 --op put
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import * as hdr from 'hdr-histogram-js';
import { KvConnection, type KvReply } from './kv-client.js';

/** Slowest latency the histogram can hold: a minute, in microseconds. */
const latencyUsMax = 60_000_000;
/** Distinct error messages kept; the rest are counted under one bucket. */
const errorKindsMax = 32;
export const warmupMsDefault = 1_000;
export const durationMsDefault = 10_000;
/** Upper bound on any run so a typo cannot start an endless load. */
export const durationMsMax = 3_600_000;
export const requestDeadlineMsDefault = 10_000;

/** The workloads; txn-put is one Txn per request whose success branch puts --txn-ops distinct keys. */
export const loadOps = ['put', 'range', 'txn-put'] as const;
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
    ...partial,
  };
  validate(options);
  return options;
}

function validate(options: LoadOptions): void {
  const positive: Array<keyof LoadOptions> = ['conns', 'clients', 'keySize', 'keySpace', 'txnOps', 'deadlineMs'];
  for (const name of positive) {
    const value = options[name];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer, saw ${String(value)}`);
  }
  if (options.endpoints.length === 0) throw new Error('expected at least one endpoint');
  if (options.valSize < 0 || options.warmupMs < 0) throw new Error('--val-size and --warmup must not be negative');
  if (options.durationMs <= 0 || options.durationMs > durationMsMax) throw new Error(`--duration must be in (0, ${durationMsMax / 1000}] s`);
  if (options.total !== undefined && (!Number.isInteger(options.total) || options.total < 1)) throw new Error('--total must be a positive integer');
  if (!loadOps.includes(options.op)) throw new Error(`--op must be ${loadOps.join(', ')}, saw ${String(options.op)}`);
  if (options.txnOps > options.keySpace) throw new Error(`--txn-ops must be in 1..${options.keySpace} (the key space), saw ${options.txnOps}`);
  // Truncated keys repeat, and etcd refuses a txn that puts one key twice.
  if (options.op === 'txn-put' && options.txnOps > 1 && String(options.keySpace - 1).length > options.keySize) {
    throw new Error(`--txn-ops above 1 needs every index of --key-space ${options.keySpace} to fit in --key-size ${options.keySize} digits`);
  }
  if (options.consistency !== 'l' && options.consistency !== 's') throw new Error(`--consistency must be l or s, saw ${String(options.consistency)}`);
}

/** Shared state of one run: every client loop draws keys and records results here. */
class LoadRun {
  readonly histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: latencyUsMax, numberOfSignificantValueDigits: 3 });
  readonly errors = new Map<string, number>();
  readonly value: Buffer;
  requests = 0;
  errorCount = 0;
  issuedMeasured = 0;
  lastRevision = 0;
  private nextSequentialKey = 0;
  private readonly startMs = performance.now();
  readonly measureStartMs: number;
  readonly measureEndMs: number;

  constructor(readonly options: LoadOptions) {
    this.value = Buffer.alloc(options.valSize, 'v');
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
  return Array.from({ length: count }, (_, i) => Buffer.from(((start + i) % keySpace).toString().padStart(keySize, '0').slice(-keySize)));
}

function errorKind(error: unknown): string {
  const status = error as Partial<grpc.StatusObject>;
  if (typeof status.code === 'number') return `${grpc.status[status.code] ?? status.code}: ${String(status.details ?? '').slice(0, 120)}`;
  return String((error as Error).message ?? error).slice(0, 120);
}

/** Sends one request of the run's op. */
function send(run: LoadRun, connection: KvConnection, keys: readonly Buffer[]): Promise<KvReply> {
  const { op, consistency, deadlineMs } = run.options;
  if (op === 'txn-put') return connection.txnPut(keys, run.value, deadlineMs);
  const key = keys[0] as Buffer;
  return op === 'put' ? connection.put(key, run.value, deadlineMs) : connection.range(key, consistency === 's', deadlineMs);
}

async function clientLoop(run: LoadRun, connection: KvConnection): Promise<void> {
  const keysPerRequest = run.options.op === 'txn-put' ? run.options.txnOps : 1;
  for (;;) {
    const phase = run.admit(performance.now());
    if (phase === 'stop') return;
    const keys = run.nextKeys(keysPerRequest);
    const startMs = performance.now();
    try {
      const reply = await send(run, connection, keys);
      if (phase !== 'measure') continue;
      run.histogram.recordValue(Math.max(1, Math.round((performance.now() - startMs) * 1000)));
      run.requests += 1;
      run.lastRevision = Math.max(run.lastRevision, reply.revision);
    } catch (error) {
      if (phase === 'measure') run.recordError(error);
    }
  }
}

/** Runs one workload and returns its measured summary. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  validate(options);
  const connections = Array.from({ length: options.conns }, (_, i) => new KvConnection(options.endpoints[i % options.endpoints.length] as string));
  const run = new LoadRun(options);
  let cpuAtStart: NodeJS.CpuUsage | undefined;
  let measuredStartMs = 0;
  const cpuMark = setTimeout(() => {
    cpuAtStart = process.cpuUsage();
    measuredStartMs = performance.now();
  }, options.warmupMs);
  try {
    await Promise.all(Array.from({ length: options.clients }, (_, i) => clientLoop(run, connections[i % connections.length] as KvConnection)));
  } finally {
    clearTimeout(cpuMark);
    for (const connection of connections) connection.close();
  }
  const cpu = process.cpuUsage(cpuAtStart);
  const elapsedMs = measuredStartMs === 0 ? 0 : performance.now() - measuredStartMs;
  return summarise(run, elapsedMs, cpuAtStart === undefined ? 0 : (cpu.user + cpu.system) / 1000);
}

function summarise(run: LoadRun, elapsedMs: number, clientCpuMs: number): LoadResult {
  const h = run.histogram;
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
    latencyUs: { p50: at(50), p90: at(90), p99: at(99), p999: at(99.9), max: h.totalCount === 0 ? 0 : h.maxValue, mean: Math.round(h.mean) },
    clientCpuMs: Math.round(clientCpuMs),
    lastRevision: run.lastRevision,
  };
}

function opDetail(result: LoadResult): string {
  if (result.op === 'range') return ` consistency=${result.consistency}`;
  return result.op === 'txn-put' ? ` txn-ops=${result.txnOps}` : '';
}

/** A human-readable summary, in milliseconds. */
export function formatLoadResult(result: LoadResult): string {
  const ms = (us: number): string => (us / 1000).toFixed(3);
  const l = result.latencyUs;
  const lines = [
    `op=${result.op}${opDetail(result)} conns=${result.conns} clients=${result.clients}`,
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
  [--op put|range|txn-put] [--consistency l|s] [--txn-ops N] [--deadline S] [--json]`;

/** Parses command-line flags into load options (durations in seconds). */
export function parseLoadArgs(argv: readonly string[]): { options: LoadOptions; json: boolean } {
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
      json: { type: 'boolean', default: false },
    },
  });
  const seconds = (text: string | undefined, fallbackMs: number): number => (text === undefined ? fallbackMs : Math.round(Number(text) * 1000));
  const options = loadOptions({
    endpoints: String(values.endpoints).split(',').filter((e) => e !== ''),
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
  });
  return { options, json: values.json === true };
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
  const result = await runLoad(parsed.options);
  process.stdout.write(parsed.json ? `${JSON.stringify(result)}\n` : `${formatLoadResult(result)}\n`);
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
