/**
 * Runs the same workloads against a real etcd and a tsetcd member started side by side on
 * loopback with the same flags, alternating between them, and reports tsetcd/etcd ratios of
 * throughput, latency, CPU per request and peak memory.
 *
 *   node dist/bench/compare.js [--duration S] [--warmup S] [--rounds N] [--workloads put-1,put-64,...] [--rate N] [--client go|node] [--json] [--plot-dir DIR]
 *
 * --rate paces every workload at N requests per second (0, the default, runs flat out): latency
 * at a fixed load rather than at each system's own saturation point.
 *
 * "steal %" is the host CPU time the hypervisor took for others during each measured window; on a
 * shared VM it swings from run to run and latency with it, so read ratios beside it.
 *
 * --plot-dir writes DIR/<workload>.svg: etcd's and tsetcd's latency by percentile, one line each,
 * from one round (with several rounds, the round whose p99 ratio is the median).
 *
 * --client go drives both members with bench/go-load (etcd's Go clientv3) instead of the Node
 * load generator, to check that the figures measure the servers rather than the client.
 *
 * TSETCD_CMD chooses the second member (TSETCD_CMD=/usr/bin/etcd compares etcd with itself).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { describeProbe, probeFsync, type FsyncProbeResult } from './fsync-probe.js';
import { latencyPlotSvg } from './plot.js';
import { ratio } from './side-by-side.js';
import { Member } from '../test/support/member.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../test/support/sut.js';
import { describeWorkload, isMainModule, loadOptions, ratePerSecMax, type LoadOp, type LoadResult } from './load.js';
import {
  goLoadAvailable,
  loadClientLabel,
  loadRunner,
  parseLoadClientName,
  type LoadClientName,
  type LoadRunner,
} from './go-client.js';
import { readHostCpuTicks, readProcessStats, stealPercent } from './proc-stats.js';

export interface Workload {
  readonly name: string;
  readonly op: LoadOp;
  readonly consistency: 'l' | 's';
  /** Puts per txn, for txn-put. */
  readonly txnOps: number;
  readonly clients: number;
  readonly conns: number;
}

/** The default workloads; puts come first so the ranges find keys. */
export const workloadsDefault: readonly Workload[] = [
  { name: 'put-1', op: 'put', consistency: 'l', txnOps: 1, clients: 1, conns: 1 },
  { name: 'put-64', op: 'put', consistency: 'l', txnOps: 1, clients: 64, conns: 8 },
  { name: 'txn-put-64', op: 'txn-put', consistency: 'l', txnOps: 1, clients: 64, conns: 8 },
  { name: 'range-l-64', op: 'range', consistency: 'l', txnOps: 1, clients: 64, conns: 8 },
  { name: 'range-s-64', op: 'range', consistency: 's', txnOps: 1, clients: 64, conns: 8 },
  // A round trip that touches no disk: with the fsync probe, the floor under a one-client put.
  { name: 'range-s-1', op: 'range', consistency: 's', txnOps: 1, clients: 1, conns: 1 },
];

/** The workload whose p50 stands for one client round trip without a disk write. */
const roundTripWorkload = 'range-s-1';

export interface CompareOptions {
  readonly durationMs: number;
  readonly warmupMs: number;
  readonly rounds: number;
  readonly workloads: readonly Workload[];
  readonly keySpace: number;
  readonly valSize: number;
  /** Extra start flags given to both members. */
  readonly memberFlags: readonly string[];
  /** Which load generator drives both members; node when absent. */
  readonly client?: LoadClientName;
  /** Requests per second every workload is paced at; 0 or absent runs flat out. */
  readonly ratePerSec?: number;
}

/** One side's measurement of one workload. */
export interface SideRun extends LoadResult {
  readonly serverCpuMs: number;
  readonly serverCpuPerRequestUs: number;
  readonly clientCpuPerRequestUs: number;
  readonly peakRssKb: number;
  /** Host CPU time stolen by the hypervisor during the measured window, in percent. */
  readonly hostStealPercent: number;
}

export interface WorkloadComparison {
  readonly workload: string;
  readonly round: number;
  readonly etcd: SideRun;
  readonly sut: SideRun;
  /** sut / etcd for each figure; above 1 means tsetcd is higher (better for throughput, worse otherwise). */
  readonly ratios: Readonly<
    Record<'throughput' | 'p50' | 'p99' | 'p999' | 'serverCpuPerRequest' | 'clientCpuPerRequest', number>
  >;
}

