/**
 * tsetcdctl against etcdctl: the hand-written command lines in cases.ts, run three ways by
 * differential-harness.ts (etcdctl against etcd, tsetcdctl against etcd, tsetcdctl against tsetcd).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ctlCases } from './cases.js';
import { comparedAnswers, runCases, startSides, stopSides, type Runs, type Sides } from './differential-harness.js';
import type { CtlCase } from './cases.js';

describe('tsetcdctl prints what etcdctl prints', () => {
  let sides: Sides | undefined;
  let runs: Map<CtlCase, Promise<Runs>>;

  before(async () => {
    sides = await startSides();
    runs = runCases(ctlCases, sides);
  });

  after(async () => {
    if (runs !== undefined) await Promise.allSettled(runs.values());
    await stopSides(sides);
  });

  for (const testCase of ctlCases) {
    const title = `etcdctl ${testCase.args.join(' ')}${testCase.stdin !== undefined ? ` <<< ${JSON.stringify(testCase.stdin)}` : ''}`;
    const compare = async (index: 1 | 2): Promise<void> => {
      const scheduled = runs.get(testCase);
      assert.ok(scheduled !== undefined && sides !== undefined, 'expected every case to be scheduled in before()');
      // Later cases may capture IDs this answer shows, so every answer is in before any is compared.
      await Promise.allSettled(runs.values());
      const { answer, expected } = await comparedAnswers(testCase, await scheduled, sides, index);
      assert.deepEqual(answer, expected);
    };
    it(`answers like ${title} (against etcd)`, () => compare(1));
    if (testCase.tsetcdDiffers === undefined) it(`answers like ${title} (against tsetcd)`, () => compare(2));
    else void it.skip(`answers like ${title} (against tsetcd: ${testCase.tsetcdDiffers})`);
  }
});
