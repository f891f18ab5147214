/**
 * Lease operations as they travel through Raft and are applied, in log order, on every member.
 * A revocation deletes the lease's keys through the KvStore as one transaction (one revision),
 * in the same apply and so the same backend batch as the lease record's deletion.
 */

import { EtcdError } from '../api/errors.js';
import type { LeaseProposalBody, LeaseProposalResult, RequestOp, TxnRequest } from '../api/types.js';
import type { KvStore } from '../mvcc/kv-store.js';
import type { Lessor } from './lessor.js';

/** The one transaction deleting a revoked lease's keys (already in byte order), as etcd's Revoke. */
export function revokeTxn(keys: readonly Uint8Array[]): TxnRequest {
  const success = keys.map((key): RequestOp => ({
    type: 'deleteRange',
    deleteRange: { key, rangeEnd: new Uint8Array(0), prevKv: false },
  }));
  return { compare: [], success, failure: [] };
}

/** The parts of the KvStore a lease apply uses. */
export type LeaseApplyStore = Pick<KvStore, 'apply' | 'recordApplied'>;

/**
 * Applies a committed lease proposal at Raft (index, term). Refusals (EtcdError) still record the
 * entry as applied, as the KvStore does for its own refusals, and are rethrown for the waiter.
 * `nowMs` starts the lease's clock when this member is the leader.
 */
export function applyLeaseProposal(
  lessor: Lessor,
  store: LeaseApplyStore,
  entry: { index: number; term: number },
  body: LeaseProposalBody,
  nowMs: number,
): LeaseProposalResult {
  if (body.type === 'leaseGrant') {
    const granted = refusalRecorded(store, entry, () =>
      lessor.applyGrant(body.leaseGrant.id, body.leaseGrant.ttlSeconds, nowMs),
    );
    store.recordApplied(entry.index, entry.term);
    return { type: 'leaseGrant', leaseGrant: granted };
  }
  if (body.type === 'leaseCheckpoint') {
    for (const checkpoint of body.leaseCheckpoint.checkpoints) lessor.applyCheckpoint(checkpoint, nowMs);
    store.recordApplied(entry.index, entry.term);
    return { type: 'leaseCheckpoint' };
  }
  const keys = refusalRecorded(store, entry, () => lessor.applyRevoke(body.leaseRevoke.id));
  // A txn without ops is read-only: the store records the entry and makes no revision.
  store.apply(entry.index, entry.term, { type: 'txn', txn: revokeTxn(keys) });
  return { type: 'leaseRevoke' };
}

function refusalRecorded<T>(store: LeaseApplyStore, entry: { index: number; term: number }, run: () => T): T {
  try {
    return run();
  } catch (error) {
    if (error instanceof EtcdError) store.recordApplied(entry.index, entry.term);
    throw error;
  }
}
