/**
 * etcd's lessor: which leases exist, their granted TTLs and the keys attached to them, and, on
 * the leader only, when each lease expires.
 *
 * Two kinds of state live here. Replicated state (leases, TTLs, attached keys) changes only
 * through operations applied in log order on every member: applyGrant, applyRevoke and the
 * MVCC events of applied writes. Leader-only volatile state (expiry times) starts at promote()
 * and is dropped at demote(); followers hold every lease "forever", so expiry is decided by the
 * leader alone and reaches the others as replicated revocations.
 *
 * There is no clock here: every time comes in as a `nowMs` argument.
 */

import { errors } from '../api/errors.js';
import type { LeaseCheckpoint } from '../api/types.js';
import { assert } from '../lib/assert.js';
import {
  expiredLeaseRetryMsDefault,
  leaseCheckpointsPerBatchMax,
  leaseRevokeRatePerSecondMax,
  leaseRevokesPerCheckMax,
  leaseTtlSecondsMax,
} from '../lib/limits.js';
import type { Backend, LeaseRecord } from '../mvcc/backend.js';
import { keyToString, stringToKey } from '../lib/bytes.js';
import type { MvccEvent } from '../mvcc/write-txn.js';
import { ExpiryQueue } from './expiry-queue.js';

const noLease = 0n;
/** Expiry of a lease the leader is not timing (etcd's "forever"). */
const forever = Number.POSITIVE_INFINITY;
const msPerSecond = 1_000;

/**
 * etcd's minimum lease TTL: one and a half election timeouts, rounded up to whole seconds, so a
 * lease cannot expire during the election that follows a leader failure.
 */
export function minLeaseTtlSeconds(electionTicks: number, heartbeatMs: number): number {
  assert(
    electionTicks > 0 && heartbeatMs > 0,
    () => `election ticks and heartbeat must be positive, saw ${electionTicks}, ${heartbeatMs}`,
  );
  // Go's integer division of (3 * ticks) / 2 comes first, as etcd writes it.
  return Math.ceil((Math.floor((3 * electionTicks) / 2) * heartbeatMs) / msPerSecond);
}

/** What etcd's Promote extends every lease by: one election timeout (ticks times heartbeat). */
export function promoteExtendMs(electionTicks: number, heartbeatMs: number): number {
  return electionTicks * heartbeatMs;
}

export interface LessorOptions {
  /** Grants below this TTL are raised to it; see minLeaseTtlSeconds. */
  minTtlSeconds: number;
  /** Wait before an expired lease is handed over again; etcd uses its request timeout. */
  expiredRetryMs?: number;
  /**
   * With etcd's --experimental-enable-lease-checkpoint: how often the leader records a lease's
   * remaining TTL through Raft, so the next leader resumes from it instead of the full TTL.
   */
  checkpointIntervalMs?: number;
}

/** A lease as TimeToLive reports it. */
export interface LeaseTimeToLive {
  id: bigint;
  /** Remaining whole seconds on the leader; the granted TTL on a member that is not timing leases. */
  ttlSeconds: number;
  grantedTtlSeconds: number;
  /** Attached keys in byte order; empty unless asked for. */
  keys: Uint8Array[];
}

interface Lease {
  id: bigint;
  ttlSeconds: number;
  /** Wall-clock expiry on the leader, `forever` elsewhere. */
  expiryMs: number;
  /** Due time of this lease's live entry in the expiry queue; other entries for it are stale. */
  dueMs: number;
  keys: Set<string>;
  /** The remaining TTL the last applied checkpoint recorded, 0 for none: promote() starts from it. */
  remainingTtlSeconds: number;
  /** Due time of this lease's live entry in the checkpoint queue, `forever` when none. */
  checkpointDueMs: number;
}

/** The backend methods the lessor uses: lease records are written with the entry being applied. */
export type LeaseBackend = Pick<Backend, 'write' | 'scanLeases'>;

