/**
 * The --rate schedule and the progress bar's text, on made-up clocks: no load is run here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadOptions, RatePacer } from '../../bench/load.js';
import { formatProgress, type ProgressSnapshot } from '../../bench/progress.js';

test('paced slots are due on an even schedule while the clients keep up', () => {
  const pacer = new RatePacer(10, 1_000);
  const due = [1_000, 1_000, 1_050, 1_150, 1_250].map((nowMs) => pacer.reserve(nowMs));
  assert.deepEqual(due, [1_000, 1_100, 1_200, 1_300, 1_400]);
});

test('a stall restarts the schedule instead of making up the missed slots in a burst', () => {
  const pacer = new RatePacer(10, 0);
  assert.equal(pacer.reserve(0), 0);
  assert.equal(pacer.reserve(0), 100);
  // Nobody asked for a slot for five seconds: the next ones start from now, 100 ms apart.
  assert.deepEqual(
    [5_000, 5_000, 5_000].map((nowMs) => pacer.reserve(nowMs)),
    [5_000, 5_100, 5_200],
  );
});

test('no second of paced slots holds more than the rate, however the clients ask', () => {
  const ratePerSec = 50;
  const pacer = new RatePacer(ratePerSec, 0);
  const due: number[] = [];
  let nowMs = 0;
  // Clients that ask in bursts, then stall, then ask again: a fixed, varied arrival pattern.
  for (let i = 0; i < 2_000; i += 1) {
    nowMs += i % 97 === 0 ? 1_300 : (i * 37) % 11;
    due.push(pacer.reserve(nowMs));
  }
  for (let i = 1; i < due.length; i += 1) {
    const gapMs = (due[i] as number) - (due[i - 1] as number);
    assert.ok(
      gapMs >= 1000 / ratePerSec - 1e-9,
      `expected slots at least ${1000 / ratePerSec} ms apart, saw ${gapMs} at slot ${i}`,
    );
  }
  for (const startMs of due) {
    const inSecond = due.filter((ms) => ms >= startMs && ms < startMs + 1_000).length;
    assert.ok(
      inSecond <= ratePerSec,
      `expected at most ${ratePerSec} slots in the second from ${startMs} ms, saw ${inSecond}`,
    );
  }
});

test('--rate must be a non-negative integer', () => {
  assert.equal(loadOptions({ endpoints: ['e'] }).ratePerSec, 0);
  assert.equal(loadOptions({ endpoints: ['e'], ratePerSec: 50 }).ratePerSec, 50);
  for (const ratePerSec of [-1, 0.5, Number.NaN]) {
    assert.throws(() => loadOptions({ endpoints: ['e'], ratePerSec }), /--rate must be an integer/);
  }
});

const snapshot = (fields: Partial<ProgressSnapshot>): ProgressSnapshot => ({
  elapsedMs: 0,
  warmupMs: 1_000,
  durationMs: 10_000,
  requests: 0,
  errorCount: 0,
  answered: 0,
  ...fields,
});

test('the progress line shows time, requests, the current rate and errors', () => {
  const previous = snapshot({ elapsedMs: 3_800, requests: 1_000, answered: 1_500 });
  const now = snapshot({ elapsedMs: 4_000, requests: 1_200, errorCount: 3, answered: 1_703 });
  assert.equal(formatProgress(now, previous), '[######..............] 3.0/10.0 s  1200 requests  1015 req/s  errors 3');
});

test('the progress line says when it is warming up and counts requests against --total', () => {
  const warmup = formatProgress(
    snapshot({ elapsedMs: 500, answered: 100 }),
    snapshot({ elapsedMs: 300, answered: 60 }),
  );
  assert.equal(warmup, 'warm-up [##########..........] 0.5/1.0 s  200 req/s  errors 0');
  const counted = formatProgress(
    snapshot({ elapsedMs: 2_000, total: 400, requests: 100, answered: 150 }),
    snapshot({ elapsedMs: 2_000 }),
  );
  assert.equal(counted, '[#####...............] 100/400 requests  0 req/s  errors 0');
});
