/** Txn compare evaluation, as etcd's applyCompare / compareKV. */

import { type Compare, CompareResult, CompareTarget, type KeyValue } from '../api/types.js';
import { compareBytes } from '../lib/bytes.js';

const absentKv: KeyValue = Object.freeze({
  key: new Uint8Array(0),
  createRevision: 0,
  modRevision: 0,
  version: 0,
  value: new Uint8Array(0),
  lease: 0n,
});

/**
 * True when every key the compare covers satisfies it. With no key in range the compare runs
 * against an all-zero KeyValue, except a value compare, which then always fails (gRPC cannot
 * tell a missing value from an empty one).
 */
export function compareHolds(compare: Compare, kvs: readonly KeyValue[]): boolean {
  if (kvs.length === 0) return compare.target !== CompareTarget.value && compareOne(compare, absentKv);
  return kvs.every((kv) => compareOne(compare, kv));
}

function compareOne(compare: Compare, kv: KeyValue): boolean {
  const order = targetOrder(compare, kv);
  switch (compare.result) {
    case CompareResult.equal:
      return order === 0;
    case CompareResult.notEqual:
      return order !== 0;
    case CompareResult.greater:
      return order > 0;
    case CompareResult.less:
      return order < 0;
    default:
      // etcd treats an unknown result as satisfied.
      return true;
  }
}

function targetOrder(compare: Compare, kv: KeyValue): number {
  switch (compare.target) {
    case CompareTarget.version:
      return Math.sign(kv.version - compare.version);
    case CompareTarget.create:
      return Math.sign(kv.createRevision - compare.createRevision);
    case CompareTarget.mod:
      return Math.sign(kv.modRevision - compare.modRevision);
    case CompareTarget.value:
      return compareBytes(kv.value, compare.value);
    case CompareTarget.lease:
      return kv.lease === compare.lease ? 0 : kv.lease > compare.lease ? 1 : -1;
    default:
      // etcd leaves the order at zero for a target it does not know.
      return 0;
  }
}