export interface CompareReport {
  readonly sutLabel: string;
  /** The load generator that produced every figure. */
  readonly clientLabel: string;
  readonly comparisons: readonly WorkloadComparison[];
  readonly peakRssKb: { readonly etcd: number; readonly sut: number; readonly ratio: number };
  /** Per workload, the median of each ratio over the rounds: the figure to quote. */
  readonly medianRatios: Readonly<Record<string, WorkloadComparison['ratios']>>;
  /** The disk's floor for a durable write, measured in this run before the members start. */
  readonly fsyncProbe: FsyncProbeResult;
  /**
   * For each one-client workload, the median over rounds of each side's p50 latency divided by the
   * probe's preallocated p50: how far a sequential write sits above the disk's own floor.
   */
  readonly overFsyncFloor: Readonly<Record<string, { readonly etcd: number; readonly sut: number }>>;
  /**
   * For each one-client write workload, when range-s-1 ran too: the median over rounds of each
   * side's p50 over (its range-s-1 p50 in that round + the probe's preallocated p50). A put cannot
   * beat a round trip plus an fsync, so this is how far a write sits above what it must cost.
   */
  readonly overRoundTripAndFsync: Readonly<Record<string, { readonly etcd: number; readonly sut: number }>>;
}

/** Starts both members, runs every workload on each in turn, and stops them. */
export async function runCompare(options: CompareOptions, sutSide: MemberCommand): Promise<CompareReport> {
  const client = options.client ?? 'node';
  // Resolved (and for go built) before any member starts, so a missing toolchain fails fast.
  const run = loadRunner(client);
  // On the filesystem the members' data dirs go to, while nothing else runs.
  const fsyncProbe = probeFsync(tmpdir());
  const [etcd, sut] = await Promise.all([
    Member.start({ command: etcdCommand(), extraFlags: options.memberFlags }),
    Member.start({ command: sutSide, extraFlags: options.memberFlags, name: 'm2' }),
  ]);
  try {
    const comparisons: WorkloadComparison[] = [];
    for (let round = 1; round <= options.rounds; round += 1) {
      for (const workload of options.workloads) {
        // Alternate which side goes first so neither always runs on a warmer machine.
        const etcdFirst = round % 2 === 1;
        const first = await measure(etcdFirst ? etcd : sut, workload, options, run);
        const second = await measure(etcdFirst ? sut : etcd, workload, options, run);
        const [etcdRun, sutRun] = etcdFirst ? [first, second] : [second, first];
        comparisons.push({
          workload: workload.name,
          round,
          etcd: etcdRun,
          sut: sutRun,
          ratios: ratiosOf(etcdRun, sutRun),
        });
      }
    }
    const etcdRss = readProcessStats(etcd.pid).peakRssKb;
    const sutRss = readProcessStats(sut.pid).peakRssKb;
    const peakRssKb = { etcd: etcdRss, sut: sutRss, ratio: ratio(sutRss, etcdRss) };
    return {
      sutLabel: sutSide.label,
      clientLabel: loadClientLabel(client),
      comparisons,
      peakRssKb,
      medianRatios: medianRatios(comparisons),
      fsyncProbe,
      overFsyncFloor: overFsyncFloor(comparisons, options.workloads, fsyncProbe),
      overRoundTripAndFsync: overRoundTripAndFsync(comparisons, options.workloads, fsyncProbe),
    };
  } finally {
    await Promise.all([etcd.destroy(), sut.destroy()]);
  }
}

async function measure(
  member: Member,
  workload: Workload,
  options: CompareOptions,
  runLoad: LoadRunner,
): Promise<SideRun> {
  const load = loadOptions({
    endpoints: [member.clientUrl],
    conns: workload.conns,
    clients: workload.clients,
    op: workload.op,
    consistency: workload.consistency,
    txnOps: workload.txnOps,
    durationMs: options.durationMs,
    warmupMs: 0,
    keySpace: options.keySpace,
    valSize: options.valSize,
    ratePerSec: options.ratePerSec ?? 0,
  });
  // The warm-up runs as its own short load so the server's CPU is sampled over the measured part only.
  if (options.warmupMs > 0) await runLoad({ ...load, durationMs: options.warmupMs });
  const before = readProcessStats(member.pid);
  const hostBefore = readHostCpuTicks();
  const result = await runLoad(load);
  const hostAfter = readHostCpuTicks();
  const after = readProcessStats(member.pid);
  const serverCpuMs = after.cpuMs - before.cpuMs;
  const perRequestUs = (ms: number): number => (result.requests === 0 ? 0 : Math.round((ms * 1000) / result.requests));
  return {
    ...result,
    serverCpuMs: Math.round(serverCpuMs),
    serverCpuPerRequestUs: perRequestUs(serverCpuMs),
    clientCpuPerRequestUs: perRequestUs(result.clientCpuMs),
    peakRssKb: after.peakRssKb,
    hostStealPercent: stealPercent(hostBefore, hostAfter),
  };
}

