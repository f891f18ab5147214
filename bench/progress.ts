/**
 * A one-line progress bar for a load run, redrawn in place on a terminal: how far the run is,
 * requests and errors so far, and the current rate. tsetcd-bench draws it on stderr only when
 * stderr is a terminal and --json is off, so piped and machine-read output never changes.
 */

/** Redraws per second: about five. */
export const progressIntervalMs = 200;
const barCells = 20;
/** Where the bar is written; process.stderr fits. */
export interface ProgressSink {
  write(text: string): unknown;
  /** Terminal width, 0 or absent when unknown; the line is cut to fit so `\r` can redraw it. */
  readonly columns?: number;
}

/** What the bar shows, read from the run at each redraw. */
export interface ProgressSnapshot {
  /** Since the run started, warm-up included. */
  readonly elapsedMs: number;
  readonly warmupMs: number;
  readonly durationMs: number;
  /** Measured requests to send, in --total mode. */
  readonly total?: number;
  /** Successful measured requests so far. */
  readonly requests: number;
  readonly errorCount: number;
  /** Every answered request, warm-up and failures included: the current rate is taken from it. */
  readonly answered: number;
}

/** The bar's text for `now`, with the current rate measured since `previous`. */
export function formatProgress(now: ProgressSnapshot, previous: ProgressSnapshot): string {
  const intervalMs = now.elapsedMs - previous.elapsedMs;
  const perSec = intervalMs > 0 ? Math.round(((now.answered - previous.answered) * 1000) / intervalMs) : 0;
  const rate = `${perSec} req/s  errors ${now.errorCount}`;
  if (now.elapsedMs < now.warmupMs) {
    return `warm-up ${bar(now.elapsedMs / now.warmupMs)} ${seconds(now.elapsedMs)}/${seconds(now.warmupMs)} s  ${rate}`;
  }
  const measuredMs = now.elapsedMs - now.warmupMs;
  if (now.total !== undefined) return `${bar(now.requests / now.total)} ${now.requests}/${now.total} requests  ${rate}`;
  return `${bar(measuredMs / now.durationMs)} ${seconds(measuredMs)}/${seconds(now.durationMs)} s  ${now.requests} requests  ${rate}`;
}

function bar(fraction: number): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * barCells);
  return `[${'#'.repeat(filled)}${'.'.repeat(barCells - filled)}]`;
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(1);
}

/** Redraws the bar on `sink` every progressIntervalMs until the returned stop, which clears it. */
export function startProgress(sink: ProgressSink, read: () => ProgressSnapshot): () => void {
  let previous = read();
  const timer = setInterval(() => {
    const now = read();
    const line = formatProgress(now, previous);
    previous = now;
    // Cut to the terminal width, when it is known (a terminal without a size reports 0): a wrapped
    // line would leave its first half behind on each redraw.
    const columns = sink.columns ?? 0;
    sink.write(`\r${columns > 1 ? line.slice(0, columns - 1) : line}\x1b[K`);
  }, progressIntervalMs);
  return () => {
    clearInterval(timer);
    sink.write('\r\x1b[K');
  };
}
