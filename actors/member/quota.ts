/**
 * etcd's backend quota (--quota-backend-bytes), checked where etcd checks it:
 *
 * - at the front door (etcd's quotaKVServer and quotaLeaseServer): a put, a txn with puts or a
 *   lease grant that would take the backend to the quota raises the NOSPACE alarm through Raft
 *   and is refused with "database space exceeded"; requests that write nothing pass;
 * - at apply (apply.ts, etcd's quotaApplierV3 and applierV3Capped): while NOSPACE stands, puts,
 *   txns with puts and lease grants are refused on every member; a write that passed the front
 *   door but finds the quota used up when applied is applied, answered with the same error, and
 *   this member raises the alarm.
 *
 * The alarm itself lives in the replicated alarm store (src/alarm), so one member's alarm caps
 * the whole cluster until `etcdctl alarm disarm`.
 */
import { errors } from '../../src/api/errors.js';
import type { PutRequest, TxnRequest } from '../../src/api/types.js';

/** What a lease grant adds to the backend, as etcd's quota counts it (leaseOverhead). */
export const leaseCostBytes = 64;
/** Per-key overhead etcd's quota adds to a put's key and value bytes (kvOverhead). */
const putOverheadBytes = 256;

export function putCostBytes(put: PutRequest): number {
  return put.key.length + put.value.length + putOverheadBytes;
}

/** A txn costs what its costlier branch puts (etcd's rule: the top-level puts of each branch). */
export function txnCostBytes(txn: TxnRequest): number {
  const branchCost = (ops: TxnRequest['success']) =>
    ops.reduce((sum, op) => sum + (op.type === 'put' ? putCostBytes(op.put) : 0), 0);
  return Math.max(branchCost(txn.success), branchCost(txn.failure));
}

export class BackendQuota {
  constructor(
    /** The quota; negative disables it, as in etcd. */
    private readonly quotaBytes: number,
    /** The backend's size now (the backend is replaced when a snapshot is installed). */
    private readonly backendBytes: () => number,
    /** Proposes this member's NOSPACE alarm and resolves once it is applied (or failed). */
    private readonly raiseNoSpace: () => Promise<void>,
  ) {}

  /** True when a write of `costBytes` does not fit in the quota (etcd's !Available); writes of 0 always fit. */
  exceeded(costBytes: number): boolean {
    if (costBytes === 0 || this.quotaBytes < 0) return false;
    return this.backendBytes() + costBytes >= this.quotaBytes;
  }

  /** The front door's check: a write that does not fit raises NOSPACE, then is refused (etcd logs nothing here). */
  async check(costBytes: number): Promise<void> {
    if (!this.exceeded(costBytes)) return;
    await this.raiseNoSpace();
    throw errors.noSpace();
  }
}
