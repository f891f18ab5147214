/**
 * `npm run chaos -- --seed N --secs S [--mode processes|single-host] [--clients C] [--keys K]
 * [--faults kill9,pause,failpoint,partition] [--out DIR]`: a seeded chaos run against a three-member tsetcd cluster
 * (see run.ts). Prints the seed and the command that replays it, every fault with its time, and
 * a summary; exits 0 when nothing was violated, 1 on a violation (history written to --out),
 * 3 when the check was inconclusive (its budget ran out), 2 on a usage or harness error.
 */
import { parseArgs } from 'node:util';
import { sutCommand } from '../support/sut.js';
import { faultInjectors } from './faults.js';
import { runChaos, summary } from './run.js';
import type { ChaosMode } from './target.js';

const usage =
  'usage: npm run chaos -- --seed N --secs S [--mode processes|single-host] [--clients C] [--keys K] [--faults kill9,pause,failpoint,partition] [--out DIR]';
/** Bounds on the options, so a typo does not start a day-long run or a thousand clients. */
const secsMax = 24 * 60 * 60;
const clientsMax = 64;
const keysMax = 64;

function fail(message: string): never {
  process.stderr.write(`${message}\n${usage}\n`);
  process.exit(2);
}

function integer(name: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max)
    fail(`invalid value "${text}" for --${name}: expected an integer in ${min}..${max}`);
  return value;
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        seed: { type: 'string' },
        secs: { type: 'string' },
        mode: { type: 'string' },
        clients: { type: 'string' },
        keys: { type: 'string' },
        faults: { type: 'string' },
        out: { type: 'string' },
        'stale-reads': { type: 'boolean' },
        help: { type: 'boolean' },
      },
    }).values;
  } catch (error) {
    fail((error as Error).message);
  }
  if (parsed.help === true) {
    process.stdout.write(`${usage}\n`);
    return;
  }
  const seed = integer('seed', parsed.seed, Date.now() % 1_000_000, 0, 2 ** 31 - 1);
  const secs = integer('secs', parsed.secs, 30, 5, secsMax);
  const clients = integer('clients', parsed.clients, 4, 1, clientsMax);
  const keys = integer('keys', parsed.keys, 4, 2, keysMax);
  const mode = (parsed.mode ?? 'processes') as ChaosMode;
  if (mode !== 'processes' && mode !== 'single-host') fail(`invalid value "${mode}" for --mode`);
  const faultKinds = parsed.faults?.split(',').filter((k) => k !== '');
  for (const kind of faultKinds ?? [])
    if (!faultInjectors.some((i) => i.kind === kind))
      fail(`unknown fault kind "${kind}"; known: ${faultInjectors.map((i) => i.kind).join(', ')}`);
  const outDir = parsed.out ?? 'chaos-out';
  const sut = sutCommand();
  if (sut.command === undefined) fail(sut.skipReason);
  const replay = [
    `npm run chaos -- --seed ${seed} --secs ${secs} --mode ${mode} --clients ${clients} --keys ${keys}`,
    faultKinds === undefined ? '' : ` --faults ${faultKinds.join(',')}`,
    parsed['stale-reads'] === true ? ' --stale-reads' : '',
  ].join('');
  const print = (line: string) => process.stdout.write(`${line}\n`);
  print(`chaos: seed ${seed}; replay with: ${replay}`);
  print(
    'the same seed gives the same fault plan and the same operations per client; timings, and so who leads and what compares see, differ',
  );
  const report = await runChaos({
    seed,
    secs,
    mode,
    clients,
    keys,
    command: sut.command,
    faultKinds,
    outDir,
    staleReads: parsed['stale-reads'],
    print,
  });
  for (const line of summary(seed, secs, mode, report)) print(line);
  if (report.violations.length > 0) process.exitCode = 1;
  else if (report.verdict?.result !== 'ok') process.exitCode = 3;
}

main().catch((error: unknown) => {
  process.stderr.write(`chaos: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(2);
});
