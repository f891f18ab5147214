/**
 * What a one-client put must cost on this machine before any server work: the disk's fsync (the
 * probe of fsync-probe.ts) and the client's gRPC round trip to a server that does nothing
 * (bench/go-load's `--serve-null`: etcd's KV service answering every request at once, with no
 * store, Raft or disk). A durable put waits for both, one after the other: the request must arrive
 * before its entry can be synced, and the answer leaves after. So (null p50 + fsync p50) / fsync p50
 * is the "put p50 over fsync p50" of a server whose round trip is as fast as this null one's and
 * that adds only the fsync, to set beside the 1.2 the performance target asks and the ratios
 * compare.js reports for etcd and tsetcd (whose own range-s-1 round trip is about as fast).
 *
 *   node dist/bench/floor.js [--duration 3] [--warmup 1] [--rounds 3] [--client go|node] [--json]
 *
 * The null server needs the Go tool (Debian's golang-go and golang-etcd-server-dev); --client
 * chooses the load generator that drives it (go by default, the client the comparisons use).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { median, table } from './compare.js';
import { describeProbe, probeFsync, type FsyncProbeResult } from './fsync-probe.js';
import {
  goLoadAvailable,
  loadClientLabel,
  loadRunner,
  parseLoadClientName,
  requireGoLoad,
  type LoadClientName,
} from './go-client.js';
import { loadOptions } from './load.js';
import { readHostCpuTicks, stealPercent } from './proc-stats.js';

/** Longest the null server may take to print its address. */
const nullServerStartMsMax = 10_000;
export const floorRoundsMax = 20;

export interface FloorOptions {
  readonly durationMs: number;
  readonly warmupMs: number;
  readonly rounds: number;
  readonly client: LoadClientName;
}

/** One round: a one-client put load against the null server. */
export interface FloorRound {
  readonly round: number;
  readonly throughputPerSec: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly errorCount: number;
  readonly hostStealPercent: number;
}

export interface FloorReport {
  readonly clientLabel: string;
  readonly fsyncProbe: FsyncProbeResult;
  readonly rounds: readonly FloorRound[];
  /** Median over rounds of the null server's put p50 over the probe's preallocated p50. */
  readonly roundTripOverFsync: number;
  /** Median over rounds of (null put p50 + fsync p50) over fsync p50: a durable put that adds only the fsync. */
  readonly durablePutFloorOverFsync: number;
}

/** The medians of a report, from its rounds and the probe. */
export function summarizeFloor(
  rounds: readonly FloorRound[],
  fsyncProbe: FsyncProbeResult,
  clientLabel: string,
): FloorReport {
  if (rounds.length === 0) throw new Error('expected at least one round, saw none');
  const fsyncUs = fsyncProbe.preallocated.p50Ms * 1000;
  if (!(fsyncUs > 0)) throw new Error(`expected a positive fsync p50, saw ${fsyncProbe.preallocated.p50Ms} ms`);
  return {
    clientLabel,
    fsyncProbe,
    rounds,
    roundTripOverFsync: median(rounds.map((r) => r.p50Us / fsyncUs)),
    durablePutFloorOverFsync: median(rounds.map((r) => (r.p50Us + fsyncUs) / fsyncUs)),
  };
}

