import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { durationsText, longestFirst } from './suite-order.js';

describe("run-suite's file order", () => {
  test('files start longest first by their last known seconds, files with no known time before all', () => {
    const durations = new Map([
      ['a.test.js', 3],
      ['b.test.js', 180],
      ['c.test.js', 45],
      ['d.test.js', 45],
    ]);
    const order = longestFirst(['a.test.js', 'b.test.js', 'c.test.js', 'd.test.js', 'new.test.js'], durations);
    assert.deepEqual(order, ['new.test.js', 'b.test.js', 'c.test.js', 'd.test.js', 'a.test.js']);
  });

  test("the durations file takes this run's times over the recorded ones and forgets deleted files", () => {
    const recorded = new Map([
      ['gone.test.js', 9],
      ['kept.test.js', 4],
      ['run.test.js', 50],
    ]);
    const text = durationsText(recorded, new Map([['run.test.js', 12_345]]), ['run.test.js', 'kept.test.js']);
    assert.equal(text, '{\n  "kept.test.js": 4,\n  "run.test.js": 12.3\n}\n');
  });
});
