/**
 * etcd's distributed lock (v3lock over clientv3/concurrency's Mutex). Each waiter puts its own
 * key under the lock's prefix; the waiter whose key has the lowest create revision holds the
 * lock, and every other waiter watches only the key just ahead of its own.
 */
import type { ResponseHeader, TxnResult } from '../api/types.js';
import { checkDeleteRangeRequest } from '../api/validate.js';
import { assert } from '../lib/assert.js';
import type { ConcurrencyHost } from './host.js';
import {
  createRevisionIs,
  deleteKey,
  getFirstCreated,
  getKey,
  leaseKey,
  putWithLease,
  rangeResponse,
  recipePrefix,
  requestOp,
} from './keys.js';
import { recipeTxn, sessionLease } from './session.js';
import { waitDeletes } from './wait.js';

const emptyBytes = new Uint8Array(0);

export interface LockRequest {
  name: Uint8Array;
  /** 0 asks for a fresh lease with the session's default TTL. */
  lease: bigint;
}

export interface LockResult {
  /** The header of the read that found the lock free (or of the txn when it was free at once). */
  header: ResponseHeader;
  /** The holder's key, which Unlock takes. */
  key: Uint8Array;
}

/**
 * Acquires the lock `name` for `lease`, waiting for earlier waiters to let go. When waiting fails
 * (the signal aborts, the watch is compacted), the waiter's key is deleted so nobody waits on it.
 */
export async function lock(host: ConcurrencyHost, request: LockRequest, signal: AbortSignal): Promise<LockResult> {
  const lease = await sessionLease(host, request.lease);
  const prefix = recipePrefix(request.name);
  const key = leaseKey(prefix, lease);
  // Re-locking with a lease that already waits or holds reuses its key and place in line.
  const { header, result } = await recipeTxn(host, {
    compare: [createRevisionIs(key, 0)],
    success: [requestOp.put(putWithLease(key, emptyBytes, lease)), requestOp.range(getFirstCreated(prefix))],
    failure: [requestOp.range(getKey(key)), requestOp.range(getFirstCreated(prefix))],
  });
  const createRevision = result.succeeded ? header.revision : existingCreateRevision(result);
  const owner = rangeResponse(result, 1).kvs[0];
  if (owner === undefined || owner.createRevision === createRevision) return { header, key };
  try {
    return { header: await waitDeletes(host, prefix, createRevision - 1, signal), key };
  } catch (error) {
    // etcd ignores a failure of this clean-up: the key still goes when its lease does.
    await host.kv.deleteRange(deleteKey(key)).catch(() => undefined);
    throw error;
  }
}

function existingCreateRevision(result: TxnResult): number {
  const existing = rangeResponse(result, 0).kvs[0];
  assert(existing !== undefined, 'a failed create-revision-is-0 compare should find the key');
  return existing.createRevision;
}

/** Releases a lock by deleting its holder's key; a key that is already gone is not an error. */
export async function unlock(host: ConcurrencyHost, key: Uint8Array): Promise<{ header: ResponseHeader }> {
  const request = deleteKey(key);
  checkDeleteRangeRequest(request);
  const { header } = await host.kv.deleteRange(request);
  return { header };
}
