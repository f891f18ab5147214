/**
 * run-suite's merged report: the runner is run on test files written for the purpose, beside each
 * other, and its TAP is checked against node's own runner on each file alone.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { SuiteReport, type ReportEvent } from './suite-report.js';

const runSuitePath = fileURLToPath(new URL('run-suite.js', import.meta.url));
/** Generous: the runner starts three node processes that each run for about a second. */
const runnerTimeoutMs = 60_000;

/**
 * The environment for a runner started from this test: without node:test's marker that this
 * process is a test file, which makes a nested run() skip its files, and without the suite's own
 * settings (a nested runner must not rewrite the durations file), then with `extra`.
 */
function runnerEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of [
    'NODE_TEST_CONTEXT',
    'TSETCD_TEST_DURATIONS_WRITE',
    'TSETCD_TEST_CONCURRENCY',
    'TSETCD_TEST_CORES',
  ])
    delete env[name];
  return { ...env, ...extra };
}

/**
 * A test file whose tests are all named after `tag`. With SUITE_REPORT_MEET set to a directory, it
 * first leaves a file there and waits (10 s at most) for the other two files' to appear, so all
 * three are known to be running at once.
 */
function fixture(tag: string, failing: boolean): string {
  return `import { describe, test } from 'node:test';
import { existsSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
const meet = process.env.SUITE_REPORT_MEET;
if (meet) {
  writeFileSync(meet + '/${tag}', '');
  for (let waited = 0; ['alpha', 'bravo', 'charlie'].some((other) => !existsSync(meet + '/' + other)); waited += 50) {
    if (waited > 10000) throw new Error('${tag} ran without the other two files beside it');
    await sleep(50);
  }
}
describe('${tag} outer', () => {
  for (const n of [1, 2, 3]) test('${tag} inner ' + n, async () => { await sleep(150); });
  describe('${tag} nested', () => { test('${tag} deep', async () => { await sleep(100); }); });
});
test('${tag} alone', async (t) => {
  console.log('${tag} says hello');
  await sleep(200);
  ${failing ? `throw new Error('${tag} fails on purpose');` : `t.diagnostic('${tag} note');`}
});
test('${tag} skipped', { skip: true }, () => {});
test('${tag} todo', { todo: true }, () => {});
`;
}

/** The summary counts (`# tests 7` ...) and the top-level results of a TAP text. */
function parseTap(text: string): { counts: Map<string, number>; topLevel: string[]; plans: string[] } {
  const lines = text.split('\n');
  const counts = new Map<string, number>();
  for (const line of lines) {
    const match = /^# (tests|suites|pass|fail|cancelled|skipped|todo) (\d+)$/.exec(line);
    if (match !== null) counts.set(match[1]!, (counts.get(match[1]!) ?? 0) + Number(match[2]));
  }
  return {
    counts,
    topLevel: lines.filter((line) => /^(not )?ok \d+ - /.test(line)),
    plans: lines.filter((line) => /^1\.\.\d+$/.test(line)),
  };
}

