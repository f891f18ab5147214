/**
 * etcd's auto compaction (--auto-compaction-mode, --auto-compaction-retention) as pure decisions:
 * the member's timer asks, at the interval each mode names, which revision to compact now, and
 * reports back when a compaction landed. Time is passed in, never read here.
 *
 * Periodic mode keeps `period` of history: every period/10 (the period counted as at most an hour)
 * it records the store's revision; once a whole period has passed since the last success (then
 * every min(period, 1h)), it compacts to the oldest revision recorded, the one from a period ago.
 * Revision mode keeps `retention` revisions: every check it compacts to current - retention,
 * unless that is not positive or was the last revision compacted.
 */
import { assert } from '../lib/assert.js';
import { autoCompactionPeriodDivisor, autoCompactionPeriodMsMax } from '../lib/limits.js';

export interface AutoCompactor {
  /** How long the timer waits between calls of due(). */
  readonly intervalMs: number;
  /**
   * Called every intervalMs with the store's revision; returns the revision to compact to, or
   * undefined. `leading`: only the leader compacts (the others keep their records up to date).
   */
  due(nowMs: number, currentRevision: number, leading: boolean): number | undefined;
  /** The compaction due() asked for landed (or the revision was already compacted). */
  succeeded(nowMs: number, revision: number): void;
}

/** etcd's periodic compactor for a retention period of `periodMs`. */
export class PeriodicCompactor implements AutoCompactor {
  readonly intervalMs: number;
  /** The wait between compactions once the first one landed: min(period, 1h). */
  private readonly compactIntervalMs: number;
  /** How many recorded revisions cover one period. */
  private readonly retentions: number;
  private readonly revisions: number[] = [];
  private lastSuccessMs: number;
  private baseIntervalMs: number;

  constructor(
    readonly periodMs: number,
    startMs: number,
    startRevision: number,
  ) {
    assert(periodMs > 0, () => `a compaction period must be positive, got ${periodMs}ms`);
    this.compactIntervalMs = Math.min(periodMs, autoCompactionPeriodMsMax);
    this.intervalMs = this.compactIntervalMs / autoCompactionPeriodDivisor;
    this.retentions = Math.floor(periodMs / this.intervalMs) + 1;
    this.lastSuccessMs = startMs;
    this.baseIntervalMs = periodMs;
    this.record(startRevision);
  }

  due(nowMs: number, currentRevision: number, leading: boolean): number | undefined {
    let revision: number | undefined;
    if (leading && nowMs - this.lastSuccessMs >= this.baseIntervalMs) {
      this.baseIntervalMs = this.compactIntervalMs;
      revision = this.revisions[0];
    }
    this.record(currentRevision);
    return revision;
  }

  succeeded(nowMs: number): void {
    this.lastSuccessMs = nowMs;
  }

  private record(revision: number): void {
    this.revisions.push(revision);
    if (this.revisions.length > this.retentions) this.revisions.shift();
  }
}

/** etcd's revision compactor keeping `retention` revisions, checked every `intervalMs` (etcd: 5 minutes). */
export class RevisionCompactor implements AutoCompactor {
  private previous = 0;

  constructor(
    readonly retention: number,
    readonly intervalMs: number,
  ) {
    assert(retention > 0, () => `a revision retention must be positive, got ${retention}`);
  }

  due(_nowMs: number, currentRevision: number, leading: boolean): number | undefined {
    if (!leading) return undefined;
    const revision = currentRevision - this.retention;
    return revision <= 0 || revision === this.previous ? undefined : revision;
  }

  succeeded(_nowMs: number, revision: number): void {
    this.previous = revision;
  }
}
