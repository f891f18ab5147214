/**
 * Threads started ahead of their data: a thread can load its modules while its parent is still
 * working out what to give it. Such a thread is started with `workerData: null` and takes its
 * data as the first message; one started with workerData begins at once.
 */
import { Worker, parentPort, workerData, type ResourceLimits, type TransferListItem } from 'node:worker_threads';

/** Starts a thread that waits for handOver(); unreferenced until then, so it never holds the process up. */
export function prestartThread(url: URL, resourceLimits?: ResourceLimits): Worker {
  const worker = new Worker(
    url,
    resourceLimits === undefined ? { workerData: null } : { workerData: null, resourceLimits },
  );
  worker.unref();
  return worker;
}

/** Gives a prestarted thread its data. */
export function handOver(worker: Worker, data: unknown, transferList: readonly TransferListItem[] = []): void {
  worker.ref();
  worker.postMessage(data, transferList);
}

/**
 * Calls `begin` with this thread's data: its workerData, or the first message when it was
 * prestarted. `begin` runs inside that message's handler, so listeners it adds see the next one.
 */
export function onThreadData<T>(begin: (data: T) => void): void {
  if (parentPort === null) throw new Error('onThreadData must run in a worker thread');
  if (workerData !== null && workerData !== undefined) begin(workerData as T);
  else parentPort.once('message', (data: T) => begin(data));
}