describe("run-suite's merged report", () => {
  let dir = '';
  let files: string[] = [];
  let meet = '';
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tsetcd-suite-report-'));
    meet = join(dir, 'meet');
    await mkdir(meet);
    files = ['alpha', 'bravo', 'charlie'].map((tag) => join(dir, `${tag}.test.mjs`));
    await Promise.all(
      files.map((file, index) => writeFile(file, fixture(['alpha', 'bravo', 'charlie'][index]!, index === 1))),
    );
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("is one TAP stream whose counts are the sum of node's runner on each file alone", () => {
    const suite = spawnSync(process.execPath, [runSuitePath, ...files], {
      encoding: 'utf8',
      timeout: runnerTimeoutMs,
      env: runnerEnv({}),
    });
    assert.equal(suite.status, 1, `the runner fails when a file fails:\n${suite.stderr}`);
    const merged = parseTap(suite.stdout);
    const alone = files.map((file) => {
      const result = spawnSync(process.execPath, ['--test', '--test-reporter=tap', file], {
        encoding: 'utf8',
        timeout: runnerTimeoutMs,
        env: runnerEnv({}),
      });
      return parseTap(result.stdout);
    });
    for (const name of ['tests', 'suites', 'pass', 'fail', 'skipped', 'todo'])
      assert.equal(
        merged.counts.get(name),
        alone.reduce((sum, one) => sum + one.counts.get(name)!, 0),
        `# ${name} in:\n${suite.stdout}`,
      );
    assert.equal(merged.counts.get('fail'), 1);
    assert.equal(suite.stdout.match(/^TAP version 13$/gm)?.length, 1);
    assert.deepEqual(merged.plans, [`1..${merged.topLevel.length}`]);
    assert.equal(
      merged.topLevel.length,
      alone.reduce((sum, one) => sum + one.topLevel.length, 0),
    );
    merged.topLevel.forEach((line, index) => assert.match(line, new RegExp(`^(not )?ok ${index + 1} - `)));
    assert.match(suite.stdout, /^not ok \d+ - bravo alone$/m);
    assert.match(suite.stdout, /^# alpha says hello$/m);
    // The log's end names the failed test and its error, however long the log before it.
    const closing = suite.stdout.slice(suite.stdout.indexOf('# failed ('));
    assert.match(
      closing,
      /^# failed \(1, outermost last\):\n# {3}\S*bravo\.test\.mjs: bravo alone\n# {7}bravo fails on purpose\n$/,
    );
  });

  test("keeps each file's results together although the files run at the same time", () => {
    const suite = spawnSync(process.execPath, [runSuitePath, ...files], {
      encoding: 'utf8',
      timeout: runnerTimeoutMs,
      env: runnerEnv({ TSETCD_TEST_CORES: '8', TSETCD_TEST_CONCURRENCY: '3', SUITE_REPORT_MEET: meet }),
    });
    assert.doesNotMatch(suite.stdout, /without the other two files/);
    // Every named line between one file's first and last line is that file's.
    const named = suite.stdout
      .slice(0, suite.stdout.indexOf('# failed ('))
      .split('\n')
      .filter((line) => /(alpha|bravo|charlie) /.test(line));
    const tags = named.map((line) => /(alpha|bravo|charlie) /.exec(line)![1]);
    const runs = tags.filter((tag, index) => index === 0 || tags[index - 1] !== tag);
    assert.deepEqual([...runs].sort(), ['alpha', 'bravo', 'charlie'], suite.stdout);
  });

  test('holds back a file that reports while another holds the output, and writes it when that one ends', async () => {
    const report = new SuiteReport();
    const event = (name: string, nesting = 0): ReportEvent => ({ type: 'test:pass', data: { name, nesting } });
    report.fileStarted('a');
    report.fileStarted('b');
    report.event('a', event('a1'));
    report.event('b', event('b1'));
    report.event('a', { type: 'test:plan', data: { nesting: 0, count: 1 } });
    report.event('a', { type: 'test:diagnostic', data: { nesting: 0, message: 'tests 1' } });
    report.event('b', { type: 'test:diagnostic', data: { nesting: 0, message: 'tests 1' } });
    report.fileEnded('b');
    report.event('a', event('a2', 1));
    report.fileEnded('a');
    report.close(12);
    const seen: ReportEvent[] = [];
    for await (const one of report.events) seen.push(one);
    assert.deepEqual(
      seen.map(
        (one) => `${one.type} ${String(one.data.name ?? one.data.message ?? one.data.count)} ${one.data.testNumber}`,
      ),
      [
        'test:pass a1 1',
        'test:pass a2 undefined',
        'test:pass b1 2',
        'test:plan 2 undefined',
        'test:diagnostic tests 2 undefined',
        ...['suites', 'pass', 'fail', 'cancelled', 'skipped', 'todo'].map(
          (name) => `test:diagnostic ${name} 0 undefined`,
        ),
        'test:diagnostic duration_ms 12.000000 undefined',
      ],
    );
    assert.equal(report.failed(), false);
  });
});
