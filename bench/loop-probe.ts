/**
 * A probe of a tsetcd member thread's event loop, preloaded into the member's process by a bench
 * (NODE_OPTIONS=--require dist/bench/loop-probe.js, which Node runs in every worker thread too)
 * with TSETCD_BENCH_LOOP_PROBE naming the file it appends to. In the member thread it times a
 * short interval and writes each late tick as a stall, with how much of the stall the thread spent
 * running and how much waiting for a core (from /proc/thread-self/schedstat), and each garbage
 * collection longer than gcReportMs.
 *
 * The member thread names itself tsetcd-member once its module loads, after this probe started.
 * A thread takes its creator's name, so the threads the member thread starts (WAL, snapshot) begin
 * as tsetcd-member too: the probe leaves alone any thread named so from the start, and in the
 * others waits for the name before it records anything.
 *
 * Line format, one event a line: `stall <end epoch ms> <stall ms> <run ms> <wait ms>` or
 * `gc <start epoch ms> <duration ms> <kind>`. readLoopProbe() reads them back.
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { PerformanceObserver } from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';

/** The environment variable naming the probe's output file. */
export const loopProbeEnv = 'TSETCD_BENCH_LOOP_PROBE';
/** How often the probe's timer is due. */
const tickMs = 5;
/** A tick this much later than due is written as a stall. */
const stallReportMs = 10;
/** Collections at least this long are written. */
const gcReportMs = 2;
const probedThreadName = 'tsetcd-member';
/** How long a thread may take to name itself the member thread before the probe gives up on it. */
const nameWaitMs = 10_000;

/** Nanoseconds the calling thread has run on a core and waited for one (Linux's schedstat). */
function schedstat(): { runNs: number; waitNs: number } {
  const [run, wait] = readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ');
  return { runNs: Number(run), waitNs: Number(wait) };
}

function threadName(): string {
  return readFileSync('/proc/thread-self/comm', 'utf8').trim();
}

function startProbe(path: string): void {
  const write = (line: string) => appendFileSync(path, `${line}\n`);
  let last = performance.now();
  let lastStat = schedstat();
  const startedMs = performance.now();
  let named = false;
  const timer = setInterval(() => {
    const now = performance.now();
    if (!named) {
      named = threadName() === probedThreadName;
      if (named) observeCollections(write);
      else if (now - startedMs > nameWaitMs) clearInterval(timer);
      last = now;
      lastStat = schedstat();
      return;
    }
    const stat = schedstat();
    const lateMs = now - last - tickMs;
    if (lateMs >= stallReportMs) {
      const runMs = (stat.runNs - lastStat.runNs) / 1e6;
      const waitMs = (stat.waitNs - lastStat.waitNs) / 1e6;
      write(`stall ${Date.now()} ${lateMs.toFixed(1)} ${runMs.toFixed(1)} ${waitMs.toFixed(1)}`);
    }
    last = now;
    lastStat = stat;
  }, tickMs);
  timer.unref();
}

function observeCollections(write: (line: string) => void): void {
  const epochOffsetMs = Date.now() - performance.now();
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (entry.duration < gcReportMs) continue;
      const kind = (entry as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0;
      write(`gc ${Math.round(entry.startTime + epochOffsetMs)} ${entry.duration.toFixed(1)} ${gcKinds[kind] ?? kind}`);
    }
  });
  observer.observe({ entryTypes: ['gc'] });
}

/** perf_hooks' constants.NODE_PERFORMANCE_GC_* by value. */
const gcKinds: Record<number, string> = { 1: 'minor', 2: 'major', 4: 'incremental', 8: 'weakcb' };

/** What the probe saw between two epoch times. */
export interface LoopProbeWindow {
  /** The longest stall, with its run and wait parts. */
  maxStall: { ms: number; runMs: number; waitMs: number };
  /** Stalls of 30 ms or more. */
  stallsOver30Ms: number;
  /** Collections by kind: how many and their total ms; the longest one of any kind. */
  gc: Record<string, { count: number; ms: number }>;
  gcMaxMs: number;
}

/** Reads the probe's file for the events between `fromMs` and `toMs` (epoch ms). */
export function readLoopProbe(path: string, fromMs: number, toMs: number): LoopProbeWindow {
  const window: LoopProbeWindow = { maxStall: { ms: 0, runMs: 0, waitMs: 0 }, stallsOver30Ms: 0, gc: {}, gcMaxMs: 0 };
  let text = '';
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return window; // no stall and no collection written yet
  }
  for (const line of text.split('\n')) {
    const [type, at, ...rest] = line.split(' ');
    if (at === undefined || Number(at) < fromMs || Number(at) > toMs) continue;
    if (type === 'stall') {
      const [ms, runMs, waitMs] = rest.map(Number) as [number, number, number];
      if (ms >= 30) window.stallsOver30Ms++;
      if (ms > window.maxStall.ms) window.maxStall = { ms, runMs, waitMs };
    } else if (type === 'gc') {
      const ms = Number(rest[0]);
      const kind = rest[1] ?? '?';
      const entry = (window.gc[kind] ??= { count: 0, ms: 0 });
      entry.count++;
      entry.ms = Math.round((entry.ms + ms) * 10) / 10;
      window.gcMaxMs = Math.max(window.gcMaxMs, ms);
    }
  }
  return window;
}

const probePath = process.env[loopProbeEnv];
if (probePath !== undefined && probePath !== '' && !isMainThread && threadName() !== probedThreadName)
  startProbe(probePath);
