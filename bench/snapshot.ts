/**
 * Snapshot benchmark: loads N keys into a fresh member of each system (real etcd and tsetcd, same
 * flags), then runs the rounds alternating between them (the order rotating each round). A round
 * puts with C clients for a baseline window, then times `etcdctl snapshot save` while the same
 * clients keep putting, and compares the put latency during the save with the latency just before
 * it (the rise of p99), with the CPU each of the member's threads used during the save and, for
 * tsetcd, its member thread's event-loop stalls and collections during the save (bench/loop-probe.ts,
 * preloaded into each tsetcd member's process). Then it times the restore of the saved file,
 * `etcdctl snapshot restore` for etcd's and `tsetcdctl snapshot restore` for tsetcd's, each into a
 * fresh data dir.
 *
 *   node dist/bench/snapshot.js --keys 100000 --val-size 256 [--clients 16] [--rounds 3]
 *     [--baseline-seconds 3] [--only etcd|tsetcd] [--sut NAME=PATH]... [--json]
 *
 * Each --sut adds another tsetcd build (its bin/tsetcd.js) as the system tsetcd:NAME.
 *
 * Two modes work on one saved file, to compare restores without loading a member each time:
 *
 *   node dist/bench/snapshot.js --save-only FILE --keys 1000000 [--only etcd|tsetcd]
 *     loads one member (etcd unless --only tsetcd) and saves its snapshot to FILE with etcdctl;
 *   node dist/bench/snapshot.js --restore-only FILE [--rounds 5] [--json]
 *     [--ctl NAME=PATH]... restores FILE with `etcdctl snapshot restore` and `tsetcdctl snapshot
 *     restore` in turn, `rounds` times each, the order rotating each round, and reports the wall
 *     time and the peak RSS of each restore (the tool's own process, from /usr/bin/time); each
 *     --ctl adds another build's tsetcdctl.js (e.g. --ctl before=/tmp/old/bin/tsetcdctl.js);
 *   node dist/bench/snapshot.js --status-only FILE [--rounds 5] [--json] [--ctl NAME=PATH]...
 *     the same with `snapshot status FILE -w json` instead of the restore.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../src/lib/paths.js';
import { Member } from '../test/support/member.js';
import { etcdCommand, etcdctlBinaryPath, sutCommand, type MemberCommand } from '../test/support/sut.js';
import { loopProbeEnv, readLoopProbe, type LoopProbeWindow } from './loop-probe.js';
import { call, kvClient, load, rssMiB, type KvClient } from './restart.js';
import { rotated } from './load.js';

interface SnapshotBenchOptions {
  keys: number;
  valSize: number;
  clients: number;
  rounds: number;
  baselineSeconds: number;
  json: boolean;
  only?: string;
  saveOnly?: string;
  restoreOnly?: string;
  /** Times `snapshot status` of this file instead of the restore of restoreOnly. */
  statusOnly?: string;
  /** More tsetcdctl builds for --restore-only, by name. */
  ctls: Map<string, string>;
  /** More tsetcd builds to measure beside etcd and this one, by name (their bin/tsetcd.js). */
  suts: Map<string, string>;
}

export interface LatencyMs {
  puts: number;
  p50: number;
  p99: number;
  max: number;
}

interface SnapshotRound {
  saveSeconds: number;
  restoreSeconds: number;
  fileMiB: number;
  putsBefore: LatencyMs;
  putsDuring: LatencyMs;
  /** p99 during the save less p99 before it. */
  riseP99Ms: number;
  rssDuringMiB: number;
  /** CPU of the member's threads during the save, by thread name. */
  cpuDuringMs: Record<string, number>;
  /** The member thread's event-loop stalls and collections during the save (tsetcd only). */
  eventLoopDuring?: LoopProbeWindow;
}

interface SnapshotBenchResult {
  system: string;
  keys: number;
  clients: number;
  loadSeconds: number;
  rounds: SnapshotRound[];
}

