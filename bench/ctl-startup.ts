/**
 * Wall time of one-shot client commands: etcdctl and tsetcdctl run `get` and `put` against one real
 * etcd on loopback, each command a fresh process, taking turns in an order rotated every round so a
 * busy stretch of the shared machine falls on every client alike. Every client runs with the
 * environment as given and again without NODE_EXTRA_CA_CERTS (with it, Node parses that CA bundle
 * at every start, an environment cost no client code can avoid); `node -e 0` runs too, as the
 * floor under any Node client.
 *
 *   flock /tmp/tsetcd-e2e.lock node dist/bench/ctl-startup.js [--rounds 11] [--build name=path/to/bin/tsetcdctl.cjs ...] [--via-node] [--json]
 *
 * --build adds a tsetcdctl to compare (several give before/after figures in one run); without it
 * the tsetcdctl of this tree runs. Each runs as npm's bin link and npx start it, the file itself
 * through its #! line; --via-node starts them as `node path/to/bin/tsetcdctl.cjs` instead.
 */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { isMainModule, rotated } from './load.js';
import { Member } from '../test/support/member.js';
import { etcdCommand, etcdctlBinaryPath } from '../test/support/sut.js';

/** One program whose start-up is measured: how to run it with a command's arguments. */
interface Client {
  readonly name: string;
  readonly command: string;
  readonly prefix: readonly string[];
}

/** One measured command line: a client, the command, and whether NODE_EXTRA_CA_CERTS is kept. */
interface Case {
  readonly label: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  /** The etcdctl case this one is set against, for a tsetcdctl. */
  readonly reference?: string;
}

interface CaseResult {
  readonly label: string;
  readonly medianMs: number;
  readonly minMs: number;
  readonly maxMs: number;
  readonly overEtcdctlMs: number | undefined;
}

const roundsDefault = 11;
/** A command that takes longer than this has hung; the bench stops rather than wait. */
const commandTimeoutMs = 30_000;
const ownBin = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'tsetcdctl.cjs');

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
}

/** Runs one command line to its end and returns its wall time; a failed command stops the bench. */
function timeOnce(item: Case): number {
  const started = process.hrtime.bigint();
  const result = spawnSync(item.command, item.args, { env: item.env, timeout: commandTimeoutMs, stdio: 'pipe' });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (result.status !== 0)
    throw new Error(`${item.label} exited with ${result.status ?? result.signal}: ${String(result.stderr)}`);
  return ms;
}

function cases(clients: readonly Client[], endpoint: string): Case[] {
  const withCa = { ...process.env };
  const withoutCa = { ...process.env };
  delete withoutCa.NODE_EXTRA_CA_CERTS;
  const environments: Array<{ suffix: string; env: NodeJS.ProcessEnv }> = [{ suffix: '', env: withoutCa }];
  if (process.env.NODE_EXTRA_CA_CERTS !== undefined) environments.push({ suffix: ' +CA', env: withCa });
  const list: Case[] = [];
  for (const { suffix, env } of environments) {
    list.push({ label: `node -e 0${suffix}`, command: process.execPath, args: ['-e', '0'], env });
    for (const client of clients) {
      for (const args of [
        ['get', 'startup-key'],
        ['put', 'startup-key', 'value'],
      ]) {
        const reference = `etcdctl ${args[0]}${suffix}`;
        list.push({
          label: `${client.name} ${args[0]}${suffix}`,
          command: client.command,
          args: [...client.prefix, `--endpoints=${endpoint}`, ...args],
          env,
          ...(client.name === 'etcdctl' ? {} : { reference }),
        });
      }
    }
  }
  return list;
}

function parseClients(builds: readonly string[], viaNode: boolean): Client[] {
  const clients: Client[] = [{ name: 'etcdctl', command: etcdctlBinaryPath, prefix: [] }];
  const given = builds.length > 0 ? builds : [`tsetcdctl=${ownBin}`];
  for (const build of given) {
    const equals = build.indexOf('=');
    if (equals <= 0) throw new Error(`expected --build name=path/to/bin/tsetcdctl.cjs, saw ${build}`);
    const path = build.slice(equals + 1);
    clients.push({
      name: build.slice(0, equals),
      ...(viaNode ? { command: process.execPath, prefix: [path] } : { command: path, prefix: [] }),
    });
  }
  return clients;
}

/** Times every case `rounds` times in rotated order; medians, spread and the gap to etcdctl's median. */
export function measure(list: readonly Case[], rounds: number): CaseResult[] {
  const times = new Map<string, number[]>(list.map((item) => [item.label, []]));
  for (const item of list) timeOnce(item); // one unmeasured run each: disk cache, etcd's first request
  for (let round = 0; round < rounds; round++) {
    for (const item of rotated(list, round)) times.get(item.label)?.push(timeOnce(item));
  }
  const medians = new Map([...times].map(([label, values]) => [label, median(values)]));
  return list.map((item) => {
    const values = times.get(item.label) ?? [];
    const reference = item.reference === undefined ? undefined : medians.get(item.reference);
    const medianMs = medians.get(item.label) ?? 0;
    return {
      label: item.label,
      medianMs,
      minMs: Math.min(...values),
      maxMs: Math.max(...values),
      overEtcdctlMs: reference === undefined ? undefined : medianMs - reference,
    };
  });
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      rounds: { type: 'string', default: String(roundsDefault) },
      build: { type: 'string', multiple: true, default: [] },
      'via-node': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`expected --rounds to be a positive integer`);
  const member = await Member.start({ command: etcdCommand() });
  try {
    const results = measure(cases(parseClients(values.build, values['via-node']), member.clientUrl), rounds);
    if (values.json) {
      console.log(JSON.stringify({ rounds, results }));
      return 0;
    }
    console.log(`${rounds} rounds, wall ms per command (median [min, max]; +etcdctl: median minus etcdctl's)`);
    for (const result of results) {
      const over = result.overEtcdctlMs === undefined ? '' : `  +etcdctl ${result.overEtcdctlMs.toFixed(0)}`;
      console.log(
        `${result.label.padEnd(28)} ${result.medianMs.toFixed(0).padStart(5)} [${result.minMs.toFixed(0)}, ${result.maxMs.toFixed(0)}]${over}`,
      );
    }
    return 0;
  } finally {
    await member.stop();
  }
}

if (isMainModule(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
