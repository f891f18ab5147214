import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { KeyValue } from '../../src/api/types.js';
import type { MvccEvent } from '../../src/mvcc/kv-store.js';
import { MemoryBackend } from '../../src/mvcc/backend.js';
import { Harness, plain, rangeReq, text } from './helpers.js';

describe('store revisions', () => {
  it('an empty store is at revision 1 with no compaction, as etcd', () => {
    const h = new Harness();
    assert.equal(h.store.currentRevision, 1);
    assert.equal(h.store.compactRevision, -1);
    assert.equal(h.store.consistentIndex, 0);
  });

  it('puts keep the create revision and count versions within one life of a key', () => {
    const h = new Harness();
    h.put('a', '1');
    h.put('a', '2');
    assert.deepEqual(plain(h.get('a')), { key: 'a', value: '2', create: 2, mod: 3, version: 2, lease: 0n });
    assert.equal(h.store.currentRevision, 3);
  });

  it('a delete ends the life of a key and a later put starts a new one', () => {
    const h = new Harness();
    h.put('a', '1'); // 2
    h.put('a', '2'); // 3
    h.del('a'); // 4
    assert.equal(h.get('a'), undefined);
    h.put('a', '3'); // 5
    assert.deepEqual(plain(h.get('a')), { key: 'a', value: '3', create: 5, mod: 5, version: 1, lease: 0n });
    assert.deepEqual(plain(h.get('a', 3)), { key: 'a', value: '2', create: 2, mod: 3, version: 2, lease: 0n });
    assert.equal(h.get('a', 4), undefined);
    assert.deepEqual(plain(h.get('a', 2)), { key: 'a', value: '1', create: 2, mod: 2, version: 1, lease: 0n });
  });

  it('deleting a missing key changes nothing and keeps the revision', () => {
    const h = new Harness();
    h.put('a', '1');
    const result = h.del('b');
    assert.deepEqual(result, { type: 'deleteRange', deleteRange: { deleted: 0, prevKvs: [] } });
    assert.equal(h.store.currentRevision, 2);
  });

  it('a range delete takes one revision with one sub revision per key', () => {
    const events: MvccEvent[][] = [];
    const h = new Harness(new MemoryBackend(), { onChanges: (batch) => events.push(batch) });
    h.put('a', '1');
    h.put('b', '2');
    h.put('c', '3');
    const result = h.del('a', 'c', true);
    assert.equal(result.type === 'deleteRange' && result.deleteRange.deleted, 2);
    assert.deepEqual(result.type === 'deleteRange' && result.deleteRange.prevKvs.map((kv) => text(kv.value)), [
      '1',
      '2',
    ]);
    assert.equal(h.store.currentRevision, 5);
    const last = events[events.length - 1]!;
    assert.deepEqual(
      last.map((e) => [e.type, text(e.kv.key), e.kv.modRevision]),
      [
        ['delete', 'a', 5],
        ['delete', 'b', 5],
      ],
    );
    assert.deepEqual(h.keys('a', '\0'), ['c']);
  });

  it('a put reports the previous value only when asked and only if the key is live', () => {
    const h = new Harness();
    assert.deepEqual(h.put('a', '1', { prevKv: true }), { type: 'put', put: {} });
    const second = h.put('a', '2', { prevKv: true });
    assert.equal(second.type === 'put' && text(second.put.prevKv!.value), '1');
    assert.deepEqual(h.put('a', '3'), { type: 'put', put: {} });
  });

  it('ignore_value and ignore_lease keep the stored value and lease, and need the key to exist', () => {
    const h = new Harness(new MemoryBackend(), { leaseExists: (id) => id === 7n });
    assert.throws(() => h.put('a', '', { ignoreValue: true }), /etcdserver: key not found/);
    h.put('a', 'v1', { lease: 7n });
    h.put('a', '', { ignoreValue: true });
    assert.equal(text(h.get('a')!.value), 'v1');
    assert.equal(h.get('a')!.lease, 0n);
    h.put('a', 'v2', { lease: 7n });
    h.put('a', 'v3', { ignoreLease: true });
    assert.deepEqual(plain(h.get('a')), { key: 'a', value: 'v3', create: 2, mod: 5, version: 4, lease: 7n });
  });

  it('a put with an unknown lease fails with lease not found and still consumes the entry', () => {
    const h = new Harness();
    assert.throws(() => h.put('a', '1', { lease: 5n }), /etcdserver: requested lease not found/);
    assert.equal(h.store.currentRevision, 1);
    assert.equal(h.store.consistentIndex, 1);
    assert.equal(h.get('a'), undefined);
  });

  it('an entry index at or below the consistent index is refused', () => {
    const h = new Harness();
    h.put('a', '1');
    assert.throws(
      () =>
        h.store.apply(1, 1, {
          type: 'put',
          put: {
            key: new Uint8Array([1]),
            value: new Uint8Array(0),
            lease: 0n,
            prevKv: false,
            ignoreValue: false,
            ignoreLease: false,
          },
        }),
      /already applied/,
    );
  });

  it('keys are arbitrary bytes ordered bytewise', () => {
    const h = new Harness();
    const keys = [[0xff], [0x00, 0x01], [0x80], [0x7f, 0xff], [0x01]].map((k) => new Uint8Array(k));
    for (const key of keys)
      h.apply({
        type: 'put',
        put: { key, value: key, lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false },
      });
    const all = h.store.range({ ...rangeReq('', ''), key: new Uint8Array([0]), rangeEnd: new Uint8Array([0]) });
    assert.deepEqual(
      all.kvs.map((kv: KeyValue) => [...kv.key]),
      [[0x00, 0x01], [0x01], [0x7f, 0xff], [0x80], [0xff]],
    );
  });
});
