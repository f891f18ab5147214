/**
 * The audit log's writer: the request path hands it a record and returns at once; records are
 * joined into one append per flush (every auditFlushIntervalMsDefault, or sooner once a batch is
 * large), the file is fsynced about once a second while records arrive and when it closes. A
 * write error is logged once; records keep being taken and dropped, and serving goes on.
 */
import { close, fsync, open, write } from 'node:fs';
import { promisify } from 'node:util';
import { auditLine, auditTime, type AuditRecord } from '../../src/audit/audit-record.js';
import {
  auditBufferedBytesMax,
  auditFlushIntervalMsDefault,
  auditFsyncIntervalMsDefault,
} from '../../src/lib/limits.js';
import type { Logger } from '../shared/logger.js';

/** What a record's maker fills in; the log adds the time and the member's name. */
export type AuditFields = Omit<AuditRecord, 'time' | 'member'>;

/** Where the request path hands its records. */
export interface AuditSink {
  record(fields: AuditFields): void;
}

const openFile = promisify(open);
const writeFile = promisify(write);
const fsyncFile = promisify(fsync);
const closeFile = promisify(close);

/** A batch this large is flushed without waiting for the interval. */
const batchBytesMax = 256 * 1024;

export class AuditLog implements AuditSink {
  private lines: string[] = [];
  private bufferedBytes = 0;
  private flushTimer: NodeJS.Timeout | undefined;
  private fsyncTimer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private dirty = false;
  private failed = false;
  private closed = false;
  private dropped = 0;

  private constructor(
    private readonly fd: number,
    private readonly path: string,
    private readonly member: string,
    private readonly logger: Logger,
  ) {}

  /** Opens (creating, mode 0600) `path` for appending; an error here stops the start. */
  static async open(path: string, member: string, logger: Logger): Promise<AuditLog> {
    const fd = await openFile(path, 'a', 0o600);
    return new AuditLog(fd, path, member, logger);
  }

  record(fields: AuditFields): void {
    if (this.closed) return;
    const line = auditLine({ time: auditTime(Date.now()), member: this.member, ...fields });
    if (this.bufferedBytes + line.length > auditBufferedBytesMax) {
      if (this.dropped++ === 0) this.logger.warn({ path: this.path }, 'audit log is behind; dropping records');
      return;
    }
    this.lines.push(line);
    this.bufferedBytes += line.length;
    if (this.bufferedBytes >= batchBytesMax) this.flushSoon(0);
    else this.flushSoon(auditFlushIntervalMsDefault);
  }

  private flushSoon(delayMs: number): void {
    if (this.flushTimer !== undefined && delayMs > 0) return;
    clearTimeout(this.flushTimer);
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      this.writing = this.writing.then(() => this.flush());
    }, delayMs);
    this.flushTimer.unref();
  }

  /** Appends what waits, as one write (repeated while the kernel takes part of it). */
  private async flush(): Promise<void> {
    if (this.lines.length === 0) return;
    const bytes = Buffer.from(this.lines.join(''));
    this.lines = [];
    this.bufferedBytes = 0;
    if (this.failed) return;
    try {
      for (let offset = 0; offset < bytes.length;) {
        const { bytesWritten } = await writeFile(this.fd, bytes, offset, bytes.length - offset);
        offset += bytesWritten;
      }
      this.dirty = true;
      this.fsyncTimer ??= setTimeout(() => {
        this.fsyncTimer = undefined;
        this.writing = this.writing.then(() => this.sync());
      }, auditFsyncIntervalMsDefault).unref();
    } catch (error) {
      this.fail(error);
    }
  }

  private async sync(): Promise<void> {
    if (!this.dirty || this.failed) return;
    this.dirty = false;
    try {
      await fsyncFile(this.fd);
    } catch (error) {
      this.fail(error);
    }
  }

  private fail(error: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.logger.error(
      { path: this.path, error: error instanceof Error ? error.message : String(error) },
      'failed to write audit log; records are dropped from now on',
    );
  }

  /** Writes what waits, fsyncs and closes the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.flushTimer);
    clearTimeout(this.fsyncTimer);
    this.writing = this.writing.then(async () => {
      await this.flush();
      this.dirty = true;
      await this.sync();
    });
    await this.writing;
    if (this.dropped > 0) this.logger.warn({ path: this.path, dropped: this.dropped }, 'audit records dropped');
    await closeFile(this.fd);
  }
}
