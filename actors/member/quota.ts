/**
 * etcd's backend quota (--quota-backend-bytes): a write that would take the backend past it raises
 * the NOSPACE alarm, and from then on every write is refused with "database space exceeded" and
 * /health reports the alarm. Unlike etcd, the alarm is this member's alone and lasts until restart
 * (the Alarm API that replicates and disarms it is not built yet); it lives apart from the KV and
 * lease fronts, which both check it, so that API has one place to land.
 */
import { errors } from '../../src/api/errors.js';
import type { PutRequest, TxnRequest } from '../../src/api/types.js';
import type { Logger } from '../shared/logger.js';

/** What a lease grant adds to the backend, as etcd's quota counts it. */
export const leaseCostBytes = 64;
/** Per-key overhead etcd's quota adds to a put's key and value bytes. */
const putOverheadBytes = 128;

export function putCostBytes(put: PutRequest): number {
  return put.key.length + put.value.length + putOverheadBytes;
}

/** A txn costs what its costlier branch writes (etcd's rule), nested txns included. */
export function txnCostBytes(txn: TxnRequest): number {
  const branchCost = (ops: TxnRequest['success']) =>
    ops.reduce(
      (sum, op) => sum + (op.type === 'put' ? putCostBytes(op.put) : op.type === 'txn' ? txnCostBytes(op.txn) : 0),
      0,
    );
  return Math.max(branchCost(txn.success), branchCost(txn.failure));
}

export class BackendQuota {
  private alarmed = false;

  constructor(
    private readonly quotaBytes: number,
    /** The backend's size now (the backend is replaced when a snapshot is installed). */
    private readonly backendBytes: () => number,
    private readonly logger: Logger,
  ) {}

  /** True once the quota was exceeded (etcd's NOSPACE alarm). */
  get noSpaceAlarm(): boolean {
    return this.alarmed;
  }

  /** Throws "database space exceeded" when a write of `costBytes` would pass the quota, or did before. */
  check(costBytes: number): void {
    if (!this.alarmed && this.backendBytes() + costBytes > this.quotaBytes) {
      this.alarmed = true;
      this.logger.warn(
        { 'quota-backend-bytes': this.quotaBytes, 'backend-bytes': this.backendBytes() },
        'raised NOSPACE alarm: backend quota exceeded',
      );
    }
    if (this.alarmed) throw errors.noSpace();
  }
}
