/**
 * npm test's runner: every compiled test file under dist/test, in TAP. Each file runs in its own
 * node:test run() and so its own process; the runner chooses when each starts (suite-order.ts):
 * longest first, by the last known times in test/support/test-durations.json, and as many at once
 * as the machine's cores allow by the share of a core each file kept busy last time. Most files
 * spend their time waiting on members, elections and child processes, so several of those run
 * beside one that computes. The few listed in `aloneFiles` run afterwards one by one, because they
 * bind fixed ports (single-host mode's 2379/22379/32379) or drive a browser. The runs' events are
 * merged into one TAP stream with one closing summary (suite-report.ts); after it the runner
 * prints each file's wall time and cores, longest first, so a slow file is seen where it is added.
 *
 * A file not in the durations file starts first and counts as one whole core (a new file is most
 * likely the one whose time is not known yet). The times are updated by hand:
 * TSETCD_TEST_DURATIONS_WRITE=1 rewrites the file with this run's.
 *
 * TSETCD_TEST_CONCURRENCY sets how many files may run at once (1 runs the whole suite one by one),
 * TSETCD_TEST_CORES the cores their shares may add up to (the machine's by default); arguments, when
 * given, name the compiled test files to run instead of all of them.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, relative } from 'node:path';
import { run } from 'node:test';
import { tap } from 'node:test/reporters';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { packageRoot } from '../../src/lib/paths.js';
import { childPids, commandLine, treeCpuSeconds } from './process-cpu.js';
import { SuiteReport, type FailedTest, type ReportEvent } from './suite-report.js';
import {
  durationsText,
  nextToStart,
  parseDurations,
  suiteQueue,
  type FileTimes,
  type QueuedFile,
  type RunningFile,
  type SuiteLimits,
} from './suite-order.js';

const testRoot = fileURLToPath(new URL('..', import.meta.url));
/** The committed source file, not a copy in dist: TSETCD_TEST_DURATIONS_WRITE=1 rewrites it. */
const durationsPath = join(packageRoot(), 'test', 'support', 'test-durations.json');

/** Files that must not overlap with any other: they bind fixed ports or measure the machine. */
const aloneFiles = new Set(['e2e/single-host.test.js', 'e2e/inspect.test.js', 'e2e/dashboard-browser.test.js']);

/** Files at once unless TSETCD_TEST_CONCURRENCY says otherwise; the cores limit is what usually binds. */
const concurrencyDefault = 4;
/** How many slowest files the closing summary names. */
const slowestShown = 15;
/** How often the running files' CPU is read. */
const cpuSampleIntervalMs = 1_000;

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) => {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) return testFiles(path);
      return entry.name.endsWith('.test.js') ? [path] : [];
    })
    .sort();
}

function numberSetting(name: string, fallback: number, valid: (value: number) => boolean, wanted: string): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!valid(value)) throw new Error(`${name} must be ${wanted}, saw ${text}`);
  return value;
}

function limitsSetting(): SuiteLimits {
  return {
    filesMax: numberSetting(
      'TSETCD_TEST_CONCURRENCY',
      concurrencyDefault,
      (value) => Number.isInteger(value) && value >= 1,
      'a positive integer',
    ),
    coresMax: numberSetting('TSETCD_TEST_CORES', availableParallelism(), (value) => value > 0, 'a positive number'),
  };
}

/** One file's run as the runner follows it. */
class FileRun implements RunningFile {
  readonly file: string;
  readonly cores: number;
  readonly alone: boolean;
  readonly endsAtMs: number;
  private readonly startedMs = performance.now();
  private pid: number | undefined;
  private cpuSeconds = 0;

  constructor(queued: QueuedFile) {
    this.file = join(testRoot, queued.file);
    this.cores = queued.cores;
    this.alone = queued.alone;
    this.endsAtMs = this.startedMs + queued.seconds * 1000;
  }

  /** Reads the CPU used so far by the file's process and its children (found by its command line). */
  sampleCpu(): void {
    this.pid ??= childPids(process.pid).find((pid) => commandLine(pid)?.includes(this.file) === true);
    if (this.pid === undefined) return;
    this.cpuSeconds = Math.max(this.cpuSeconds, treeCpuSeconds(this.pid) ?? 0);
  }

