/**
 * `etcdctl check perf` and `check datascale`. perf: puts at a fixed rate from many clients for a minute, then judges the
 * throughput, the slowest request and the spread of latencies with etcdctl's thresholds, and
 * deletes what it wrote. datascale: puts a number of key-values as fast as the clients go and
 * reports how much the member's resident memory grew.
 */
import { randomInt } from 'node:crypto';
import { rpcErrorText, type EtcdConnection } from './client.js';
import type { CommandContext } from './context.js';
import { prefixRangeEnd } from './kv-commands.js';
import { CtlExit, ExitCode, exitWithError } from './output.js';

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
const perfLoadAliases: Record<string, string> = {
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
/** The clean-up delete's deadline. */
const perfCleanupMs = 30_000;

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

/** `etcdctl check perf [--load s|m|l|xl] [--prefix p] [--auto-compact] [--auto-defrag]`. */
export async function runCheckPerf(context: CommandContext): Promise<void> {
  const { output, flags } = context;
  const model = perfLoadAliases[flags.string('load')];
  const load = model === undefined ? undefined : perfLoads[model];
  if (load === undefined) exitWithError(output, ExitCode.badFeature, `unknown load option ${flags.string('load')}`);
  const prefix = flags.string('prefix');
  const endpoints = context.resolveEndpoints();
  const clients: EtcdConnection[] = Array.from({ length: load.clients }, () => context.open(endpoints));
  const first = clients[0]!;
  const range = { key: Buffer.from(prefix), range_end: prefixRangeEnd(Buffer.from(prefix)) };
  try {
    const existing = await first.call('KV', 'Range', { ...range, limit: '1' }, load.durationSeconds * 1000);
    if ((existing.kvs as unknown[]).length > 0)
      exitWithError(
        output,
        ExitCode.invalidInput,
        `prefix "${prefix}" has keys. Delete with etcdctl del --prefix ${prefix} first`,
      );
    const results = await putAtRate(context, clients, load, prefix);
    const deleted = await first.call('KV', 'DeleteRange', range, perfCleanupMs);
    if (flags.bool('auto-compact'))
      await first.call('KV', 'Compact', { revision: String(deleted.header.revision), physical: true }, undefined);
    if (flags.bool('auto-defrag')) await first.call('Maintenance', 'Defragment', {}, undefined);
    report(context, load, results);
  } catch (error) {
    if (error instanceof CtlExit) throw error;
    exitWithError(output, ExitCode.error, rpcErrorText(error));
  }
}

interface PerfResults {
  readonly latenciesSeconds: number[];
  readonly errors: Map<string, number>;
  readonly elapsedSeconds: number;
}

/** Puts at `load.limit` a second for its duration, spread over the clients, with a progress bar. */
async function putAtRate(
  context: CommandContext,
  clients: readonly EtcdConnection[],
  load: PerfLoad,
  prefix: string,
): Promise<PerfResults> {
  const value = Buffer.alloc(perfValueBytes);
  const latenciesSeconds: number[] = [];
  const errors = new Map<string, number>();
  const started = performance.now();
  const total = load.limit * load.durationSeconds;
  let shownSeconds = -1;
  const inFlight = new Set<Promise<void>>();
  for (let index = 0; index < total; index++) {
    const dueMs = (index * 1000) / load.limit;
    const waitMs = dueMs - (performance.now() - started);
    if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
    const seconds = Math.floor((performance.now() - started) / 1000);
    if (seconds !== shownSeconds) progressBar(context, (shownSeconds = seconds), load.durationSeconds);
    const client = clients[index % clients.length]!;
    const sent = performance.now();
    const put = client
      .call('KV', 'Put', { key: checkKey(prefix, perfKeyBytes), value }, undefined)
      .then(
        () => void latenciesSeconds.push((performance.now() - sent) / 1000),
        (error: unknown) => {
          const text = error instanceof Error ? error.message : String(error);
          errors.set(text, (errors.get(text) ?? 0) + 1);
        },
      )
      .finally(() => inFlight.delete(put));
    inFlight.add(put);
    // Each client has one request out at a time, as each of etcdctl's goroutines does.
    if (inFlight.size >= clients.length) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  progressBar(context, load.durationSeconds, load.durationSeconds);
  context.output.out('\n');
  return { latenciesSeconds, errors, elapsedSeconds: (performance.now() - started) / 1000 };
}

/** A text progress bar in the shape of etcdctl's ("Bom !" format), redrawn in place. */
function progressBar(context: CommandContext, done: number, total: number): void {
  const width = 40;
  const filled = Math.round((done / total) * width);
  const bar = `B${'o'.repeat(Math.max(filled - 1, 0))}${' '.repeat(width - Math.max(filled, 1))}m !`;
  context.output.out(
    `\r${String(done).padStart(String(total).length)} / ${total} ${bar} ${((done / total) * 100).toFixed(2)}%`,
  );
}

/** etcdctl's verdict lines; exit 1 when any check fails. */
function report(context: CommandContext, load: PerfLoad, results: PerfResults): void {
  const { output } = context;
  const latencies = results.latenciesSeconds;
  const rps = latencies.length / results.elapsedSeconds;
  const slowest = latencies.length === 0 ? 0 : Math.max(...latencies);
  const mean = latencies.reduce((sum, latency) => sum + latency, 0) / Math.max(latencies.length, 1);
  const stddev = Math.sqrt(
    latencies.reduce((sum, latency) => sum + (latency - mean) ** 2, 0) / Math.max(latencies.length, 1),
  );
  let ok = true;
  if (results.errors.size > 0) {
    output.out('FAIL: too many errors\n');
    for (const [text, count] of results.errors) output.out(`FAIL: ERROR(${text}) -> ${count}\n`);
    ok = false;
  }
  if (rps / load.limit <= perfThroughputShare) {
    output.out(`FAIL: Throughput too low: ${Math.floor(rps) + 1} writes/s\n`);
    ok = false;
  } else output.out(`PASS: Throughput is ${Math.floor(rps) + 1} writes/s\n`);
  if (slowest > perfSlowestSecondsMax) {
    output.out(`Slowest request took too long: ${slowest.toFixed(6)}s\n`);
    ok = false;
  } else output.out(`PASS: Slowest request took ${slowest.toFixed(6)}s\n`);
  if (stddev > perfStddevSecondsMax) {
    output.out(`Stddev too high: ${stddev.toFixed(6)}s\n`);
    ok = false;
  } else output.out(`PASS: Stddev is ${stddev.toFixed(6)}s\n`);
  output.out(ok ? 'PASS\n' : 'FAIL\n');
  if (!ok) throw new CtlExit(ExitCode.error);
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

/** process_resident_memory_bytes from the endpoint's /metrics; 0 when it cannot be read, as etcdctl. */
async function residentMemoryBytes(endpoint: string): Promise<number> {
  const url = /^https?:\/\//.test(endpoint) ? endpoint : `http://${endpoint}`;
  try {
    const body = await (await fetch(`${url}/metrics`)).text();
    const line = body.split('\n').find((text) => text.startsWith('process_resident_memory_bytes '));
    return line === undefined ? 0 : Number(line.split(' ')[1]);
  } catch {
    return 0;
  }
}

/** `etcdctl check datascale [--load s|m|l|xl] [--prefix p] [--auto-compact] [--auto-defrag]`. */
export async function runCheckDatascale(context: CommandContext): Promise<void> {
  const { output, flags } = context;
  const model = perfLoadAliases[flags.string('load')];
  const load = model === undefined ? undefined : datascaleLoads[model];
  if (load === undefined) exitWithError(output, ExitCode.badFeature, `unknown load option ${flags.string('load')}`);
  const prefix = flags.string('prefix');
  const endpoints = context.resolveEndpoints();
  const clients: EtcdConnection[] = Array.from({ length: load.clients }, () => context.open(endpoints));
  const first = clients[0]!;
  const range = { key: Buffer.from(prefix), range_end: prefixRangeEnd(Buffer.from(prefix)) };
  // etcdctl looks the endpoints up a second time here (discovery's notices print twice).
  const endpoint = context.resolveEndpoints()[0] ?? '';
  try {
    const existing = await first.call('KV', 'Range', { ...range, limit: '1' }, undefined);
    if ((existing.kvs as unknown[]).length > 0)
      exitWithError(
        output,
        ExitCode.invalidInput,
        `prefix "${prefix}" has keys. Delete with etcdctl del --prefix ${prefix} first`,
      );
    const before = await residentMemoryBytes(endpoint);
    if (before === 0) {
      output.out('FAIL: Could not read process_resident_memory_bytes before the put operations.\n');
      throw new CtlExit(ExitCode.error);
    }
    output.out(
      `Start data scale check for work load [${load.count} key-value pairs, ${datascaleKeyBytes + datascaleValueBytes} bytes per key-value, ${load.clients} concurrent clients].\n`,
    );
    const errors = await putAll(context, clients, load, prefix);
    const after = await residentMemoryBytes(endpoint);
    if (after === 0) {
      output.out('FAIL: Could not read process_resident_memory_bytes after the put operations.\n');
      throw new CtlExit(ExitCode.error);
    }
    const deleted = await first.call('KV', 'DeleteRange', range, undefined);
    if (flags.bool('auto-compact'))
      await first.call('KV', 'Compact', { revision: String(deleted.header.revision), physical: true }, undefined);
    if (flags.bool('auto-defrag')) await first.call('Maintenance', 'Defragment', {}, undefined);
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

/** Puts `load.count` key-values, one request out per client at a time, with a progress bar. */
async function putAll(
  context: CommandContext,
  clients: readonly EtcdConnection[],
  load: DatascaleLoad,
  prefix: string,
): Promise<Map<string, number>> {
  const value = Buffer.alloc(datascaleValueBytes);
  const errors = new Map<string, number>();
  let next = 0;
  let done = 0;
  const worker = async (client: EtcdConnection): Promise<void> => {
    while (next < load.count) {
      next += 1;
      try {
        await client.call('KV', 'Put', { key: checkKey(prefix, datascaleKeyBytes), value }, undefined);
      } catch (error) {
        const text = error instanceof Error ? error.message : String(error);
        errors.set(text, (errors.get(text) ?? 0) + 1);
      }
      done += 1;
      if (done % Math.max(Math.floor(load.count / 100), 1) === 0) progressBar(context, done, load.count);
    }
  };
  await Promise.all(clients.map(worker));
  progressBar(context, load.count, load.count);
  context.output.out('\n');
  return errors;
}
