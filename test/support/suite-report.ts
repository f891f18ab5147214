/**
 * One report out of many node:test runs: run-suite starts each test file with its own run() so it
 * can choose when each starts, and this merges their events into the single event source a node:test
 * reporter reads, so the TAP out is one well-formed stream: one plan, top-level tests numbered
 * through, and one closing summary whose counts are the sums of the runs' own.
 *
 * Files' events never interleave: the first file to report holds the output and streams as it
 * runs; files reporting meanwhile are held back, and those that ended are written whole when the
 * holder ends, before the next running file takes over.
 */

/** An event as node:test's run() emits it and its reporters read it. */
export interface ReportEvent {
  readonly type: string;
  readonly data: {
    readonly nesting?: number;
    readonly message?: string;
    readonly testNumber?: number;
    readonly todo?: string | boolean;
    readonly [field: string]: unknown;
  };
}

/** The root summary lines each run() closes with, in node:test's order; duration_ms is the suite's wall time. */
const summaryCounts = ['tests', 'suites', 'pass', 'fail', 'cancelled', 'skipped', 'todo'] as const;
const summaryLine = /^(tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) (\d+(?:\.\d+)?)$/;

/** Events queued for the reporter, read through read(). */
class EventChannel {
  private readonly queued: ReportEvent[] = [];
  private wake: (() => void) | undefined;
  private closed = false;

  push(event: ReportEvent): void {
    if (this.closed) throw new Error(`report event ${event.type} after the report closed`);
    this.queued.push(event);
    this.wake?.();
  }

  close(): void {
    this.closed = true;
    this.wake?.();
  }

  /** The events as they come, until the channel is closed. */
  async *read(): AsyncGenerator<ReportEvent, void> {
    for (;;) {
      const event = this.queued.shift();
      if (event !== undefined) yield event;
      else if (this.closed) return;
      else await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }
}

/** A failed test as the closing list names it. */
export interface FailedTest {
  readonly file: string;
  readonly name: string;
  readonly nesting: number;
  /** The error's first lines. */
  readonly reason: string;
}

/** How much of a failure's error the closing list keeps. */
const reasonLinesMax = 16;
const reasonCharsMax = 1_500;

/** The first lines of a failed test's error, its cause's where node:test wrapped it. */
function failureReason(event: ReportEvent): string {
  const details = event.data.details as { error?: { message?: unknown; cause?: unknown } } | undefined;
  const error = details?.error;
  const cause = error?.cause as { message?: unknown; stack?: unknown } | string | undefined;
  const text =
    typeof cause === 'string'
      ? cause
      : typeof cause?.message === 'string'
        ? cause.message
        : typeof error?.message === 'string'
          ? error.message
          : 'no error recorded';
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .slice(0, reasonLinesMax)
    .join('\n')
    .slice(0, reasonCharsMax);
}

/** Merges per-file runs' events into one reporter source (`events`). */
export class SuiteReport {
  private readonly channel = new EventChannel();
  /** What the reporter reads. */
  readonly events = this.channel.read();
  private readonly held = new Map<string, ReportEvent[]>();
  /** Files that ended while another held the output, in the order they ended. */
  private readonly ended: string[] = [];
  private holder: string | undefined;
  private topLevelTests = 0;
  private readonly counts = new Map<string, number>(summaryCounts.map((name) => [name, 0]));
  private failedTopLevel = false;
  private readonly failures: FailedTest[] = [];

  /** A file's run has started; its events follow through event(). */
  fileStarted(file: string): void {
    if (this.held.has(file)) throw new Error(`${file} started twice`);
    this.held.set(file, []);
  }

  /** One event of `file`'s run. */
  event(file: string, event: ReportEvent): void {
    const held = this.held.get(file);
    if (held === undefined) throw new Error(`an event of ${file}, which has not started or has ended`);
    if (event.type === 'test:fail' && event.data.todo === undefined)
      this.failures.push({
        file,
        name: String(event.data.name),
        nesting: event.data.nesting ?? 0,
        reason: failureReason(event),
      });
    const kept = this.topLevel(event);
    if (kept === undefined) return;
    if (this.holder === undefined) this.holder = file;
    if (this.holder === file) this.emit(kept);
    else held.push(kept);
  }

  /** `file`'s run has ended: written now if it held the output or held nothing back, else once the holder ends. */
  fileEnded(file: string): void {
    const held = this.held.get(file);
    if (held === undefined) throw new Error(`${file} ended without starting`);
    if (this.holder === undefined) this.write(file);
    else if (this.holder === file) {
      this.held.delete(file);
      this.holder = undefined;
      for (const done of this.ended.splice(0)) this.write(done);
      this.handOver();
    } else this.ended.push(file);
  }

  /** Writes the plan and the summary and ends the report; every file must have ended. */
  close(wallMs: number): void {
    for (const done of this.ended.splice(0)) this.write(done);
    if (this.held.size > 0) throw new Error(`the report closed while ${[...this.held.keys()].join(', ')} ran`);
    this.channel.push({ type: 'test:plan', data: { nesting: 0, count: this.topLevelTests } });
    for (const [name, count] of this.counts)
      this.channel.push({ type: 'test:diagnostic', data: { nesting: 0, message: `${name} ${count}` } });
    this.channel.push({ type: 'test:diagnostic', data: { nesting: 0, message: `duration_ms ${wallMs.toFixed(6)}` } });
    this.channel.close();
  }

  /** Whether any test failed or was cancelled, by the runs' summaries and their top-level results. */
  failed(): boolean {
    return this.failedTopLevel || this.counts.get('fail')! > 0 || this.counts.get('cancelled')! > 0;
  }

  /** Every failed test so far, in the order their files reported them. */
  failedTests(): readonly FailedTest[] {
    return this.failures;
  }

  /** The summed counts so far (tests, pass, fail, ...). */
  summary(): ReadonlyMap<string, number> {
    return this.counts;
  }

  /**
   * A top-level event as the merged report has it: a run's plan and summary lines are taken into
   * the totals instead of written.
   */
  private topLevel(event: ReportEvent): ReportEvent | undefined {
    if (event.data.nesting !== 0) return event;
    if (event.type === 'test:plan') return undefined;
    if (event.type === 'test:diagnostic') {
      const match = summaryLine.exec(event.data.message ?? '');
      if (match === null) return event;
      if (match[1] !== 'duration_ms') this.counts.set(match[1]!, this.counts.get(match[1]!)! + Number(match[2]));
      return undefined;
    }
    if (event.type === 'test:fail' && event.data.todo === undefined) this.failedTopLevel = true;
    return event;
  }

  /** Passes an event to the reporter, numbering top-level tests in the order they are written. */
  private emit(event: ReportEvent): void {
    if (event.data.nesting !== 0 || (event.type !== 'test:pass' && event.type !== 'test:fail')) {
      this.channel.push(event);
      return;
    }
    this.topLevelTests += 1;
    this.channel.push({ type: event.type, data: { ...event.data, testNumber: this.topLevelTests } });
  }

  private write(file: string): void {
    for (const event of this.held.get(file)!) this.emit(event);
    this.held.delete(file);
  }

  /** The running file that has held back the most takes the output, its held events first. */
  private handOver(): void {
    let next: string | undefined;
    for (const [file, events] of this.held)
      if (events.length > 0 && (next === undefined || events.length > this.held.get(next)!.length)) next = file;
    if (next === undefined) return;
    const events = this.held.get(next)!;
    for (const event of events.splice(0)) this.emit(event);
    this.holder = next;
  }
}
