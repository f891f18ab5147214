/**
 * Runs the generated sweep (sweep-cases.ts) three ways and lists every line whose answers
 * differ. As a script it runs the whole sweep, or the command paths named as arguments:
 *
 *   node dist/test/ctl/sweep.js [command ...]
 *
 * and prints each difference with both answers; sweep.test.ts runs a subset as a test.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { isMainModule } from '../../bench/load.js';
import type { CommandResult } from '../support/etcdctl.js';
import { comparedAnswers, runCases, startSides, stopSides, type Sides } from './differential-harness.js';
import { readHelpTree } from './etcdctl-help.js';
import { sweepCases, type SweepCase } from './sweep-cases.js';

/** One line whose answer from a subject differs from etcdctl's against etcd. */
export interface SweepDifference {
  readonly testCase: SweepCase;
  readonly subject: 'etcd' | 'tsetcd';
  readonly answer: CommandResult;
  readonly expected: CommandResult;
}

/**
 * Lease and member IDs the sweep makes but does not capture (a grant printed as protobuf, a
 * learner it removes again) are random per member: any 16-digit hex or 15-to-20-digit decimal
 * number is one, as no revision, size or count in the sweep comes near that length. The case's
 * own masks go too.
 */
function masked(result: CommandResult, testCase: SweepCase): CommandResult {
  const mask = (text: string): string =>
    (testCase.masks ?? []).reduce(
      (out, pattern) => out.replace(pattern, '<masked>'),
      text.replace(/\b[0-9a-f]{16}\b/g, '<id>').replace(/\b\d{15,20}\b/g, '<id>'),
    );
  return { stdout: mask(result.stdout), stderr: mask(result.stderr), code: result.code };
}

/** Runs `cases` against three fresh members (each with a scratch directory as ${dir}); the differences. */
export async function runSweep(cases: readonly SweepCase[]): Promise<SweepDifference[]> {
  let sides: Sides | undefined;
  const dirs: string[] = [];
  try {
    sides = await startSides();
    for (const identity of sides.identities) {
      const dir = await mkdtemp(join(tmpdir(), 'tsetcd-ctl-sweep-'));
      dirs.push(dir);
      identity.values.set('dir', dir);
      identity.ids.push(dir);
    }
    const runs = runCases(cases, sides);
    await Promise.allSettled(runs.values());
    const differences: SweepDifference[] = [];
    for (const testCase of cases) {
      if (testCase.setup === true) continue;
      const results = await runs.get(testCase);
      if (results === undefined) continue;
      for (const index of [1, 2] as const) {
        if (index === 2 && testCase.tsetcdDiffers !== undefined) continue;
        const compared = await comparedAnswers(testCase, results, sides, index);
        const [answer, expected] = [masked(compared.answer, testCase), masked(compared.expected, testCase)];
        if (!isDeepStrictEqual(answer, expected))
          differences.push({ testCase, subject: index === 1 ? 'etcd' : 'tsetcd', answer, expected });
      }
    }
    return differences;
  } finally {
    await stopSides(sides);
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  }
}

/** A difference as text: the line, then etcdctl's answer and tsetcdctl's. */
export function describeDifference(difference: SweepDifference): string {
  const { testCase, subject, answer, expected } = difference;
  const env = Object.entries(testCase.env ?? {})
    .map(([key, value]) => `${key}=${value} `)
    .join('');
  const show = (result: CommandResult): string =>
    `  code ${String(result.code)}\n  stdout ${JSON.stringify(result.stdout)}\n  stderr ${JSON.stringify(result.stderr)}`;
  return [
    `${env}etcdctl ${testCase.args.join(' ')} [${testCase.command}: ${testCase.form}] against ${subject}`,
    ` etcdctl against etcd:\n${show(expected)}`,
    ` tsetcdctl against ${subject}:\n${show(answer)}`,
  ].join('\n');
}

/** Command paths the script runs against one set of members, printing what differs after each set. */
const commandsPerRun = 10;

async function main(commands: readonly string[]): Promise<number> {
  const all = sweepCases(await readHelpTree());
  const names = [...new Set(all.map((testCase) => testCase.command))].filter(
    (name) => name !== '' && (commands.length === 0 || commands.includes(name)),
  );
  let differenceCount = 0;
  let lineCount = 0;
  for (let start = 0; start < names.length; start += commandsPerRun) {
    const chosen = new Set(['', ...names.slice(start, start + commandsPerRun)]);
    const cases = all.filter((testCase) => chosen.has(testCase.command));
    const started = Date.now();
    const differences = await runSweep(cases);
    for (const difference of differences) console.log(`${describeDifference(difference)}\n`);
    const lines = cases.filter((testCase) => testCase.setup !== true).length;
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    console.log(`${[...chosen].join(', ')}: ${differences.length} differences in ${lines} lines, ${seconds} s\n`);
    differenceCount += differences.length;
    lineCount += lines;
  }
  console.log(`${differenceCount} differences in ${lineCount} lines`);
  return differenceCount === 0 ? 0 : 1;
}

// Exits rather than waiting: a command line that never ended may still hold a connection open.
if (isMainModule(import.meta.url)) process.exit(await main(process.argv.slice(2)));
