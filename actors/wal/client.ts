/**
 * The member's handle on its WAL thread: append() resolves once the entries are durable. Appends
 * are posted as they come; the thread batches whatever has queued into one fdatasync.
 */
import { Worker } from 'node:worker_threads';
import { assert } from '../../src/lib/assert.js';
import type { Entry, HardState } from '../../src/raft/types.js';
import type { WalMetadata, WalSnapshotMarker } from '../../src/wal/format.js';
import type { WalState } from '../../src/wal/reader.js';
import { EntryArena } from '../../src/wal/entry-arena.js';
import type { WalReply, WalRequest, WalThreadInit } from '../supervisor/thread-protocol.js';
import { handOver, prestartThread } from '../supervisor/thread-start.js';

export interface WalClientOptions {
  /** Written into a new WAL; an existing WAL keeps the metadata it was created with. */
  metadata: WalMetadata;
  segmentBytes?: number;
  /** Where the thread's repair notices go; defaults to console.warn. */
  log?: (message: string) => void;
  /** A thread from prestart(), already past its module loading; a new one is started otherwise. */
  thread?: Worker;
  /** --max-wals (see WalOptions). */
  maxWals?: number;
  /** --unsafe-no-fsync: the thread never fdatasyncs. */
  unsafeNoFsync?: boolean;
}

/** The WAL thread could not write or sync: nothing after its last 'wal.synced' is durable. */
export class WalFailedError extends Error {
  constructor(threadMessage: string) {
    super(`WAL thread failed: ${threadMessage}`);
    this.name = 'WalFailedError';
  }
}

type OpenedReply = Extract<WalReply, { type: 'wal.opened' }>;

interface Pending {
  seq: number;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** The thread's entry (its bundle, or the compiled thread.js) sits next to this file's compiled form. */
const walThreadUrl = new URL('./thread-entry.cjs', import.meta.url);

export class WalClient {
  private nextSeq = 1;
  /** Appends in seq order, waiting for a 'wal.synced' that covers them. */
  private readonly appends: Pending[] = [];
  /** Releases and the close, waiting for their own reply. */
  private readonly others = new Map<number, Pending>();
  private failure: Error | undefined;
  private syncs = 0;
  private appendsPosted = 0;
  private syncObserver: ((syncMs: number) => void) | undefined;
  private written = 0;
  /** The latest commit-only hard state, written with the next append or at close. */
  private heldCommit: HardState | undefined;
  /** Set only while open() waits for the thread to read or create the WAL. */
  private onOpened: ((reply: OpenedReply) => void) | undefined;
  private onOpenFailed: ((error: Error) => void) | undefined;

  private constructor(
    private readonly worker: Worker,
    private readonly log: (message: string) => void,
  ) {}

  /**
   * Starts a WAL thread that waits for open(): a member starts it first thing, so the thread's
   * start-up overlaps the member's own module loading. Unreferenced until open() takes it.
   */
  static prestart(): Worker {
    return prestartThread(walThreadUrl);
  }

  /** Starts a WAL thread on `dir`, reading the existing WAL or creating one with `options.metadata`. */
  static async open(
    dir: string,
    options: WalClientOptions,
  ): Promise<{ client: WalClient; state: WalState; created: boolean }> {
    const init: WalThreadInit = {
      dir,
      metadata: options.metadata,
      segmentBytes: options.segmentBytes,
      maxWals: options.maxWals,
      unsafeNoFsync: options.unsafeNoFsync ?? false,
    };
    const worker = options.thread ?? new Worker(walThreadUrl, { workerData: init });
    if (options.thread !== undefined) handOver(worker, init);
    const client = new WalClient(worker, options.log ?? console.warn);
    let opened: OpenedReply;
    try {
      opened = await new Promise<OpenedReply>((resolve, reject) => {
        client.onOpened = resolve;
        client.onOpenFailed = reject;
        worker.on('message', (reply: WalReply) => client.onReply(reply));
        worker.on('error', (error) => client.fail(error));
        worker.on('exit', (code) => client.onExit(code));
      });
    } catch (error) {
      await worker.terminate();
      throw error;
    } finally {
      client.onOpened = undefined;
      client.onOpenFailed = undefined;
    }
    return { client, state: opened.state, created: opened.created };
  }

  /** Resolves once `entries` and `hardState` (and a snapshot marker, if given) are on disk. */
  append(entries: Entry[], hardState?: HardState, snapshot?: WalSnapshotMarker): Promise<void> {
    const seq = this.nextSeq++;
    // A later hard state holds the commit index a held one carries, and more.
    const state = hardState ?? this.heldCommit;
    this.heldCommit = undefined;
    return new Promise<void>((resolve, reject) => {
      if (this.failure !== undefined) return reject(this.failure);
      this.appends.push({ seq, resolve, reject });
      this.appendsPosted++;
      const packed = packEntryData(entries);
      this.post({ type: 'wal.append', seq, entries: packed.entries, hardState: state, snapshot }, packed.buffers);
    });
  }

