/**
 * A min-heap of (lease ID, due time), the leader's schedule of when to look at a lease again.
 * Entries are never updated in place: a renewal pushes a new entry and the lessor ignores the
 * old one when it surfaces (it no longer matches the lease's due time). This keeps each
 * operation O(log n) without an index from ID to heap slot.
 */

export interface ExpiryEntry {
  id: bigint;
  dueMs: number;
}

export class ExpiryQueue {
  private heap: ExpiryEntry[] = [];

  get size(): number {
    return this.heap.length;
  }

  push(entry: ExpiryEntry): void {
    const heap = this.heap;
    heap.push(entry);
    let at = heap.length - 1;
    while (at > 0) {
      const parent = (at - 1) >> 1;
      if (heap[parent]!.dueMs <= entry.dueMs) break;
      heap[at] = heap[parent]!;
      at = parent;
    }
    heap[at] = entry;
  }

  peek(): ExpiryEntry | undefined {
    return this.heap[0];
  }

  pop(): ExpiryEntry | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (top === undefined || last === undefined || heap.length === 0) return top;
    let at = 0;
    for (;;) {
      const left = 2 * at + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && heap[right]!.dueMs < heap[left]!.dueMs ? right : left;
      if (heap[child]!.dueMs >= last.dueMs) break;
      heap[at] = heap[child]!;
      at = child;
    }
    heap[at] = last;
    return top;
  }

  /** Replaces the contents with `entries` (any order). */
  reset(entries: ExpiryEntry[] = []): void {
    this.heap = [];
    for (const entry of entries) this.push(entry);
  }
}
