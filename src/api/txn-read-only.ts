/**
 * The one rule for whether a txn is read-only. It decides whether the gRPC router checks the
 * request against --max-request-bytes, whether the member serves it from a read index or
 * proposes it, and whether mvcc runs it in a read or a write transaction; all of them ask here,
 * so they cannot disagree.
 */
import type { RequestOp, TxnRequest } from './types.js';

/**
 * etcd 3.4's isTxnReadonly (etcdserver/v3_server.go, also used by apply.go): read-only iff every
 * op of both branches is a Range. A nested txn makes the txn a write even when it only reads:
 * etcd proposes it, so it meets the request size limit (checked against etcd 3.4.23).
 */
export function isTxnReadOnly(txn: TxnRequest): boolean {
  return txn.success.every(isRange) && txn.failure.every(isRange);
}

function isRange(op: RequestOp): boolean {
  return op.type === 'range';
}

/**
 * etcd 3.4's isTxnSerializable: every op of both branches is a serializable Range. A read-only
 * txn that is also serializable is served from the member's own store without a read index, as
 * a serializable Range is.
 */
export function isTxnSerializable(txn: TxnRequest): boolean {
  return txn.success.every(isSerializableRange) && txn.failure.every(isSerializableRange);
}

function isSerializableRange(op: RequestOp): boolean {
  return op.type === 'range' && op.range.serializable;
}
