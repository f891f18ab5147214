/**
 * Two or more builds of tsetcd side by side, to tell whether a change made a workload slower: one
 * member per build, all started at once and warmed by the same number of requests, then measured
 * in windows of a fixed number of requests that take turns in an order rotated every round, so a
 * busy stretch of a shared machine falls on every build alike. Each window reads the member's
 * server CPU (user + system of all its threads) around it. Printed per build: medians over the
 * rounds, and the median of its per-round ratios to the first build.
 *
 *   node dist/bench/ab.js --build before='node /work/wt-before/bin/tsetcd.js' --build after='node bin/tsetcd.js'
 *     [--rounds 6] [--requests 3000] [--warmup-requests 5000] [--clients 1] [--op put] [--client go|node] [--json]
 */
import { parseArgs } from 'node:util';
import { median, table } from './compare.js';
import { loadRunner, parseLoadClientName, type LoadRunner } from './go-client.js';
import { isMainModule, loadOps, loadOptions, type LoadOp, type LoadOptions } from './load.js';
import { readProcessStats } from './proc-stats.js';
import { Member } from '../test/support/member.js';
import { commandFromString, type MemberCommand } from '../test/support/sut.js';

/** The longest one window may run; a window normally ends when its requests are done. */
const windowMsMax = 600_000;

export interface AbOptions {
  readonly builds: readonly { readonly label: string; readonly command: MemberCommand }[];
  readonly rounds: number;
  readonly requests: number;
  readonly warmupRequests: number;
  readonly clients: number;
  readonly op: LoadOp;
}

/** One measured window of one build. */
export interface AbWindow {
  readonly label: string;
  readonly round: number;
  readonly requests: number;
  readonly throughputPerSec: number;
  readonly serverCpuPerRequestUs: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly meanUs: number;
}

/** Starts one member per build, warms each, and measures `rounds` rotations of windows. */
export async function runAb(options: AbOptions, runLoad: LoadRunner): Promise<AbWindow[]> {
  const members = await Promise.all(
    options.builds.map((build, index) => Member.start({ command: build.command, name: `m${index + 1}` })),
  );
  try {
    const load = (member: Member, total: number): LoadOptions =>
      loadOptions({
        endpoints: [member.clientUrl],
        clients: options.clients,
        conns: 1,
        op: options.op,
        total,
        durationMs: windowMsMax,
        warmupMs: 0,
      });
    for (const member of members) if (options.warmupRequests > 0) await runLoad(load(member, options.warmupRequests));
    const windows: AbWindow[] = [];
    for (let round = 0; round < options.rounds; round += 1) {
      for (let turn = 0; turn < members.length; turn += 1) {
        const index = (turn + round) % members.length;
        const member = members[index] as Member;
        const before = readProcessStats(member.pid).cpuMs;
        const result = await runLoad(load(member, options.requests));
        const cpuMs = readProcessStats(member.pid).cpuMs - before;
        windows.push({
          label: options.builds[index]?.label ?? '',
          round,
          requests: result.requests,
          throughputPerSec: result.throughputPerSec,
          serverCpuPerRequestUs: result.requests === 0 ? 0 : Math.round((cpuMs * 1000) / result.requests),
          p50Us: result.latencyUs.p50,
          p99Us: result.latencyUs.p99,
          meanUs: result.latencyUs.mean,
        });
      }
    }
    return windows;
  } finally {
    await Promise.all(members.map((member) => member.destroy()));
  }
}

/** Per build: medians over rounds, and the median per-round ratio of CPU and mean latency to the first build. */
export function formatAb(windows: readonly AbWindow[]): string {
  const labels = [...new Set(windows.map((w) => w.label))];
  const of = (label: string) => windows.filter((w) => w.label === label);
  const base = of(labels[0] ?? '');
  const ratioTo = (w: AbWindow, key: 'serverCpuPerRequestUs' | 'meanUs') => {
    const b = base.find((x) => x.round === w.round);
    return b === undefined || b[key] === 0 ? NaN : Math.round((100 * w[key]) / b[key]) / 100;
  };
  const rows = [
    ['build', 'windows', 'req/s', 'srv cpu us/req', 'p50 us', 'mean us', 'p99 us', 'cpu ratio', 'mean ratio'],
  ];
  for (const label of labels) {
    const ws = of(label);
    const med = (pick: (w: AbWindow) => number) => String(median(ws.map(pick)));
    rows.push([
      label,
      String(ws.length),
      med((w) => w.throughputPerSec),
      med((w) => w.serverCpuPerRequestUs),
      med((w) => w.p50Us),
      med((w) => w.meanUs),
      med((w) => w.p99Us),
      med((w) => ratioTo(w, 'serverCpuPerRequestUs')),
      med((w) => ratioTo(w, 'meanUs')),
    ]);
  }
  return table(rows, true);
}

/** Parses flags; `--build label=command` is repeated, two at least. */
export function parseAbArgs(argv: readonly string[]): { options: AbOptions; client: string; json: boolean } {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      build: { type: 'string', multiple: true, default: [] },
      rounds: { type: 'string', default: '6' },
      requests: { type: 'string', default: '3000' },
      'warmup-requests': { type: 'string', default: '5000' },
      clients: { type: 'string', default: '1' },
      op: { type: 'string', default: 'put' },
      client: { type: 'string', default: 'go' },
      json: { type: 'boolean', default: false },
    },
  });
  const builds = (values.build as string[]).map((spec) => {
    const split = spec.indexOf('=');
    if (split < 1) throw new Error(`--build must be label=command, saw "${spec}"`);
    return { label: spec.slice(0, split), command: commandFromString(spec.slice(split + 1)) };
  });
  if (builds.length < 2) throw new Error(`expected two --build flags at least, saw ${builds.length}`);
  const count = (name: string, text: string, min: number) => {
    const value = Number(text);
    if (!Number.isInteger(value) || value < min) throw new Error(`--${name} must be an integer >= ${min}, saw ${text}`);
    return value;
  };
  const op = values.op as LoadOp;
  if (!loadOps.includes(op)) throw new Error(`--op must be one of ${loadOps.join(', ')}, saw ${values.op}`);
  const options: AbOptions = {
    builds,
    rounds: count('rounds', values.rounds, 1),
    requests: count('requests', values.requests, 1),
    warmupRequests: count('warmup-requests', values['warmup-requests'], 0),
    clients: count('clients', values.clients, 1),
    op,
  };
  return { options, client: values.client, json: values.json === true };
}

/** Entry point; returns the process exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const { options, client, json } = parseAbArgs(argv);
  const windows = await runAb(options, loadRunner(parseLoadClientName(client)));
  process.stdout.write(json ? `${JSON.stringify(windows)}\n` : `${formatAb(windows)}\n`);
  return 0;
}

if (isMainModule(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