export class Lessor {
  private readonly leaseMap = new Map<bigint, Lease>();
  /** Which lease each attached key belongs to, keyed by the key's latin1 string. */
  private readonly itemMap = new Map<string, bigint>();
  private readonly queue = new ExpiryQueue();
  /** On the leader with checkpoints on: when each lease's remaining TTL is next recorded. */
  private readonly checkpointQueue = new ExpiryQueue();
  /** Leases renewed while a checkpoint was recorded for them: the leader clears it through Raft. */
  private clears: bigint[] = [];
  private primary = false;
  private readonly minTtlSeconds: number;
  private readonly expiredRetryMs: number;
  private readonly checkpointIntervalMs: number | undefined;

  private constructor(
    private backend: LeaseBackend,
    options: LessorOptions,
  ) {
    assert(options.minTtlSeconds >= 1, () => `minimum lease TTL must be at least 1 s, saw ${options.minTtlSeconds}`);
    this.minTtlSeconds = options.minTtlSeconds;
    this.expiredRetryMs = options.expiredRetryMs ?? expiredLeaseRetryMsDefault;
    this.checkpointIntervalMs = options.checkpointIntervalMs;
  }

  /**
   * Loads every lease the backend holds, as etcd's recover: TTLs below today's minimum are raised,
   * nobody is timed until promote(). Attach keys afterwards with recoverAttachments().
   */
  static open(backend: LeaseBackend, options: LessorOptions): Lessor {
    const lessor = new Lessor(backend, options);
    lessor.load();
    return lessor;
  }

  /**
   * Forgets every lease and loads those of `backend` instead (a snapshot received from the leader),
   * as etcd's lessor Recover. Only a follower installs snapshots, so nothing is timed afterwards.
   */
  recover(backend: LeaseBackend): void {
    assert(!this.primary, 'a primary lessor never recovers from a snapshot');
    this.backend = backend;
    this.leaseMap.clear();
    this.itemMap.clear();
    this.queue.reset();
    this.load();
  }

  private load(): void {
    this.backend.scanLeases((record) => {
      const ttlSeconds = Math.max(record.ttlSeconds, this.minTtlSeconds);
      this.leaseMap.set(record.id, newLease(record.id, ttlSeconds));
    });
  }

  /** Number of leases. */
  get size(): number {
    return this.leaseMap.size;
  }

  /** True between promote() and demote(): this lessor times leases and decides expiry. */
  get isPrimary(): boolean {
    return this.primary;
  }

  exists(id: bigint): boolean {
    return this.leaseMap.has(id);
  }

  /**
   * Re-attaches the keys of the restored key space: every live key with a lease, by its latin1
   * name (keyToString), as KvStore.takeRestoredLeases hands them. A key naming a lease that no
   * longer exists is skipped, as etcd logs and skips it; their count is returned.
   */
  recoverAttachments(leased: ReadonlyMap<string, bigint>): number {
    let orphans = 0;
    for (const [name, id] of leased) {
      if (id === noLease) continue;
      if (this.leaseMap.has(id)) this.attachName(name, id);
      else orphans++;
    }
    return orphans;
  }

  /**
   * Applies a committed LeaseGrant. The ID was chosen before proposing (0 is refused, as etcd);
   * a TTL below the minimum is raised to it. Writes the lease record through the backend, so it
   * joins the batch of the entry being applied. Returns the TTL actually granted.
   */
  applyGrant(id: bigint, ttlSeconds: number, nowMs: number): { id: bigint; ttlSeconds: number } {
    if (id === noLease) throw errors.leaseNotFound();
    if (ttlSeconds > leaseTtlSecondsMax) throw errors.leaseTtlTooLarge();
    if (this.leaseMap.has(id)) throw errors.leaseExist();
    const granted = Math.max(Math.trunc(ttlSeconds), this.minTtlSeconds);
    const lease = newLease(id, granted);
    this.leaseMap.set(id, lease);
    if (this.primary) {
      this.schedule(lease, nowMs + granted * msPerSecond);
      this.scheduleCheckpoint(lease, nowMs);
    }
    this.persist({ puts: [{ id, ttlSeconds: granted }], deletes: [] });
    return { id, ttlSeconds: granted };
  }