/** Starts the null server on a free loopback port; resolves with the process and its address. */
async function startNullServer(): Promise<{ child: ChildProcess; endpoint: string }> {
  const child = spawn(requireGoLoad(), ['--serve-null', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const lines = createInterface({ input: child.stdout as NonNullable<ChildProcess['stdout']> });
  try {
    const endpoint = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`the null server printed no address within ${nullServerStartMsMax} ms`)),
        nullServerStartMsMax,
      );
      lines.once('line', (line) => {
        clearTimeout(timer);
        resolve(line.trim());
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the null server exited with ${String(code)}: ${stderr.trim()}`));
      });
    });
    return { child, endpoint };
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  } finally {
    lines.close();
  }
}

/** Probes the disk, then runs the rounds against the null server and stops it. */
export async function runFloor(options: FloorOptions): Promise<FloorReport> {
  const runLoad = loadRunner(options.client);
  const fsyncProbe = probeFsync(tmpdir());
  const { child, endpoint } = await startNullServer();
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    const rounds: FloorRound[] = [];
    for (let round = 1; round <= options.rounds; round += 1) {
      const before = readHostCpuTicks();
      const result = await runLoad(
        loadOptions({
          endpoints: [endpoint],
          clients: 1,
          conns: 1,
          op: 'put',
          durationMs: options.durationMs,
          warmupMs: options.warmupMs,
        }),
      );
      rounds.push({
        round,
        throughputPerSec: result.throughputPerSec,
        p50Us: result.latencyUs.p50,
        p99Us: result.latencyUs.p99,
        errorCount: result.errorCount,
        hostStealPercent: stealPercent(before, readHostCpuTicks()),
      });
    }
    return summarizeFloor(rounds, fsyncProbe, loadClientLabel(options.client));
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

/** The report as text: the probe, a row per round, and the floor it implies. */
export function formatFloorReport(report: FloorReport): string {
  const ms = (us: number): string => (us / 1000).toFixed(3);
  const fsyncUs = report.fsyncProbe.preallocated.p50Ms * 1000;
  const rows = [['round', 'put/s', 'p50 ms', 'p99 ms', 'errors', 'steal %', 'p50/fsync', '(p50+fsync)/fsync']];
  for (const r of report.rounds) {
    rows.push([
      String(r.round),
      String(r.throughputPerSec),
      ms(r.p50Us),
      ms(r.p99Us),
      String(r.errorCount),
      r.hostStealPercent.toFixed(1),
      (r.p50Us / fsyncUs).toFixed(2),
      ((r.p50Us + fsyncUs) / fsyncUs).toFixed(2),
    ]);
  }
  return [
    describeProbe(report.fsyncProbe),
    `one-client puts from ${report.clientLabel} to a gRPC server that does nothing (bench/go-load --serve-null):`,
    table(rows),
    `median round trip over the fsync p50: ${report.roundTripOverFsync}`,
    `put p50 over fsync p50 of a server that adds only the fsync to this round trip (median): ${report.durablePutFloorOverFsync} (the target asks 1.2)`,
  ].join('\n');
}

/** Parses flags (durations in seconds). */
export function parseFloorArgs(argv: readonly string[]): { options: FloorOptions; json: boolean } {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      duration: { type: 'string', default: '3' },
      warmup: { type: 'string', default: '1' },
      rounds: { type: 'string', default: '3' },
      client: { type: 'string', default: 'go' },
      json: { type: 'boolean', default: false },
    },
  });
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > floorRoundsMax)
    throw new Error(`--rounds must be 1..${floorRoundsMax}, saw ${values.rounds}`);
  const durationMs = Math.round(Number(values.duration) * 1000);
  const warmupMs = Math.round(Number(values.warmup) * 1000);
  if (!(durationMs > 0)) throw new Error(`--duration must be a positive number of seconds, saw ${values.duration}`);
  if (!(warmupMs >= 0)) throw new Error(`--warmup must be a number of seconds, 0 or more, saw ${values.warmup}`);
  return {
    options: { durationMs, warmupMs, rounds, client: parseLoadClientName(values.client) },
    json: values.json === true,
  };
}

/** Entry point; returns the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const { options, json } = parseFloorArgs(argv);
  // The null server is the Go tool whichever client drives it.
  const goLoad = goLoadAvailable();
  if (!goLoad.ok) {
    process.stderr.write(`cannot measure the floor: ${goLoad.reason}\n`);
    return 2;
  }
  const report = await runFloor(options);
  process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : `${formatFloorReport(report)}\n`);
  return 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (error: unknown) => {
      process.stderr.write(`${(error as Error).message}\n`);
      process.exitCode = 2;
    },
  );
}