function parseArgs(argv: readonly string[]): SnapshotBenchOptions {
  const options: SnapshotBenchOptions = {
    keys: 100_000,
    valSize: 256,
    clients: 16,
    rounds: 3,
    baselineSeconds: 3,
    json: false,
    ctls: new Map(),
    suts: new Map(),
  };
  for (let position = 0; position < argv.length; position++) {
    const flag = argv[position];
    const value = argv[position + 1];
    if (flag === '--json') {
      options.json = true;
      continue;
    }
    position++;
    if (flag === '--keys') options.keys = Number(value);
    else if (flag === '--val-size') options.valSize = Number(value);
    else if (flag === '--clients') options.clients = Number(value);
    else if (flag === '--rounds') options.rounds = Number(value);
    else if (flag === '--baseline-seconds') options.baselineSeconds = Number(value);
    else if (flag === '--only') options.only = value;
    else if (flag === '--save-only') options.saveOnly = value;
    else if (flag === '--restore-only') options.restoreOnly = value;
    else if (flag === '--status-only') options.statusOnly = value;
    else if (flag === '--ctl' || flag === '--sut') {
      const at = value?.indexOf('=') ?? -1;
      if (at <= 0) throw new Error(`${flag} wants NAME=PATH, saw ${value}`);
      (flag === '--ctl' ? options.ctls : options.suts).set(value!.slice(0, at), value!.slice(at + 1));
    } else throw new Error(`unknown flag ${flag}`);
  }
  return options;
}

export function summary(latenciesMs: number[]): LatencyMs {
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  const at = (fraction: number) => sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))] ?? NaN;
  const round = (value: number) => Math.round(value * 100) / 100;
  return { puts: sorted.length, p50: round(at(0.5)), p99: round(at(0.99)), max: round(sorted.at(-1) ?? NaN) };
}

/** Each client's sequential puts until `done()` says stop; returns every put's latency in ms. */
export async function putsUntil(clients: KvClient[], done: () => boolean): Promise<number[]> {
  const latencies: number[] = [];
  const value = Buffer.alloc(256, 'p');
  await Promise.all(
    clients.map(async (client, clientIndex) => {
      for (let index = 0; !done(); index++) {
        const started = performance.now();
        await call(client, 'Put', { key: Buffer.from(`during/${clientIndex}/${index % 1000}`), value });
        latencies.push(performance.now() - started);
      }
    }),
  );
  return latencies;
}

/** Runs a command to its end; resolves with its stderr, rejects naming the command when it fails. */
function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    const stderr: Buffer[] = [];
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0
        ? resolve(Buffer.concat(stderr).toString())
        : reject(new Error(`${args.join(' ')} failed: ${Buffer.concat(stderr).toString()}`)),
    );
  });
}

const tsetcdctlPath = join(packageRoot(), 'bin', 'tsetcdctl.js');

/**
 * The restore of `path` into a fresh data dir (or its status, when `operation` says so) with the
 * system's own tool: wall seconds and the tool's peak RSS.
 */
async function timeRestore(
  system: string,
  path: string,
  dir: string,
  round: number,
  ctlPath = tsetcdctlPath,
  operation: 'restore' | 'status' = 'restore',
): Promise<{ seconds: number; peakRssMiB: number }> {
  const dataDir = join(dir, `restored-${system}-${round}`);
  const name = 'restored';
  const peerUrl = 'http://127.0.0.1:2380';
  const args = ['snapshot', 'restore', path, '--name', name, '--data-dir', dataDir];
  args.push('--initial-cluster', `${name}=${peerUrl}`, '--initial-advertise-peer-urls', peerUrl);
  if (operation === 'status') args.splice(0, args.length, 'snapshot', 'status', path, '-w', 'json');
  const command = system === 'etcd' ? [etcdctlBinaryPath, ...args] : [process.execPath, ctlPath, ...args];
  // GNU time prints the peak RSS (kB) of the command as the last line of stderr.
  const started = performance.now();
  const stderr = await run(timeBinaryPath, ['-f', 'peak-rss-kb %M', ...command]);
  const seconds = (performance.now() - started) / 1000;
  const peak = /peak-rss-kb (\d+)\s*$/.exec(stderr);
  await rm(dataDir, { recursive: true, force: true });
  return { seconds, peakRssMiB: peak === null ? Number.NaN : Number(peak[1]) / 1024 };
}

const timeBinaryPath = '/usr/bin/time';

/** One system under measurement: its member, its putting clients and its scratch dir. */
interface Target {
  system: string;
  member: Member;
  clients: KvClient[];
  dir: string;
  loadSeconds: number;
  rounds: SnapshotRound[];
  /** The loop probe's file, for tsetcd members. */
  loopProbePath?: string;
}

