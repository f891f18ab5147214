/**
 * Maintenance.Hash benchmark: loads N keys into a fresh member of each system (real etcd, tsetcd
 * and any other tsetcd builds, same flags), then runs the rounds alternating between them (the
 * order rotating each round). A round puts with C clients for a baseline window, then calls
 * Maintenance.Hash H times in a row while the same clients keep putting: each hash's wall time,
 * and the put latency during the hashes against the latency just before (a hash walked on the
 * member's event loop holds the puts back for as long as it takes).
 *
 *   node dist/bench/hash.js --keys 100000 [--val-size 256] [--clients 8] [--rounds 3] [--hashes 3]
 *     [--baseline-seconds 2] [--only etcd|tsetcd] [--sut NAME=PATH]... [--json]
 *
 * Each --sut adds another tsetcd build (its bin/tsetcd.js) as the system tsetcd:NAME.
 */
import { parseArgs } from 'node:util';
import { Member } from '../test/support/member.js';
import { EtcdGrpc } from '../test/support/etcd-grpc.js';
import { etcdCommand, sutCommand, type MemberCommand } from '../test/support/sut.js';
import { isMainModule, rotated } from './load.js';
import { kvClient, load, type KvClient } from './restart.js';
import { putsUntil, summary, type LatencyMs } from './snapshot.js';

interface HashBenchOptions {
  keys: number;
  valSize: number;
  clients: number;
  rounds: number;
  hashes: number;
  baselineSeconds: number;
  json: boolean;
  only?: string;
  suts: Map<string, string>;
}

interface HashRound {
  /** Each hash's wall time, in the order called. */
  hashMs: number[];
  putsBefore: LatencyMs;
  putsDuring: LatencyMs;
}

interface Target {
  system: string;
  member: Member;
  clients: KvClient[];
  grpc: EtcdGrpc;
  hashes: Set<string>;
  rounds: HashRound[];
}

/** A hash over a large store may take seconds; the call's deadline leaves room for that on a busy machine. */
const hashDeadlineMs = 120_000;
const keysMax = 2_000_000;

function parseHashArgs(argv: readonly string[]): HashBenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      keys: { type: 'string', default: '100000' },
      'val-size': { type: 'string', default: '256' },
      clients: { type: 'string', default: '8' },
      rounds: { type: 'string', default: '3' },
      hashes: { type: 'string', default: '3' },
      'baseline-seconds': { type: 'string', default: '2' },
      only: { type: 'string' },
      sut: { type: 'string', multiple: true, default: [] },
      json: { type: 'boolean', default: false },
    },
  });
  const options: HashBenchOptions = {
    keys: Number(values.keys),
    valSize: Number(values['val-size']),
    clients: Number(values.clients),
    rounds: Number(values.rounds),
    hashes: Number(values.hashes),
    baselineSeconds: Number(values['baseline-seconds']),
    json: values.json,
    only: values.only,
    suts: new Map(),
  };
  for (const sut of values.sut) {
    const at = sut.indexOf('=');
    if (at <= 0) throw new Error(`--sut wants NAME=PATH, saw ${sut}`);
    options.suts.set(sut.slice(0, at), sut.slice(at + 1));
  }
  if (!Number.isInteger(options.keys) || options.keys < 1 || options.keys > keysMax)
    throw new Error(`--keys takes 1..${keysMax}, saw ${options.keys}`);
  for (const [name, count] of [
    ['--clients', options.clients],
    ['--rounds', options.rounds],
    ['--hashes', options.hashes],
  ] as const)
    if (!Number.isInteger(count) || count < 1 || count > 100) throw new Error(`${name} takes 1..100, saw ${count}`);
  return options;
}

async function startTarget(system: string, command: MemberCommand, options: HashBenchOptions): Promise<Target> {
  const member = await Member.start({ command, healthWaitMs: 60_000 });
  const clients = Array.from({ length: options.clients }, () => kvClient(member.clientUrl));
  await load(clients[0]!, { keys: options.keys, valSize: options.valSize, batch: 100, concurrency: 8 });
  const grpc = new EtcdGrpc(member.clientUrl, hashDeadlineMs);
  return { system, member, clients, grpc, hashes: new Set(), rounds: [] };
}

async function stopTarget(target: Target): Promise<void> {
  for (const client of target.clients) client.close();
  target.grpc.close();
  await target.member.destroy();
}

