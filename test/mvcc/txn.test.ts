import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CompareResult as R, CompareTarget as T, type Compare, type ResponseOp } from '../../src/api/types.js';
import { MemoryBackend } from '../../src/mvcc/backend.js';
import { Harness, cmp, deleteReq, op, putReq, rangeReq, text, txnReq } from './helpers.js';

/** a: create 2, mod 4, version 2, value "a2", lease 7; b: create 3, mod 3, version 1, value "b1". */
function seeded(): Harness {
  const h = new Harness(new MemoryBackend(), { leaseExists: (id) => id === 7n });
  h.put('a', 'a1');
  h.put('b', 'b1');
  h.put('a', 'a2', { lease: 7n });
  return h;
}

function holds(h: Harness, compare: Compare): boolean {
  return h.store.txn(txnReq([compare], [])).succeeded;
}

function rangeValues(response: ResponseOp | undefined): string[] {
  assert.equal(response?.type, 'range');
  return response.type === 'range' ? response.range.kvs.map((kv) => text(kv.value)) : [];
}

describe('txn compares', () => {
  it('compare every target with every result on an existing key', () => {
    const h = seeded();
    const cases: [T, number | string | bigint, [boolean, boolean, boolean, boolean]][] = [
      // target, operand, [equal, greater, less, notEqual] for key a
      [T.version, 2, [true, false, false, false]],
      [T.version, 1, [false, true, false, true]],
      [T.create, 3, [false, false, true, true]],
      [T.mod, 4, [true, false, false, false]],
      [T.mod, 5, [false, false, true, true]],
      [T.value, 'a2', [true, false, false, false]],
      [T.value, 'a1', [false, true, false, true]],
      [T.value, 'b', [false, false, true, true]],
      [T.lease, 7n, [true, false, false, false]],
      [T.lease, 0n, [false, true, false, true]],
    ];
    for (const [target, operand, expected] of cases) {
      const got = [R.equal, R.greater, R.less, R.notEqual].map((result) => holds(h, cmp('a', target, result, operand)));
      assert.deepEqual(got, expected, `target ${target} operand ${operand}`);
    }
  });

  it('a missing key compares as zero revisions, version and lease', () => {
    const h = seeded();
    assert.equal(holds(h, cmp('zz', T.create, R.equal, 0)), true);
    assert.equal(holds(h, cmp('zz', T.version, R.equal, 0)), true);
    assert.equal(holds(h, cmp('zz', T.mod, R.less, 1)), true);
    assert.equal(holds(h, cmp('zz', T.lease, R.equal, 0n)), true);
  });

  it('a value compare on a missing key always fails', () => {
    const h = seeded();
    assert.equal(holds(h, cmp('zz', T.value, R.equal, '')), false);
    assert.equal(holds(h, cmp('zz', T.value, R.notEqual, 'x')), false);
  });

  it('a compare with a range end must hold for every key in the range', () => {
    const h = seeded();
    assert.equal(holds(h, cmp('a', T.create, R.greater, 1, 'c')), true);
    assert.equal(holds(h, cmp('a', T.version, R.equal, 1, 'c')), false);
    assert.equal(holds(h, cmp('a', T.mod, R.less, 5, '\0')), true);
    // An empty range compares against the all-zero KeyValue.
    assert.equal(holds(h, cmp('x', T.version, R.equal, 0, 'y')), true);
  });

  it('all compares must hold for the success branch', () => {
    const h = seeded();
    const result = h.store.txn(
      txnReq(
        [cmp('a', T.version, R.equal, 2), cmp('b', T.version, R.equal, 2)],
        [op.range(rangeReq('a'))],
        [op.range(rangeReq('b'))],
      ),
    );
    assert.equal(result.succeeded, false);
    assert.deepEqual(rangeValues(result.responses[0]), ['b1']);
  });
});

