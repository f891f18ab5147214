/**
 * Member start: a fresh single member (real etcd with --logger=zap, this tree's tsetcd, and any
 * other tsetcd builds given), each start a new process on a new data dir, taking turns round by
 * round. For each start: wall time from spawn until the member logs `published local member to
 * cluster through raft`, and the CPU (user + system, every thread) the process has used by then.
 *
 *   flock /tmp/tsetcd-e2e.lock node dist/bench/member-start.js [--rounds 7] [--build name=/path/to/tree ...] [--json]
 *
 * --build names another checkout's root (its bin/tsetcd.js runs), for before/after figures in one run.
 * Each system's line is followed by its threads' CPU at the same moment (medians, ms): the main
 * thread as `main`, the others by their kernel names (tsetcd-member, tsetcd-wal; V8's and libuv's
 * helpers are summed under `other`).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { isMainModule } from './load.js';
import { packageRoot } from '../src/lib/paths.js';
import { freePort } from '../test/support/ports.js';
import { etcdCommand } from '../test/support/sut.js';

interface Starter {
  readonly name: string;
  readonly command: string;
  readonly prefix: readonly string[];
}

interface StartFigures {
  readonly wallMs: number;
  readonly cpuMs: number;
  /** CPU per thread name (see threadCpuMs). */
  readonly threadsMs: ReadonlyMap<string, number>;
}

const milestone = 'published local member to cluster through raft';
const startWaitMs = 30_000;
const clockTicksPerSecond = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** User plus system CPU of a live process (all its threads), from /proc. */
function processCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicksPerSecond;
}

/** Threads whose kernel names are reported on their own; the rest count as `other`. */
const namedThreads = ['tsetcd-member', 'tsetcd-wal', 'etcd'];

/** User plus system CPU of each thread of a live process, summed by name: `main` for the main thread. */
function threadCpuMs(pid: number): Map<string, number> {
  const perName = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    let comm: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
    } catch {
      continue; // The thread ended between the listing and the read.
    }
    const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
    const name = Number(tid) === pid ? 'main' : namedThreads.includes(comm) ? comm : 'other';
    const ms = ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicksPerSecond;
    perName.set(name, (perName.get(name) ?? 0) + ms);
  }
  return perName;
}

async function startOnce(starter: Starter): Promise<StartFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'tsetcd-member-start-'));
  const [client, peer] = [await freePort(), await freePort()];
  const args = [
    ...starter.prefix,
    ...['--name', 'm1', '--data-dir', join(dir, 'data')],
    ...['--listen-client-urls', `http://127.0.0.1:${client}`, '--advertise-client-urls', `http://127.0.0.1:${client}`],
    ...['--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`],
    ...['--initial-cluster', `m1=http://127.0.0.1:${peer}`],
  ];
  const began = performance.now();
  const child = spawn(starter.command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    return await new Promise<StartFigures>((resolve, reject) => {
      let seen = '';
      const timer = setTimeout(() => reject(new Error(`${starter.name} did not log "${milestone}"`)), startWaitMs);
      const look = (chunk: Buffer) => {
        seen += chunk.toString('utf8');
        if (!seen.includes(milestone) || child.pid === undefined) return;
        clearTimeout(timer);
        resolve({
          wallMs: performance.now() - began,
          cpuMs: processCpuMs(child.pid),
          threadsMs: threadCpuMs(child.pid),
        });
      };
      child.stdout.on('data', look);
      child.stderr.on('data', look);
      child.once('exit', (code) => reject(new Error(`${starter.name} exited (${String(code)}) before "${milestone}"`)));
    });
  } finally {
    child.kill('SIGKILL');
    await new Promise((resolve) => (child.exitCode === null ? child.once('exit', resolve) : resolve(undefined)));
    rmSync(dir, { recursive: true, force: true });
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1] ?? Number.NaN;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '7' },
      build: { type: 'string', multiple: true, default: [] },
      json: { type: 'boolean', default: false },
    },
  });
  const etcd = etcdCommand();
  const starters: Starter[] = [
    { name: 'etcd', command: etcd.command, prefix: ['--logger=zap'] },
    { name: 'tsetcd', command: process.execPath, prefix: [join(packageRoot(), 'bin', 'tsetcd.js')] },
    ...values.build.map((spec) => {
      const at = spec.indexOf('=');
      if (at <= 0) throw new Error(`--build wants name=path, saw ${spec}`);
      return {
        name: spec.slice(0, at),
        command: process.execPath,
        prefix: [join(spec.slice(at + 1), 'bin', 'tsetcd.js')],
      };
    }),
  ];
  const figures = new Map<string, StartFigures[]>(starters.map((starter) => [starter.name, []]));
  const rounds = Number(values.rounds);
  for (let round = 0; round < rounds; round++) {
    for (let turn = 0; turn < starters.length; turn++) {
      const starter = starters[(round + turn) % starters.length]!;
      figures.get(starter.name)!.push(await startOnce(starter));
    }
  }
  const summary = starters.map(({ name }) => {
    const list = figures.get(name)!;
    return {
      name,
      wallMs: median(list.map((entry) => entry.wallMs)),
      cpuMs: median(list.map((entry) => entry.cpuMs)),
      cpuRangeMs: [Math.min(...list.map((entry) => entry.cpuMs)), Math.max(...list.map((entry) => entry.cpuMs))],
      threadsMs: Object.fromEntries(
        [...new Set(list.flatMap((entry) => [...entry.threadsMs.keys()]))]
          .sort()
          .map((thread) => [thread, median(list.map((entry) => entry.threadsMs.get(thread) ?? 0))]),
      ),
    };
  });
  if (values.json) console.log(JSON.stringify({ rounds, summary }));
  else
    for (const row of summary) {
      console.log(
        `${row.name.padEnd(10)} start to published: ${row.wallMs.toFixed(0)} ms wall, ${row.cpuMs.toFixed(0)} ms CPU [${row.cpuRangeMs.map((value) => value.toFixed(0)).join(', ')}]`,
      );
      const threads = Object.entries(row.threadsMs).map(([thread, ms]) => `${thread} ${ms.toFixed(0)}`);
      console.log(`${''.padEnd(10)} CPU by thread (ms): ${threads.join(', ')}`);
    }
}

if (isMainModule(import.meta.url)) await main();
