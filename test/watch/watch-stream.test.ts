/**
 * The Watch stream through a real grpc-js server backed by a real KvStore, driven by etcdctl 3.4,
 * the npm etcd3 client and a raw Watch stream for the protocol details.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Etcd3 } from 'etcd3';
import { watchCancelReasons } from '../../src/api/errors.js';
import { EtcdctlWatch, RawWatch, waitUntil } from './clients.js';
import { WatchTestHost } from './host.js';

let host: WatchTestHost;

before(async () => {
  host = new WatchTestHost({ progressNotifyIntervalMs: 100, maxRequestBytes: 4096 });
  await host.start();
});

after(async () => {
  await host.stop();
});

/** The next revision to be written. */
const nextRevision = (): number => host.store.currentRevision + 1;

describe('etcdctl watch', () => {
  test('watching a key from a revision prints its history, then live changes, in order', async () => {
    const from = nextRevision();
    host.putKey('ctl/a', '1');
    host.putKey('ctl/b', 'x');
    host.deleteKey('ctl/a');
    const watch = new EtcdctlWatch(host.endpoint, ['--rev', String(from), 'ctl/a']);
    try {
      await waitUntil(() => watch.stdout.includes('DELETE'), 'the history');
      host.putKey('ctl/a', 'live');
      await waitUntil(() => watch.stdout.includes('live'), 'the live put');
      assert.equal(watch.stdout, 'PUT\nctl/a\n1\nDELETE\nctl/a\n\nPUT\nctl/a\nlive\n');
    } finally {
      await watch.stop();
    }
  });

  test('--prefix --prev-kv -w json prints whole revisions with previous values and the header', async () => {
    const from = nextRevision();
    host.putKey('pfx/1', 'a');
    host.putKey('pfx/1', 'b');
    host.putKey('pfy', 'outside');
    host.deleteKey('pfx/1');
    const watch = new EtcdctlWatch(host.endpoint, [
      '--prefix',
      '--prev-kv',
      '--rev',
      String(from),
      '-w',
      'json',
      'pfx/',
    ]);
    try {
      await waitUntil(() => watch.json().length >= 1, 'a json response');
      const [response] = watch.json() as Array<{
        Header: { revision: number; cluster_id: number };
        Events: Array<Record<string, unknown>>;
      }>;
      assert.equal(response!.Header.revision, host.store.currentRevision);
      assert.equal(response!.Header.cluster_id, 0x1234);
      const events = response!.Events as Array<{
        type?: number;
        kv: { mod_revision: number; value?: string };
        prev_kv?: { value: string };
      }>;
      assert.deepEqual(
        events.map((event) => [event.type ?? 0, event.kv.mod_revision]),
        [
          [0, from],
          [0, from + 1],
          [1, from + 3],
        ],
      );
      assert.equal(events[0]!.prev_kv, undefined, 'a create has no previous value');
      assert.equal(Buffer.from(events[1]!.prev_kv!.value, 'base64').toString(), 'a');
      assert.equal(Buffer.from(events[2]!.prev_kv!.value, 'base64').toString(), 'b');
    } finally {
      await watch.stop();
    }
  });

  test("a watch from a compacted revision is canceled with etcd's words", async () => {
    const from = nextRevision();
    host.putKey('cmp/a', '1');
    host.putKey('cmp/a', '2');
    host.compactTo(from + 1);
    const watch = new EtcdctlWatch(host.endpoint, ['--rev', String(from), 'cmp/a']);
    await waitUntil(() => watch.exitCode !== undefined, 'etcdctl to give up');
    assert.match(watch.stderr, /watch was canceled \(etcdserver: mvcc: required revision has been compacted\)/);
    assert.equal(watch.exitCode, 5);
  });
});

