/**
 * Snapshot benchmark: loads N keys into a fresh member (real etcd, then tsetcd, same flags), then
 * times `etcdctl snapshot save` while one client keeps putting, and compares the put latency
 * during the save with the same client's latency just before it.
 *
 *   node dist/bench/snapshot.js --keys 100000 --val-size 256 [--baseline-seconds 3] [--json]
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Member } from '../test/support/member.js';
import { etcdCommand, etcdctlBinaryPath, sutCommand, type MemberCommand } from '../test/support/sut.js';
import { call, kvClient, load, rssMiB, type KvClient } from './restart.js';

interface SnapshotBenchOptions {
  keys: number;
  valSize: number;
  baselineSeconds: number;
  json: boolean;
  only?: string;
}

interface LatencyMs {
  puts: number;
  p50: number;
  p99: number;
  max: number;
}

interface SnapshotBenchResult {
  system: string;
  keys: number;
  loadSeconds: number;
  saveSeconds: number;
  fileMiB: number;
  putsBefore: LatencyMs;
  putsDuring: LatencyMs;
  rssDuringMiB: number;
}

function parseArgs(argv: readonly string[]): SnapshotBenchOptions {
  const options: SnapshotBenchOptions = { keys: 100_000, valSize: 256, baselineSeconds: 3, json: false };
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
    else if (flag === '--baseline-seconds') options.baselineSeconds = Number(value);
    else if (flag === '--only') options.only = value;
    else throw new Error(`unknown flag ${flag}`);
  }
  return options;
}

function summary(latenciesMs: number[]): LatencyMs {
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  const at = (fraction: number) => sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))] ?? NaN;
  const round = (value: number) => Math.round(value * 100) / 100;
  return { puts: sorted.length, p50: round(at(0.5)), p99: round(at(0.99)), max: round(sorted.at(-1) ?? NaN) };
}

/** One client's sequential puts until `done()` says stop; returns each put's latency in ms. */
async function putsUntil(client: KvClient, done: () => boolean): Promise<number[]> {
  const latencies: number[] = [];
  const value = Buffer.alloc(256, 'p');
  for (let index = 0; !done(); index++) {
    const started = performance.now();
    await call(client, 'Put', { key: Buffer.from(`during/${index % 1000}`), value });
    latencies.push(performance.now() - started);
  }
  return latencies;
}

function saveSnapshot(endpoint: string, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(etcdctlBinaryPath, [`--endpoints=${endpoint}`, 'snapshot', 'save', path], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const stderr: Buffer[] = [];
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0 ? resolve() : reject(new Error(`snapshot save failed: ${Buffer.concat(stderr).toString()}`)),
    );
  });
}

async function measure(
  system: string,
  command: MemberCommand,
  options: SnapshotBenchOptions,
): Promise<SnapshotBenchResult> {
  const member = await Member.start({ command, healthWaitMs: 60_000 });
  const dir = await mkdtemp(join(tmpdir(), 'tsetcd-snapshot-bench-'));
  const client = kvClient(member.clientUrl);
  try {
    const loadStarted = performance.now();
    await load(client, { keys: options.keys, valSize: options.valSize, batch: 100, concurrency: 8 });
    const loadSeconds = (performance.now() - loadStarted) / 1000;
    const baselineEnd = performance.now() + options.baselineSeconds * 1000;
    const before = await putsUntil(client, () => performance.now() >= baselineEnd);
    let saving = true;
    let rssDuringMiB = 0;
    const path = join(dir, 'snapshot.db');
    const saveStarted = performance.now();
    const saved = saveSnapshot(member.clientUrl.replace(/^http:\/\//, ''), path).finally(() => (saving = false));
    const during = putsUntil(client, () => {
      rssDuringMiB = Math.max(rssDuringMiB, rssMiB(member.pid));
      return !saving;
    });
    await saved;
    const saveSeconds = (performance.now() - saveStarted) / 1000;
    const duringLatencies = await during;
    return {
      system,
      keys: options.keys,
      loadSeconds,
      saveSeconds,
      fileMiB: (await stat(path)).size / (1024 * 1024),
      putsBefore: summary(before),
      putsDuring: summary(duringLatencies),
      rssDuringMiB,
    };
  } finally {
    client.close();
    await member.destroy();
    await rm(dir, { recursive: true, force: true });
  }
}

function line(result: SnapshotBenchResult): string {
  const latency = (l: LatencyMs) => `n=${l.puts} p50=${l.p50}ms p99=${l.p99}ms max=${l.max}ms`;
  return (
    `${result.system.padEnd(7)} keys=${result.keys} load=${result.loadSeconds.toFixed(1)}s save=${result.saveSeconds.toFixed(2)}s ` +
    `file=${result.fileMiB.toFixed(1)}MiB rss-during=${result.rssDuringMiB.toFixed(0)}MiB\n` +
    `        puts before: ${latency(result.putsBefore)}\n        puts during: ${latency(result.putsDuring)}\n`
  );
}

/** Runs the snapshot benchmark against real etcd and tsetcd; returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const options = parseArgs(argv);
  const sut = sutCommand();
  const systems: Array<[string, MemberCommand | undefined]> = [
    ['etcd', etcdCommand()],
    ['tsetcd', sut.command],
  ];
  const results: SnapshotBenchResult[] = [];
  for (const [system, command] of systems) {
    if (options.only !== undefined && options.only !== system) continue;
    if (command === undefined) throw new Error(`${system} is not available: ${sut.skipReason ?? ''}`);
    results.push(await measure(system, command, options));
  }
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
