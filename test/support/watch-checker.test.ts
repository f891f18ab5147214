/**
 * The watch checks' self-tests: recorded streams with a gap, a duplicate, revisions out of order,
 * a revision split over two responses, events unlike the writes, or a resumption that skips or
 * repeats must each be reported; a faithful stream, resumed exactly, must pass. The writes come
 * from a KV history (as the chaos command records it), including writes of unknown outcome.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkWatchRecord, resolveHistory, type SeenEvent, type WatchRecord } from './watch-checker.js';
import type { Operation } from './linearizability/checker.js';
import { writeHistoryOf } from './linearizability/watch-history.js';

/** Revisions 2..6: put a, put b, a two-key txn, delete a (unknown outcome, it happened), put b (unknown, it did not). */
const ops: Operation[] = [
  op(0, { type: 'put', key: 'a', value: 'a1' }, { type: 'put', revision: 2 }),
  op(1, { type: 'put', key: 'b', value: 'b1' }, { type: 'put', revision: 3 }),
  op(
    2,
    {
      type: 'txn',
      compares: [{ key: 'a', target: 'version', result: 'equal', operand: 1 }],
      success: [
        { type: 'put', key: 'a', value: 'a2' },
        { type: 'put', key: 'b', value: 'b2' },
      ],
      failure: [],
    },
    { type: 'txn', revision: 4, succeeded: true, results: [{ type: 'put' }, { type: 'put' }] },
  ),
  op(3, { type: 'delete', key: 'a' }, undefined),
  op(4, { type: 'put', key: 'b', value: 'never' }, undefined),
  op(5, { type: 'put', key: 'c', value: 'c1' }, { type: 'put', revision: 6 }),
  op(6, { type: 'delete', key: 'zz' }, { type: 'delete', revision: 6, deleted: 0 }),
];

function op(id: number, input: Operation['input'], output: Operation['output']): Operation {
  return { id, client: 0, input, output, callMs: id * 10, returnMs: output === undefined ? Infinity : id * 10 + 5 };
}

function put(key: string, value: string, revision: number): SeenEvent {
  return { type: 'PUT', key, value, prev: undefined, revision };
}

function del(key: string, revision: number): SeenEvent {
  return { type: 'DELETE', key, value: '', prev: undefined, revision };
}

/** What a faithful watcher from revision 2 receives, one response per revision. */
function faithful(): SeenEvent[][] {
  return [
    [put('a', 'a1', 2)],
    [put('b', 'b1', 3)],
    [put('a', 'a2', 4), put('b', 'b2', 4)],
    [del('a', 5)],
    [put('c', 'c1', 6)],
  ];
}

function record(...segments: Array<{ startRevision: number; responses: SeenEvent[][] }>): WatchRecord {
  return { prevKv: false, problems: [], segments: segments.map((s) => ({ endpoint: 'm1', ...s })) };
}

/** The checker's verdict on `watched`, against the writes as a faithful watcher resolves them. */
function check(watched: WatchRecord): string[] {
  const resolution = resolveHistory(writeHistoryOf(ops), [faithfulView()], 2, 6);
  assert.deepEqual(resolution.problems, [], 'the resolution of the writes itself');
  return checkWatchRecord(watched, resolution);
}

function faithfulView(): Map<number, SeenEvent[]> {
  const view = new Map<number, SeenEvent[]>();
  for (const events of faithful()) view.set(events[0]!.revision, events);
  return view;
}

describe('watch checks on recorded streams', () => {
  test('a faithful stream passes, and the unknown delete is found to have made revision 5', () => {
    assert.deepEqual(check(record({ startRevision: 2, responses: faithful() })), []);
    const resolution = resolveHistory(writeHistoryOf(ops), [faithfulView()], 2, 6);
    assert.deepEqual([...resolution.unknownApplied], [['#3', 5]]);
  });

  test('a stream resumed exactly at the next revision on another member passes', () => {
    const all = faithful();
    const watched = record(
      { startRevision: 2, responses: all.slice(0, 2) },
      { startRevision: 4, responses: all.slice(2) },
    );
    assert.deepEqual(check(watched), []);
  });

  test('a gap: a revision never delivered', () => {
    const all = faithful();
    const problems = check(record({ startRevision: 2, responses: [...all.slice(0, 3), ...all.slice(4)] }));
    assert.match(problems.join('\n'), /gap: 1 revisions in 2\.\.6 never delivered: 5/);
  });

  test('a duplicate: one revision delivered twice', () => {
    const all = faithful();
    const problems = check(record({ startRevision: 2, responses: [...all.slice(0, 3), all[2]!, ...all.slice(3)] }));
    assert.match(problems.join('\n'), /revision 4 delivered in responses #2 and #3/);
  });

  test('reordering: a later revision delivered before an earlier one', () => {
    const all = faithful();
    const problems = check(record({ startRevision: 2, responses: [all[0]!, all[2]!, all[1]!, ...all.slice(3)] }));
    assert.match(problems.join('\n'), /revision 3 arrived after 4/);
  });

  test("a revision's events split over two responses (not atomic)", () => {
    const all = faithful();
    const split = [...all.slice(0, 2), [put('a', 'a2', 4)], [put('b', 'b2', 4)], ...all.slice(3)];
    const problems = check(record({ startRevision: 2, responses: split }));
    assert.match(problems.join('\n'), /revision 4 delivered in responses #2 and #3/);
  });

  test('events unlike the writes that made the revision', () => {
    const all = faithful();
    const wrong = [...all.slice(0, 2), [put('a', 'a2', 4), put('b', 'bX', 4)], ...all.slice(3)];
    assert.match(check(record({ startRevision: 2, responses: wrong })).join('\n'), /revision 4: saw/);
  });

  test('a resumption that skips a revision, and one that repeats one', () => {
    const all = faithful();
    const skipped = record(
      { startRevision: 2, responses: all.slice(0, 2) },
      { startRevision: 5, responses: all.slice(3) },
    );
    assert.match(check(skipped).join('\n'), /resumed from 5, expected 4/);
    const repeated = record(
      { startRevision: 2, responses: all.slice(0, 2) },
      { startRevision: 3, responses: all.slice(1) },
    );
    assert.match(check(repeated).join('\n'), /resumed from 3, expected 4/);
  });
});
