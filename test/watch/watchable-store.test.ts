import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { op, putReq, txnReq, deleteReq } from '../mvcc/helpers.js';
import { WatchFilter, watchSpan } from '../../src/watch/watchable-store.js';
import { WatchHarness, bytes, text } from './helpers.js';

describe('synced watchers', () => {
  test('a watcher from now gets each write as it is applied, with the write revision in the header', () => {
    const h = new WatchHarness();
    const { watcher, recorder } = h.watch('a');
    assert.equal(watcher.state, 'synced');
    h.put('a', '1');
    h.put('b', 'x');
    h.del('a');
    assert.deepEqual(recorder.events(), ['put a=1@2', 'delete a=@4']);
    assert.deepEqual(
      recorder.responses.map((response) => response.revision),
      [2, 4],
    );
  });

  test('prefix, open-ended and empty-key watches follow Range key rules', () => {
    const h = new WatchHarness();
    const prefix = h.watch('p/', 'p0');
    const fromKey = h.watch('m', '\0');
    const everything = h.watch('', '\0');
    for (const key of ['a', 'p/1', 'pq', 'z']) h.put(key, 'v');
    assert.deepEqual(prefix.recorder.events(), ['put p/1=v@3']);
    assert.deepEqual(fromKey.recorder.events(), ['put p/1=v@3', 'put pq=v@4', 'put z=v@5']);
    assert.equal(everything.recorder.events().length, 4);
  });

  test('a range whose end is not after its key is refused as empty', () => {
    assert.equal(watchSpan(bytes('b'), bytes('a')), undefined);
    assert.equal(watchSpan(bytes('b'), bytes('b')), undefined);
    assert.deepEqual(watchSpan(new Uint8Array(0), new Uint8Array(0)), { key: '\0', end: undefined });
  });

  test('all events of one revision arrive in one response', () => {
    const h = new WatchHarness();
    const { recorder } = h.watch('k', '\0');
    h.txn(txnReq([], [op.put(putReq('k1', 'a')), op.put(putReq('k2', 'b')), op.del(deleteReq('zz'))]));
    h.txn(txnReq([], [op.put(putReq('k3', 'c')), op.del(deleteReq('k1'))]));
    assert.equal(recorder.responses.length, 2);
    assert.deepEqual(
      recorder.responses.map((response) => response.events.length),
      [2, 2],
    );
    assert.deepEqual(recorder.events(), ['put k1=a@2', 'put k2=b@2', 'put k3=c@3', 'delete k1=@3']);
  });

  test('NOPUT and NODELETE filters drop those events and send nothing when none remain', () => {
    const h = new WatchHarness();
    const noPut = h.watch('a', '', 0, { filters: [WatchFilter.noPut] });
    const noDelete = h.watch('a', '', 0, { filters: [WatchFilter.noDelete] });
    h.put('a', '1');
    h.del('a');
    assert.deepEqual(noPut.recorder.events(), ['delete a=@3']);
    assert.deepEqual(noDelete.recorder.events(), ['put a=1@2']);
    assert.equal(noPut.recorder.responses.length, 1);
  });

  test('prev_kv carries the value before the write, and nothing for a create', () => {
    const h = new WatchHarness();
    const { recorder } = h.watch('a', '', 0, { prevKv: true });
    h.put('a', '1');
    h.put('a', '2');
    h.del('a');
    const previous = recorder.responses.map((response) => response.events[0]?.prevKv);
    assert.equal(previous[0], undefined);
    assert.equal(text(previous[1]!.value), '1');
    assert.equal(text(previous[2]!.value), '2');
    assert.equal(previous[2]!.modRevision, 3);
  });

  test('a watcher starting in the future is synced and gets nothing before its start revision', () => {
    const h = new WatchHarness();
    const { watcher, recorder } = h.watch('a', '', 4);
    assert.equal(watcher.state, 'synced');
    for (const value of ['1', '2', '3', '4']) h.put('a', value);
    assert.deepEqual(recorder.revisions(), [4, 5]);
  });

  test('a canceled watcher gets nothing more and canceling twice says so', () => {
    const h = new WatchHarness();
    const { watcher, recorder } = h.watch('a');
    assert.equal(h.watchable.cancel(watcher), true);
    assert.equal(h.watchable.cancel(watcher), false);
    h.put('a', '1');
    assert.equal(recorder.responses.length, 0);
    assert.deepEqual(h.watchable.counts, { synced: 0, unsynced: 0, victims: 0 });
  });
});

