/**
 * etcd's key layout for locks and elections, and the few KV requests the recipes send. A lock or
 * election named N keeps one key per waiter or candidate, `N/<lease ID in lowercase hex>`, held
 * by that lease; the key with the lowest create revision owns the lock or leads the election.
 */
import {
  type Compare,
  CompareResult,
  CompareTarget,
  type DeleteRangeRequest,
  type PutRequest,
  type RangeRequest,
  rangeRequestWith,
  type RangeResult,
  type RequestOp,
  SortOrder,
  SortTarget,
  type TxnResult,
} from '../api/types.js';
import { assert } from '../lib/assert.js';

const emptyBytes = new Uint8Array(0);
const slash = 0x2f;
const byteMax = 0xff;

/** The prefix under which every waiter or candidate of `name` keeps its key. */
export function recipePrefix(name: Uint8Array): Uint8Array {
  const prefix = new Uint8Array(name.length + 1);
  prefix.set(name);
  prefix[name.length] = slash;
  return prefix;
}

/** The key a lease holds under a prefix; Go's %x of the signed lease ID, so negative IDs keep their sign. */
export function leaseKey(prefix: Uint8Array, lease: bigint): Uint8Array {
  const suffix = new TextEncoder().encode(lease.toString(16));
  const key = new Uint8Array(prefix.length + suffix.length);
  key.set(prefix);
  key.set(suffix, prefix.length);
  return key;
}

/** The smallest key after every key starting with `prefix` ("\0" = no end when it is all 0xff). */
export function prefixRangeEnd(prefix: Uint8Array): Uint8Array {
  for (let i = prefix.length - 1; i >= 0; i--) {
    const byte = prefix[i]!;
    if (byte < byteMax) {
      const end = prefix.slice(0, i + 1);
      end[i] = byte + 1;
      return end;
    }
  }
  return new Uint8Array([0]);
}

function rangeRequest(key: Uint8Array, rangeEnd: Uint8Array, extra: Partial<RangeRequest>): RangeRequest {
  return rangeRequestWith({ key, rangeEnd, ...extra });
}

/** The key alone. */
export function getKey(key: Uint8Array): RangeRequest {
  return rangeRequest(key, emptyBytes, {});
}

/** The oldest key under the prefix: the lock owner or election leader. */
export function getFirstCreated(prefix: Uint8Array): RangeRequest {
  return rangeRequest(prefix, prefixRangeEnd(prefix), {
    limit: 1,
    sortOrder: SortOrder.ascend,
    sortTarget: SortTarget.create,
  });
}

/** The newest key under the prefix created at or before `maxCreateRevision`: the waiter just ahead. */
export function getLastCreatedUpTo(prefix: Uint8Array, maxCreateRevision: number): RangeRequest {
  return rangeRequest(prefix, prefixRangeEnd(prefix), {
    limit: 1,
    sortOrder: SortOrder.descend,
    sortTarget: SortTarget.create,
    maxCreateRevision,
  });
}

/** A put under a lease, keeping nothing of the previous value. */
export function putWithLease(key: Uint8Array, value: Uint8Array, lease: bigint): PutRequest {
  return { key, value, lease, prevKv: false, ignoreValue: false, ignoreLease: false };
}

export function deleteKey(key: Uint8Array): DeleteRangeRequest {
  return { key, rangeEnd: emptyBytes, prevKv: false };
}

/** True when the key's create revision equals `createRevision` (0: the key does not exist). */
export function createRevisionIs(key: Uint8Array, createRevision: number): Compare {
  return {
    result: CompareResult.equal,
    target: CompareTarget.create,
    key,
    rangeEnd: emptyBytes,
    version: 0,
    createRevision,
    modRevision: 0,
    value: emptyBytes,
    lease: 0n,
  };
}

export const requestOp = {
  range: (range: RangeRequest): RequestOp => ({ type: 'range', range }),
  put: (put: PutRequest): RequestOp => ({ type: 'put', put }),
  deleteRange: (deleteRange: DeleteRangeRequest): RequestOp => ({ type: 'deleteRange', deleteRange }),
};

/** The range result at `index` of a txn's responses; the recipe txns put ranges there by construction. */
export function rangeResponse(result: TxnResult, index: number): RangeResult {
  const op = result.responses[index];
  assert(op?.type === 'range', () => `txn response ${index} should be a range, saw ${op?.type ?? 'nothing'}`);
  return op.range;
}