function ratiosOf(etcd: SideRun, sut: SideRun): WorkloadComparison['ratios'] {
  return {
    throughput: ratio(sut.throughputPerSec, etcd.throughputPerSec),
    p50: ratio(sut.latencyUs.p50, etcd.latencyUs.p50),
    p99: ratio(sut.latencyUs.p99, etcd.latencyUs.p99),
    p999: ratio(sut.latencyUs.p999, etcd.latencyUs.p999),
    serverCpuPerRequest: ratio(sut.serverCpuPerRequestUs, etcd.serverCpuPerRequestUs),
    clientCpuPerRequest: ratio(sut.clientCpuPerRequestUs, etcd.clientCpuPerRequestUs),
  };
}

function medianRatios(comparisons: readonly WorkloadComparison[]): Record<string, WorkloadComparison['ratios']> {
  const result: Record<string, WorkloadComparison['ratios']> = {};
  for (const name of new Set(comparisons.map((c) => c.workload))) {
    const rounds = comparisons.filter((c) => c.workload === name).map((c) => c.ratios);
    const first = rounds[0] as WorkloadComparison['ratios'];
    const keys = Object.keys(first) as Array<keyof WorkloadComparison['ratios']>;
    result[name] = Object.fromEntries(
      keys.map((key) => [key, median(rounds.map((r) => r[key]))]),
    ) as WorkloadComparison['ratios'];
  }
  return result;
}

/** Each one-client write workload's median p50 over `floorUs(comparison, side)`, per side. */
function overFloor(
  comparisons: readonly WorkloadComparison[],
  workloads: readonly Workload[],
  floorUs: (comparison: WorkloadComparison, side: 'etcd' | 'sut') => number | undefined,
): Record<string, { etcd: number; sut: number }> {
  const result: Record<string, { etcd: number; sut: number }> = {};
  for (const workload of workloads.filter((w) => w.clients === 1 && w.op !== 'range')) {
    const rounds = comparisons.filter((c) => c.workload === workload.name);
    const over = (side: 'etcd' | 'sut') => {
      const ratios = rounds.flatMap((c) => {
        const floor = floorUs(c, side);
        return floor === undefined || floor <= 0 ? [] : [c[side].latencyUs.p50 / floor];
      });
      return ratios.length === 0 ? undefined : Number(median(ratios).toFixed(2));
    };
    const [etcd, sut] = [over('etcd'), over('sut')];
    if (etcd !== undefined && sut !== undefined) result[workload.name] = { etcd, sut };
  }
  return result;
}

/** Each one-client write workload's median p50 over the probe's preallocated p50, per side. */
export function overFsyncFloor(
  comparisons: readonly WorkloadComparison[],
  workloads: readonly Workload[],
  probe: FsyncProbeResult,
): CompareReport['overFsyncFloor'] {
  return overFloor(comparisons, workloads, () => probe.preallocated.p50Ms * 1000);
}

/** Each one-client write workload's median p50 over the same round's range-s-1 p50 plus the probe's preallocated p50. */
export function overRoundTripAndFsync(
  comparisons: readonly WorkloadComparison[],
  workloads: readonly Workload[],
  probe: FsyncProbeResult,
): CompareReport['overRoundTripAndFsync'] {
  return overFloor(comparisons, workloads, (comparison, side) => {
    const roundTrip = comparisons.find((c) => c.workload === roundTripWorkload && c.round === comparison.round);
    return roundTrip === undefined ? undefined : roundTrip[side].latencyUs.p50 + probe.preallocated.p50Ms * 1000;
  });
}