describe('unsynced watchers', () => {
  test('a watcher from an old revision catches up from history, then follows live writes', () => {
    const h = new WatchHarness();
    for (const value of ['1', '2', '3']) h.put('a', value);
    const { watcher, recorder } = h.watch('a', '', 3);
    assert.equal(watcher.state, 'unsynced');
    assert.ok(h.wakes > 0, 'the host is told there is catch-up work');
    h.put('a', '4');
    assert.equal(recorder.responses.length, 0, 'an unsynced watcher gets nothing from notify');
    assert.deepEqual(h.watchable.syncUnsynced(), { unsynced: 0, advanced: 1 });
    assert.equal(watcher.state, 'synced');
    h.put('a', '5');
    assert.deepEqual(recorder.events(), ['put a=2@3', 'put a=3@4', 'put a=4@5', 'put a=5@6']);
  });

  test('catch-up reads in bounded passes that never split a revision', () => {
    const h = new WatchHarness();
    for (let round = 0; round < 5; round++) {
      h.txn(
        txnReq(
          [],
          [op.put(putReq(`k${round}a`, 'x')), op.put(putReq(`k${round}b`, 'y')), op.put(putReq(`k${round}c`, 'z'))],
        ),
      );
    }
    const { recorder } = h.watch('k', 'l', 1);
    const passes = h.settle(4);
    assert.ok(passes >= 3, `expected several passes, got ${passes}`);
    for (const response of recorder.responses) {
      assert.equal(response.events.length % 3, 0, 'every response holds whole revisions');
      assert.equal(
        response.revision,
        response.events.at(-1)!.kv.modRevision,
        'a partial catch-up reports the revision it reached',
      );
    }
    assert.deepEqual(recorder.revisions(), [2, 2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6]);
  });

  test('a watcher whose start revision was compacted is canceled with the compact revision', () => {
    const h = new WatchHarness();
    for (const value of ['1', '2', '3', '4']) h.put('a', value);
    h.compact(4);
    const old = h.watch('a', '', 3);
    const atCompaction = h.watch('a', '', 4);
    h.settle();
    assert.deepEqual(old.recorder.responses, [{ watchId: 0, revision: 0, events: [], compactRevision: 4 }]);
    assert.equal(old.watcher.state, 'compacted');
    assert.deepEqual(atCompaction.recorder.events(), ['put a=3@4', 'put a=4@5']);
  });

  test('a compaction while a watcher catches up cancels it at its next pass', () => {
    const h = new WatchHarness();
    for (let i = 0; i < 10; i++) h.put('a', String(i));
    const { watcher, recorder } = h.watch('a', '', 2);
    h.watchable.syncUnsynced(3);
    assert.deepEqual(recorder.revisions(), [2, 3, 4]);
    h.compact(8);
    h.settle();
    assert.equal(watcher.state, 'compacted');
    assert.equal(recorder.responses.at(-1)!.compactRevision, 8);
  });

  test('prev_kv is read from history for caught-up events', () => {
    const h = new WatchHarness();
    h.put('a', '1');
    h.put('a', '2');
    const { recorder } = h.watch('a', '', 2, { prevKv: true });
    h.settle();
    assert.equal(recorder.responses[0]!.events[0]!.prevKv, undefined);
    assert.equal(text(recorder.responses[0]!.events[1]!.prevKv!.value), '1');
  });
});

describe('slow consumers', () => {
  test('a refusing consumer becomes a victim without blocking writes or other watchers', () => {
    const h = new WatchHarness();
    const slow = h.watch('a');
    const fast = h.watch('a');
    slow.recorder.full = true;
    for (let i = 1; i <= 5; i++) h.put('a', String(i));
    assert.equal(slow.watcher.state, 'victim');
    assert.equal(fast.recorder.responses.length, 5);
    assert.equal(slow.recorder.refusals, 1, 'a victim is not offered each new write');
    assert.equal(h.watchable.retryVictims(), 0, 'a still-full consumer keeps its response');
    slow.recorder.full = false;
    h.settle();
    h.put('a', '6');
    assert.deepEqual(slow.recorder.revisions(), [2, 3, 4, 5, 6, 7]);
    assert.equal(slow.watcher.state, 'synced');
  });

  test('a consumer that refuses a catch-up response resumes exactly where it stopped', () => {
    const h = new WatchHarness();
    for (let i = 0; i < 6; i++) h.put('a', String(i));
    const { watcher, recorder } = h.watch('a', '', 1);
    h.watchable.syncUnsynced(2);
    recorder.full = true;
    h.watchable.syncUnsynced(2);
    assert.equal(watcher.state, 'victim');
    h.put('a', 'live');
    recorder.full = false;
    h.settle(2);
    assert.deepEqual(recorder.revisions(), [2, 3, 4, 5, 6, 7, 8]);
  });

  test('a refused compaction notice is offered again on a later pass', () => {
    const h = new WatchHarness();
    h.put('a', '1');
    h.put('a', '2');
    h.compact(3);
    const { watcher, recorder } = h.watch('a', '', 1);
    recorder.full = true;
    assert.deepEqual(h.watchable.syncUnsynced(), { unsynced: 1, advanced: 0 });
    recorder.full = false;
    h.watchable.syncUnsynced();
    assert.equal(watcher.state, 'compacted');
    assert.equal(recorder.responses[0]!.compactRevision, 3);
  });
});

describe('progress', () => {
  test('progress goes only to synced watchers, at the current revision', () => {
    const h = new WatchHarness();
    h.put('x', '1');
    const synced = h.watch('a');
    const behind = h.watch('a', '', 1);
    assert.equal(h.watchable.progress(synced.watcher), true);
    assert.equal(h.watchable.progress(behind.watcher), false);
    assert.deepEqual(synced.recorder.responses, [{ watchId: 0, revision: 2, events: [], compactRevision: 0 }]);
  });

  test('after a restore every synced watcher re-checks history', () => {
    const h = new WatchHarness();
    const { watcher, recorder } = h.watch('a');
    h.watchable.resync();
    assert.equal(watcher.state, 'unsynced');
    h.put('a', '1');
    h.settle();
    assert.equal(watcher.state, 'synced');
    assert.deepEqual(recorder.revisions(), [2]);
  });
});
