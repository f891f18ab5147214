/** Host steal time beside the bench figures, and the --rate flag of the two comparison commands. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHostCpuTicks, readHostCpuTicks, stealPercent } from '../../bench/proc-stats.js';
import { parseCompareArgs } from '../../bench/compare.js';
import { parseClusterArgs } from '../../bench/cluster.js';

const procStat = (steal: number, idle: number) =>
  [
    `cpu  1000 20 300 ${idle} 40 0 10 ${steal} 0 0`,
    `cpu0 500 10 150 ${idle / 2} 20 0 5 ${steal / 2} 0 0`,
    'intr 12345',
    '',
  ].join('\n');

test('the aggregate cpu line gives total and stolen ticks', () => {
  assert.deepEqual(parseHostCpuTicks(procStat(60, 8000)), { total: 1000 + 20 + 300 + 8000 + 40 + 10 + 60, steal: 60 });
  assert.throws(() => parseHostCpuTicks('cpu0 1 2 3\n'), /no aggregate "cpu" line/);
  assert.throws(() => parseHostCpuTicks('cpu  1 2 x 4 5 6 7 8\n'), /unreadable \/proc\/stat cpu line/);
});

test('steal percent is stolen ticks over all ticks between two readings', () => {
  const before = parseHostCpuTicks(procStat(60, 8000));
  // 900 more ticks, 100 of them stolen.
  const after = parseHostCpuTicks(procStat(160, 8800));
  assert.equal(stealPercent(before, after), 11.1);
  assert.equal(stealPercent(before, before), 0);
});

test('this machine has the readings, and they only grow', () => {
  const first = readHostCpuTicks();
  const second = readHostCpuTicks();
  assert.ok(first.total > 0 && second.total >= first.total && second.steal >= first.steal);
  const percent = stealPercent(first, second);
  assert.ok(percent >= 0 && percent <= 100, `steal ${percent}%`);
});

test('compare and cluster take --rate, 0 by default, and refuse a bad one', () => {
  assert.equal(parseCompareArgs([]).options.ratePerSec, 0);
  assert.equal(parseCompareArgs(['--rate', '250']).options.ratePerSec, 250);
  assert.throws(() => parseCompareArgs(['--rate=-1']), /--rate must be an integer/);
  assert.throws(() => parseCompareArgs(['--rate', '2.5']), /--rate must be an integer/);
  assert.equal(parseClusterArgs([]).ratePerSec, 0);
  assert.equal(parseClusterArgs(['--rate', '300', '--clients', '1']).ratePerSec, 300);
  assert.throws(() => parseClusterArgs(['--rate', 'fast']), /--rate must be an integer/);
});
