import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  coresFloor,
  coresUnknown,
  durationsText,
  longestFirst,
  nextToStart,
  parseDurations,
  suiteQueue,
  type QueuedFile,
  type RunningFile,
} from './suite-order.js';

const times = (seconds: number, cores = 0.5) => ({ seconds, cores });
const queued = (file: string, seconds: number, cores: number, alone = false): QueuedFile => ({
  file,
  seconds,
  cores,
  alone,
});
const running = (cores: number, endsAtMs: number, alone = false): RunningFile => ({ cores, endsAtMs, alone });
const limits = { coresMax: 2, filesMax: 4 };

describe("run-suite's file order", () => {
  test('files start longest first by their last known seconds, files with no known time before all', () => {
    const durations = new Map([
      ['a.test.js', times(3)],
      ['b.test.js', times(180)],
      ['c.test.js', times(45)],
      ['d.test.js', times(45)],
    ]);
    const order = longestFirst(['a.test.js', 'b.test.js', 'c.test.js', 'd.test.js', 'new.test.js'], durations);
    assert.deepEqual(order, ['new.test.js', 'b.test.js', 'c.test.js', 'd.test.js', 'a.test.js']);
  });

  test('the queue holds the files run beside others, then the alone ones; an unknown file counts a whole core', () => {
    const durations = new Map([
      ['short.test.js', times(3, 0.01)],
      ['long.test.js', times(90, 1.4)],
      ['alone.test.js', times(200, 0.3)],
    ]);
    assert.deepEqual(suiteQueue(['short.test.js', 'new.test.js', 'long.test.js'], ['alone.test.js'], durations), [
      queued('new.test.js', Number.POSITIVE_INFINITY, coresUnknown),
      queued('long.test.js', 90, 1.4),
      queued('short.test.js', 3, coresFloor),
      queued('alone.test.js', 200, 0.3, true),
    ]);
  });

  test('files that mostly wait start beside each other until their cores fill the machine', () => {
    const queue = [queued('a', 60, 0.5), queued('b', 50, 0.5), queued('c', 40, 1.5)];
    assert.equal(nextToStart(queue, [], 0, limits), 0);
    assert.equal(nextToStart(queue, [running(0.5, 60_000), running(0.5, 50_000)], 0, limits), 0);
    assert.equal(nextToStart(queue.slice(2), [running(0.5, 60_000), running(0.5, 50_000)], 0, limits), undefined);
    assert.equal(nextToStart(queue, [running(0.2, 9e9), running(0.2, 9e9), running(0.2, 9e9)], 0, limits), 0);
    assert.equal(
      nextToStart(
        queue,
        [0, 1, 2, 3].map(() => running(0.2, 9e9)),
        0,
        limits,
      ),
      undefined,
    );
  });

  test('a file heavier than the cores allowed runs, but only on an idle suite', () => {
    const queue = [queued('heavy', 60, 3)];
    assert.equal(nextToStart(queue, [running(0.2, 1_000)], 0, limits), undefined);
    assert.equal(nextToStart(queue, [], 0, limits), 0);
  });

  test('a shorter file fills the room the head cannot use only if it ends before the head could start', () => {
    const queue = [queued('head', 90, 1.5), queued('long', 60, 0.4), queued('short', 10, 0.4)];
    const busy = [running(1, 30_000), running(0.2, 200_000)];
    // The head needs the 1-core file to end at 30 s; 'long' would end at 60 s and keep it waiting.
    assert.equal(nextToStart(queue, busy, 0, limits), 2);
    assert.equal(nextToStart(queue, busy, 25_000, limits), undefined);
    // A running file past its recorded end is taken to end at once, so nothing fills in beside it.
    assert.equal(nextToStart(queue, [running(1, 0), running(0.2, 200_000)], 5_000, limits), undefined);
  });

  test('an alone file waits for every running file to end and then runs with none beside it', () => {
    const queue = [queued('alone', 30, 0.3, true), queued('later', 5, 0.2)];
    assert.equal(nextToStart(queue, [running(0.2, 20_000)], 0, limits), 1);
    assert.equal(nextToStart(queue, [running(0.2, 20_000)], 16_000, limits), undefined);
    assert.equal(nextToStart(queue, [], 16_000, limits), 0);
    assert.equal(nextToStart(queue.slice(1), [running(0.3, 30_000, true)], 0, limits), undefined);
  });

  test("the durations file takes this run's times over the recorded ones and forgets deleted files", () => {
    const recorded = parseDurations(
      '{ "gone.test.js": 9, "kept.test.js": 4, "run.test.js": { "seconds": 50, "cores": 1 } }',
    );
    assert.deepEqual(recorded.get('kept.test.js'), { seconds: 4, cores: coresUnknown });
    const measured = new Map([['run.test.js', { seconds: 12.345, cores: 0.4567 }]]);
    const text = durationsText(recorded, measured, ['run.test.js', 'kept.test.js']);
    assert.equal(
      text,
      '{\n  "kept.test.js": { "seconds": 4, "cores": 1 },\n  "run.test.js": { "seconds": 12.3, "cores": 0.46 }\n}\n',
    );
    assert.deepEqual(parseDurations(text).get('run.test.js'), { seconds: 12.3, cores: 0.46 });
  });
});
