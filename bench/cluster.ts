/**
 * Three-member cluster benchmark: put throughput and latency of real etcd (3 processes), tsetcd
 * (3 processes) and tsetcd's single-host mode (`tsetcd cluster --members 3`, one process), with
 * the same load generator in the same run, clients spread over all members' endpoints.
 *
 *   node dist/bench/cluster.js [--duration 5] [--warmup 5] [--clients 1,64,256] [--rounds 1]
 *     [--ops put,range-l,range-s] [--systems etcd,tsetcd,single-host] [--rate N] [--client go|node] [--json]
 *     [--tls] [--auth] [--members N] [--bcrypt-cost N]
 *
 * --ops picks the workloads, each run at every client count, in the order given (default put):
 * 256-byte puts, and linearizable (range-l) or serializable (range-s) one-key ranges. List put
 * first when ranges should find keys.
 *
 * With several --rounds the systems take turns in a new order each round (each cluster started
 * afresh), and the ratios to etcd are medians over the rounds. Server CPU is the members'
 * processes' CPU over each measured window per request; peak RSS is the sum of the members'
 * peak resident sets (one process in single-host mode), the highest over the rounds.
 *
 * --rate paces each run at N requests per second over all clients (0, the default, runs flat out).
 * "steal %" is the host CPU time the hypervisor took for others during each run, warm-up included.
 *
 * Each measured window follows --warmup seconds of the same load, excluded. V8 compiles tsetcd's
 * hot paths during the first seconds of load (in a 24 s run at 64 clients, about three quarters of
 * the optimizing compiles came in its first 6 s, and they took most of the CPU of V8's helper
 * threads); etcd is compiled ahead of time. A short warmup measures that compiling, not the
 * steady state a long-running member serves in.
 *
 * --client go uses bench/go-load (etcd's Go clientv3) as the load generator instead of Node's.
 *
 * Endpoints are ordered leader first for every system (see leaderFirst), so one client talks to
 * the leader and the connections of many clients spread over the members alike.
 *
 * --tls serves clients and peers over https with certificates made by openssl at the start (into a
 * temporary dir), and every member requires client certificates (--client-cert-auth,
 * --peer-client-cert-auth); the load client presents one. --auth enables auth on each fresh
 * cluster before its runs, with a root user and a bench user whose role may read and write the
 * bench's key space, and the load runs as the bench user (simple tokens, etcd's default). Both
 * apply to etcd and tsetcd alike; single-host mode takes neither. --ops authenticate (with --auth)
 * has every request be an Auth.Authenticate call as the bench user, so it measures the password
 * check at the members' --bcrypt-cost (default 10, etcd's). Authenticate runs at tens of requests
 * a second, so V8 reaches tsetcd's Raft round in its compiles that much later: 4-12 s into the load
 * V8's helper threads still took 8.6% of the members' CPU, nearly all optimizing compiles, and 1.9%
 * after 18 s. Give it --warmup 20 to measure a warm member. --members runs etcd and tsetcd with
 * that many members instead of 3.
 *
 * Single-host mode uses etcd's Procfile ports (2379, 22379, 32379 and 2380, 22380, 32380): they
 * must be free.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { etcdctlTlsArgs, makeCertificates, type TlsFiles } from '../test/support/certificates.js';
import { agreedLeader, Cluster, clusterSizeMax, type ClusterTls } from '../test/support/cluster.js';
import { runEtcdctl } from '../test/support/etcdctl.js';
import { probeHealth } from '../test/support/member.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../test/support/sut.js';
import { bcryptCostDefault, bcryptCostMax, bcryptCostMin } from '../src/lib/limits.js';
import { median, table } from './compare.js';
import { checkIntegerOption } from './side-by-side.js';
import { loadOptions, ratePerSecMax, rotated, type LoadResult } from './load.js';
import { readHostCpuTicks, readProcessStats, stealPercent } from './proc-stats.js';
import {
  goLoadAvailable,
  loadClientLabel,
  loadRunner,
  parseLoadClientName,
  type LoadClientName,
  type LoadRunner,
} from './go-client.js';

/** The three topologies, by the names --systems takes. */
export const clusterSystems = ['etcd', 'tsetcd', 'single-host'] as const;
export type ClusterSystem = (typeof clusterSystems)[number];
/** How a system is named in reports; `members` is how many processes etcd and tsetcd ran. */
function systemLabel(system: ClusterSystem, members: number): string {
  return system === 'single-host' ? 'tsetcd single-host' : `${system} ${members} processes`;
}
export const clusterRoundsMax = 20;
/** The workloads --ops takes; authenticate (Auth.Authenticate as the bench user) needs --auth. */
export const clusterOps = ['put', 'range-l', 'range-s', 'authenticate'] as const;
export type ClusterOp = (typeof clusterOps)[number];

