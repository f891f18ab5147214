/** A short real run of the one-member comparison (bench/compare.ts), so the tool never rots, and the flags of `tsetcd-bench all`. No timing is asserted. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAllArgs } from '../../bench/all.js';
import { parseClusterArgs } from '../../bench/cluster.js';
import { formatCompareReport, parseCompareArgs, runCompare, workloadsDefault } from '../../bench/compare.js';
import { sutCommand } from '../support/sut.js';

const sut = sutCommand();
test(
  'a short compare run measures both members on a write and a round trip and sets the write against the floors',
  sut.command === undefined ? { skip: sut.skipReason } : {},
  async () => {
    const workloads = workloadsDefault.filter((w) => w.name === 'put-1' || w.name === 'range-s-1');
    const report = await runCompare(
      {
        durationMs: 300,
        warmupMs: 100,
        rounds: 1,
        workloads,
        keySpace: 100,
        valSize: 16,
        memberFlags: [],
        client: 'node',
      },
      sut.command!,
    );
    assert.deepEqual(
      report.comparisons.map((c) => c.workload),
      ['put-1', 'range-s-1'],
    );
    for (const c of report.comparisons) {
      for (const side of [c.etcd, c.sut]) {
        assert.ok(
          side.requests > 0 && side.errorCount === 0,
          `expected ${c.workload} requests without errors, saw ${side.requests} and ${side.errorCount} errors`,
        );
        assert.ok(
          side.serverCpuPerRequestUs > 0 && side.peakRssKb > 0,
          `expected server CPU and RSS for ${c.workload}`,
        );
      }
    }
    assert.ok(report.fsyncProbe.preallocated.p50Ms > 0);
    assert.deepEqual(Object.keys(report.overFsyncFloor), ['put-1']);
    assert.deepEqual(Object.keys(report.overRoundTripAndFsync), ['put-1']);
    assert.match(formatCompareReport(report), /put-1 p50 over one round trip \(range-s-1 p50\) plus the fsync p50/);
  },
);

test('tsetcd-bench all hands its flags to both comparisons and refuses a bad one before starting anything', () => {
  const { compareArgs, clusterArgs, json } = parseAllArgs([
    '--duration',
    '2',
    '--rounds',
    '5',
    '--clients',
    '64',
    '--cluster-ops',
    'put,range-l',
    '--client',
    'go',
    '--json',
  ]);
  assert.equal(json, true);
  const compare = parseCompareArgs(compareArgs).options;
  assert.deepEqual([compare.durationMs, compare.warmupMs, compare.rounds, compare.client], [2000, 3000, 5, 'go']);
  const cluster = parseClusterArgs(clusterArgs);
  assert.deepEqual(
    [cluster.durationMs, cluster.warmupMs, cluster.rounds, cluster.client, cluster.clients, cluster.ops],
    [2000, 3000, 5, 'go', [64], ['put', 'range-l']],
  );
  assert.throws(() => parseAllArgs(['--rounds', '0']), /--rounds must be 1\.\.20, saw 0/);
  assert.throws(() => parseAllArgs(['--clients', '0']), /--clients must list positive integers/);
  assert.throws(() => parseAllArgs(['--workloads', 'put-1']), /Unknown option '--workloads'/);
});
