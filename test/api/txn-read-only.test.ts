/**
 * Whether a txn is read-only decides three things: whether the gRPC router checks it against
 * --max-request-bytes, whether the member serves it from a read index or proposes it, and
 * whether mvcc runs it in a read or a write transaction. All three must give etcd 3.4's answer
 * (isTxnReadonly in etcdserver/v3_server.go): read-only iff every op of both branches is a
 * Range, so a nested txn makes the txn a write even when it only reads.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
// The router, the member and mvcc all import this one function (grep finds no other decider).
import type { TxnRequest } from '../../src/api/types.js';
import { isTxnReadOnly, isTxnSerializable } from '../../src/api/txn-read-only.js';
import { Harness, deleteReq, op, putReq, rangeReq, txnReq } from '../mvcc/helpers.js';

const range = op.range(rangeReq('a'));

/** Each case with etcd 3.4's answer. */
const cases: { name: string; txn: TxnRequest; readOnly: boolean }[] = [
  { name: 'an empty txn', txn: txnReq([], []), readOnly: true },
  { name: 'ranges in both branches', txn: txnReq([], [range], [range, range]), readOnly: true },
  { name: 'a put in the failure branch', txn: txnReq([], [range], [op.put(putReq('a', '1'))]), readOnly: false },
  { name: 'a delete in the success branch', txn: txnReq([], [op.del(deleteReq('a'))]), readOnly: false },
  { name: 'a nested txn that only reads', txn: txnReq([], [range, op.txn(txnReq([], [range]))]), readOnly: false },
  { name: 'an empty nested txn', txn: txnReq([], [], [op.txn(txnReq([], []))]), readOnly: false },
  {
    name: 'a nested txn that writes',
    txn: txnReq([], [op.txn(txnReq([], [op.put(putReq('a', '1'))]))]),
    readOnly: false,
  },
];

describe('the read-only txn rule', () => {
  for (const { name, txn, readOnly } of cases) {
    test(`${name} is ${readOnly ? 'read-only' : 'a write'}`, () => {
      assert.equal(isTxnReadOnly(txn), readOnly);
    });
  }

  test('the store refuses to run a txn etcd would propose outside apply', () => {
    const harness = new Harness();
    harness.put('a', '1');
    for (const { txn, readOnly } of cases) {
      if (readOnly) harness.store.txn(txn);
      else assert.throws(() => harness.store.txn(txn), /applied through Raft/);
    }
  });

  test('a nested txn that only reads is applied as a write that leaves the revision alone', () => {
    const harness = new Harness();
    harness.put('a', '1');
    const before = harness.store.currentRevision;
    const result = harness.txn(txnReq([], [op.txn(txnReq([], [range]))]));
    assert.equal(result.succeeded, true);
    assert.equal(harness.store.currentRevision, before);
  });
});

describe('the serializable txn rule', () => {
  const serializable = op.range(rangeReq('a', '', { serializable: true }));
  test('a txn of serializable ranges only is serializable, an empty one too', () => {
    assert.equal(isTxnSerializable(txnReq([], [serializable], [serializable])), true);
    assert.equal(isTxnSerializable(txnReq([], [])), true);
  });

  test('one linearizable range, a write or a nested txn makes it linearizable', () => {
    assert.equal(isTxnSerializable(txnReq([], [serializable], [range])), false);
    assert.equal(isTxnSerializable(txnReq([], [serializable, op.put(putReq('a', '1'))])), false);
    assert.equal(isTxnSerializable(txnReq([], [op.txn(txnReq([], [serializable]))])), false);
  });
});