export interface ClusterBenchOptions {
  durationMs: number;
  warmupMs: number;
  clients: number[];
  client: LoadClientName;
  /** Requests per second over all clients; 0 runs flat out. */
  ratePerSec: number;
  rounds: number;
  systems: ClusterSystem[];
  ops: ClusterOp[];
  /** Clients and peers over TLS with client certificates required. */
  tls: boolean;
  /** Auth enabled; the load runs as benchUser. */
  auth: boolean;
  /** Members of the etcd and tsetcd clusters (3 unless told). */
  members: number;
  /** --bcrypt-cost of every member with --auth (etcd's default unless told). */
  bcryptCost: number;
  json: boolean;
}

export interface ClusterRow {
  system: ClusterSystem;
  round: number;
  op: ClusterOp;
  clients: number;
  throughputPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** The slowest request of the window: stragglers show here before they move the p99. */
  maxMs: number;
  errors: number;
  /** The errors by kind (gRPC code and message), when there were any. */
  errorKinds?: Record<string, number>;
  /** The members' CPU over the measured window, per request answered. */
  serverCpuPerRequestUs: number;
  /** Load generator CPU over the measured window, in percent of one core. */
  clientCpuPercent: number;
  /** Host CPU time stolen by the hypervisor during the run, in percent. */
  hostStealPercent: number;
}

/** A system's figures over etcd's at one client count: medians over rounds of the per-round ratios. */
export interface ClusterRatio {
  system: ClusterSystem;
  op: ClusterOp;
  clients: number;
  throughput: number;
  p50: number;
  p99: number;
  serverCpuPerRequest: number;
}

export interface ClusterReport {
  clientLabel: string;
  /** plain, tls, auth or tls+auth: how the members were configured. */
  security: string;
  /** Members of the etcd and tsetcd clusters. */
  members: number;
  rows: ClusterRow[];
  /** Per system, the sum of its members' peak RSS, the highest over the rounds. */
  peakRssKb: Partial<Record<ClusterSystem, number>>;
  /** Present when etcd ran: each other system's ratios to it. */
  ratios: ClusterRatio[];
}