  /** Wall seconds since the start and the cores kept busy over them, once the file has ended. */
  times(): FileTimes {
    const seconds = (performance.now() - this.startedMs) / 1000;
    return { seconds, cores: this.cpuSeconds / Math.max(seconds, 1) };
  }
}

/** Runs one file, feeding its events to `report`; resolves with its times when its run has ended. */
async function runFile(running: FileRun, report: SuiteReport): Promise<FileTimes> {
  report.fileStarted(running.file);
  const stream = run({ files: [running.file] });
  stream.on('data', (event: ReportEvent) => report.event(running.file, event));
  await finished(stream);
  report.fileEnded(running.file);
  return running.times();
}

/** Works through `queue`, starting each file when nextToStart allows; resolves with every file's times. */
async function runQueue(
  queue: QueuedFile[],
  limits: SuiteLimits,
  report: SuiteReport,
): Promise<Map<string, FileTimes>> {
  const times = new Map<string, FileTimes>();
  const running = new Set<FileRun>();
  const sampler = setInterval(() => running.forEach((file) => file.sampleCpu()), cpuSampleIntervalMs);
  let wake: () => void = () => undefined;
  try {
    while (queue.length > 0 || running.size > 0) {
      let index: number | undefined;
      while ((index = nextToStart(queue, [...running], performance.now(), limits)) !== undefined) {
        const [queued] = queue.splice(index, 1);
        const file = new FileRun(queued!);
        running.add(file);
        void runFile(file, report).then((fileTimes) => {
          times.set(relative(testRoot, file.file), fileTimes);
          running.delete(file);
          wake();
        });
      }
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    clearInterval(sampler);
  }
  return times;
}

function printSlowest(times: ReadonlyMap<string, FileTimes>, limits: SuiteLimits, files: number, alone: number): void {
  const slowest = [...times.entries()].sort((a, b) => b[1].seconds - a[1].seconds).slice(0, slowestShown);
  process.stdout.write(
    `# files: ${files}, up to ${limits.filesMax} at a time within ${limits.coresMax} cores, ${alone} alone\n`,
  );
  process.stdout.write(`# slowest files (wall seconds, cores busy):\n`);
  for (const [file, fileTimes] of slowest)
    process.stdout.write(`#   ${fileTimes.seconds.toFixed(1).padStart(6)} s  ${fileTimes.cores.toFixed(2)}  ${file}\n`);
}

/** Names every failed test last, with its error's first lines, so the end of a long log says what failed. */
function printFailures(failures: readonly FailedTest[]): void {
  if (failures.length === 0) return;
  process.stdout.write(`# failed (${failures.length}, outermost last):\n`);
  for (const failure of failures) {
    const indent = '  '.repeat(failure.nesting);
    process.stdout.write(`#   ${indent}${relative(testRoot, failure.file)}: ${failure.name}\n`);
    for (const line of failure.reason.split('\n')) process.stdout.write(`#   ${indent}    ${line}\n`);
  }
}

async function main(): Promise<void> {
  const limits = limitsSetting();
  const chosen = process.argv.length > 2 ? process.argv.slice(2) : testFiles(testRoot);
  const names = chosen.map((file) => relative(testRoot, file));
  const recorded = parseDurations(readFileSync(durationsPath, 'utf8'));
  const queue = suiteQueue(
    names.filter((file) => !aloneFiles.has(file)),
    names.filter((file) => aloneFiles.has(file)),
    recorded,
  );
  const alone = queue.filter((file) => file.alone).length;
  const report = new SuiteReport();
  // The merged events are the ones node:test's runs emitted, passed on as they are or renumbered.
  const out = Readable.from(tap(report.events as Parameters<typeof tap>[0]));
  out.pipe(process.stdout, { end: false });
  const started = performance.now();
  const times = await runQueue(queue, limits, report);
  const wallMs = performance.now() - started;
  report.close(wallMs);
  await finished(out);
  printSlowest(times, limits, chosen.length, alone);
  process.stdout.write(`# wall time: ${(wallMs / 1000).toFixed(1)} s\n`);
  printFailures(report.failedTests());
  if (process.env.TSETCD_TEST_DURATIONS_WRITE === '1') {
    const existing = testFiles(testRoot).map((file) => relative(testRoot, file));
    writeFileSync(durationsPath, durationsText(recorded, times, existing));
  }
  if (report.failed()) process.exitCode = 1;
}

await main();