describe('the etcd3 client', () => {
  let client: Etcd3;
  before(() => {
    client = new Etcd3({ hosts: `http://${host.endpoint}` });
  });
  after(() => client.close());

  test('a key watch sees puts and deletes made through the KV service, with previous values', async () => {
    const watcher = await client.watch().key('js/a').withPreviousKV().create();
    const seen: string[] = [];
    watcher.on('put', (kv, previous) =>
      seen.push(`put ${kv.value.toString()} prev=${previous?.value.toString() ?? '-'}`),
    );
    watcher.on('delete', (kv, previous) =>
      seen.push(`delete ${kv.key.toString()} prev=${previous?.value.toString() ?? '-'}`),
    );
    await client.put('js/a').value('1');
    await client.put('js/a').value('2');
    await client.put('js/other').value('x');
    await client.delete().key('js/a');
    await waitUntil(() => seen.length >= 3, 'three events');
    assert.deepEqual(seen, ['put 1 prev=-', 'put 2 prev=1', 'delete js/a prev=2']);
    await watcher.cancel();
  });

  test('a prefix watch from an old revision replays history first', async () => {
    const from = nextRevision();
    await client.put('hist/1').value('a');
    await client.put('hist/2').value('b');
    await client.put('hist/1').value('c');
    const watcher = await client.watch().prefix('hist/').startRevision(String(from)).create();
    const seen: string[] = [];
    watcher.on('put', (kv) => seen.push(`${kv.key.toString()}=${kv.value.toString()}@${kv.mod_revision}`));
    await waitUntil(() => seen.length >= 3, 'the replay');
    await client.put('hist/3').value('d');
    await waitUntil(() => seen.length >= 4, 'the live put');
    assert.deepEqual(seen, [
      `hist/1=a@${from}`,
      `hist/2=b@${from + 1}`,
      `hist/1=c@${from + 2}`,
      `hist/3=d@${from + 3}`,
    ]);
    await watcher.cancel();
  });
});

describe('the Watch protocol', () => {
  test('the server assigns watch ids from 0 and honours a client-chosen id', async () => {
    const raw = new RawWatch(host.endpoint);
    try {
      raw.create({ key: Buffer.from('ids/a') });
      raw.create({ key: Buffer.from('ids/b'), watchId: '7' });
      raw.create({ key: Buffer.from('ids/c') });
      await raw.waitFor((responses) => responses.length >= 3, 'three created responses');
      assert.deepEqual(
        raw.responses.map((response) => [response.watchId, response.created, response.canceled]),
        [
          ['0', true, false],
          ['7', true, false],
          ['1', true, false],
        ],
      );
      assert.equal((raw.responses[0]!.header as { revision: string }).revision, String(host.store.currentRevision));
    } finally {
      raw.close();
    }
  });

  test('a duplicate id or an empty range is refused as created and canceled with id -1 and the reason', async () => {
    const raw = new RawWatch(host.endpoint);
    try {
      raw.create({ key: Buffer.from('dup'), watchId: '3' });
      raw.create({ key: Buffer.from('dup'), watchId: '3' });
      raw.create({ key: Buffer.from('b'), rangeEnd: Buffer.from('a') });
      await raw.waitFor((responses) => responses.length >= 3, 'three responses');
      const refusals = raw.responses
        .slice(1)
        .map((response) => [response.watchId, response.created, response.canceled, response.cancelReason]);
      assert.deepEqual(refusals, [
        ['-1', true, true, watchCancelReasons.duplicateId],
        ['-1', true, true, watchCancelReasons.emptyRange],
      ]);
    } finally {
      raw.close();
    }
  });

  test('cancel answers canceled for a known id, nothing for an unknown one, and stops events', async () => {
    const raw = new RawWatch(host.endpoint);
    try {
      raw.create({ key: Buffer.from('cx') });
      await raw.waitFor((responses) => responses.length >= 1, 'created');
      raw.cancel(42);
      raw.cancel(0);
      await raw.waitFor((responses) => responses.length >= 2, 'canceled');
      host.putKey('cx', 'after');
      raw.progress();
      await raw.waitFor((responses) => responses.length >= 3, 'the progress response');
      assert.deepEqual(
        raw.responses.map((response) => [response.watchId, response.canceled]),
        [
          ['0', false],
          ['0', true],
          ['-1', false],
        ],
      );
    } finally {
      raw.close();
    }
  });

  test('a progress request is answered at once with id -1 at the current revision, before history still to come (etcd 3.4)', async () => {
    const raw = new RawWatch(host.endpoint);
    try {
      host.putKey('prog', '1');
      raw.create({ key: Buffer.from('prog'), startRevision: String(host.store.currentRevision) });
      raw.progress();
      await raw.waitFor(
        (responses) => responses.some((response) => (response.events as unknown[]).length > 0),
        'the history',
      );
      const progress = raw.responses.find((response) => response.watchId === '-1')!;
      assert.equal((progress.header as { revision: string }).revision, String(host.store.currentRevision));
      assert.deepEqual(progress.events, []);
      const eventsIndex = raw.responses.findIndex((response) => (response.events as unknown[]).length > 0);
      assert.ok(raw.responses.indexOf(progress) < eventsIndex, 'the progress mark does not wait for the history');
    } finally {
      raw.close();
    }
  });

  test('progress_notify watchers get event-less notifications at the configured interval', async () => {
    const raw = new RawWatch(host.endpoint);
    try {
      raw.create({ key: Buffer.from('quiet'), progressNotify: true, watchId: '5' });
      await raw.waitFor(
        (responses) => responses.filter((response) => response.watchId === '5' && !response.created).length >= 2,
        'two notifications',
      );
      const notice = raw.of(5).find((response) => !response.created)!;
      assert.deepEqual(notice.events, []);
      assert.equal((notice.header as { revision: string }).revision, String(host.store.currentRevision));
    } finally {
      raw.close();
    }
  });

  test('a fragment watcher gets a large revision split under the request limit, the last piece unmarked', async () => {
    const raw = new RawWatch(host.endpoint);
    try {
      raw.create({ key: Buffer.from('frag/'), rangeEnd: Buffer.from('frag0'), fragment: true });
      await raw.waitFor((responses) => responses.length >= 1, 'created');
      const big = 'x'.repeat(1500);
      const puts = Array.from({ length: 6 }, (_, i) => ({
        type: 'put' as const,
        put: {
          key: Buffer.from(`frag/${i}`),
          value: Buffer.from(big),
          lease: 0n,
          prevKv: false,
          ignoreValue: false,
          ignoreLease: false,
        },
      }));
      // The test host's limit is 4 KiB plus gRPC's 512 KiB headroom, so send a revision over that.
      const many = Array.from({ length: 400 }, (_, i) => puts[i % 6]!.put).map((put, i) => ({
        type: 'put' as const,
        put: { ...put, key: Buffer.from(`frag/${i}`) },
      }));
      host.apply({ type: 'txn', txn: { compare: [], success: many, failure: [] } });
      await raw.waitFor(
        (responses) =>
          responses.some((response) => response.fragment === false && (response.events as unknown[]).length > 0),
        'the last fragment',
      );
      const pieces = raw.responses.slice(1);
      assert.ok(pieces.length >= 2, `expected fragments, got ${pieces.length}`);
      assert.deepEqual(
        pieces.map((piece) => piece.fragment),
        [...pieces.slice(1).map(() => true), false],
      );
      assert.equal(
        pieces.reduce((sum, piece) => sum + (piece.events as unknown[]).length, 0),
        400,
      );
    } finally {
      raw.close();
    }
  });
});