export function parseClusterArgs(argv: readonly string[]): ClusterBenchOptions {
  const options: ClusterBenchOptions = {
    durationMs: 5_000,
    warmupMs: 5_000,
    clients: [1, 64, 256],
    client: 'node',
    ratePerSec: 0,
    rounds: 1,
    systems: [...clusterSystems],
    ops: ['put'],
    tls: false,
    auth: false,
    members: 3,
    bcryptCost: bcryptCostDefault,
    json: false,
  };
  for (let position = 0; position < argv.length; position++) {
    const flag = argv[position];
    if (flag === '--json' || flag === '--tls' || flag === '--auth') {
      options[flag.slice(2) as 'json' | 'tls' | 'auth'] = true;
      continue;
    }
    const value = argv[++position] ?? '';
    if (flag === '--duration') options.durationMs = Number(value) * 1000;
    else if (flag === '--warmup') options.warmupMs = Number(value) * 1000;
    else if (flag === '--clients') options.clients = value.split(',').map(Number);
    else if (flag === '--client') options.client = parseLoadClientName(value);
    else if (flag === '--rate') options.ratePerSec = Number(value);
    else if (flag === '--rounds') options.rounds = Number(value);
    else if (flag === '--systems') options.systems = value.split(',').map(parseSystem);
    else if (flag === '--ops') options.ops = value.split(',').map(parseOp);
    else if (flag === '--members') options.members = Number(value);
    else if (flag === '--bcrypt-cost') options.bcryptCost = Number(value);
    else throw new Error(`unknown flag ${flag}`);
  }
  if (!Number.isInteger(options.ratePerSec) || options.ratePerSec < 0 || options.ratePerSec > ratePerSecMax) {
    throw new Error(`--rate must be an integer in 0..${ratePerSecMax}, saw ${String(options.ratePerSec)}`);
  }
  if (!Number.isInteger(options.rounds) || options.rounds < 1 || options.rounds > clusterRoundsMax) {
    throw new Error(`--rounds must be 1..${clusterRoundsMax}, saw ${String(options.rounds)}`);
  }
  if (!(options.durationMs > 0) || !(options.warmupMs >= 0))
    throw new Error('--duration must be positive and --warmup 0 or more (seconds)');
  if ((options.tls || options.auth || options.members !== 3) && options.systems.includes('single-host'))
    throw new Error('--tls, --auth and --members apply to etcd and tsetcd; leave single-host out of --systems');
  checkIntegerOption('members', options.members, 1, clusterSizeMax);
  checkIntegerOption('bcrypt-cost', options.bcryptCost, bcryptCostMin, bcryptCostMax);
  if (options.ops.includes('authenticate') && !options.auth)
    throw new Error('--ops authenticate needs --auth (the bench user logs in)');
  if (new Set(options.systems).size !== options.systems.length)
    throw new Error(`--systems names a system twice: ${options.systems.join(',')}`);
  if (new Set(options.ops).size !== options.ops.length)
    throw new Error(`--ops names a workload twice: ${options.ops.join(',')}`);
  if (options.clients.length === 0 || !options.clients.every((clients) => Number.isInteger(clients) && clients > 0)) {
    throw new Error('--clients must list positive integers, e.g. 1,64,256');
  }
  return options;
}

function parseSystem(name: string): ClusterSystem {
  if (!(clusterSystems as readonly string[]).includes(name))
    throw new Error(`--systems takes ${clusterSystems.join(', ')}; saw ${name}`);
  return name as ClusterSystem;
}

function parseOp(name: string): ClusterOp {
  if (!(clusterOps as readonly string[]).includes(name))
    throw new Error(`--ops takes ${clusterOps.join(', ')}; saw ${name}`);
  return name as ClusterOp;
}

/** The systems in the order round `round` runs them: rotated by one each round, so none always goes first. */
export function systemOrder(systems: readonly ClusterSystem[], round: number): ClusterSystem[] {
  return rotated(systems, round - 1);
}

function cpuMsOf(pids: readonly number[]): number {
  return pids.reduce((sum, pid) => sum + readProcessStats(pid).cpuMs, 0);
}

/** How the load client connects: over TLS with these client files, as this user (name:password). */
interface ClientSecurity {
  readonly tls?: TlsFiles;
  readonly user?: string;
}

/** Runs every workload at every client count against one running system; `pids` are its member processes. */
async function measure(
  system: ClusterSystem,
  round: number,
  endpoints: string[],
  pids: readonly number[],
  options: ClusterBenchOptions,
  security: ClientSecurity = {},
): Promise<ClusterRow[]> {
  const runLoad: LoadRunner = loadRunner(options.client);
  const rows: ClusterRow[] = [];
  for (const op of options.ops) {
    rows.push(...(await measureOp(system, round, op, endpoints, pids, options, runLoad, security)));
  }
  return rows;
}