  /**
   * Applies a committed LeaseRevoke: forgets the lease and its attachments, deletes its record,
   * and returns the attached keys in byte order. The caller deletes those keys in the same
   * apply, as one transaction (one revision), with revokeTxn().
   */
  applyRevoke(id: bigint): Uint8Array[] {
    const lease = this.leaseMap.get(id);
    if (lease === undefined) throw errors.leaseNotFound();
    this.leaseMap.delete(id);
    // Latin1 strings sort like their bytes, so every member deletes in the same order.
    const keys = [...lease.keys].sort();
    for (const key of keys) this.itemMap.delete(key);
    this.persist({ puts: [], deletes: [id] });
    return keys.map(stringToKey);
  }

  /** Follows attachments through the events of an applied write: puts attach, moves re-attach, deletes detach. */
  applyEvents(events: readonly MvccEvent[]): void {
    for (const event of events) {
      if (event.type === 'delete') this.detach(event.kv.key);
      else this.attach(event.kv.key, event.kv.lease);
    }
  }

  /** Attaches `key` to lease `id` (0 detaches), leaving whatever lease held it before. */
  attach(key: Uint8Array, id: bigint): void {
    this.attachName(keyToString(key), id);
  }

  private attachName(name: string, id: bigint): void {
    const previous = this.itemMap.get(name);
    if (previous === id) return;
    if (previous !== undefined) this.detachName(name, previous);
    if (id === noLease) return;
    const lease = this.leaseMap.get(id);
    // The store checks the lease exists before a put is applied, so a missing one is a bug.
    assert(lease !== undefined, () => `attach of key ${JSON.stringify(name)} to lease ${id} that does not exist`);
    lease.keys.add(name);
    this.itemMap.set(name, id);
  }

  /** Detaches `key` from its lease, if it has one. */
  detach(key: Uint8Array): void {
    const name = keyToString(key);
    const previous = this.itemMap.get(name);
    if (previous !== undefined) this.detachName(name, previous);
  }

  /** The lease `key` is attached to, 0 if none. */
  leaseOf(key: Uint8Array): bigint {
    return this.itemMap.get(keyToString(key)) ?? noLease;
  }

  /**
   * The member became leader and applied everything from earlier terms: start timing every lease
   * from now, each extended by `extendMs` (etcd passes one election timeout), and spread out
   * piles of leases that would otherwise all expire in the same second.
   */
  promote(nowMs: number, extendMs: number): void {
    this.primary = true;
    for (const lease of this.leaseMap.values())
      lease.expiryMs = nowMs + extendMs + startingTtlSeconds(lease) * msPerSecond;
    if (this.leaseMap.size >= leaseRevokeRatePerSecondMax) this.spreadExpiries(nowMs, extendMs);
    this.queue.reset();
    this.checkpointQueue.reset();
    for (const lease of this.leaseMap.values()) {
      this.schedule(lease, lease.expiryMs);
      this.scheduleCheckpoint(lease, nowMs);
    }
  }

  /** The member is no longer leader: stop timing; every lease lives until a leader revokes it. */
  demote(): void {
    this.primary = false;
    for (const lease of this.leaseMap.values()) {
      lease.expiryMs = forever;
      lease.dueMs = forever;
      lease.checkpointDueMs = forever;
    }
    this.queue.reset();
    this.checkpointQueue.reset();
    this.clears = [];
  }

