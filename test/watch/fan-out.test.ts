/**
 * Fan-out to many watchers: one revision's events are built and encoded once per filters and
 * prev_kv variant and shared, and one stream's responses go out as whole batches, yet every
 * watcher still gets its own watch id and exactly its events.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { watchIdFieldBytes, writeWatchIdField } from '../../src/watch/watch-codec.js';
import { grpcFramePrefixBytes, writeFramePrefix } from '../../src/http2/frames.js';
import { WatchFilter } from '../../src/watch/watchable-store.js';
import { RawWatch } from './clients.js';
import { WatchHarness } from './helpers.js';
import { WatchTestHost } from './host.js';
import { deleteReq, putReq } from '../mvcc/helpers.js';

describe('the watchable store shares a revision among its watchers', () => {
  test('watchers with the same filters and prev_kv choice get the same events array', () => {
    const h = new WatchHarness();
    h.put('k', 'old');
    const plain = [h.watch('k'), h.watch('k'), h.watch('k', 'l')];
    const withPrevious = [h.watch('k', '', 0, { prevKv: true }), h.watch('k', '', 0, { prevKv: true })];
    h.put('k', 'new');
    const [first, second, range] = plain.map(({ recorder }) => recorder.responses[0]!.events);
    assert.equal(first, second, 'two single-key watchers share one array');
    assert.equal(first, range, 'a range watcher matching the same event shares it too');
    const [previousA, previousB] = withPrevious.map(({ recorder }) => recorder.responses[0]!.events);
    assert.equal(previousA, previousB);
    assert.notEqual(previousA, first);
    assert.equal(first![0]!.prevKv, undefined);
    assert.equal(Buffer.from(previousA![0]!.prevKv!.value).toString(), 'old');
  });

  test('a revision touching several keys gives each watcher exactly the events it watches, filters applied', () => {
    const h = new WatchHarness();
    h.put('a', '0');
    h.put('b', '0');
    const onA = h.watch('a');
    const onAB = h.watch('a', 'c');
    const onB = h.watch('b');
    const noPut = h.watch('a', 'c', 0, { filters: [WatchFilter.noPut] });
    const noDelete = h.watch('a', 'c', 0, { filters: [WatchFilter.noDelete] });
    h.txn({
      compare: [],
      success: [
        { type: 'put', put: putReq('a', '1') },
        { type: 'deleteRange', deleteRange: deleteReq('b') },
      ],
      failure: [],
    });
    assert.deepEqual(onA.recorder.events(), ['put a=1@4']);
    assert.deepEqual(onAB.recorder.events(), ['put a=1@4', 'delete b=@4']);
    assert.deepEqual(onB.recorder.events(), ['delete b=@4']);
    assert.deepEqual(noPut.recorder.events(), ['delete b=@4']);
    assert.deepEqual(noDelete.recorder.events(), ['put a=1@4']);
  });
});

describe('the watch codec writes the fields it shares between watchers', () => {
  test('watch ids are written as protobuf varints and 0 is left out', () => {
    for (const watchId of [0, 1, 127, 128, 300, 2 ** 31, 2 ** 40 + 5]) {
      const bytes = new Uint8Array(12);
      const end = writeWatchIdField(bytes, 0, watchId);
      assert.equal(end, watchIdFieldBytes(watchId));
      if (watchId === 0) continue;
      assert.equal(bytes[0], 0x10);
      let value = 0;
      for (let i = end - 1; i >= 1; i--) value = value * 128 + (bytes[i]! & 0x7f);
      assert.equal(value, watchId);
    }
  });

  test('the gRPC prefix holds a zero flag and the big-endian length', () => {
    const bytes = new Uint8Array(grpcFramePrefixBytes);
    writeFramePrefix(bytes, 0, 0x01020304);
    assert.deepEqual([...bytes], [0, 1, 2, 3, 4]);
  });
});

describe('batched writes on a stream', () => {
  let host: WatchTestHost;

  before(async () => {
    host = new WatchTestHost();
    await host.start();
  });

  after(async () => {
    await host.stop();
  });

  test('hundreds of watchers on one stream each get every revision once, in order, under their own id', async () => {
    const raw = new RawWatch(host.endpoint);
    const watchers = 300;
    const puts = 5;
    try {
      for (let i = 0; i < watchers; i++)
        raw.create({
          key: Buffer.from('fan/k'),
          prevKv: i % 3 === 0,
          filters: i % 5 === 0 ? [WatchFilter.noDelete] : [],
        });
      await raw.waitFor(
        (responses) => responses.filter((response) => response.created === true).length >= watchers,
        'every watcher created',
      );
      const first = host.store.currentRevision + 1;
      for (let i = 0; i < puts; i++) host.putKey('fan/k', `v${i}`);
      host.deleteKey('fan/k');
      const expected = [
        ...Array.from({ length: puts }, (_, i) => `PUT fan/k@${first + i}`),
        `DELETE fan/k@${first + puts}`,
      ];
      await raw.waitFor(
        () => raw.events(watchers - 1).length >= expected.length,
        'the last watcher to get every event',
      );
      for (let id = 0; id < watchers; id++) {
        const wanted = id % 5 === 0 ? expected.slice(0, puts) : expected;
        assert.deepEqual(raw.events(id), wanted, `watcher ${id}`);
        const previous = raw
          .of(id)
          .map(
            (response) =>
              (response.events as Array<{ prevKv: { value: Buffer } | null }>)[0]?.prevKv?.value.toString() ?? null,
          );
        const wantedPrevious = [
          null,
          ...Array.from({ length: wanted.length - 1 }, (_, i) => (id % 3 === 0 ? `v${i}` : null)),
        ];
        assert.deepEqual(previous.slice(-wanted.length), wantedPrevious, `previous values of watcher ${id}`);
      }
    } finally {
      raw.close();
    }
  });
});
