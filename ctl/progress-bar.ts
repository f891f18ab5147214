/**
 * The progress bar etcdctl's check commands draw (cheggaaa/pb v1 in its "Bom !" format): counters,
 * a bar as wide as the terminal allows, the percentage and the time left, redrawn after a carriage
 * return five times a second and once more with the elapsed time when it finishes. The width is
 * the controlling terminal's (then standard input's), so with neither the bar itself is left out
 * and only counters, percentage and time are printed, even when standard output is a file.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { isatty } from 'node:tty';
import { goDurationString } from '../src/lib/go-duration.js';
import type { Output } from './output.js';
import { monotonicMs } from './monotonic-clock.js';

/** pb's redraw period. */
const refreshMs = 200;
const nanosPerMs = 1e6;
const msPerSecond = 1000;
/** The "Bom !" format: start, filled, head, empty, end. */
const barStart = 'B';
const barFilled = 'o';
const barHead = 'm';
const barEmpty = ' ';
const barEnd = '!';

/** Columns of the terminal on `fd` as stty reports them, or 0 when it is not one. */
function columnsOf(fd: number): number {
  if (!isatty(fd)) return 0;
  const size = spawnSync('stty', ['size'], { stdio: [fd, 'pipe', 'ignore'], encoding: 'utf8', timeout: 2000 });
  const columns = Number(size.stdout?.trim().split(/\s+/)[1]);
  return Number.isInteger(columns) && columns > 0 ? columns : 0;
}

/** pb's width: the columns of /dev/tty, else of standard input, else 0 (no bar drawn). */
export function terminalColumns(): number {
  let fd: number | undefined;
  try {
    fd = openSync('/dev/tty', 'r');
  } catch {
    return columnsOf(0);
  }
  try {
    return columnsOf(fd);
  } finally {
    closeSync(fd);
  }
}

/** pb's time-left text: minutes and seconds, two digits each, after any days and hours. */
function timeLeftText(leftMs: number): string {
  let rest = Math.floor(leftMs / msPerSecond);
  const hourSeconds = 3600;
  let text = '';
  if (rest > 24 * hourSeconds) {
    text = `${Math.floor(rest / (24 * hourSeconds))}d`;
    rest %= 24 * hourSeconds;
  }
  if (rest > hourSeconds) {
    text += `${Math.floor(rest / hourSeconds)}h`;
    rest %= hourSeconds;
  }
  const two = (value: number): string => String(value).padStart(2, '0');
  return `${text}${two(Math.floor(rest / 60))}m${two(rest % 60)}s`;
}

/** What one frame shows; a pure function of counts, times (ms) and width, for tests. */
export interface FrameState {
  readonly current: number;
  readonly total: number;
  readonly width: number;
  /** Ms since start; and since start at the last redraw that saw the count change. */
  readonly sinceStartMs: number;
  readonly changedAtMs: number;
  readonly finished: boolean;
}

/** One frame of the bar, padded to the width, without its leading carriage return. */
export function progressFrame(state: FrameState): string {
  const { current, total, width } = state;
  const percent = total > 0 ? current / (total / 100) : current / 100;
  const percentBox = ` ${percent.toFixed(2).padStart(6)}%`;
  const countersBox = ` ${current} / ${total} `;
  let timeBox = '';
  if (state.finished) timeBox = ` ${goDurationString(Math.floor(state.sinceStartMs / msPerSecond) * 1e9)}`;
  else if (current > 0) {
    // pb works in nanoseconds with integer division; whole seconds are all it shows.
    const perEntryNs = Math.floor((state.changedAtMs * nanosPerMs) / current);
    const leftNs = (total - current) * perEntryNs - (state.sinceStartMs - state.changedAtMs) * nanosPerMs;
    const leftMs = Math.trunc(leftNs / 1e9) * msPerSecond;
    if (leftMs > 0) timeBox = ` ${timeLeftText(leftMs)}`;
  }
  let bar = '';
  const size = width - [...(countersBox + barStart + barEnd + percentBox + timeBox)].length;
  if (size > 0 && total > 0) {
    const filled = Math.min(Math.ceil((current / total) * size), size);
    const empty = Math.max(size - filled, 0);
    bar = barStart;
    if (empty <= 0) bar += barFilled.repeat(filled);
    else if (filled > 0) bar += barFilled.repeat(filled - 1) + barHead;
    bar += barEmpty.repeat(empty) + barEnd;
  }
  const out = countersBox + bar + percentBox + timeBox;
  return out.length < width ? out + ' '.repeat(width - out.length) : out;
}

/** A running bar: drawn at once, redrawn every 200 ms, finished with a last frame and a newline. */
export class ProgressBar {
  private current = 0;
  private previous = 0;
  private changedAtMs = 0;
  private finished = false;
  private readonly startedMs = monotonicMs();
  private readonly width = terminalColumns();
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly output: Output,
    private readonly total: number,
  ) {
    this.update();
    this.timer = setInterval(() => this.update(), refreshMs);
  }

  add(count = 1): void {
    this.current += count;
  }

  /** Draws the final frame (elapsed whole seconds in place of the time left) and ends the line. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    clearInterval(this.timer);
    this.draw();
    this.output.out('\n');
  }

  private update(): void {
    if (this.finished) return;
    if (this.current !== this.previous) {
      this.changedAtMs = monotonicMs() - this.startedMs;
      this.previous = this.current;
    }
    this.draw();
  }

  private draw(): void {
    const frame = progressFrame({
      current: this.current,
      total: this.total,
      width: this.width,
      sinceStartMs: monotonicMs() - this.startedMs,
      changedAtMs: this.changedAtMs,
      finished: this.finished,
    });
    this.output.out(`\r${frame}`);
  }
}
