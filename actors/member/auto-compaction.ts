/**
 * etcd's compactor goroutine: --auto-compaction-mode and --auto-compaction-retention drive a timer
 * that asks src/mvcc/auto-compaction.ts which revision to compact to and, on the leader, proposes
 * the compaction through Raft like a client's Compact, logging in etcd's words.
 */
import { errors, EtcdError } from '../../src/api/errors.js';
import type { MemberConfig } from '../../src/config/config.js';
import { goDurationString } from '../../src/lib/go-duration.js';
import { type AutoCompactor, PeriodicCompactor, RevisionCompactor } from '../../src/mvcc/auto-compaction.js';
import type { Logger } from '../shared/logger.js';

export interface AutoCompactionParts {
  config: Pick<MemberConfig, 'autoCompactionMode' | 'autoCompactionRetention' | 'autoCompactionRevisionIntervalMs'>;
  currentRevision: () => number;
  isLeader: () => boolean;
  /** Proposes a compaction to `revision` and resolves once it is applied. */
  compact: (revision: number) => Promise<unknown>;
  logger: Logger;
}

const durationText = (durationMs: number) => goDurationString(Math.round(durationMs * 1e6));

export class AutoCompaction {
  private timer: NodeJS.Timeout | undefined;
  private compactor: AutoCompactor | undefined;
  private stopped = false;

  constructor(private readonly parts: AutoCompactionParts) {}

  /** Starts the timer when a retention is set (0 turns auto compaction off, as in etcd). */
  start(): void {
    const { config } = this.parts;
    if (config.autoCompactionRetention === 0) return;
    this.compactor =
      config.autoCompactionMode === 'periodic'
        ? new PeriodicCompactor(config.autoCompactionRetention, Date.now(), this.parts.currentRevision())
        : new RevisionCompactor(config.autoCompactionRetention, config.autoCompactionRevisionIntervalMs);
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(): void {
    if (this.stopped || this.compactor === undefined) return;
    this.timer = setTimeout(() => void this.check().finally(() => this.schedule()), this.compactor.intervalMs);
    this.timer.unref();
  }

  private async check(): Promise<void> {
    const compactor = this.compactor as AutoCompactor;
    const revision = compactor.due(Date.now(), this.parts.currentRevision(), this.parts.isLeader());
    if (revision === undefined) return;
    const fields = this.fields(compactor, revision);
    const { logger } = this.parts;
    const kind = compactor instanceof PeriodicCompactor ? 'periodic' : 'revision';
    logger.info(fields, `starting auto ${kind} compaction`);
    const startedMs = Date.now();
    try {
      await this.parts.compact(revision);
    } catch (error) {
      // A revision already compacted counts as done, as in etcd.
      if (!(error instanceof EtcdError && error.message === errors.compacted().message)) {
        logger.warn(
          { ...fields, 'retry-interval': durationText(compactor.intervalMs), error: (error as Error).message },
          `failed auto ${kind} compaction`,
        );
        return;
      }
    }
    compactor.succeeded(Date.now(), revision);
    logger.info({ ...fields, took: durationText(Date.now() - startedMs) }, `completed auto ${kind} compaction`);
  }

  private fields(compactor: AutoCompactor, revision: number): Record<string, unknown> {
    return compactor instanceof PeriodicCompactor
      ? { revision, 'compact-period': durationText(compactor.periodMs) }
      : { revision, 'revision-compaction-retention': (compactor as RevisionCompactor).retention };
  }
}
