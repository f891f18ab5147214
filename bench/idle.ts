/**
 * The CPU an idle cluster burns: etcd and one or more tsetcd builds, each as 3 member processes
 * (the way bench/cluster.ts runs them), started one system at a time in an order rotated every
 * round, left alone for --settle seconds (start-up work, the first elections and V8's compiles)
 * and then measured over --duration seconds with no client connected. Printed per system: CPU
 * milliseconds per second of wall time over all members, the median over the rounds with the
 * lowest and highest, and the peer traffic (TCP segments the members' peer ports sent per second,
 * from the kernel's per-socket counters in `ss -ti`).
 *
 *   node dist/bench/idle.js [--rounds 3] [--settle 8] [--duration 10] [--members 3]
 *     [--build label='node /path/bin/tsetcd.js' ...] [--json]
 *
 * Without --build the tsetcd measured is TSETCD_CMD or this tree's build.
 */
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { median, table } from './compare.js';
import { isMainModule, rotated } from './load.js';
import { readProcessStats } from './proc-stats.js';
import { Cluster } from '../test/support/cluster.js';
import { commandFromString, etcdCommand, sutCommand, type MemberCommand } from '../test/support/sut.js';

export interface IdleOptions {
  readonly systems: readonly { readonly label: string; readonly command: MemberCommand }[];
  readonly rounds: number;
  readonly settleMs: number;
  readonly durationMs: number;
  readonly members: number;
}

/** One measured window of one system. */
export interface IdleWindow {
  readonly label: string;
  readonly round: number;
  /** CPU of all members per second of wall time. */
  readonly cpuMsPerSec: number;
  /** TCP segments sent per second from or to the members' peer ports, over all members. */
  readonly peerSegmentsPerSec: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Segments sent so far on the established TCP sockets whose local port is one of `ports`. */
function segmentsOut(ports: ReadonlySet<number>): number {
  const text = execFileSync('ss', ['-tinH', 'state', 'established'], { encoding: 'utf8' });
  let total = 0;
  let countThis = false;
  for (const line of text.split('\n')) {
    const socket = /^(?:\S+\s+)?\d+\s+\d+\s+\S+:(\d+)\s+\S+:(\d+)/.exec(line.trim());
    if (socket !== null) {
      countThis = ports.has(Number(socket[1])) || ports.has(Number(socket[2]));
      continue;
    }
    const segments = /segs_out:(\d+)/.exec(line);
    if (countThis && segments !== null) total += Number(segments[1]);
  }
  return total;
}

/** Measures one idle window of one system. */
async function measureIdle(
  label: string,
  command: MemberCommand,
  round: number,
  options: IdleOptions,
): Promise<IdleWindow> {
  const cluster = await Cluster.start({ command, size: options.members });
  try {
    await sleep(options.settleMs);
    const pids = cluster.members.map((member) => member.pid);
    const peerPorts = new Set(cluster.members.map((member) => member.peerPort));
    const cpuOf = () => pids.reduce((sum, pid) => sum + readProcessStats(pid).cpuMs, 0);
    const cpuBefore = cpuOf();
    const segmentsBefore = segmentsOut(peerPorts);
    const start = performance.now();
    await sleep(options.durationMs);
    const elapsedSec = (performance.now() - start) / 1000;
    return {
      label,
      round,
      cpuMsPerSec: (cpuOf() - cpuBefore) / elapsedSec,
      peerSegmentsPerSec: (segmentsOut(peerPorts) - segmentsBefore) / elapsedSec,
    };
  } finally {
    await cluster.destroy();
  }
}

/** Runs the rounds, each system once per round in an order rotated by one each round. */
export async function runIdle(options: IdleOptions): Promise<IdleWindow[]> {
  const windows: IdleWindow[] = [];
  for (let round = 1; round <= options.rounds; round++) {
    for (const system of rotated(options.systems, round - 1))
      windows.push(await measureIdle(system.label, system.command, round, options));
  }
  return windows;
}

function report(options: IdleOptions, windows: readonly IdleWindow[]): string {
  const rows = [['system', 'cpu ms/s median', 'min', 'max', 'peer segments/s', 'rounds (cpu ms/s)']];
  for (const { label } of options.systems) {
    const own = windows.filter((window) => window.label === label);
    const cpu = own.map((window) => window.cpuMsPerSec);
    rows.push([
      label,
      median(cpu).toFixed(1),
      Math.min(...cpu).toFixed(1),
      Math.max(...cpu).toFixed(1),
      median(own.map((window) => window.peerSegmentsPerSec)).toFixed(1),
      cpu.map((value) => value.toFixed(0)).join(' '),
    ]);
  }
  return `${options.members} members each, idle: ${options.settleMs / 1000} s settle, ${options.durationMs / 1000} s measured\n${table(rows)}`;
}

function parseOptions(argv: readonly string[]): IdleOptions & { json: boolean } {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      rounds: { type: 'string', default: '3' },
      settle: { type: 'string', default: '8' },
      duration: { type: 'string', default: '10' },
      members: { type: 'string', default: '3' },
      build: { type: 'string', multiple: true },
      json: { type: 'boolean', default: false },
    },
  });
  const builds = (values.build ?? []).map((spec) => {
    const equals = spec.indexOf('=');
    if (equals <= 0) throw new Error(`--build takes label='command', saw ${spec}`);
    const label = spec.slice(0, equals);
    return { label, command: { ...commandFromString(spec.slice(equals + 1)), label } };
  });
  const sut = sutCommand();
  if (builds.length === 0 && sut.command === undefined) throw new Error(`tsetcd is not available: ${sut.skipReason}`);
  const tsetcd = builds.length > 0 ? builds : [{ label: 'tsetcd', command: sut.command as MemberCommand }];
  return {
    systems: [{ label: 'etcd', command: etcdCommand() }, ...tsetcd],
    rounds: Number(values.rounds),
    settleMs: Number(values.settle) * 1000,
    durationMs: Number(values.duration) * 1000,
    members: Number(values.members),
    json: values.json,
  };
}

if (isMainModule(import.meta.url)) {
  const options = parseOptions(process.argv.slice(2));
  const windows = await runIdle(options);
  console.log(options.json ? JSON.stringify(windows, null, 2) : report(options, windows));
}