/** The median of `values`, rounded to two decimals. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const value =
    sorted.length % 2 === 1
      ? (sorted[middle] as number)
      : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
  return Math.round(value * 100) / 100;
}

/** The report as two aligned text tables: absolute figures per side, then ratios. */
export function formatCompareReport(report: CompareReport): string {
  const ms = (us: number): string => (us / 1000).toFixed(2);
  const absolute = [
    [
      'workload',
      'round',
      'side',
      'req/s',
      'p50 ms',
      'p99 ms',
      'p99.9 ms',
      'srv cpu us/req',
      'cli cpu us/req',
      'cli cpu %',
      'errors',
      'peak rss MiB',
      'steal %',
    ],
  ];
  const ratios = [['workload', 'round', 'throughput', 'p50', 'p99', 'p99.9', 'srv cpu/req', 'cli cpu/req']];
  for (const c of report.comparisons) {
    for (const [side, run] of [
      ['etcd', c.etcd],
      [report.sutLabel, c.sut],
    ] as const) {
      const l = run.latencyUs;
      absolute.push([
        c.workload,
        String(c.round),
        side,
        String(run.throughputPerSec),
        ms(l.p50),
        ms(l.p99),
        ms(l.p999),
        String(run.serverCpuPerRequestUs),
        String(run.clientCpuPerRequestUs),
        cpuPercent(run),
        String(run.errorCount),
        (run.peakRssKb / 1024).toFixed(1),
        run.hostStealPercent.toFixed(1),
      ]);
    }
    const r = c.ratios;
    ratios.push([
      c.workload,
      String(c.round),
      ...[r.throughput, r.p50, r.p99, r.p999, r.serverCpuPerRequest, r.clientCpuPerRequest].map(String),
    ]);
  }
  const rounds = new Set(report.comparisons.map((c) => c.round)).size;
  if (rounds > 1) {
    for (const [name, r] of Object.entries(report.medianRatios)) {
      ratios.push([
        name,
        'median',
        ...[r.throughput, r.p50, r.p99, r.p999, r.serverCpuPerRequest, r.clientCpuPerRequest].map(String),
      ]);
    }
  }
  const rss = report.peakRssKb;
  return [
    `load client: ${report.clientLabel} (cli cpu % is of one core over the measured window; steal % is host CPU time the hypervisor took)`,
    table(absolute),
    '',
    `ratios ${report.sutLabel}/etcd (throughput above 1 is better; latency, cpu and memory below 1 are better)`,
    table(ratios),
    '',
    `peak rss MiB: etcd ${(rss.etcd / 1024).toFixed(1)}, ${report.sutLabel} ${(rss.sut / 1024).toFixed(1)}, ratio ${rss.ratio}`,
    describeProbe(report.fsyncProbe),
    ...Object.entries(report.overFsyncFloor).map(
      ([name, over]) =>
        `${name} p50 over the preallocated fsync p50 (median of rounds; the target is 1.2): etcd ${over.etcd}, ${report.sutLabel} ${over.sut}`,
    ),
    ...Object.entries(report.overRoundTripAndFsync).map(
      ([name, over]) =>
        `${name} p50 over one round trip (${roundTripWorkload} p50) plus the fsync p50 (median of rounds): etcd ${over.etcd}, ${report.sutLabel} ${over.sut}`,
    ),
  ].join('\n');
}

/** Client CPU as a percentage of one core over the measured window: near 100 per busy thread means a saturated client. */
function cpuPercent(run: LoadResult): string {
  return run.elapsedMs > 0 ? String(Math.round((run.clientCpuMs * 100) / run.elapsedMs)) : '-';
}

/** Rows as aligned text columns, right-aligned; with `leftFirst` the first column is left-aligned. */
export function table(rows: readonly string[][], leftFirst = false): string {
  const widths = (rows[0] ?? []).map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length)));
  const pad = (cell: string, column: number) =>
    leftFirst && column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0);
  return rows.map((row) => row.map(pad).join('  ')).join('\n');
}

/**
 * The comparison a plot of `workload` shows: its only round, or with several the round whose p99
 * ratio is the median (the lower middle one for an even count), so both lines come from one round.
 */
