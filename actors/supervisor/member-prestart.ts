/**
 * Starts the member's worker thread before the supervisor loads its own modules and reads its
 * flags, so the two start-ups overlap on a multi-core machine (about a third of a second to
 * healthy here). This module imports nothing heavy on purpose.
 */
import type { Worker } from 'node:worker_threads';
import { prestartThread } from './thread-start.js';

export const memberWorkerUrl = new URL('../member/worker-entry.cjs', import.meta.url);

/**
 * A member thread's heap limits. V8 grows the young generation to 48 MB (16 MB semi-spaces)
 * under allocation, and keeps it: 10,000 watchers made a member 23 MB larger, 2.4 KB each, most
 * of it young-generation room rather than watchers. With 8 MB semi-spaces the same watchers cost
 * 1.1 KB each; scavenges come twice as often, each costing the same few milliseconds.
 */
export const memberThreadLimits = { maxYoungGenerationSizeMb: 24 } as const;

/** A member thread waiting for its MemberWorkerData (thread-start.ts's handOver). */
export function prestartMemberWorker(): Worker {
  return prestartThread(memberWorkerUrl, memberThreadLimits);
}
