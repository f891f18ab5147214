import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PeriodicCompactor, RevisionCompactor } from '../../src/mvcc/auto-compaction.js';

const minuteMs = 60_000;
const hourMs = 60 * minuteMs;

/** Drives a compactor like the member's timer: one call per interval, with the revision `revisionAt` gives. */
function drive(
  compactor: PeriodicCompactor | RevisionCompactor,
  calls: number,
  revisionAt: (call: number) => number,
  leading: (call: number) => boolean = () => true,
): { call: number; atMs: number; revision: number }[] {
  const compactions: { call: number; atMs: number; revision: number }[] = [];
  for (let call = 1; call <= calls; call++) {
    const atMs = call * compactor.intervalMs;
    const revision = compactor.due(atMs, revisionAt(call), leading(call));
    if (revision === undefined) continue;
    compactions.push({ call, atMs, revision });
    compactor.succeeded(atMs, revision);
  }
  return compactions;
}

describe('periodic auto compaction (--auto-compaction-mode periodic)', () => {
  it('with a 1h retention records every 6 minutes and compacts hourly to the oldest of the last 11 records', () => {
    const compactor = new PeriodicCompactor(hourMs, 0, 1);
    assert.equal(compactor.intervalMs, 6 * minuteMs);
    // Revision r at call n is 100n + 1: one recorded per 6 minutes.
    const compactions = drive(compactor, 30, (call) => 100 * call + 1);
    assert.deepEqual(
      compactions.map(({ atMs, revision }) => [atMs / minuteMs, revision]),
      [
        [60, 1],
        // At 120 minutes the records are those of minutes 54 to 114, as etcd keeps them.
        [120, 901],
        [180, 1901],
      ],
    );
  });

  it('with a retention over an hour still records every 6 minutes, first compacts after the retention, then hourly', () => {
    const compactor = new PeriodicCompactor(3 * hourMs, 0, 1);
    assert.equal(compactor.intervalMs, 6 * minuteMs);
    const compactions = drive(compactor, 50, (call) => call + 1);
    assert.deepEqual(
      compactions.map(({ atMs, revision }) => [atMs / minuteMs, revision]),
      [
        [180, 1],
        [240, 10],
        [300, 20],
      ],
    );
  });

  it('with a short retention (5s) records every 0.5s and keeps 5s of history', () => {
    const compactor = new PeriodicCompactor(5_000, 0, 1);
    assert.equal(compactor.intervalMs, 500);
    const compactions = drive(compactor, 20, (call) => call + 1);
    assert.deepEqual(
      compactions.map(({ atMs, revision }) => [atMs, revision]),
      [
        [5_000, 1],
        [10_000, 10],
      ],
    );
  });

  it('only the leader compacts; a member that becomes leader compacts what it recorded meanwhile', () => {
    const compactor = new PeriodicCompactor(hourMs, 0, 1);
    const compactions = drive(
      compactor,
      20,
      (call) => 10 * call + 1,
      (call) => call > 12,
    );
    assert.deepEqual(
      compactions.map(({ atMs, revision }) => [atMs / minuteMs, revision]),
      [[78, 21]],
    );
  });
});

describe('revision auto compaction (--auto-compaction-mode revision)', () => {
  it('keeps the last `retention` revisions, compacting each check to current - retention', () => {
    const compactor = new RevisionCompactor(1000, 5 * minuteMs);
    const revisions = [500, 1000, 1500, 1500, 2600];
    const compactions = drive(compactor, revisions.length, (call) => revisions[call - 1] as number);
    assert.deepEqual(
      compactions.map(({ call, revision }) => [call, revision]),
      [
        [3, 500],
        [5, 1600],
      ],
    );
  });

  it('a follower does not compact', () => {
    const compactor = new RevisionCompactor(10, 1_000);
    assert.equal(compactor.due(1_000, 100, false), undefined);
    assert.equal(compactor.due(2_000, 100, true), 90);
  });
});
