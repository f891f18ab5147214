/**
 * Which branch each (nested) txn takes. etcd decides every branch up front, against the store
 * as it was before the txn, and checks the chosen operations before running any of them.
 */

import type { RequestOp, TxnRequest } from '../api/types.js';

/** The branch a txn takes and, in order, the paths of the txns nested in that branch. */
export interface TxnPath {
  succeeded: boolean;
  nested: TxnPath[];
}

/** Decides every branch with `holds`, which evaluates one txn's compares. */
export function choosePath(txn: TxnRequest, holds: (txn: TxnRequest) => boolean): TxnPath {
  const succeeded = holds(txn);
  const nested: TxnPath[] = [];
  for (const op of chosenOps(txn, succeeded)) {
    if (op.type === 'txn') nested.push(choosePath(op.txn, holds));
  }
  return { succeeded, nested };
}

export function chosenOps(txn: TxnRequest, succeeded: boolean): RequestOp[] {
  return succeeded ? txn.success : txn.failure;
}

/** Visits every non-txn operation the path will run, descending into nested txns. */
export function forEachChosenOp(txn: TxnRequest, path: TxnPath, visit: (op: RequestOp) => void): void {
  let nestedAt = 0;
  for (const op of chosenOps(txn, path.succeeded)) {
    if (op.type === 'txn') forEachChosenOp(op.txn, path.nested[nestedAt++]!, visit);
    else visit(op);
  }
}
