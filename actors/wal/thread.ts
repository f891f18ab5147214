/**
 * The WAL thread: owns one Wal and makes appends durable with group commit. It writes every
 * request that has arrived, issues one fdatasync for all of them, and replies with the highest
 * seq covered; requests that arrive during an fdatasync are batched into the next one.
 * Blocking on fs calls is the point of having a dedicated thread.
 */
import { parentPort, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { Wal } from '../../src/wal/wal.js';
import { unreachable } from '../../src/lib/assert.js';
import type { WalReply, WalRequest, WalThreadInit } from '../supervisor/thread-protocol.js';
import { onThreadData } from '../supervisor/thread-start.js';
import { failpoint, failpointsOn } from '../shared/failpoints.js';
import { journaledWalFiles, powerLossJournalDir } from './power-loss-journal.js';
import { nameThread } from '../shared/thread-name.js';

/** Write-and-sync rounds run back to back before yielding to the event loop. */
const syncRoundsPerTurnMax = 1024;

class WalThread {
  /** Highest append written but not yet covered by an fdatasync. */
  private unsyncedSeq: number | undefined;
  private closing: number | undefined;
  private failed = false;

  constructor(
    private readonly port: MessagePort,
    private readonly wal: Wal,
  ) {}

  /** Handles one message from the 'message' event, then drains and syncs everything queued. */
  onMessage(request: WalRequest): void {
    if (this.failed) return;
    try {
      this.handle(request);
      this.drainAndSync();
    } catch (error) {
      this.fail(error);
    }
  }

  private drainAndSync(): void {
    for (let round = 0; round < syncRoundsPerTurnMax; round++) {
      for (;;) {
        const next = receiveMessageOnPort(this.port);
        if (next === undefined) break;
        this.handle(next.message as WalRequest);
      }
      if (this.unsyncedSeq === undefined) return this.finishClose();
      this.syncAndReply(this.unsyncedSeq);
      this.unsyncedSeq = undefined;
    }
    // Still busy after many rounds: let the event loop run, then carry on.
    setImmediate(() => this.onMessageQueueBusy());
  }

  private onMessageQueueBusy(): void {
    if (this.failed) return;
    try {
      this.drainAndSync();
    } catch (error) {
      this.fail(error);
    }
  }

  private handle(request: WalRequest): void {
    if (this.closing !== undefined) throw new Error(`WAL request ${request.type} after close`);
    switch (request.type) {
      case 'wal.append':
        if (failpointsOn) failpoint('walBeforeWrite');
        if (request.snapshot !== undefined) this.wal.saveSnapshot(request.snapshot.index, request.snapshot.term);
        this.wal.append(request.entries, request.hardState);
        this.unsyncedSeq = request.seq;
        return;
      case 'wal.state':
        this.wal.append([], request.hardState);
        return;
      case 'wal.release':
        // Deleting segments is only safe behind a durable snapshot marker, so sync first.
        this.syncNow();
        this.wal.releaseTo(request.index);
        this.reply({ type: 'wal.released', seq: request.seq });
        return;
      case 'wal.close':
        this.closing = request.seq;
        return;
      default:
        unreachable(request);
    }
  }

  private syncNow(): void {
    if (this.unsyncedSeq === undefined) return;
    this.syncAndReply(this.unsyncedSeq);
    this.unsyncedSeq = undefined;
  }

  /** Syncs and says which appends are durable, with how long the sync took (etcd's WAL fsync histogram). */
  private syncAndReply(seq: number): void {
    const startedAt = performance.now();
    if (failpointsOn) failpoint('walBeforeSync');
    this.wal.sync();
    if (failpointsOn) failpoint('walAfterSync');
    const syncMs = performance.now() - startedAt;
    this.reply({ type: 'wal.synced', seq, syncCount: this.wal.syncCount, syncMs, writtenBytes: this.wal.writtenBytes });
  }

  private finishClose(): void {
    if (this.closing === undefined) return;
    this.wal.close();
    this.reply({ type: 'wal.closed', seq: this.closing, syncCount: this.wal.syncCount });
    this.port.close();
  }

  private fail(error: unknown): void {
    this.failed = true;
    this.reply({
      type: 'wal.failed',
      message: error instanceof Error ? (error.stack ?? error.message) : String(error),
    });
    this.port.close();
  }

  private reply(message: WalReply): void {
    this.port.postMessage(message);
  }
}

function start(port: MessagePort, init: WalThreadInit): void {
  // The entries' data buffers move to the member thread (transferred, not copied).
  let opened: { wal: Wal; reply: WalReply; entryBuffers: ArrayBuffer[] };
  try {
    const journalDir = powerLossJournalDir();
    const options = {
      segmentBytes: init.segmentBytes,
      ...(init.maxWals === undefined ? {} : { maxWals: init.maxWals }),
      unsafeNoFsync: init.unsafeNoFsync,
      log: (message: string) => port.postMessage({ type: 'wal.log', message } satisfies WalReply),
      ...(journalDir === undefined ? {} : { files: journaledWalFiles(init.dir, journalDir) }),
    };
    if (Wal.exists(init.dir)) {
      const { wal, state, entryBuffers } = Wal.open(init.dir, options);
      opened = { wal, reply: { type: 'wal.opened', state, created: false }, entryBuffers };
    } else {
      const wal = Wal.create(init.dir, init.metadata, options);
      const state = {
        metadata: wal.metadata,
        hardState: { term: 0, vote: 0n, commit: 0 },
        snapshot: { index: 0, term: 0 },
        entries: [],
      };
      opened = { wal, reply: { type: 'wal.opened', state, created: true }, entryBuffers: [] };
    }
  } catch (error) {
    port.postMessage({
      type: 'wal.failed',
      message: error instanceof Error ? error.message : String(error),
    } satisfies WalReply);
    port.close();
    return;
  }
  const thread = new WalThread(port, opened.wal);
  port.on('message', (request: WalRequest) => thread.onMessage(request));
  port.postMessage(opened.reply, opened.entryBuffers);
}

if (parentPort === null) throw new Error('the WAL module must run as a worker thread');
const threadPort = parentPort;
if (threadPort !== null) nameThread('tsetcd-wal');
onThreadData((init: WalThreadInit) => start(threadPort, init));
