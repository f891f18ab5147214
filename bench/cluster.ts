/**
 * Three-member cluster benchmark: put throughput and latency of real etcd (3 processes), tsetcd
 * (3 processes) and tsetcd's single-host mode (`tsetcd cluster --members 3`, one process), with
 * the same load generator in the same run, clients spread over all members' endpoints.
 *
 *   node dist/bench/cluster.js [--duration 5] [--warmup 5] [--clients 1,64,256] [--rate N] [--client go|node] [--json]
 *
 * --rate paces each run at N puts per second over all clients (0, the default, runs flat out).
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
 * Single-host mode uses etcd's Procfile ports (2379, 22379, 32379 and 2380, 22380, 32380): they
 * must be free.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster } from '../test/support/cluster.js';
import { probeHealth } from '../test/support/member.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../test/support/sut.js';
import { loadOptions, ratePerSecMax, type LoadResult } from './load.js';
import { readHostCpuTicks, stealPercent } from './proc-stats.js';
import { goLoadAvailable, loadClientLabel, loadRunner, parseLoadClientName, type LoadClientName, type LoadRunner } from './go-client.js';

interface ClusterBenchOptions {
  durationMs: number;
  warmupMs: number;
  clients: number[];
  client: LoadClientName;
  /** Puts per second over all clients; 0 runs flat out. */
  ratePerSec: number;
  json: boolean;
}

interface Row {
  system: string;
  clients: number;
  throughputPerSec: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  /** Load generator CPU over the measured window, in percent of one core. */
  clientCpuPercent: number;
  /** Host CPU time stolen by the hypervisor during the run, in percent. */
  hostStealPercent: number;
}

export function parseClusterArgs(argv: readonly string[]): ClusterBenchOptions {
  const options: ClusterBenchOptions = { durationMs: 5_000, warmupMs: 5_000, clients: [1, 64, 256], client: 'node', ratePerSec: 0, json: false };
  for (let position = 0; position < argv.length; position++) {
    const flag = argv[position];
    if (flag === '--json') {
      options.json = true;
      continue;
    }
    const value = argv[++position] ?? '';
    if (flag === '--duration') options.durationMs = Number(value) * 1000;
    else if (flag === '--warmup') options.warmupMs = Number(value) * 1000;
    else if (flag === '--clients') options.clients = value.split(',').map(Number);
    else if (flag === '--client') options.client = parseLoadClientName(value);
    else if (flag === '--rate') options.ratePerSec = Number(value);
    else throw new Error(`unknown flag ${flag}`);
  }
  if (!Number.isInteger(options.ratePerSec) || options.ratePerSec < 0 || options.ratePerSec > ratePerSecMax) {
    throw new Error(`--rate must be an integer in 0..${ratePerSecMax}, saw ${String(options.ratePerSec)}`);
  }
  return options;
}

async function measure(system: string, endpoints: string[], options: ClusterBenchOptions): Promise<Row[]> {
  const runLoad: LoadRunner = loadRunner(options.client);
  const rows: Row[] = [];
  for (const clients of options.clients) {
    const before = readHostCpuTicks();
    const result: LoadResult = await runLoad(
      loadOptions({ endpoints, clients, conns: Math.max(3, Math.min(16, clients)), durationMs: options.durationMs, warmupMs: options.warmupMs, op: 'put', ratePerSec: options.ratePerSec }),
    );
    const hostStealPercent = stealPercent(before, readHostCpuTicks());
    rows.push({
      system,
      clients,
      throughputPerSec: result.throughputPerSec,
      p50Ms: result.latencyUs.p50 / 1000,
      p99Ms: result.latencyUs.p99 / 1000,
      errors: result.errorCount,
      clientCpuPercent: result.elapsedMs > 0 ? Math.round((result.clientCpuMs * 100) / result.elapsedMs) : 0,
      hostStealPercent,
    });
  }
  return rows;
}

async function processCluster(system: string, command: MemberCommand, options: ClusterBenchOptions): Promise<Row[]> {
  const cluster = await Cluster.start({ command });
  try {
    await cluster.leader();
    return await measure(system, cluster.endpoints(), options);
  } finally {
    await cluster.destroy();
  }
}

async function singleHostCluster(command: MemberCommand, options: ClusterBenchOptions): Promise<Row[]> {
  const workDir = await mkdtemp(join(tmpdir(), 'tsetcd-single-host-'));
  const child: ChildProcess = spawn(command.command, [...command.args, 'cluster', '--members', '3'], { cwd: workDir, stdio: 'ignore' });
  const endpoints = ['http://127.0.0.1:2379', 'http://127.0.0.1:22379', 'http://127.0.0.1:32379'];
  try {
    const deadline = performance.now() + 30_000;
    for (const endpoint of endpoints) {
      while ((await probeHealth(endpoint)) !== '') {
        if (performance.now() > deadline) throw new Error(`single-host cluster not healthy at ${endpoint}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    return await measure('tsetcd single-host', endpoints, options);
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
    await rm(workDir, { recursive: true, force: true });
  }
}

/** Runs the three topologies and prints a table with tsetcd/etcd ratios. */
export async function main(argv: readonly string[]): Promise<number> {
  const options = parseClusterArgs(argv);
  const sut = sutCommand();
  if (sut.command === undefined) throw new Error(`tsetcd is not available: ${sut.skipReason}`);
  const goLoad = options.client === 'go' ? goLoadAvailable() : undefined;
  if (goLoad?.ok === false) {
    process.stderr.write(`cannot run with --client go: ${goLoad.reason}\n`);
    return 2;
  }
  const rows = [
    ...(await processCluster('etcd 3 processes', etcdCommand(), options)),
    ...(await processCluster('tsetcd 3 processes', sut.command, options)),
    ...(await singleHostCluster(sut.command, options)),
  ];
  if (options.json) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return 0;
  }
  process.stdout.write(`load client: ${loadClientLabel(options.client)}; cli cpu % is of one core; steal % is host CPU time the hypervisor took\n`);
  process.stdout.write('system               clients   put/s   p50 ms   p99 ms  errors  ratio-vs-etcd  cli cpu %  steal %\n');
  for (const row of rows) {
    const reference = rows.find((other) => other.system === 'etcd 3 processes' && other.clients === row.clients);
    const ratio = reference === undefined ? Number.NaN : row.throughputPerSec / reference.throughputPerSec;
    process.stdout.write(
      `${row.system.padEnd(20)} ${String(row.clients).padStart(7)} ${row.throughputPerSec.toFixed(0).padStart(7)} ${row.p50Ms.toFixed(2).padStart(8)} ${row.p99Ms.toFixed(2).padStart(8)} ${String(row.errors).padStart(7)} ${ratio.toFixed(2).padStart(14)} ${String(row.clientCpuPercent).padStart(10)} ${row.hostStealPercent.toFixed(1).padStart(8)}\n`,
    );
  }
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