  /**
   * KeepAlive on the leader: restarts the lease's full TTL from now and returns it. A lease past
   * its expiry is as good as revoked (its revocation is on the way), so it is not found.
   */
  renew(id: bigint, nowMs: number): number {
    if (!this.primary) throw errors.notLeader();
    const lease = this.leaseMap.get(id);
    if (lease === undefined || lease.expiryMs <= nowMs) throw errors.leaseNotFound();
    // A renewal restarts the full TTL, so a recorded remaining TTL no longer holds: clear it
    // everywhere (etcd proposes that only when one is set, so at most two entries per interval).
    if (this.checkpointIntervalMs !== undefined && lease.remainingTtlSeconds > 0) {
      lease.remainingTtlSeconds = 0;
      this.clears.push(id);
    }
    this.schedule(lease, nowMs + lease.ttlSeconds * msPerSecond);
    // One pending checkpoint per lease is enough: frequent renewals must not pile up entries.
    if (lease.checkpointDueMs === forever) this.scheduleCheckpoint(lease, nowMs);
    return lease.ttlSeconds;
  }

  /** Applies a committed LeaseCheckpoint on any member; the leader schedules the next one. */
  applyCheckpoint(checkpoint: LeaseCheckpoint, nowMs: number): void {
    const lease = this.leaseMap.get(checkpoint.id);
    if (lease === undefined) return; // revoked meanwhile
    lease.remainingTtlSeconds = checkpoint.remainingTtlSeconds;
    if (this.primary && lease.checkpointDueMs === forever) this.scheduleCheckpoint(lease, nowMs);
  }

  /**
   * On the leader: checkpoints to propose now, at most `max`: clears after renewals first, then
   * each lease whose interval has passed, with its remaining TTL in whole seconds rounded up.
   */
  dueCheckpoints(nowMs: number, max: number = leaseCheckpointsPerBatchMax): LeaseCheckpoint[] {
    if (!this.primary || this.checkpointIntervalMs === undefined) return [];
    const due = this.clears.splice(0, max).map((id) => ({ id, remainingTtlSeconds: 0 }));
    for (
      let entry = this.checkpointQueue.peek();
      entry !== undefined && due.length < max;
      entry = this.checkpointQueue.peek()
    ) {
      if (entry.dueMs > nowMs) break;
      this.checkpointQueue.pop();
      const lease = this.leaseMap.get(entry.id);
      if (lease === undefined || lease.checkpointDueMs !== entry.dueMs) continue; // revoked or rescheduled
      lease.checkpointDueMs = forever;
      const remainingMs = lease.expiryMs - nowMs;
      if (remainingMs > 0) due.push({ id: lease.id, remainingTtlSeconds: Math.ceil(remainingMs / msPerSecond) });
    }
    return due;
  }

  /**
   * Expired leases for the leader to propose revocations of, at most `max`, soonest first. Each one
   * handed over is offered again after the retry interval if its revocation has not landed by then.
   */
  expiredLeases(nowMs: number, max: number = leaseRevokesPerCheckMax): bigint[] {
    const expired: bigint[] = [];
    if (!this.primary) return expired;
    this.compactQueue();
    for (let entry = this.queue.peek(); entry !== undefined && expired.length < max; entry = this.queue.peek()) {
      if (entry.dueMs > nowMs) break;
      this.queue.pop();
      const lease = this.leaseMap.get(entry.id);
      if (lease === undefined || lease.dueMs !== entry.dueMs) continue; // revoked or renewed since
      if (lease.expiryMs > nowMs) continue;
      expired.push(lease.id);
      lease.dueMs = nowMs + this.expiredRetryMs;
      this.queue.push({ id: lease.id, dueMs: lease.dueMs });
    }
    return expired;
  }

  /** etcd's TimeToLive; throws leaseNotFound, which the API turns into TTL -1. */
  timeToLive(id: bigint, nowMs: number, withKeys: boolean): LeaseTimeToLive {
    const lease = this.leaseMap.get(id);
    if (lease === undefined) throw errors.leaseNotFound();
    // etcd truncates the remaining duration to whole seconds.
    const ttlSeconds =
      lease.expiryMs === forever ? lease.ttlSeconds : Math.trunc((lease.expiryMs - nowMs) / msPerSecond);
    const keys = withKeys ? [...lease.keys].sort().map(stringToKey) : [];
    return { id, ttlSeconds, grantedTtlSeconds: lease.ttlSeconds, keys };
  }

