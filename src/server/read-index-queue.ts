/**
 * Linearizable reads waiting for Raft's ReadIndex, in three phases: unsent (waiting for a pass of
 * the Raft loop, and for a leader), requested (one ReadIndex request, named by its context bytes,
 * carries every read that was unsent), and confirmed (the leader named the index they must wait
 * for; they run once the member has applied it). Pure bookkeeping: no timers, no I/O.
 *
 * A context must be unique across the cluster, not only on this member: the leader keeps pending
 * ReadIndex requests by context and ignores a second request whose context is already pending, so
 * when two members both sent "7" at once, the second member's reads were never answered and failed
 * with "request timed out". etcd names each read with its ID generator (member ID and start time);
 * the contexts here start with the same two, from readIndexContextPrefix.
 */
import { assert } from '../lib/assert.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const noneDue: readonly never[] = Object.freeze([]);

/** What a member's contexts start with: its ID and its start time, as etcd's read request IDs. */
export function readIndexContextPrefix(memberId: bigint, startedAtMs: number): string {
  assert(memberId > 0n, () => `a member ID must be positive, not ${memberId}`);
  assert(Number.isSafeInteger(startedAtMs) && startedAtMs >= 0, () => `start time ${startedAtMs} ms is not a time`);
  return `${memberId.toString(16)}.${startedAtMs.toString(36)}`;
}

export class ReadIndexQueue<Read> {
  private unsent: Read[] = [];
  private readonly requested = new Map<string, Read[]>();
  private readonly confirmed: { index: number; reads: Read[] }[] = [];
  private nextContext = 1;
  /** Requests a leader change left unanswered, whose reads failed (etcd's read_indexes_failed_total). */
  failedRequests = 0;
  /** Reads given up on after the request timeout (etcd's slow_read_indexes_total). */
  timedOutReads = 0;

  /** `contextPrefix`: this member's, from readIndexContextPrefix, so no other member sends the same context. */
  constructor(private readonly contextPrefix: string) {
    assert(contextPrefix !== '', 'a read index context prefix must not be empty');
  }

  /** Queues a read for the next ReadIndex request. */
  add(read: Read): void {
    this.unsent.push(read);
  }

  get hasUnsent(): boolean {
    return this.unsent.length > 0;
  }

  /** Reads in every phase. */
  get size(): number {
    let count = this.unsent.length;
    for (const reads of this.requested.values()) count += reads.length;
    for (const { reads } of this.confirmed) count += reads.length;
    return count;
  }

  /**
   * Moves every unsent read into one request and returns the context Raft's ReadIndex is to carry;
   * undefined when no read waits.
   */
  takeRequest(): Uint8Array | undefined {
    if (this.unsent.length === 0) return undefined;
    const context = `${this.contextPrefix}.${this.nextContext++}`;
    assert(!this.requested.has(context), () => `read index context ${context} is requested twice`);
    this.requested.set(context, this.unsent);
    this.unsent = [];
    return encoder.encode(context);
  }

  /**
   * Raft's answer to a request: its reads run once `index` is applied. A context this queue does
   * not know (another member's, or answered already) is ignored.
   */
  confirm(requestContext: Uint8Array, index: number): void {
    assert(
      Number.isSafeInteger(index) && index >= 0,
      () => `a read index must be a non-negative integer, not ${index}`,
    );
    const context = decoder.decode(requestContext);
    const reads = this.requested.get(context);
    if (reads === undefined) return;
    this.requested.delete(context);
    this.confirmed.push({ index, reads });
  }

  /** The confirmed reads whose index is applied, in the order they were confirmed; they leave the queue. */
  takeDue(appliedIndex: number): readonly Read[] {
    const first = this.confirmed[0];
    if (first === undefined || first.index > appliedIndex) return noneDue;
    const due: Read[] = [];
    // A later confirmation may name a lower index than an earlier one; it waits its turn, as before.
    while (this.confirmed.length > 0 && (this.confirmed[0] as { index: number }).index <= appliedIndex) {
      for (const read of (this.confirmed.shift() as { reads: Read[] }).reads) due.push(read);
    }
    return due;
  }

  /**
   * The reads of every request Raft has not answered, which leave the queue: after a leader change
   * no leader will answer them (the old one dropped its pending requests), so etcd fails them with
   * "leader changed" for the client to retry. Counted as one failed request when there were any.
   */
  takeUnanswered(): Read[] {
    if (this.requested.size === 0) return [];
    const unanswered = [...this.requested.values()].flat();
    this.requested.clear();
    this.failedRequests++;
    return unanswered;
  }

  /** A read waiting in the queue was given up on after the request timeout. */
  countTimedOut(): void {
    this.timedOutReads++;
  }

  /** Every read in every phase; the queue is empty afterwards. */
  takeAll(): Read[] {
    const all = [
      ...this.unsent,
      ...[...this.requested.values()].flat(),
      ...this.confirmed.flatMap((item) => item.reads),
    ];
    this.unsent = [];
    this.requested.clear();
    this.confirmed.length = 0;
    return all;
  }
}