describe('backpressure', () => {
  test('a stalled stream becomes a victim without delaying other streams, then gets every event in order', async () => {
    const stalled = new RawWatch(host.endpoint);
    const live = new RawWatch(host.endpoint);
    try {
      stalled.create({ key: Buffer.from('bp/'), rangeEnd: Buffer.from('bp0') });
      live.create({ key: Buffer.from('bp/'), rangeEnd: Buffer.from('bp0') });
      await stalled.waitFor((responses) => responses.length >= 1, 'created');
      await live.waitFor((responses) => responses.length >= 1, 'created');
      stalled.call.pause();
      const value = 'v'.repeat(16 * 1024);
      const first = nextRevision();
      const writes = 600;
      let sawVictim = false;
      for (let i = 0; i < writes; i++) {
        host.putKey(`bp/${i % 10}`, value);
        if (i % 50 === 49) await new Promise((resolve) => setImmediate(resolve));
        sawVictim ||= host.watchable.counts.victims > 0;
      }
      await live.waitFor(() => live.events(0).length >= writes, 'the live stream to get every event');
      await waitUntil(
        () => (sawVictim ||= host.watchable.counts.victims > 0),
        'the stalled watcher to become a victim',
      );
      stalled.call.resume();
      await stalled.waitFor(() => stalled.events(0).length >= writes, 'the stalled stream to catch up');
      const expected = Array.from({ length: writes }, (_, i) => `PUT bp/${i % 10}@${first + i}`);
      assert.deepEqual(stalled.events(0), expected);
      assert.deepEqual(live.events(0), expected);
    } finally {
      stalled.close();
      live.close();
    }
  });
});