  /** The keys attached to lease `id` in byte order; empty when it does not exist (etcd's Lookup().Keys()). */
  keysOf(id: bigint): Uint8Array[] {
    const lease = this.leaseMap.get(id);
    return lease === undefined ? [] : [...lease.keys].sort().map(stringToKey);
  }

  /** Every lease ID, soonest expiry first (as etcd sorts them), ties by ID. */
  leases(): bigint[] {
    return [...this.leaseMap.values()]
      .sort((a, b) => a.expiryMs - b.expiryMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map((lease) => lease.id);
  }

  /** Granted TTL of lease `id`, undefined when it does not exist. */
  grantedTtlSeconds(id: bigint): number | undefined {
    return this.leaseMap.get(id)?.ttlSeconds;
  }

  private detachName(name: string, id: bigint): void {
    this.leaseMap.get(id)?.keys.delete(name);
    this.itemMap.delete(name);
  }

  /** etcd's scheduleCheckpointIfNeeded: only a lease that outlives the next interval gets one. */
  private scheduleCheckpoint(lease: Lease, nowMs: number): void {
    const intervalMs = this.checkpointIntervalMs;
    if (intervalMs === undefined || lease.expiryMs - nowMs <= intervalMs) return;
    lease.checkpointDueMs = nowMs + intervalMs;
    this.checkpointQueue.push({ id: lease.id, dueMs: lease.checkpointDueMs });
  }

  private schedule(lease: Lease, expiryMs: number): void {
    lease.expiryMs = expiryMs;
    lease.dueMs = expiryMs;
    this.queue.push({ id: lease.id, dueMs: expiryMs });
  }

  /** Renewals leave stale entries behind; rebuild once they outnumber the live ones. */
  private compactQueue(): void {
    if (this.queue.size <= 2 * this.leaseMap.size + leaseRevokeRatePerSecondMax) return;
    const live = [...this.leaseMap.values()].filter((lease) => lease.dueMs !== forever);
    this.queue.reset(live.map((lease) => ({ id: lease.id, dueMs: lease.dueMs })));
  }

  /**
   * etcd's Promote pile-up avoidance: walking leases by expiry, at most three quarters of the
   * revoke rate may expire in any one-second window; later ones move out by the overflow.
   */
  private spreadExpiries(nowMs: number, extendMs: number): void {
    const sorted = [...this.leaseMap.values()].sort((a, b) => a.expiryMs - b.expiryMs);
    const targetPerSecond = (3 * leaseRevokeRatePerSecondMax) / 4;
    let baseWindowMs = sorted[0]!.expiryMs - nowMs;
    let nextWindowMs = baseWindowMs + msPerSecond;
    let expires = 0;
    for (const lease of sorted) {
      const remainingMs = lease.expiryMs - nowMs;
      if (remainingMs > nextWindowMs) {
        baseWindowMs = remainingMs;
        nextWindowMs = baseWindowMs + msPerSecond;
        expires = 1;
        continue;
      }
      expires++;
      if (expires <= targetPerSecond) continue;
      const delayMs = msPerSecond * (expires / targetPerSecond) - (remainingMs - baseWindowMs);
      nextWindowMs = baseWindowMs + delayMs;
      lease.expiryMs = nowMs + delayMs + extendMs + lease.ttlSeconds * msPerSecond;
    }
  }

  private persist(leases: { puts: LeaseRecord[]; deletes: bigint[] }): void {
    this.backend.write({ puts: [], deletes: [], meta: {}, leases });
  }
}

function newLease(id: bigint, ttlSeconds: number): Lease {
  return {
    id,
    ttlSeconds,
    expiryMs: forever,
    dueMs: forever,
    keys: new Set(),
    remainingTtlSeconds: 0,
    checkpointDueMs: forever,
  };
}

/** What a lease's clock starts from at promote: the recorded remaining TTL, else the granted one. */
function startingTtlSeconds(lease: Lease): number {
  return lease.remainingTtlSeconds > 0 ? lease.remainingTtlSeconds : lease.ttlSeconds;
}
