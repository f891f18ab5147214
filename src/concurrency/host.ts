/**
 * What etcd's lock and election recipes need from a member. etcd runs them as a client of its
 * own server (KV, a lease grant and watches); a tsetcd member offers the same three things here.
 */
import type { CallerCredentials } from '../auth/types.js';
import type { KeyValue, KvService, ResponseHeader } from '../api/types.js';

/** One change of a watched key; a delete's kv carries the key and the deleting revision. */
export interface ConcurrencyWatchEvent {
  type: 'put' | 'delete';
  kv: KeyValue;
}

/** Changes of whole revisions, in revision order, with the header a watch response would carry. */
export interface ConcurrencyWatchBatch {
  header: ResponseHeader;
  events: ConcurrencyWatchEvent[];
}

export interface ConcurrencyWatchRequest {
  key: Uint8Array;
  /** As in a Range: empty for the key alone, otherwise the exclusive end of the span. */
  rangeEnd: Uint8Array;
  /** The first revision whose changes are wanted; it may lie in the past (history is replayed). */
  startRevision: number;
}

export interface ConcurrencyHost {
  /** Linearizable KV, exactly as the KV service answers it (writes go through Raft). */
  kv: KvService;
  /**
   * The host as a call's caller sees it, while auth is enabled: its KV requests carry the call's
   * credentials, so a recipe may do only what its caller may (etcd serves the recipes through a
   * client of itself that passes the caller's token on). Absent or returning itself: no auth.
   */
  forCaller?(credentials: CallerCredentials): ConcurrencyHost;
  /**
   * Grants a new lease with a server-chosen ID and this TTL, as LeaseGrant with ID 0 does; etcd's
   * recipes do this when a request names lease 0.
   */
  grantLease(ttlSeconds: number): Promise<bigint>;
  /**
   * Calls `onBatch` for every change in the span from `startRevision` on, never skipping or
   * repeating a revision, until `signal` aborts. The promise settles when the watch is over:
   * resolved once unregistered after the abort, rejected with an EtcdError when it cannot go on
   * (errors.compacted() for a compacted start revision, errors.stopped() when the member stops).
   */
  watch(
    request: ConcurrencyWatchRequest,
    onBatch: (batch: ConcurrencyWatchBatch) => void,
    signal: AbortSignal,
  ): Promise<void>;
}
