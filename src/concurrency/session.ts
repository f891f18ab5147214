/**
 * etcd's recipe servers open a client session for each request: the lease the request names, or
 * a fresh one when it names lease 0. The session is orphaned at once (no keep-alives), so such a
 * fresh lease simply expires after its TTL unless the client learns its ID and keeps it alive.
 */
import { txnOpsDefault } from '../lib/limits.js';
import { checkTxnRequest } from '../api/validate.js';
import type { ResponseHeader, TxnRequest, TxnResult } from '../api/types.js';
import type { ConcurrencyHost } from './host.js';

/** clientv3/concurrency's default session TTL, used for the lease granted for lease 0. */
export const sessionTtlSecondsDefault = 60;

/** The lease a request's session runs under: the one named, or a new one for lease 0. */
export async function sessionLease(host: ConcurrencyHost, lease: bigint): Promise<bigint> {
  return lease === 0n ? host.grantLease(sessionTtlSecondsDefault) : lease;
}

/** A recipe txn, checked as the KV service checks a client's before it is proposed. */
export async function recipeTxn(
  host: ConcurrencyHost,
  request: TxnRequest,
): Promise<{ header: ResponseHeader; result: TxnResult }> {
  checkTxnRequest(request, txnOpsDefault);
  return host.kv.txn(request);
}