async function measureOp(
  system: ClusterSystem,
  round: number,
  op: ClusterOp,
  endpoints: string[],
  pids: readonly number[],
  options: ClusterBenchOptions,
  runLoad: LoadRunner,
  security: ClientSecurity,
): Promise<ClusterRow[]> {
  const rows: ClusterRow[] = [];
  const workload =
    op === 'put' || op === 'authenticate'
      ? { op }
      : { op: 'range' as const, consistency: op === 'range-l' ? ('l' as const) : ('s' as const) };
  for (const clients of options.clients) {
    const load = loadOptions({
      endpoints,
      clients,
      conns: Math.max(3, Math.min(16, clients)),
      durationMs: options.durationMs,
      warmupMs: 0,
      ...workload,
      ratePerSec: options.ratePerSec,
      ...security,
    });
    // The warm-up runs as its own load so the server CPU is sampled over the measured window only.
    const hostBefore = readHostCpuTicks();
    if (options.warmupMs > 0) await runLoad({ ...load, durationMs: options.warmupMs });
    const cpuBeforeMs = cpuMsOf(pids);
    const result: LoadResult = await runLoad(load);
    const serverCpuMs = cpuMsOf(pids) - cpuBeforeMs;
    rows.push({
      system,
      round,
      op,
      clients,
      throughputPerSec: result.throughputPerSec,
      p50Ms: result.latencyUs.p50 / 1000,
      p99Ms: result.latencyUs.p99 / 1000,
      maxMs: result.latencyUs.max / 1000,
      errors: result.errorCount,
      ...(result.errorCount > 0 ? { errorKinds: result.errors } : {}),
      serverCpuPerRequestUs: result.requests > 0 ? Math.round((serverCpuMs * 1000) / result.requests) : 0,
      clientCpuPercent: result.elapsedMs > 0 ? Math.round((result.clientCpuMs * 100) / result.elapsedMs) : 0,
      hostStealPercent: stealPercent(hostBefore, readHostCpuTicks()),
    });
  }
  return rows;
}

interface SystemRun {
  rows: ClusterRow[];
  peakRssKb: number;
}

async function processCluster(
  system: ClusterSystem,
  command: MemberCommand,
  round: number,
  options: ClusterBenchOptions,
  tls: ClusterTls | undefined,
): Promise<SystemRun> {
  const cluster = await Cluster.start({
    command,
    size: options.members,
    extraFlags: options.auth ? ['--bcrypt-cost', String(options.bcryptCost)] : [],
    ...(tls === undefined ? {} : { tls }),
  });
  try {
    const pids = cluster.members.map((member) => member.pid);
    const endpoints = await leaderFirst(cluster.endpoints(), tls?.client);
    if (options.auth) await enableBenchAuth(endpoints[0] as string, tls?.client);
    const security: ClientSecurity = {
      ...(tls === undefined ? {} : { tls: tls.client }),
      ...(options.auth ? { user: benchUser } : {}),
    };
    const rows = await measure(system, round, endpoints, pids, options, security);
    return { rows, peakRssKb: pids.reduce((sum, pid) => sum + readProcessStats(pid).peakRssKb, 0) };
  } finally {
    await cluster.destroy();
  }
}

