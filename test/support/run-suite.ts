/**
 * npm test's runner: every compiled test file under dist/test, in TAP. Most files run two at a
 * time, since they spend their time waiting on members, elections and child processes rather than
 * computing; the few listed in `aloneFiles` run afterwards one by one, because they bind fixed
 * ports (single-host mode's 2379/22379/32379) or drive a browser. At the end it prints each file's
 * wall time, longest first, so a slow file is seen where it is added.
 *
 * Files start longest first, by their last known times in test/support/test-durations.json, so the
 * slowest ones do not start late and leave one file running alone at the end; a file not listed
 * there is taken as the longest (a new file is most likely the one whose time is not known yet).
 * The times are updated by hand: TSETCD_TEST_DURATIONS_WRITE=1 rewrites the file with this run's.
 *
 * TSETCD_TEST_CONCURRENCY sets how many files run at once (1 runs the whole suite one by one);
 * arguments, when given, name the compiled test files to run instead of all of them.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { run } from 'node:test';
import { tap } from 'node:test/reporters';
import { finished } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { packageRoot } from '../../src/lib/paths.js';
import { durationsText, longestFirst } from './suite-order.js';

const testRoot = fileURLToPath(new URL('..', import.meta.url));
/** The committed source file, not a copy in dist: TSETCD_TEST_DURATIONS_WRITE=1 rewrites it. */
const durationsPath = join(packageRoot(), 'test', 'support', 'test-durations.json');

/** Files that must not overlap with any other: they bind fixed ports or measure the machine. */
const aloneFiles = new Set(['e2e/single-host.test.js', 'e2e/inspect.test.js', 'e2e/dashboard-browser.test.js']);

const concurrencyDefault = 2;
/** How many slowest files the closing summary names. */
const slowestShown = 15;

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) => {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) return testFiles(path);
      return entry.name.endsWith('.test.js') ? [path] : [];
    })
    .sort();
}

function concurrencySetting(): number {
  const text = process.env.TSETCD_TEST_CONCURRENCY;
  if (text === undefined || text === '') return concurrencyDefault;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1)
    throw new Error(`TSETCD_TEST_CONCURRENCY must be a positive integer, saw ${text}`);
  return value;
}

/** Last known seconds per file, keyed by the path under dist/test. */
function recordedDurations(): Map<string, number> {
  const recorded = JSON.parse(readFileSync(durationsPath, 'utf8')) as Record<string, number>;
  return new Map(Object.entries(recorded));
}

interface FileEvent {
  readonly nesting: number;
  readonly file?: string;
  readonly details?: { readonly duration_ms?: number };
}

/** Runs `files`, `concurrency` at a time, writing TAP; adds each top-level test's time to its file. */
async function runFiles(files: readonly string[], concurrency: number, times: Map<string, number>): Promise<boolean> {
  if (files.length === 0) return true;
  let failed = false;
  const stream = run({ files: [...files], concurrency });
  const count = (data: FileEvent): void => {
    if (data.nesting !== 0 || data.file === undefined) return;
    times.set(data.file, (times.get(data.file) ?? 0) + (data.details?.duration_ms ?? 0));
  };
  stream.on('test:pass', count);
  stream.on('test:fail', (data: FileEvent) => {
    failed = true;
    count(data);
  });
  const out = stream.compose(tap);
  out.pipe(process.stdout, { end: false });
  await finished(out);
  return !failed;
}

async function main(): Promise<void> {
  const concurrency = concurrencySetting();
  const chosen = process.argv.length > 2 ? process.argv.slice(2) : testFiles(testRoot);
  const alone = chosen.filter((file) => aloneFiles.has(relative(testRoot, file)));
  const recorded = recordedDurations();
  const together = longestFirst(
    chosen.filter((file) => !alone.includes(file)).map((file) => relative(testRoot, file)),
    recorded,
  ).map((file) => join(testRoot, file));
  const times = new Map<string, number>();
  const started = performance.now();
  const passedTogether = await runFiles(together, concurrency, times);
  const passedAlone = await runFiles(alone, 1, times);
  const slowest = [...times.entries()].sort((a, b) => b[1] - a[1]).slice(0, slowestShown);
  process.stdout.write(`# files: ${chosen.length}, ${concurrency} at a time, ${alone.length} alone\n`);
  process.stdout.write(`# wall time: ${((performance.now() - started) / 1000).toFixed(1)} s; slowest files:\n`);
  for (const [file, ms] of slowest)
    process.stdout.write(`#   ${(ms / 1000).toFixed(1).padStart(6)} s  ${relative(testRoot, file)}\n`);
  if (process.env.TSETCD_TEST_DURATIONS_WRITE === '1') {
    const measured = new Map([...times].map(([file, ms]) => [relative(testRoot, file), ms]));
    const existing = testFiles(testRoot).map((file) => relative(testRoot, file));
    writeFileSync(durationsPath, durationsText(recorded, measured, existing));
  }
  if (!passedTogether || !passedAlone) process.exitCode = 1;
}

await main();