const loopProbeModulePath = join(packageRoot(), 'dist', 'bench', 'loop-probe.js');

async function startTarget(system: string, command: MemberCommand, options: SnapshotBenchOptions): Promise<Target> {
  const dir = await mkdtemp(join(tmpdir(), 'tsetcd-snapshot-bench-'));
  const probed = command.label === 'tsetcd';
  const loopProbePath = probed ? join(dir, 'loop-probe.log') : undefined;
  // Node runs --require modules in worker threads too, so the probe reaches the member thread.
  const env: Record<string, string> = probed
    ? {
        NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} --require ${loopProbeModulePath}`.trim(),
        [loopProbeEnv]: loopProbePath!,
      }
    : {};
  const member = await Member.start({ command, healthWaitMs: 60_000, env });
  const clients = Array.from({ length: options.clients }, () => kvClient(member.clientUrl));
  const loadStarted = performance.now();
  await load(clients[0]!, { keys: options.keys, valSize: options.valSize, batch: 100, concurrency: 8 });
  const loadSeconds = (performance.now() - loadStarted) / 1000;
  return { system, member, clients, dir, loadSeconds, rounds: [], loopProbePath };
}

async function stopTarget(target: Target): Promise<void> {
  for (const client of target.clients) client.close();
  await target.member.destroy();
  await rm(target.dir, { recursive: true, force: true });
}

/** CPU (user + system, ms) of each of `pid`'s threads by thread name, summed over threads of one name. */
function threadCpuMs(pid: number): Map<string, number> {
  const byName = new Map<string, number>();
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return byName;
  }
  for (const task of tasks) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${task}/stat`, 'utf8');
    } catch {
      continue; // the thread ended meanwhile
    }
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    byName.set(name, (byName.get(name) ?? 0) + (ticks * 1000) / clockTicksPerSecond);
  }
  return byName;
}

const clockTicksPerSecond = 100;

/** The CPU each thread name used between two readings, rounded to ms; names that used none are left out. */
function cpuBetween(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const used: Record<string, number> = {};
  for (const [name, ms] of after) {
    const delta = Math.round(ms - (before.get(name) ?? 0));
    if (delta > 0) used[name] = delta;
  }
  return used;
}

