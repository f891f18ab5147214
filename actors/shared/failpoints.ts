/**
 * Failpoints, as etcd's gofail: named points in the member where a test makes the process panic,
 * an operation fail, sleep or pause. They exist only under a test switch, the environment
 * variables GOFAIL_FAILPOINTS ("name=term;name2=term") and GOFAIL_HTTP ("127.0.0.1:PORT", a
 * control endpoint served by the process's main thread). Without either, this module loads
 * nothing more, `failpointsOn` is false, and every point costs one branch on it:
 *
 *   if (failpointsOn) failpoint('walBeforeSync');
 *
 * The registry (failpoint-registry.ts) is imported only when a switch is set, in every thread
 * that imports this module.
 */
import type { FailpointName } from './failpoint-names.js';

export type { FailpointName } from './failpoint-names.js';

/** True only when GOFAIL_FAILPOINTS or GOFAIL_HTTP is set; every failpoint checks this first. */
export const failpointsOn: boolean =
  process.env.GOFAIL_FAILPOINTS !== undefined || process.env.GOFAIL_HTTP !== undefined;

const registry = failpointsOn ? await import('./failpoint-registry.js') : undefined;

/**
 * Runs the point's action where the caller may block its thread: `panic` ends the process,
 * `return(...)` throws, `sleep(ms)` and `pause` block the calling thread (a WAL thread's fsync,
 * an apply). Call only behind `failpointsOn`.
 */
export function failpoint(name: FailpointName): void {
  registry?.hitSync(name);
}

/**
 * Runs the point's action where the caller can wait: as failpoint(), but `sleep(ms)` and `pause`
 * resolve later instead of blocking the thread. Call only behind `failpointsOn`.
 */
export function failpointAsync(name: FailpointName): Promise<void> {
  return registry === undefined ? Promise.resolve() : registry.hitAsync(name);
}