async function singleHostCluster(
  command: MemberCommand,
  round: number,
  options: ClusterBenchOptions,
): Promise<SystemRun> {
  const workDir = await mkdtemp(join(tmpdir(), 'tsetcd-single-host-'));
  const child: ChildProcess = spawn(command.command, [...command.args, 'cluster', '--members', '3'], {
    cwd: workDir,
    stdio: 'ignore',
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    const deadline = performance.now() + 30_000;
    for (const endpoint of singleHostEndpoints) {
      while ((await probeHealth(endpoint)) !== '') {
        if (child.exitCode !== null)
          throw new Error(
            `tsetcd cluster exited with ${child.exitCode} before ${endpoint} was healthy (are its ports free?)`,
          );
        if (performance.now() > deadline) throw new Error(`single-host cluster not healthy at ${endpoint}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    const pid = child.pid as number;
    const rows = await measure('single-host', round, await leaderFirst(singleHostEndpoints), [pid], options);
    return { rows, peakRssKb: readProcessStats(pid).peakRssKb };
  } finally {
    child.kill('SIGTERM');
    await exited;
    await rm(workDir, { recursive: true, force: true });
  }
}

/** Longest the members may take to agree on a leader before a system's runs start. */
const leaderWaitMsMax = 30_000;

/**
 * `endpoints` with the leader's first, once every member names the same one. Connection i goes to
 * endpoint i mod n, so one client always talks to the leader, whichever member won the election:
 * through a follower a put takes two more hops (the proposal forwarded, the commit sent back), and
 * which member leads differs from system to system and run to run.
 */
export async function leaderFirst(endpoints: readonly string[], tls?: TlsFiles): Promise<string[]> {
  const leader = await agreedLeader(
    () => endpoints,
    (endpoint) => endpoint,
    (endpoint) => endpoint,
    leaderWaitMsMax,
    tls,
  );
  return [leader, ...endpoints.filter((endpoint) => endpoint !== leader)];
}

/** The user the load runs as with --auth, as name:password. */
export const benchUser = 'bench:bench-password';
/** The bench user's role covers the load's key space: keys are indexes below 10,000 as 8 decimal digits. */
const benchKeyRange = ['00000000', '00010000'] as const;

/**
 * Enables auth through `endpoint` as etcd's documentation has it: a root user with the root role,
 * then benchUser with a role that may read and write benchKeyRange, then `auth enable`.
 */
export async function enableBenchAuth(endpoint: string, tls: TlsFiles | undefined): Promise<void> {
  const [name, password] = benchUser.split(':') as [string, string];
  const steps = [
    ['user', 'add', 'root:root-password'],
    ['user', 'grant-role', 'root', 'root'],
    ['user', 'add', `${name}:${password}`],
    ['role', 'add', name],
    ['role', 'grant-permission', name, 'readwrite', ...benchKeyRange],
    ['user', 'grant-role', name, name],
    ['auth', 'enable'],
  ];
  for (const step of steps) {
    const result = await runEtcdctl(endpoint, [...etcdctlTlsArgs(tls), ...step]);
    if (result.code !== 0) throw new Error(`etcdctl ${step.join(' ')} failed: ${result.stderr.trim()}`);
  }
}

/** The client URLs of `tsetcd cluster --members 3` (etcd's Procfile layout). */
export const singleHostEndpoints = ['http://127.0.0.1:2379', 'http://127.0.0.1:22379', 'http://127.0.0.1:32379'];

/** Each non-etcd system's ratios to etcd per workload and client count, medians over the rounds that ran both. */
export function clusterRatios(rows: readonly ClusterRow[]): ClusterRatio[] {
  const ratios: ClusterRatio[] = [];
  const systems = [...new Set(rows.map((row) => row.system))].filter((system) => system !== 'etcd');
  const runs = [
    ...new Map(rows.map((row) => [`${row.op} ${row.clients}`, { op: row.op, clients: row.clients }])).values(),
  ];
  for (const system of systems) {
    for (const { op, clients } of runs) {
      const same = (row: ClusterRow) => row.op === op && row.clients === clients;
      const pairs = rows
        .filter((row) => row.system === system && same(row))
        .flatMap((row) => {
          const reference = rows.find((other) => other.system === 'etcd' && same(other) && other.round === row.round);
          return reference === undefined ? [] : [[row, reference] as const];
        });
      if (pairs.length === 0) continue;
      const medianOf = (figure: (row: ClusterRow) => number) =>
        median(pairs.map(([row, reference]) => figure(row) / figure(reference)));
      ratios.push({
        system,
        op,
        clients,
        throughput: medianOf((row) => row.throughputPerSec),
        p50: medianOf((row) => row.p50Ms),
        p99: medianOf((row) => row.p99Ms),
        serverCpuPerRequest: medianOf((row) => row.serverCpuPerRequestUs),
      });
    }
  }
  return ratios;
}

/** Runs the rounds: every system in each, in a rotating order. */
export async function runClusterBench(options: ClusterBenchOptions, sut: MemberCommand): Promise<ClusterReport> {
  const rows: ClusterRow[] = [];
  const peakRssKb: Partial<Record<ClusterSystem, number>> = {};
  const certificates = options.tls ? makeCertificates() : undefined;
  const tls = certificates && { server: certificates.member('server'), client: certificates.member('bench') };
  try {
    for (let round = 1; round <= options.rounds; round++) {
      for (const system of systemOrder(options.systems, round)) {
        const run =
          system === 'etcd'
            ? await processCluster(system, etcdCommand(), round, options, tls)
            : system === 'tsetcd'
              ? await processCluster(system, sut, round, options, tls)
              : await singleHostCluster(sut, round, options);
        rows.push(...run.rows);
        peakRssKb[system] = Math.max(peakRssKb[system] ?? 0, run.peakRssKb);
      }
    }
  } finally {
    certificates?.remove();
  }
  const systemRank = (row: ClusterRow) => options.systems.indexOf(row.system);
  const opRank = (row: ClusterRow) => options.ops.indexOf(row.op);
  rows.sort(
    (a, b) => systemRank(a) - systemRank(b) || opRank(a) - opRank(b) || a.clients - b.clients || a.round - b.round,
  );
  return {
    clientLabel: loadClientLabel(options.client),
    security: securityLabel(options),
    members: options.members,
    rows,
    peakRssKb,
    ratios: clusterRatios(rows),
  };
}

/** plain, tls, auth or tls+auth. */
export function securityLabel(options: Pick<ClusterBenchOptions, 'tls' | 'auth'>): string {
  const parts = [options.tls ? 'tls' : '', options.auth ? 'auth' : ''].filter((part) => part !== '');
  return parts.length === 0 ? 'plain' : parts.join('+');
}

/** The report as text: a row per system, workload, client count and round, then the ratios to etcd and peak RSS. */
export function formatClusterReport(report: ClusterReport): string {
  const runs = [
    [
      'system',
      'op',
      'round',
      'clients',
      'req/s',
      'p50 ms',
      'p99 ms',
      'max ms',
      'errors',
      'srv cpu us/req',
      'cli cpu %',
      'steal %',
    ],
  ];
  for (const row of report.rows) {
    runs.push([
      systemLabel(row.system, report.members),
      row.op,
      String(row.round),
      String(row.clients),
      row.throughputPerSec.toFixed(0),
      row.p50Ms.toFixed(2),
      row.p99Ms.toFixed(2),
      row.maxMs.toFixed(0),
      String(row.errors),
      String(row.serverCpuPerRequestUs),
      String(row.clientCpuPercent),
      row.hostStealPercent.toFixed(1),
    ]);
  }
  const ratios = [['system', 'op', 'clients', 'throughput', 'p50', 'p99', 'srv cpu/req']];
  for (const r of report.ratios)
    ratios.push([
      systemLabel(r.system, report.members),
      r.op,
      String(r.clients),
      ...[r.throughput, r.p50, r.p99, r.serverCpuPerRequest].map(String),
    ]);
  const rss = Object.entries(report.peakRssKb).map(
    ([system, kb]) => `${systemLabel(system as ClusterSystem, report.members)} ${(kb / 1024).toFixed(1)}`,
  );
  const lines = [
    `load client: ${report.clientLabel}; members: ${report.security}; cli cpu % is of one core; steal % is host CPU time the hypervisor took`,
    table(runs, true),
  ];
  if (report.ratios.length > 0)
    lines.push(
      '',
      `ratios to ${systemLabel('etcd', report.members)}, medians over rounds (throughput above 1 is better; latency and cpu below 1 are better)`,
      table(ratios, true),
    );
  for (const row of report.rows.filter((r) => r.errorKinds !== undefined))
    for (const [kind, count] of Object.entries(row.errorKinds ?? {}))
      lines.push(`errors, ${systemLabel(row.system, report.members)} ${row.op} round ${row.round}: ${count} x ${kind}`);
  lines.push('', `peak rss MiB (sum over a system's member processes, highest round): ${rss.join(', ')}`);
  return lines.join('\n');
}

/** Runs the chosen topologies and prints a table with tsetcd/etcd ratios. */
export async function main(argv: readonly string[]): Promise<number> {
  const options = parseClusterArgs(argv);
  const sut = sutCommand();
  if (sut.command === undefined) throw new Error(`tsetcd is not available: ${sut.skipReason}`);
  const goLoad = options.client === 'go' ? goLoadAvailable() : undefined;
  if (goLoad?.ok === false) {
    process.stderr.write(`cannot run with --client go: ${goLoad.reason}\n`);
    return 2;
  }
  const report = await runClusterBench(options, sut.command);
  process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatClusterReport(report)}\n`);
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