/** One round on `target`: puts for the baseline window, then `etcdctl snapshot save` while the puts go on, then a restore. */
async function saveRound(target: Target, options: SnapshotBenchOptions, round: number): Promise<SnapshotRound> {
  const { member, clients, dir } = target;
  const baselineEnd = performance.now() + options.baselineSeconds * 1000;
  const before = await putsUntil(clients, () => performance.now() >= baselineEnd);
  let saving = true;
  let rssDuringMiB = 0;
  const path = join(dir, `snapshot-${round}.db`);
  const cpuBefore = threadCpuMs(member.pid);
  const saveStarted = performance.now();
  const saveStartedEpochMs = Date.now();
  const endpoint = member.clientUrl.replace(/^http:\/\//, '');
  const saved = run(etcdctlBinaryPath, [`--endpoints=${endpoint}`, 'snapshot', 'save', path]).finally(
    () => (saving = false),
  );
  const during = putsUntil(clients, () => {
    rssDuringMiB = Math.max(rssDuringMiB, rssMiB(member.pid));
    return !saving;
  });
  await saved;
  const saveSeconds = (performance.now() - saveStarted) / 1000;
  const cpuDuringMs = cpuBetween(cpuBefore, threadCpuMs(member.pid));
  const eventLoopDuring =
    target.loopProbePath === undefined
      ? undefined
      : readLoopProbe(target.loopProbePath, saveStartedEpochMs, Date.now());
  const duringLatencies = await during;
  const fileMiB = (await stat(path)).size / (1024 * 1024);
  const restoreSeconds = (await timeRestore(target.system, path, dir, round)).seconds;
  await rm(path, { force: true });
  const putsBefore = summary(before);
  const putsDuring = summary(duringLatencies);
  const riseP99Ms = Math.round((putsDuring.p99 - putsBefore.p99) * 100) / 100;
  return {
    saveSeconds,
    restoreSeconds,
    fileMiB,
    putsBefore,
    putsDuring,
    riseP99Ms,
    rssDuringMiB,
    cpuDuringMs,
    eventLoopDuring,
  };
}

/**
 * Starts and loads every system first, then runs the rounds alternating between them (the order
 * rotating each round), so the machine's load drifts over all systems alike.
 */
async function measure(systems: Array<[string, MemberCommand]>, options: SnapshotBenchOptions): Promise<Target[]> {
  const targets: Target[] = [];
  try {
    for (const [system, command] of systems) targets.push(await startTarget(system, command, options));
    for (let round = 0; round < options.rounds; round++) {
      for (const target of rotated(targets, round)) target.rounds.push(await saveRound(target, options, round));
    }
    return targets;
  } finally {
    for (const target of targets) await stopTarget(target);
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

function loopLine(window: LoopProbeWindow): string {
  const { maxStall, stallsOver30Ms, gc, gcMaxMs } = window;
  const collections = Object.entries(gc).map(([kind, { count, ms }]) => `${kind} ${count}x ${ms}ms`);
  return (
    `longest stall ${maxStall.ms}ms (running ${maxStall.runMs}ms, waiting for a core ${maxStall.waitMs}ms), ` +
    `${stallsOver30Ms} stalls of 30ms+, gc ${collections.join(', ') || 'none'} (longest ${gcMaxMs}ms)`
  );
}

function line(result: SnapshotBenchResult): string {
  const latency = (l: LatencyMs) => `n=${l.puts} p50=${l.p50}ms p99=${l.p99}ms max=${l.max}ms`;
  const rounds = result.rounds.map(
    (round, index) =>
      `  round ${index + 1}: save=${round.saveSeconds.toFixed(2)}s restore=${round.restoreSeconds.toFixed(2)}s ` +
      `file=${round.fileMiB.toFixed(1)}MiB rss-during=${round.rssDuringMiB.toFixed(0)}MiB\n` +
      `    puts before: ${latency(round.putsBefore)}\n    puts during: ${latency(round.putsDuring)} rise p99=${round.riseP99Ms}ms\n` +
      `    cpu during (ms by thread): ${JSON.stringify(round.cpuDuringMs)}` +
      (round.eventLoopDuring === undefined ? '\n' : `\n    member thread: ${loopLine(round.eventLoopDuring)}\n`),
  );
  const saves = result.rounds.map((round) => round.saveSeconds);
  const restores = result.rounds.map((round) => round.restoreSeconds);
  const spread = (values: number[]) => `${Math.min(...values).toFixed(2)}-${Math.max(...values).toFixed(2)}`;
  return (
    `${result.system.padEnd(7)} keys=${result.keys} clients=${result.clients} load=${result.loadSeconds.toFixed(1)}s ` +
    `save median=${median(saves).toFixed(2)}s (${spread(saves)}) restore median=${median(restores).toFixed(2)}s (${spread(restores)}) ` +
    `p99 before/during median=${median(result.rounds.map((r) => r.putsBefore.p99)).toFixed(1)}/${median(result.rounds.map((r) => r.putsDuring.p99)).toFixed(1)}ms ` +
    `rise median=${median(result.rounds.map((r) => r.riseP99Ms)).toFixed(1)}ms\n` +
    rounds.join('')
  );
}

/** Loads one member with the options' keys and saves its snapshot to `path` with etcdctl. */
async function saveOnly(command: MemberCommand, options: SnapshotBenchOptions, path: string): Promise<void> {
  const member = await Member.start({ command, healthWaitMs: 60_000 });
  const client = kvClient(member.clientUrl);
  try {
    await load(client, { keys: options.keys, valSize: options.valSize, batch: 100, concurrency: 8 });
    const endpoint = member.clientUrl.replace(/^http:\/\//, '');
    await run(etcdctlBinaryPath, [`--endpoints=${endpoint}`, 'snapshot', 'save', path]);
  } finally {
    client.close();
    await member.destroy();
  }
}

interface RestoreRun {
  system: string;
  seconds: number;
  peakRssMiB: number;
}

/** Restores `path` (or reads its status) with each system's tool in turn, `rounds` times, rotating which goes first. */
async function restoreOnly(
  path: string,
  rounds: number,
  ctls: Map<string, string>,
  operation: 'restore' | 'status' = 'restore',
): Promise<RestoreRun[]> {
  const dir = await mkdtemp(join(tmpdir(), 'tsetcd-restore-bench-'));
  const runs: RestoreRun[] = [];
  const systems = [...restoreSystems(ctls).keys()];
  try {
    for (let round = 0; round < rounds; round++) {
      const order = [...systems.slice(round % systems.length), ...systems.slice(0, round % systems.length)];
      for (const system of order) {
        const ctlPath = ctls.get(system.slice('tsetcd:'.length));
        runs.push({ system, ...(await timeRestore(system, path, dir, round, ctlPath, operation)) });
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return runs;
}

/** The systems a --restore-only run compares: etcd, this build's tsetcd, and each --ctl build as tsetcd:NAME. */
function restoreSystems(ctls: Map<string, string>): Map<string, string | undefined> {
  const systems = new Map<string, string | undefined>([
    ['etcd', undefined],
    ['tsetcd', undefined],
  ]);
  for (const [name, path] of ctls) systems.set(`tsetcd:${name}`, path);
  return systems;
}

function restoreLines(
  path: string,
  runs: RestoreRun[],
  ctls: Map<string, string>,
  operation: 'restore' | 'status' = 'restore',
): string {
  const lines = [`${operation} of ${path}, ${(statSync(path).size / (1024 * 1024)).toFixed(1)} MiB`];
  const medians: Record<string, number> = {};
  for (const system of restoreSystems(ctls).keys()) {
    const mine = runs.filter((run) => run.system === system);
    const seconds = mine.map((run) => run.seconds);
    const rss = mine.map((run) => run.peakRssMiB);
    medians[system] = median(seconds);
    lines.push(
      `${system.padEnd(14)} median=${median(seconds).toFixed(2)}s (${seconds.map((value) => value.toFixed(2)).join(', ')}) ` +
        `peak RSS median=${median(rss).toFixed(0)}MiB (${rss.map((value) => value.toFixed(0)).join(', ')})`,
    );
  }
  for (const system of restoreSystems(ctls).keys())
    if (system !== 'etcd') lines.push(`${system}/etcd ${(medians[system]! / medians['etcd']!).toFixed(2)}`);
  return `${lines.join('\n')}\n`;
}

/** Runs the snapshot benchmark against real etcd and tsetcd; returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const options = parseArgs(argv);
  if (options.statusOnly !== undefined) {
    const runs = await restoreOnly(options.statusOnly, options.rounds, options.ctls, 'status');
    process.stdout.write(
      options.json
        ? `${JSON.stringify(runs, null, 2)}\n`
        : restoreLines(options.statusOnly, runs, options.ctls, 'status'),
    );
    return 0;
  }
  if (options.restoreOnly !== undefined) {
    const runs = await restoreOnly(options.restoreOnly, options.rounds, options.ctls);
    process.stdout.write(
      options.json ? `${JSON.stringify(runs, null, 2)}\n` : restoreLines(options.restoreOnly, runs, options.ctls),
    );
    return 0;
  }
  const sut = sutCommand();
  const systems: Array<[string, MemberCommand | undefined]> = [
    ['etcd', etcdCommand()],
    ['tsetcd', sut.command],
  ];
  if (options.saveOnly !== undefined) {
    const [system, command] = options.only === 'tsetcd' ? systems[1]! : systems[0]!;
    if (command === undefined) throw new Error(`${system} is not available: ${sut.skipReason ?? ''}`);
    await saveOnly(command, options, options.saveOnly);
    return 0;
  }
  for (const [name, path] of options.suts)
    systems.push([`tsetcd:${name}`, { label: 'tsetcd', command: process.execPath, args: [path] }]);
  const chosen: Array<[string, MemberCommand]> = [];
  for (const [system, command] of systems) {
    if (options.only !== undefined && options.only !== system) continue;
    if (command === undefined) throw new Error(`${system} is not available: ${sut.skipReason ?? ''}`);
    chosen.push([system, command]);
  }
  const results: SnapshotBenchResult[] = (await measure(chosen, options)).map((target) => ({
    system: target.system,
    keys: options.keys,
    clients: options.clients,
    loadSeconds: target.loadSeconds,
    rounds: target.rounds,
  }));
  process.stdout.write(options.json ? `${JSON.stringify(results, null, 2)}\n` : results.map(line).join(''));
  return 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (error: Error) => {
      process.stderr.write(`${error.stack ?? error.message}\n`);
      process.exitCode = 1;
    },
  );
}
