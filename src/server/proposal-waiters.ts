/**
 * The proposals one member made and still waits on: each gets an ID (carried in its entry's
 * envelope), waits in a batch until the Raft loop hands every proposal made since its last pass to
 * Raft at once, and is answered when its entry is applied, or failed when Raft refuses the batch,
 * its deadline passes (expire) or the member stops. Pure bookkeeping: no timers, no I/O; the
 * caller passes the time.
 */
import { assert } from '../lib/assert.js';
import { Waiters, type Waiter } from './waiters.js';

/** A proposal's entry data, made but not yet handed to Raft. */
export interface UnproposedEntry {
  id: number;
  data: Uint8Array;
}

/** A proposal whose deadline passed, taken out of the waiters; `proposed`: Raft had its entry. */
export interface ExpiredProposal<T> {
  waiter: Waiter<T>;
  proposed: boolean;
  deadlineMs: number;
}

/** Proposal IDs a member may issue per millisecond of its uptime before a later start could reuse one. */
export const proposalIdsPerMsMax = 1024;

/**
 * The first proposal ID of a member started at `wallClockMs`. Entries a member proposed before a
 * restart may be committed and applied after it, and the restarted member must not take one of
 * them for its own new proposal with the same ID. Starting from the start time, scaled by
 * proposalIdsPerMsMax, puts every later start above every ID an earlier run reached (as etcd's
 * ID generator starts from the time), and stays a safe integer until the year 2248.
 */
export function firstProposalIdAt(wallClockMs: number): number {
  assert(Number.isSafeInteger(wallClockMs) && wallClockMs > 0, () => `wall clock ${wallClockMs} ms is not a time`);
  const firstId = wallClockMs * proposalIdsPerMsMax;
  assert(Number.isSafeInteger(firstId), () => `proposal IDs from ${wallClockMs} ms pass 2^53`);
  return firstId;
}

export class ProposalWaiters<T> {
  private readonly waiters = new Waiters<number, T>();
  private unproposed: UnproposedEntry[] = [];
  private nextId: number;
  /** Proposals failed so far (no leader, stopped): etcd's etcd_server_proposals_failed_total. */
  private failedCount = 0;
  /**
   * Proposal IDs with their deadlines, in the order they were added, from `deadlinesHead` on. All
   * proposals get the same timeout, so deadlines come in order and expire from the front; answered
   * proposals are dropped from the front as it is reached.
   */
  private deadlineIds: number[] = [];
  private deadlinesMs: number[] = [];
  private deadlinesHead = 0;

  /** `firstId`: the ID of the first proposal; IDs then count up by one. */
  constructor(firstId = 1) {
    assert(
      Number.isSafeInteger(firstId) && firstId >= 1,
      () => `the first proposal ID must be a positive integer, not ${firstId}`,
    );
    this.nextId = firstId;
  }

  /** The ID for the next proposal; its entry data carries it, then add() registers it. */
  issueId(): number {
    return this.nextId++;
  }

  /**
   * Registers proposal `id` (from issueId) and queues its data for the next batch; expire() fails
   * it once `deadlineMs` has passed (never by default).
   */
  add(
    id: number,
    data: Uint8Array,
    resolve: (value: T) => void,
    reject: (error: Error) => void,
    deadlineMs = Number.POSITIVE_INFINITY,
  ): void {
    assert(id < this.nextId, () => `proposal ID ${id} was never issued (the next is ${this.nextId})`);
    this.waiters.register(id, resolve, reject);
    this.unproposed.push({ id, data });
    if (deadlineMs === Number.POSITIVE_INFINITY) return;
    this.deadlineIds.push(id);
    this.deadlinesMs.push(deadlineMs);
  }

  /**
   * Takes out every waiting proposal whose deadline is at or before `nowMs`, oldest first; one not
   * yet handed to Raft leaves the next batch. The caller answers them.
   */
  expire(nowMs: number): ExpiredProposal<T>[] {
    const expiredIds: number[] = [];
    const deadlinesMs = new Map<number, number>();
    while (this.deadlinesHead < this.deadlineIds.length) {
      const id = this.deadlineIds[this.deadlinesHead] as number;
      const deadlineMs = this.deadlinesMs[this.deadlinesHead] as number;
      const waiting = this.waiters.has(id);
      if (waiting && deadlineMs > nowMs) break;
      this.deadlinesHead++;
      if (waiting) {
        expiredIds.push(id);
        deadlinesMs.set(id, deadlineMs);
      }
    }
    this.compactDeadlines();
    if (expiredIds.length === 0) return [];
    const expiring = new Set(expiredIds);
    const neverProposed = new Set(this.unproposed.filter((entry) => expiring.has(entry.id)).map((entry) => entry.id));
    if (neverProposed.size > 0) this.unproposed = this.unproposed.filter((entry) => !neverProposed.has(entry.id));
    this.failedCount += expiredIds.length;
    return expiredIds.map((id) => ({
      waiter: this.waiters.take(id) as Waiter<T>,
      proposed: !neverProposed.has(id),
      deadlineMs: deadlinesMs.get(id) as number,
    }));
  }

  /** True when proposals wait to be handed to Raft. */
  get hasUnproposed(): boolean {
    return this.unproposed.length > 0;
  }

  /** Proposals waiting to be answered, handed to Raft or not. */
  get size(): number {
    return this.waiters.size;
  }

  /** Every proposal made since the last call, oldest first; they stay registered until answered. */
  takeBatch(): UnproposedEntry[] {
    const batch = this.unproposed;
    this.unproposed = [];
    return batch;
  }

  /** Fails the proposals of a batch Raft refused (those not answered meanwhile). */
  failBatch(batch: readonly UnproposedEntry[], error: () => Error): void {
    for (const { id } of batch) {
      const waiter = this.waiters.take(id);
      if (waiter === undefined) continue;
      this.failedCount++;
      waiter.reject(error());
    }
  }

  /** Proposals failed so far, by failBatch or failAll. */
  get failed(): number {
    return this.failedCount;
  }

  /** Removes and returns the waiter of proposal `id`; undefined when none waits for it. */
  take(id: number): Waiter<T> | undefined {
    return this.waiters.take(id);
  }

  /** Drops the consumed front of the deadline queue once it is most of the arrays. */
  private compactDeadlines(): void {
    if (this.deadlinesHead < 1024 || this.deadlinesHead * 2 < this.deadlineIds.length) return;
    this.deadlineIds = this.deadlineIds.slice(this.deadlinesHead);
    this.deadlinesMs = this.deadlinesMs.slice(this.deadlinesHead);
    this.deadlinesHead = 0;
  }

  /** Fails every waiting proposal, handed to Raft or not, and forgets them. */
  failAll(error: () => Error): void {
    this.unproposed = [];
    this.deadlineIds = [];
    this.deadlinesMs = [];
    this.deadlinesHead = 0;
    this.failedCount += this.waiters.size;
    this.waiters.failAll(error);
  }
}
