/**
 * A monotonic clock in milliseconds for deadlines and intervals. The global `performance` is
 * loaded on first touch with node:perf_hooks and ten modules of its own, which Node does not hold
 * ready in its start-up snapshot: about two milliseconds of a one-shot command's start, where
 * process.hrtime reads the same clock with nothing to load.
 */
export function monotonicMs(): number {
  const [seconds, nanoseconds] = process.hrtime();
  return seconds * 1_000 + nanoseconds / 1e6;
}
