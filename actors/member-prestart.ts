/**
 * Starts the member's worker thread before the supervisor loads its own modules and reads its
 * flags, so the two start-ups overlap on a multi-core machine (about a third of a second to
 * healthy here). This module imports nothing heavy on purpose.
 */
import { Worker } from 'node:worker_threads';

export const memberWorkerUrl = new URL('./member-worker.js', import.meta.url);

/** A member thread waiting for its MemberInitMessage; unreferenced until the supervisor takes it. */
export function prestartMemberWorker(): Worker {
  const worker = new Worker(memberWorkerUrl, { workerData: null });
  worker.unref();
  return worker;
}
