import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { describeProbe, percentile, probeFsync } from '../../bench/fsync-probe.js';

test('percentiles are nearest-rank over the sorted samples', () => {
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentile(hundred, 50), 50);
  assert.equal(percentile(hundred, 99), 99);
  assert.equal(percentile(hundred, 100), 100);
  assert.equal(percentile(hundred, 0), 1);
  assert.equal(percentile([7], 99), 7);
  assert.throws(() => percentile([], 50), /no samples/);
});

test('the fsync probe times both cases on real files and leaves nothing behind', () => {
  const parent = mkdtempSync(join(tmpdir(), 'probe-test-'));
  try {
    const result = probeFsync(parent, 5);
    assert.equal(result.samples, 5);
    for (const latency of [result.preallocated, result.append]) {
      assert.ok(latency.p50Ms > 0, `p50 ${latency.p50Ms} ms`);
      assert.ok(latency.p99Ms >= latency.p50Ms, `p99 ${latency.p99Ms} ms below p50 ${latency.p50Ms} ms`);
    }
    assert.deepEqual(readdirSync(parent), [], 'the probe removes its directory');
    assert.match(
      describeProbe(result),
      /^fsync probe \(4096-byte write \+ fdatasync, 5 samples in .*\): preallocated p50 [\d.]+ ms p99 [\d.]+ ms; append p50 [\d.]+ ms p99 [\d.]+ ms$/,
    );
    assert.throws(() => probeFsync(parent, 0), /samples must be a positive integer/);
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
});
