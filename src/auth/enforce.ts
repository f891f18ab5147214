/**
 * etcd's permission rules for each kind of request (apply_auth.go, and the checks later releases
 * added): Range needs read; Put and DeleteRange need write, and read too when they return the
 * previous values; a Txn needs read on every compare and whatever each of its ops needs, nested
 * txns included; a Put on a lease, and a LeaseRevoke, need write on every key the lease holds.
 * Each function throws etcd's error, or returns when the request is allowed.
 */
import type {
  DeleteRangeRequest,
  ProposalBody,
  PutRequest,
  RangeRequest,
  RequestOp,
  TxnRequest,
} from '../api/types.js';
import type { AuthStore } from './auth-store.js';
import type { AuthInfo } from './types.js';

const noRangeEnd = new Uint8Array(0);

/** What the checks need of the lessor: the keys a lease holds. */
export interface LeaseKeys {
  keysOf(id: bigint): Uint8Array[];
}

export function checkRange(auth: AuthStore, caller: AuthInfo | undefined, request: RangeRequest): void {
  auth.checkRange(caller, request.key, request.rangeEnd);
}

export function checkPut(auth: AuthStore, caller: AuthInfo | undefined, request: PutRequest, leases: LeaseKeys): void {
  auth.checkWrite(caller, request.key, noRangeEnd);
  if (request.lease !== 0n) checkLeaseKeys(auth, caller, request.lease, leases);
  if (request.prevKv) auth.checkRange(caller, request.key, noRangeEnd);
}

export function checkDeleteRange(auth: AuthStore, caller: AuthInfo | undefined, request: DeleteRangeRequest): void {
  auth.checkWrite(caller, request.key, request.rangeEnd);
  if (request.prevKv) auth.checkRange(caller, request.key, request.rangeEnd);
}

export function checkTxn(auth: AuthStore, caller: AuthInfo | undefined, request: TxnRequest, leases: LeaseKeys): void {
  for (const compare of request.compare) auth.checkRange(caller, compare.key, compare.rangeEnd);
  for (const op of request.success) checkOp(auth, caller, op, leases);
  for (const op of request.failure) checkOp(auth, caller, op, leases);
}

function checkOp(auth: AuthStore, caller: AuthInfo | undefined, op: RequestOp, leases: LeaseKeys): void {
  switch (op.type) {
    case 'range':
      return checkRange(auth, caller, op.range);
    case 'put':
      return checkPut(auth, caller, op.put, leases);
    case 'deleteRange':
      return checkDeleteRange(auth, caller, op.deleteRange);
    case 'txn':
      return checkTxn(auth, caller, op.txn, leases);
  }
}

/** Write on every key lease `id` holds (etcd's checkLeasePuts). */
export function checkLeaseKeys(auth: AuthStore, caller: AuthInfo | undefined, id: bigint, leases: LeaseKeys): void {
  for (const key of leases.keysOf(id)) auth.checkWrite(caller, key, noRangeEnd);
}

/**
 * The check a committed proposal gets when it is applied with auth enabled, as etcd's auth
 * applier does; what is checked at the API only (admin calls, lease TTLs) is not repeated here.
 * A lease revocation without a caller comes from the leader's expiry loop and is always allowed.
 */
export function checkProposal(
  auth: AuthStore,
  caller: AuthInfo | undefined,
  body: ProposalBody,
  leases: LeaseKeys,
): void {
  switch (body.type) {
    case 'put':
      return checkPut(auth, caller, body.put, leases);
    case 'deleteRange':
      return checkDeleteRange(auth, caller, body.deleteRange);
    case 'txn':
      return checkTxn(auth, caller, body.txn, leases);
    case 'leaseRevoke':
      if (caller !== undefined) checkLeaseKeys(auth, caller, body.leaseRevoke.id, leases);
      return;
    case 'compaction':
    case 'leaseGrant':
    case 'leaseCheckpoint':
    case 'memberAttributes':
    case 'clusterVersion':
    case 'auth':
    case 'alarm':
      return;
  }
}