/** One round on `target`: puts for the baseline window, then the hashes in a row while the puts go on. */
async function hashRound(target: Target, options: HashBenchOptions): Promise<HashRound> {
  const { clients, grpc } = target;
  const baselineEnd = performance.now() + options.baselineSeconds * 1000;
  const before = await putsUntil(clients, () => performance.now() >= baselineEnd);
  let hashing = true;
  const during = putsUntil(clients, () => !hashing);
  const hashMs: number[] = [];
  try {
    for (let index = 0; index < options.hashes; index++) {
      const started = performance.now();
      const answer = await grpc.unary('etcdserverpb.Maintenance/Hash', {});
      hashMs.push(Math.round((performance.now() - started) * 10) / 10);
      if (answer.code !== 0) throw new Error(`${target.system}: Hash failed: ${answer.message}`);
      target.hashes.add(String(answer.response.hash));
    }
  } finally {
    hashing = false;
  }
  return { hashMs, putsBefore: summary(before), putsDuring: summary(await during) };
}

/** Starts and loads every system first, then runs the rounds in turns, the order rotating each round. */
async function measure(systems: Array<[string, MemberCommand]>, options: HashBenchOptions): Promise<Target[]> {
  const targets: Target[] = [];
  try {
    for (const [system, command] of systems) targets.push(await startTarget(system, command, options));
    for (let round = 0; round < options.rounds; round++) {
      for (const target of rotated(targets, round)) target.rounds.push(await hashRound(target, options));
    }
    return targets;
  } finally {
    for (const target of targets) await stopTarget(target);
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

interface HashSummary {
  system: string;
  hashMedianMs: number;
  putP99BeforeMs: number;
  putP99DuringMs: number;
  putMaxDuringMs: number;
  /** How many different hashes the member gave (the puts go on, so each hash sees a later store). */
  distinctHashes: number;
}

function summarise(target: Target): HashSummary {
  return {
    system: target.system,
    hashMedianMs: median(target.rounds.flatMap((round) => round.hashMs)),
    putP99BeforeMs: median(target.rounds.map((round) => round.putsBefore.p99)),
    putP99DuringMs: median(target.rounds.map((round) => round.putsDuring.p99)),
    putMaxDuringMs: Math.max(...target.rounds.map((round) => round.putsDuring.max)),
    distinctHashes: target.hashes.size,
  };
}

function line(result: HashSummary, etcd: HashSummary | undefined): string {
  const ratio = etcd === undefined ? '' : ` (${(result.hashMedianMs / etcd.hashMedianMs).toFixed(2)}x etcd)`;
  return (
    `${result.system.padEnd(14)} hash median=${result.hashMedianMs}ms${ratio} put p99 before=${result.putP99BeforeMs}ms ` +
    `during=${result.putP99DuringMs}ms max-during=${result.putMaxDuringMs}ms distinct-hashes=${result.distinctHashes}\n`
  );
}

export async function main(argv: readonly string[]): Promise<number> {
  const options = parseHashArgs(argv);
  const sut = sutCommand();
  const systems: Array<[string, MemberCommand | undefined]> = [
    ['etcd', etcdCommand()],
    ['tsetcd', sut.command],
  ];
  for (const [name, path] of options.suts)
    systems.push([`tsetcd:${name}`, { label: 'tsetcd', command: process.execPath, args: [path] }]);
  const chosen: Array<[string, MemberCommand]> = [];
  for (const [system, command] of systems) {
    if (options.only !== undefined && options.only !== system) continue;
    if (command === undefined) throw new Error(`${system} is not available: ${sut.skipReason ?? ''}`);
    chosen.push([system, command]);
  }
  const targets = await measure(chosen, options);
  if (options.json) {
    process.stdout.write(
      `${JSON.stringify(
        targets.map((target) => ({ ...summarise(target), rounds: target.rounds })),
        null,
        2,
      )}\n`,
    );
    return 0;
  }
  const summaries = targets.map(summarise);
  const etcd = summaries.find((result) => result.system === 'etcd');
  process.stdout.write(`keys=${options.keys} val-size=${options.valSize} clients=${options.clients}\n`);
  for (const result of summaries) process.stdout.write(line(result, result === etcd ? undefined : etcd));
  return 0;
}

if (isMainModule(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
