/**
 * The one-client floor report (bench/floor.ts): its arithmetic on given rounds, its flags, and a
 * short real run against the Go null server when the Go tool can be built. No timing is asserted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatFloorReport, parseFloorArgs, runFloor, summarizeFloor, type FloorRound } from '../../bench/floor.js';
import type { FsyncProbeResult } from '../../bench/fsync-probe.js';
import { goLoadAvailable } from '../../bench/go-client.js';

const probe: FsyncProbeResult = {
  dir: '/tmp',
  samples: 10,
  preallocated: { p50Ms: 0.2, p99Ms: 0.4 },
  append: { p50Ms: 0.3, p99Ms: 0.6 },
};

function round(round: number, p50Us: number): FloorRound {
  return { round, throughputPerSec: 1000, p50Us, p99Us: p50Us * 4, errorCount: 0, hostStealPercent: 0 };
}

test('the floor is the median over rounds of (round trip + fsync) over fsync', () => {
  const report = summarizeFloor([round(1, 300), round(2, 500), round(3, 400)], probe, 'some client');
  assert.equal(report.roundTripOverFsync, 2);
  assert.equal(report.durablePutFloorOverFsync, 3);
  const text = formatFloorReport(report);
  assert.match(text, /^\s+2\s+1000\s+0\.500\s+2\.000\s+0\s+0\.0\s+2\.50\s+3\.50$/m);
  assert.match(text, /adds only the fsync to this round trip \(median\): 3 \(the target asks 1\.2\)/);
});

test('the floor refuses no rounds and a probe without a positive p50', () => {
  assert.throws(() => summarizeFloor([], probe, 'c'), /expected at least one round/);
  assert.throws(
    () => summarizeFloor([round(1, 300)], { ...probe, preallocated: { p50Ms: 0, p99Ms: 0 } }, 'c'),
    /expected a positive fsync p50/,
  );
});

test('floor.js parses its flags and refuses bad ones', () => {
  assert.deepEqual(parseFloorArgs([]).options, { durationMs: 3000, warmupMs: 1000, rounds: 3, client: 'go' });
  assert.deepEqual(
    parseFloorArgs(['--duration', '0.5', '--warmup', '0', '--rounds', '2', '--client', 'node', '--json']),
    {
      options: { durationMs: 500, warmupMs: 0, rounds: 2, client: 'node' },
      json: true,
    },
  );
  assert.throws(() => parseFloorArgs(['--rounds', '0']), /--rounds must be 1\.\.20, saw 0/);
  assert.throws(() => parseFloorArgs(['--duration', 'x']), /--duration must be a positive number of seconds, saw x/);
  assert.throws(() => parseFloorArgs(['--warmup=-1']), /--warmup must be a number of seconds, 0 or more, saw -1/);
  assert.throws(() => parseFloorArgs(['--client', 'rust']), /--client must be go or node, saw rust/);
  assert.throws(() => parseFloorArgs(['--bogus']), /Unknown option '--bogus'/);
});

const goLoad = goLoadAvailable();
for (const client of ['go', 'node'] as const) {
  test(
    `a short floor run puts through the null server with the ${client} client`,
    goLoad.ok ? {} : { skip: goLoad.ok ? undefined : goLoad.reason },
    async () => {
      const report = await runFloor({ durationMs: 400, warmupMs: 100, rounds: 1, client });
      const [only] = report.rounds;
      assert.ok(
        only !== undefined && only.throughputPerSec > 0 && only.errorCount === 0,
        `expected puts without errors, saw ${JSON.stringify(report.rounds)}`,
      );
      assert.ok(only.p50Us > 0 && only.p99Us >= only.p50Us, `expected p99 >= p50 > 0, saw ${JSON.stringify(only)}`);
      const fsyncUs = report.fsyncProbe.preallocated.p50Ms * 1000;
      assert.equal(report.durablePutFloorOverFsync, Math.round(((only.p50Us + fsyncUs) / fsyncUs) * 100) / 100);
    },
  );
}
