/**
 * The pure parts of check perf and check datascale: the verdict etcdctl's thresholds give for
 * figures chosen on and around each threshold, and the progress bar's frames. The frames on a
 * terminal are those etcdctl 3.4.23 drew for check datascale on a 100-column terminal (under
 * script(1), stty cols 100); test/ctl/check.test.ts compares whole runs without a terminal.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PutLimiter, perfVerdict, type LatencyStats } from '../../ctl/check-commands.js';
import { progressFrame } from '../../ctl/progress-bar.js';

describe("check perf's verdict follows etcdctl's thresholds", () => {
  const stats = (overrides: Partial<LatencyStats>): LatencyStats => ({
    requestsPerSecond: 150,
    slowestSeconds: 0.01,
    stddevSeconds: 0.001,
    errors: new Map(),
    ...overrides,
  });

  it('passes at just over 90% of the rate, a 0.5 s slowest request and a 0.1 s spread', () => {
    const verdict = perfVerdict(stats({ requestsPerSecond: 135.01, slowestSeconds: 0.5, stddevSeconds: 0.1 }), 150);
    assert.deepEqual(verdict, {
      lines: [
        'PASS: Throughput is 136 writes/s',
        'PASS: Slowest request took 0.500000s',
        'PASS: Stddev is 0.100000s',
        'PASS',
      ],
      ok: true,
    });
  });

  it('fails at exactly 90% of the rate, and past the slowest and spread limits', () => {
    const verdict = perfVerdict(
      stats({ requestsPerSecond: 135, slowestSeconds: 0.5000001, stddevSeconds: 0.1000001 }),
      150,
    );
    assert.deepEqual(verdict, {
      lines: [
        'FAIL: Throughput too low: 136 writes/s',
        'Slowest request took too long: 0.500000s',
        'Stddev too high: 0.100000s',
        'FAIL',
      ],
      ok: false,
    });
  });

  it('lists errors first, and with no successful put prints NaN as etcdctl does', () => {
    const verdict = perfVerdict(
      stats({
        requestsPerSecond: 0,
        slowestSeconds: 0,
        stddevSeconds: Number.NaN,
        errors: new Map([['etcdserver: request timed out', 3]]),
      }),
      150,
    );
    assert.deepEqual(verdict.lines, [
      'FAIL: too many errors',
      'FAIL: ERROR(etcdserver: request timed out) -> 3',
      'FAIL: Throughput too low: 1 writes/s',
      'PASS: Slowest request took 0.000000s',
      'PASS: Stddev is NaNs',
      'FAIL',
    ]);
  });
});

describe('the progress bar draws the frames etcdctl draws', () => {
  const frame = (current: number, finished: boolean, sinceStartMs: number, changedAtMs: number): string =>
    progressFrame({ current, total: 10_000, width: 100, sinceStartMs, changedAtMs, finished });

  it('draws the empty bar, a partial bar with the time left, and the full bar with the time taken', () => {
    assert.equal(
      frame(0, false, 0, 0),
      ' 0 / 10000 B                                                                               !   0.00%',
    );
    // 293 puts in 200 ms: 9707 more at that pace is 6.6 s, which pb shows as whole seconds.
    assert.equal(
      frame(293, false, 200, 200),
      ' 293 / 10000 Boom                                                                   !   2.93% 00m06s',
    );
    assert.equal(
      frame(10_000, true, 3_400, 3_300),
      ' 10000 / 10000 Boooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooo! 100.00% 3s',
    );
  });

  it('leaves the bar out without a terminal, and the time left once it is under a second', () => {
    const plain = (current: number, sinceStartMs: number, changedAtMs: number): string =>
      progressFrame({ current, total: 60, width: 0, sinceStartMs, changedAtMs, finished: false });
    assert.equal(plain(0, 0, 0), ' 0 / 60    0.00%');
    assert.equal(plain(1, 1_200, 1_000), ' 1 / 60    1.67% 00m58s');
    assert.equal(plain(59, 59_200, 59_000), ' 59 / 60   98.33%');
    // A slow first put: 9999 more at 450 ms each is over an hour, shown with its hours.
    assert.equal(
      progressFrame({ current: 1, total: 10_000, width: 0, sinceStartMs: 450, changedAtMs: 450, finished: false }),
      ' 1 / 10000    0.01% 1h14m59s',
    );
    assert.equal(
      progressFrame({ current: 60, total: 60, width: 0, sinceStartMs: 60_100, changedAtMs: 60_000, finished: true }),
      ' 60 / 60  100.00% 1m0s',
    );
  });
});

describe("check perf's rate limiter keeps etcdctl's schedule", () => {
  it('spaces puts by the interval without drifting, and does not catch up after being held up', () => {
    const limiter = new PutLimiter(10);
    assert.equal(limiter.reserve(0), 0);
    assert.equal(limiter.reserve(0), 10);
    // Woken 3 ms late: the next put is still due at 20 ms, not 23.
    assert.equal(limiter.reserve(13), 7);
    // Held up for a second: one put goes at once, the next an interval later, none in a burst.
    assert.equal(limiter.reserve(1_000), 0);
    assert.equal(limiter.reserve(1_000), 10);
  });
});