  /**
   * Takes a hard state that only moved the commit index, to be written with the next append (or at
   * close), as etcd's WAL keeps it in its write buffer until the next sync. Raft learns the commit
   * index again after a crash, and posting it alone woke the WAL thread on every commit of a
   * member: three wake-ups per put in a 3-member cluster at low load.
   */
  writeCommit(hardState: HardState): void {
    if (this.failure === undefined) this.heldCommit = hardState;
  }

  /** Durably records that the log is compacted behind a snapshot at (index, term). */
  saveSnapshot(index: number, term: number): Promise<void> {
    return this.append([], undefined, { index, term });
  }

  /** Deletes segments wholly at or below `index`, which must not be past the latest snapshot marker. */
  releaseTo(index: number): Promise<void> {
    return this.request((seq) => ({ type: 'wal.release', seq, index }));
  }

  /** Waits for earlier appends to be durable, closes the WAL and stops the thread. */
  async close(): Promise<void> {
    if (this.failure === undefined) {
      if (this.heldCommit !== undefined) this.post({ type: 'wal.state', hardState: this.heldCommit });
      await this.request((seq) => ({ type: 'wal.close', seq }));
    }
    this.heldCommit = undefined;
    await this.worker.terminate();
  }

  /** Learns how long each fdatasync that made appends durable took, in milliseconds. */
  observeSyncs(observer: (syncMs: number) => void): void {
    this.syncObserver = observer;
  }

  /** fdatasyncs the thread has issued and appends posted, for group-commit metrics. */
  stats(): { syncCount: number; appendCount: number } {
    return { syncCount: this.syncs, appendCount: this.appendsPosted };
  }

  /** Bytes of records the WAL thread had written at its last sync (etcd's etcd_disk_wal_write_bytes_total). */
  writtenBytes(): number {
    return this.written;
  }

  private request(build: (seq: number) => WalRequest): Promise<void> {
    const seq = this.nextSeq++;
    return new Promise<void>((resolve, reject) => {
      if (this.failure !== undefined) return reject(this.failure);
      this.others.set(seq, { seq, resolve, reject });
      this.post(build(seq));
    });
  }

  private post(request: WalRequest, transferList: readonly ArrayBuffer[] = []): void {
    this.worker.postMessage(request, transferList);
  }

  private onReply(reply: WalReply): void {
    switch (reply.type) {
      case 'wal.opened':
        this.onOpened?.(reply);
        return;
      case 'wal.synced':
        // Only an fdatasync is observed: with --unsafe-no-fsync the count stays put, as in etcd's metrics.
        if (reply.syncCount > this.syncs) this.syncObserver?.(reply.syncMs);
        this.syncs = reply.syncCount;
        this.written = reply.writtenBytes;
        return this.resolveAppendsThrough(reply.seq);
      case 'wal.released':
      case 'wal.closed':
        if (reply.type === 'wal.closed') this.syncs = reply.syncCount;
        return this.resolveOther(reply.seq);
      case 'wal.log':
        return this.log(reply.message);
      case 'wal.failed':
        return this.fail(new WalFailedError(reply.message));
    }
  }

  private resolveAppendsThrough(seq: number): void {
    let covered = 0;
    while (covered < this.appends.length && this.appends[covered]!.seq <= seq) covered++;
    assert(covered > 0, () => `'wal.synced' for seq ${seq} covers no pending append`);
    for (const pending of this.appends.splice(0, covered)) pending.resolve();
  }

  private resolveOther(seq: number): void {
    const pending = this.others.get(seq);
    assert(pending !== undefined, () => `reply for seq ${seq} matches no pending request`);
    this.others.delete(seq);
    pending.resolve();
  }

  private fail(error: Error): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    this.onOpenFailed?.(error);
    for (const pending of this.appends.splice(0)) pending.reject(error);
    for (const pending of this.others.values()) pending.reject(error);
    this.others.clear();
  }

  private onExit(code: number): void {
    const unanswered = this.appends.length + this.others.size;
    if (unanswered > 0 || this.onOpened !== undefined)
      this.fail(new Error(`WAL thread exited with code ${code} and ${unanswered} requests unanswered`));
  }
}

/**
 * The entries with their data copied into one buffer, which is transferred to the WAL thread:
 * one allocation and one copy per append. The caller keeps its own entries for the Raft log.
 */
function packEntryData(entries: readonly Entry[]): { entries: Entry[]; buffers: ArrayBuffer[] } {
  let totalBytes = 0;
  for (const { data } of entries) totalBytes += data.byteLength;
  const arena = new EntryArena(totalBytes);
  const packed = entries.map((entry) => ({
    term: entry.term,
    index: entry.index,
    type: entry.type,
    data: arena.copy(entry.data),
  }));
  return { entries: packed, buffers: arena.buffers };
}
