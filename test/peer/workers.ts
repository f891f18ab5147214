/** Runs member transports in worker threads for the cross-thread tests and the throughput measurement. */
import { type MessagePort, Worker } from 'node:worker_threads';
import type { TransportWorkerData, WorkerCommand, WorkerReport } from './transport-worker.js';

/** Starts a worker running one member's transport and returns a way to talk to it. */
export function startWorker(workerData: TransportWorkerData, transferList: MessagePort[] = []) {
  const worker = new Worker(new URL('./transport-worker.js', import.meta.url), { workerData, transferList });
  const reports: WorkerReport[] = [];
  const waiters: { type: string; resolve: (report: WorkerReport) => void }[] = [];
  worker.on('message', (report: WorkerReport) => {
    const waiter = waiters.findIndex((candidate) => candidate.type === report.type);
    if (waiter >= 0) waiters.splice(waiter, 1)[0]!.resolve(report);
    else reports.push(report);
  });
  return {
    worker,
    send: (command: WorkerCommand) => worker.postMessage(command),
    next<T extends WorkerReport['type']>(type: T): Promise<Extract<WorkerReport, { type: T }>> {
      const queued = reports.findIndex((report) => report.type === type);
      if (queued >= 0) return Promise.resolve(reports.splice(queued, 1)[0] as Extract<WorkerReport, { type: T }>);
      return new Promise((resolve) => waiters.push({ type, resolve: resolve as (report: WorkerReport) => void }));
    },
  };
}
