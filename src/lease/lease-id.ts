/**
 * Server-chosen lease IDs, built like etcd's idutil generator: the member ID's low 2 bytes on
 * top, then 5 bytes of the millisecond clock at start-up, then a 1-byte counter that may carry
 * into the clock bytes. Members differ in the top bytes and restarts differ in the clock bytes,
 * so IDs do not repeat. etcd keeps only the positive int64 range for leases and never uses 0.
 */

import { assert } from '../lib/assert.js';

const timestampBits = 40n;
const counterBits = 8n;
const suffixBits = timestampBits + counterBits;
const suffixMask = (1n << suffixBits) - 1n;
const timestampMask = (1n << timestampBits) - 1n;
const memberBitsMask = 0xffffn;
const positiveInt64Mask = (1n << 63n) - 1n;

/**
 * The `counter`-th ID (counting from 1) of a generator started at `startMs` on member `memberId`;
 * may be 0, which callers skip (LeaseIdGenerator does).
 */
export function leaseIdAt(memberId: bigint, startMs: number, counter: bigint): bigint {
  const prefix = (memberId & memberBitsMask) << suffixBits;
  const suffix = ((BigInt(Math.trunc(startMs)) & timestampMask) << counterBits) + counter;
  return (prefix | (suffix & suffixMask)) & positiveInt64Mask;
}

/** Hands out lease IDs for grants that did not name one. */
export class LeaseIdGenerator {
  private counter = 0n;

  constructor(
    private readonly memberId: bigint,
    private readonly startMs: number,
  ) {}

  /** The next ID: positive, never 0. */
  next(): bigint {
    this.counter++;
    let id = leaseIdAt(this.memberId, this.startMs, this.counter);
    // Only a wrap of all 56 low bits with member bits 0 gives 0; the following ID cannot be 0 too.
    if (id === 0n) {
      this.counter++;
      id = leaseIdAt(this.memberId, this.startMs, this.counter);
    }
    assert(id > 0n, () => `lease IDs must be positive, generated ${id}`);
    return id;
  }
}