describe('txn execution', () => {
  it('writes in one txn share one revision with increasing sub revisions', () => {
    const h = seeded();
    const result = h.txn(txnReq([], [op.put(putReq('x', '1')), op.put(putReq('x', '2')), op.put(putReq('y', '3'))]));
    assert.equal(result.succeeded, true);
    assert.equal(h.store.currentRevision, 5);
    const x = h.get('x')!;
    assert.deepEqual([x.createRevision, x.modRevision, x.version, text(x.value)], [5, 5, 2, '2']);
  });

  it('reads inside a txn see its earlier writes', () => {
    const h = seeded();
    const result = h.txn(
      txnReq(
        [],
        [op.put(putReq('a', 'new')), op.range(rangeReq('a')), op.del(deleteReq('b')), op.range(rangeReq('b'))],
      ),
    );
    assert.deepEqual(rangeValues(result.responses[1]), ['new']);
    assert.deepEqual(rangeValues(result.responses[3]), []);
  });

  it('a delete then a put of the same key in one txn starts a new life', () => {
    const h = seeded();
    h.txn(txnReq([], [op.del(deleteReq('a')), op.put(putReq('a', 'reborn'))]));
    const a = h.get('a')!;
    assert.deepEqual([a.createRevision, a.modRevision, a.version], [5, 5, 1]);
  });

  it('a txn that writes nothing keeps the revision', () => {
    const h = seeded();
    h.txn(txnReq([cmp('a', T.version, R.equal, 9)], [op.put(putReq('a', 'x'))], [op.range(rangeReq('a'))]));
    h.txn(txnReq([], [op.del(deleteReq('nothing'))]));
    assert.equal(h.store.currentRevision, 4);
    assert.equal(h.store.consistentIndex, 5);
  });

  it('nested txns run their own branch and bump the revision once', () => {
    const h = seeded();
    const result = h.txn(
      txnReq(
        [],
        [
          op.put(putReq('n1', '1')),
          op.txn(txnReq([cmp('b', T.value, R.equal, 'b1')], [op.put(putReq('n2', '2'))], [op.put(putReq('n3', '3'))])),
          op.txn(txnReq([cmp('b', T.value, R.equal, 'nope')], [], [op.range(rangeReq('n1'))])),
        ],
      ),
    );
    assert.equal(h.store.currentRevision, 5);
    assert.deepEqual(h.keys('n', 'o'), ['n1', 'n2']);
    const [, first, second] = result.responses;
    assert.equal(first?.type === 'txn' && first.txn.succeeded, true);
    assert.equal(second?.type === 'txn' && second.txn.succeeded, false);
    assert.deepEqual(second?.type === 'txn' && rangeValues(second.txn.responses[0]), ['1']);
  });

  it('nested compares are decided before the outer txn writes anything, as etcd', () => {
    const h = seeded();
    h.txn(
      txnReq(
        [],
        [
          op.put(putReq('fresh', '1')),
          op.txn(
            txnReq(
              [cmp('fresh', T.version, R.greater, 0)],
              [op.put(putReq('saw', 'yes'))],
              [op.put(putReq('saw', 'no'))],
            ),
          ),
        ],
      ),
    );
    assert.equal(text(h.get('saw')!.value), 'no');
  });

  it('a put with an unknown lease anywhere in the chosen branches fails the whole txn', () => {
    const h = seeded();
    assert.throws(
      () =>
        h.txn(txnReq([], [op.put(putReq('x', '1')), op.txn(txnReq([], [op.put(putReq('y', '1', { lease: 8n }))]))])),
      {
        message: 'etcdserver: requested lease not found',
      },
    );
    assert.equal(h.get('x'), undefined);
    assert.equal(h.store.currentRevision, 4);
  });

  it('a put with an unknown lease in the branch not taken does not matter', () => {
    const h = seeded();
    h.txn(txnReq([], [op.put(putReq('x', '1'))], [op.put(putReq('y', '1', { lease: 8n }))]));
    assert.equal(text(h.get('x')!.value), '1');
  });

  it('ignore_value on a missing key fails the txn with key not found', () => {
    const h = seeded();
    assert.throws(() => h.txn(txnReq([], [op.put(putReq('missing', '', { ignoreValue: true }))])), {
      message: 'etcdserver: key not found',
    });
  });

  it('a range at a future or compacted revision fails the txn before it writes', () => {
    const h = seeded();
    assert.throws(() => h.txn(txnReq([], [op.put(putReq('x', '1')), op.range(rangeReq('a', '', { revision: 5 }))])), {
      message: 'etcdserver: mvcc: required revision is a future revision',
    });
    h.compact(3);
    assert.throws(() => h.txn(txnReq([], [op.put(putReq('x', '1')), op.range(rangeReq('a', '', { revision: 2 }))])), {
      message: 'etcdserver: mvcc: required revision has been compacted',
    });
    assert.equal(h.get('x'), undefined);
  });

  it('delete with prev_kv inside a txn returns the deleted values', () => {
    const h = seeded();
    const result = h.txn(txnReq([], [op.del(deleteReq('a', 'c', true))]));
    const response = result.responses[0];
    assert.equal(response?.type, 'deleteRange');
    if (response?.type !== 'deleteRange') return;
    assert.equal(response.deleteRange.deleted, 2);
    assert.deepEqual(
      response.deleteRange.prevKvs.map((kv) => text(kv.value)),
      ['a2', 'b1'],
    );
  });

  it('a read-only txn can run outside Raft, but one with writes cannot', () => {
    const h = seeded();
    assert.equal(h.store.txn(txnReq([], [op.range(rangeReq('a'))])).succeeded, true);
    assert.throws(() => h.store.txn(txnReq([], [op.put(putReq('a', 'x'))])), /apply/);
  });
});
