import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { EtcdError } from '../../src/api/errors.js';
import type { PutRequest, RequestOp, TxnRequest } from '../../src/api/types.js';
import {
  checkPutRequest,
  checkProposalSize,
  checkRangeRequest,
  checkTxnRequest,
  proposalBytes,
} from '../../src/api/validate.js';
import { requestBytesDefault } from '../../src/lib/limits.js';

const bytes = (text: string) => Buffer.from(text, 'latin1');
const none = new Uint8Array(0);

function put(key: string, extra: Partial<PutRequest> = {}): RequestOp {
  return {
    type: 'put',
    put: { key: bytes(key), value: none, lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false, ...extra },
  };
}

function del(key: string, rangeEnd = ''): RequestOp {
  return { type: 'deleteRange', deleteRange: { key: bytes(key), rangeEnd: bytes(rangeEnd), prevKv: false } };
}

function txn(success: RequestOp[], failure: RequestOp[] = []): TxnRequest {
  return { compare: [], success, failure };
}

function nested(success: RequestOp[], failure: RequestOp[] = []): RequestOp {
  return { type: 'txn', txn: txn(success, failure) };
}

function rejects(action: () => void, message: string): void {
  assert.throws(action, (error: unknown) => error instanceof EtcdError && error.message === message);
}

const duplicate = 'etcdserver: duplicate key given in txn request';

describe('single requests', () => {
  test('an empty key is refused', () => {
    rejects(() => checkRangeRequest({ key: none } as never), 'etcdserver: key is not provided');
    rejects(() => checkPutRequest((put('') as { put: PutRequest }).put), 'etcdserver: key is not provided');
  });

  test('ignore_value with a value and ignore_lease with a lease are refused', () => {
    const withValue = (put('k', { ignoreValue: true, value: bytes('v') }) as { put: PutRequest }).put;
    rejects(() => checkPutRequest(withValue), 'etcdserver: value is provided');
    const withLease = (put('k', { ignoreLease: true, lease: 5n }) as { put: PutRequest }).put;
    rejects(() => checkPutRequest(withLease), 'etcdserver: lease is provided');
  });
});

describe('txn op counts', () => {
  test('more ops than --max-txn-ops in any one list is refused', () => {
    const ops = Array.from({ length: 3 }, (_, index) => put(`k${index}`));
    checkTxnRequest(txn(ops), 3);
    rejects(() => checkTxnRequest(txn(ops), 2), 'etcdserver: too many operations in txn request');
    rejects(() => checkTxnRequest(txn([], ops), 2), 'etcdserver: too many operations in txn request');
  });

  test('a nested txn only gets the budget its parent leaves', () => {
    const request = txn([put('a'), nested([put('b'), put('c')])]);
    checkTxnRequest(request, 4);
    rejects(() => checkTxnRequest(request, 3), 'etcdserver: too many operations in txn request');
  });
});

describe('duplicate keys within a branch', () => {
  test('the same key put twice is refused, but once per branch is fine', () => {
    rejects(() => checkTxnRequest(txn([put('a'), put('a')]), 128), duplicate);
    checkTxnRequest(txn([put('a')], [put('a')]), 128);
  });

  test('a put inside a deleted range is refused, and a single-key delete covers only its key', () => {
    rejects(() => checkTxnRequest(txn([del('a', 'c'), put('b')]), 128), duplicate);
    rejects(() => checkTxnRequest(txn([put('b'), del('b')]), 128), duplicate);
    checkTxnRequest(txn([del('a', 'b'), put('b')]), 128);
    checkTxnRequest(txn([del('b'), put('b\0')]), 128);
  });

  test('a delete with range end "\\0" conflicts with nothing, as in etcd 3.4', () => {
    checkTxnRequest(txn([del('a', '\0'), put('b')]), 128);
  });

  test('nested txns: both branches may put a key, but not the parent too', () => {
    checkTxnRequest(txn([nested([put('a')], [put('a')])]), 128);
    rejects(() => checkTxnRequest(txn([nested([put('a')]), put('a')]), 128), duplicate);
    rejects(() => checkTxnRequest(txn([nested([put('a')]), nested([], [put('a')])]), 128), duplicate);
    rejects(() => checkTxnRequest(txn([del('a', 'z'), nested([put('m')])]), 128), duplicate);
  });

  test('a nested delete conflicts with a later nested put but not an earlier one, as etcd checks', () => {
    rejects(() => checkTxnRequest(txn([nested([del('a')]), nested([put('a')])]), 128), duplicate);
    checkTxnRequest(txn([nested([put('a')]), nested([del('a')])]), 128);
  });

  test('keys compare as bytes, so high bytes sort after ASCII', () => {
    rejects(() => checkTxnRequest(txn([del('a', '\xff'), put('z\x80')]), 128), duplicate);
  });
});

describe('request size', () => {
  test('the proposal envelope matches what etcd 3.4 refuses at the 1.5 MiB default', () => {
    // Measured against etcd 3.4.23: a put of key "k" with a value of 1.5 MiB - 24 bytes is
    // accepted and one byte more is refused; its PutRequest is value + 7 bytes.
    const largestAccepted = requestBytesDefault - 24 + 7;
    assert.equal(proposalBytes(largestAccepted), requestBytesDefault);
    checkProposalSize(largestAccepted, requestBytesDefault);
    rejects(() => checkProposalSize(largestAccepted + 1, requestBytesDefault), 'etcdserver: request is too large');
  });
});