export function plottedComparison(report: CompareReport, workload: string): WorkloadComparison {
  const byP99Ratio = report.comparisons
    .filter((c) => c.workload === workload)
    .sort(
      (a, b) =>
        (Number.isNaN(a.ratios.p99) ? Infinity : a.ratios.p99) - (Number.isNaN(b.ratios.p99) ? Infinity : b.ratios.p99),
    );
  const chosen = byP99Ratio[Math.floor((byP99Ratio.length - 1) / 2)];
  if (chosen === undefined) throw new Error(`expected a comparison of workload ${workload}, saw none`);
  return chosen;
}

/** One SVG per workload, etcd's and tsetcd's latency by percentile, keyed by file name. */
export function comparePlots(report: CompareReport): Map<string, string> {
  const rounds = new Set(report.comparisons.map((c) => c.round)).size;
  const plots = new Map<string, string>();
  for (const workload of new Set(report.comparisons.map((c) => c.workload))) {
    const c = plottedComparison(report, workload);
    const title = `${workload}: latency by percentile (${describeWorkload(c.etcd)})`;
    const subtitle =
      rounds > 1 ? `round ${c.round} of ${rounds}, the one with the median tsetcd/etcd p99 ratio` : 'one round';
    const series = [
      { label: `etcd: ${c.etcd.throughputPerSec} req/s`, points: c.etcd.latencyPercentilesUs },
      { label: `${report.sutLabel}: ${c.sut.throughputPerSec} req/s`, points: c.sut.latencyPercentilesUs },
    ];
    plots.set(`${workload}.svg`, latencyPlotSvg({ title, subtitle, series }));
  }
  return plots;
}

/** Parses flags (durations in seconds). */
export function parseCompareArgs(argv: readonly string[]): {
  options: CompareOptions;
  json: boolean;
  plotDir?: string;
} {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      duration: { type: 'string', default: '3' },
      warmup: { type: 'string', default: '0.5' },
      rounds: { type: 'string', default: '1' },
      workloads: { type: 'string' },
      'key-space': { type: 'string', default: '10000' },
      'val-size': { type: 'string', default: '256' },
      'member-flag': { type: 'string', multiple: true, default: [] },
      client: { type: 'string', default: 'node' },
      json: { type: 'boolean', default: false },
      'plot-dir': { type: 'string' },
      rate: { type: 'string', default: '0' },
    },
  });
  const names = values.workloads?.split(',') ?? workloadsDefault.map((w) => w.name);
  const workloads = names.map((name) => {
    const found = workloadsDefault.find((w) => w.name === name);
    if (found === undefined)
      throw new Error(`unknown workload ${name}; known: ${workloadsDefault.map((w) => w.name).join(', ')}`);
    return found;
  });
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 20)
    throw new Error(`--rounds must be 1..20, saw ${values.rounds}`);
  const ratePerSec = Number(values.rate);
  if (!Number.isInteger(ratePerSec) || ratePerSec < 0 || ratePerSec > ratePerSecMax)
    throw new Error(`--rate must be an integer in 0..${ratePerSecMax}, saw ${values.rate}`);
  const options: CompareOptions = {
    durationMs: Math.round(Number(values.duration) * 1000),
    warmupMs: Math.round(Number(values.warmup) * 1000),
    rounds,
    workloads,
    keySpace: Number(values['key-space']),
    valSize: Number(values['val-size']),
    memberFlags: (values['member-flag'] as string[]).flatMap((flag) => flag.split(/\s+/)),
    client: parseLoadClientName(values.client),
    ratePerSec,
  };
  return { options, json: values.json === true, plotDir: values['plot-dir'] };
}

/** Entry point; returns the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const sut = sutCommand();
  if (sut.command === undefined) {
    process.stderr.write(`cannot compare: ${sut.skipReason}\n`);
    return 2;
  }
  const { options, json, plotDir } = parseCompareArgs(argv);
  const goLoad = options.client === 'go' ? goLoadAvailable() : undefined;
  if (goLoad?.ok === false) {
    process.stderr.write(`cannot compare with --client go: ${goLoad.reason}\n`);
    return 2;
  }
  const report = await runCompare(options, sut.command);
  process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : `${formatCompareReport(report)}\n`);
  if (plotDir !== undefined) {
    mkdirSync(plotDir, { recursive: true });
    const paths = [...comparePlots(report)].map(([name, svg]) => {
      writeFileSync(join(plotDir, name), svg);
      return join(plotDir, name);
    });
    if (!json) process.stdout.write(`latency plots: ${paths.join(', ')}\n`);
  }
  return 0;
}

if (isMainModule(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
