/**
 * Starts the member's worker thread before the supervisor loads its own modules and reads its
 * flags, so the two start-ups overlap on a multi-core machine (about a third of a second to
 * healthy here). This module imports nothing heavy on purpose.
 */
import type { Worker } from 'node:worker_threads';
import { prestartThread } from './thread-start.js';

export const memberWorkerUrl = new URL('./member-worker.js', import.meta.url);

/** A member thread waiting for its MemberWorkerData (thread-start.ts's handOver). */
export function prestartMemberWorker(): Worker {
  return prestartThread(memberWorkerUrl);
}
