/**
 * A short chaos run in the suite: three tsetcd processes, concurrent clients and watchers, and the
 * seeded plan of kill -9, SIGSTOP and failpoints; every operation must linearize and every watch stream pass.
 * And the harness's self-test: the same run with clients that answer some gets from a stale
 * cache, as a broken store would, must be caught by the checker.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sutCommand, type MemberCommand } from '../support/sut.js';
import { runChaos, summary, type ChaosOptions, type ChaosReport } from './run.js';

/** The suite's run: long enough for a few faults of each kind, short enough for every npm test. */
const suiteSeed = 20;
const suiteSecs = 25;
const selfTestSecs = 8;

const sut = sutCommand();
const options = sut.command === undefined ? { skip: sut.skipReason } : { timeout: 180_000 };

/** Runs the harness with the suite's settings and `overrides`; `inspect` sees the report before the output dir goes. */
async function run(
  overrides: Partial<ChaosOptions>,
  lines: string[],
  inspect: (report: ChaosReport) => Promise<void>,
): Promise<void> {
  const outDir = await mkdtemp(join(tmpdir(), 'tsetcd-chaos-test-'));
  try {
    const report = await runChaos({
      seed: suiteSeed,
      secs: suiteSecs,
      mode: 'processes',
      clients: 4,
      keys: 4,
      command: sut.command as MemberCommand,
      outDir,
      print: (line) => lines.push(line),
      ...overrides,
    });
    await inspect(report);
  } finally {
    await rm(outDir, { recursive: true, force: true });
  }
}

test(
  `a ${suiteSecs} s chaos run on three processes with kill -9, SIGSTOP and failpoints linearizes and its watches are whole (seed ${suiteSeed})`,
  options,
  async (t) => {
    const lines: string[] = [];
    await run({}, lines, async (report) => {
      const closing = summary(suiteSeed, suiteSecs, 'processes', report);
      for (const line of [...lines, ...closing]) t.diagnostic(line);
      assert.deepEqual(report.violations, [], closing.join('\n'));
      assert.equal(report.verdict?.result, 'ok', closing.join('\n'));
      const faults = [...report.faults.values()].reduce((sum, n) => sum + n, 0);
      assert.ok(faults >= 2, `expected faults: ${closing.join('\n')}`);
      assert.ok(report.opsChecked > 100, `expected a real workload: ${closing.join('\n')}`);
    });
  },
);

test(
  'the harness catches a store that serves stale reads (clients answering some gets from a cache) and writes the history',
  options,
  async (t) => {
    const lines: string[] = [];
    await run({ secs: selfTestSecs, faultKinds: [], staleReads: true }, lines, async (report) => {
      const closing = summary(suiteSeed, selfTestSecs, 'processes', report);
      for (const line of closing) t.diagnostic(line);
      assert.equal(report.verdict?.result, 'illegal', closing.join('\n'));
      assert.match(report.violations.join('\n'), /not linearizable/);
      assert.ok(report.written !== undefined, 'a violation writes the history');
      const history = JSON.parse(await readFile(join(report.written, 'history.json'), 'utf8')) as unknown[];
      assert.equal(history.length, report.opsRecorded);
      assert.match(await readFile(join(report.written, 'explanation.txt'), 'utf8'), /not linearizable/);
    });
  },
);
