/**
 * The leader's view of one follower: how far it matches, what to send next, and the flow-control
 * state (probe one message at a time, replicate optimistically, or wait for a snapshot).
 */
import { assert } from '../lib/assert.js';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** A bounded window of in-flight MsgApp last indexes, freed as acknowledgements arrive. */
export class Inflights {
  private readonly indexes: number[] = [];
  private head = 0;
  readonly sizeMax: number;

  constructor(sizeMax: number) {
    assert(sizeMax > 0, () => `inflight window must be positive, got ${sizeMax}`);
    this.sizeMax = sizeMax;
  }

  count(): number {
    return this.indexes.length - this.head;
  }

  full(): boolean {
    return this.count() >= this.sizeMax;
  }

  add(index: number): void {
    assert(!this.full(), 'cannot add into a full inflights window');
    this.indexes.push(index);
  }

  /** Frees every in-flight message whose last index is <= `index`. */
  freeLE(index: number): void {
    while (this.head < this.indexes.length && (this.indexes[this.head] as number) <= index) this.head += 1;
    this.compactIfSparse();
  }

  freeFirstOne(): void {
    if (this.count() > 0) this.head += 1;
    this.compactIfSparse();
  }

  reset(): void {
    this.indexes.length = 0;
    this.head = 0;
  }

  private compactIfSparse(): void {
    if (this.head > this.sizeMax) {
      this.indexes.splice(0, this.head);
      this.head = 0;
    }
  }
}

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** Index of the snapshot in flight while in the snapshot state. */
  pendingSnapshot = 0;
  /** Heard from within the last election timeout; check-quorum reads it. */
  recentActive = false;
  /** In probe state: one MsgApp is outstanding, so wait for its answer or a heartbeat. */
  probeSent = false;
  isLearner: boolean;
  readonly inflights: Inflights;

  constructor(next: number, inflightMax: number, isLearner: boolean) {
    this.next = next;
    this.inflights = new Inflights(inflightMax);
    this.isLearner = isLearner;
  }

  private resetState(state: ProgressState): void {
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      const pendingSnapshot = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, pendingSnapshot + 1);
    } else {
      this.resetState('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  /** Records an acknowledgement up to `index`; false when it was stale. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  optimisticUpdate(index: number): void {
    this.next = index + 1;
  }

  /**
   * Handles a rejection of the MsgApp at `rejected`; `matchHint` is the follower's probe point.
   * False when the rejection is stale.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), 1);
    this.probeSent = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }
}
