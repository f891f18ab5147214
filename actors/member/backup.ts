/**
 * Backups for Maintenance.Snapshot, in etcd's own format: the backend is copied at one point
 * (LMDB's consistent copy of everything committed, after a flush), and a snapshot thread turns
 * the copy into an etcd 3.4 bbolt database, off the member's event loop, while writes go on. The
 * thread lays the file out first (so its length is known), then builds it in file order and hands
 * it over in chunks as the client stream takes them, already framed as the stream's responses,
 * hashing it with sha256 as it goes; the file is never written to disk.
 */
import { mkdtempSync, readdirSync, rmSync, statfsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { freemem } from 'node:os';
import { join } from 'node:path';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { LmdbBackend } from '../../src/mvcc/lmdb-backend.js';
import type { SnapshotMembership } from '../../src/snap/snap-file.js';
import { assert } from '../../src/lib/assert.js';
import { framedSnapshotResponsesBytesMax } from '../../src/api/snapshot-response.js';
import {
  backupChunkBytes,
  backupChunksAheadMax,
  backupCopyMemoryDir,
  backupCopyMemoryFreeBytesMin,
  backupCopyMemoryShareMax,
  backupThreadIdleMs,
  snapshotChunkBytes,
} from '../../src/lib/limits.js';
import type { Logger } from '../shared/logger.js';
import { backupDirPrefix } from './snapshot-install.js';
import {
  backupCancelled,
  backupCredit,
  type BackupTask,
  type BackupThreadInit,
  type BackupThreadReply,
  type HashTask,
  hashTaskName,
} from './backup-protocol.js';
import { processAlive } from '../../src/lib/process-alive.js';

/**
 * The next bytes of a backup's database, as Maintenance.Snapshot responses framed for gRPC;
 * release() once they have been written to the socket (their buffer is then built into again).
 */
export interface BackupChunk {
  framed: Uint8Array;
  /** How many responses `framed` holds. */
  messages: number;
  /** How many bytes of the database they carry. */
  databaseBytes: number;
  release(): void;
}

/** A backup being built: read its chunks in order with next(); dispose() stops it and deletes the copy. */
export interface BackupStream {
  /** The database's length. */
  bytes: number;
  /** The next bytes of the database; undefined after the last. */
  next(): Promise<BackupChunk | undefined>;
  /** The sha256 of the database, once next() returned undefined. */
  sha256(): Uint8Array;
  dispose(): void;
}

export interface BackupParts {
  snapDir: string;
  backend: () => LmdbBackend;
  membership: () => SnapshotMembership;
  /** The raised alarms, written to the file's alarm bucket. */
  alarms: () => { memberId: bigint; alarm: number }[];
  logger: Logger;
}

const backupThreadUrl = new URL('./backup-thread.js', import.meta.url).href;

/** A backup's directory in backupCopyMemoryDir: the member process's pid, then mkdtemp's six characters. */
const memoryCopyPrefix = 'tsetcd-backup-';
const memoryCopyPattern = /^tsetcd-backup-(\d+)-[0-9A-Za-z]{6}$/;

/**
 * Makes the directory a backup's copy of `backendBytes` goes into: in memory when
 * backupCopyMemoryDir and the machine's available memory have room, else in the snapshot dir (see backupCopyMemoryDir).
 */
function makeCopyDir(snapDir: string, backendBytes: number, logger: Logger): string {
  try {
    const stats = statfsSync(backupCopyMemoryDir);
    const roomInDir = stats.bavail * stats.bsize >= backendBytes + backupCopyMemoryFreeBytesMin;
    // A memory file system's free space is its size limit, not memory the machine has to spare.
    const roomInMemory = backendBytes <= freemem() * backupCopyMemoryShareMax;
    if (roomInDir && roomInMemory) {
      removeDeadProcessCopies((dir) => removeDir(dir, logger));
      return mkdtempSync(join(backupCopyMemoryDir, `${memoryCopyPrefix}${process.pid}-`));
    }
  } catch {
    // No memory file system here, or none we may write to: the copy goes beside the backend.
  }
  return mkdtempSync(join(snapDir, backupDirPrefix));
}

/**
 * Copies left in memory by member processes that ended mid-save (a kill -9) hold memory until
 * they are deleted; a member process still alive owns its own. Each is handed to `remove`.
 */
function removeDeadProcessCopies(remove: (dir: string) => void): void {
  let names: string[];
  try {
    names = readdirSync(backupCopyMemoryDir);
  } catch {
    return; // no memory file system here, so no copies in it
  }
  for (const name of names) {
    const pid = Number(memoryCopyPattern.exec(name)?.[1] ?? Number.NaN);
    if (Number.isNaN(pid) || pid === process.pid || processAlive(pid)) continue;
    remove(join(backupCopyMemoryDir, name));
  }
}

/** Deletes `dir` off the event loop: unlinking a copy of hundreds of MB takes tens of ms. */
function removeDir(dir: string, logger: Logger): void {
  rm(dir, { recursive: true, force: true }).catch((error: unknown) =>
    logger.warn({ path: dir, error: error instanceof Error ? error.message : String(error) }, 'failed to remove file'),
  );
}

/**
 * The member's snapshot thread, in a Piscina pool of one: started on the first save and kept
 * for backupThreadIdleMs, so saves in a row do not each start a thread. Hashes run the same
 * code in a pool of their own, so a hash does not wait for a save whose client reads slowly.
 */
export class BackupPool {
  private pool: Piscina | undefined;
  private hashPool: Piscina | undefined;

  /** A member starting after a kill -9 mid-save deletes the copy its earlier process left in memory. */
  constructor() {
    removeDeadProcessCopies((dir) => rmSync(dir, { recursive: true, force: true }));
  }

  /** Copies the backend and starts building the backup on the copy; resolves once the file's length is known. */
  async open(parts: BackupParts): Promise<BackupStream> {
    const backend = parts.backend();
    const dir = makeCopyDir(parts.snapDir, backend.sizeBytes(), parts.logger);
    const remove = (): void => removeDir(dir, parts.logger);
    try {
      const copyDir = join(dir, 'copy');
      await backend.copyTo(copyDir, { durable: false });
      const init: BackupThreadInit = {
        copyDir,
        membership: parts.membership(),
        alarms: parts.alarms(),
        flow: new SharedArrayBuffer(8),
        slots: Array.from(
          { length: backupChunksAheadMax },
          () => new SharedArrayBuffer(framedSnapshotResponsesBytesMax(backupChunkBytes, snapshotChunkBytes)),
        ),
      };
      const { port1, port2 } = new MessageChannel();
      const task: BackupTask = { init, port: port2 };
      const result = this.started().run(task, { transferList: [port2] }) as Promise<void>;
      return await new ThreadBackup(port1, init, result, remove).planned;
    } catch (error) {
      remove();
      throw error;
    }
  }

  /**
   * etcd's backend Hash (Maintenance.Hash) of everything committed: the backend is copied (as for
   * a save) and the copy hashed in etcd's bucket layout on the snapshot thread, off the member's
   * event loop, while writes go on.
   */
  async hash(parts: BackupParts): Promise<number> {
    const backend = parts.backend();
    const dir = makeCopyDir(parts.snapDir, backend.sizeBytes(), parts.logger);
    try {
      const copyDir = join(dir, 'copy');
      await backend.copyTo(copyDir, { durable: false });
      const task: HashTask = { copyDir, membership: parts.membership(), alarms: parts.alarms() };
      this.hashPool ??= threadPool();
      return (await this.hashPool.run(task, { name: hashTaskName })) as number;
    } finally {
      removeDir(dir, parts.logger);
    }
  }

  async close(): Promise<void> {
    const pools = [this.pool, this.hashPool];
    this.pool = undefined;
    this.hashPool = undefined;
    await Promise.all(pools.map((pool) => pool?.destroy()));
  }

  private started(): Piscina {
    this.pool ??= threadPool();
    return this.pool;
  }
}

/** A pool of one snapshot thread, started on its first task and ended after backupThreadIdleMs idle. */
function threadPool(): Piscina {
  return new Piscina({
    filename: backupThreadUrl,
    minThreads: 0,
    maxThreads: 1,
    idleTimeout: backupThreadIdleMs,
  });
}

/** The member's side of one backup: its chunks queued in order, each giving its credit back once written. */
class ThreadBackup implements BackupStream {
  bytes = 0;
  readonly planned: Promise<BackupStream>;
  private readonly flow: Int32Array;
  private readonly chunks: BackupChunk[] = [];
  private digest: Uint8Array | undefined;
  private failure: Error | undefined;
  private settled = false;
  private waiting: (() => void) | undefined;
  private plannedResolve!: (stream: BackupStream) => void;
  private plannedReject!: (error: Error) => void;

  private readonly slots: SharedArrayBuffer[];
  private readonly release = (): void => {
    Atomics.add(this.flow, backupCredit, 1);
    Atomics.notify(this.flow, backupCredit);
  };

  constructor(
    private readonly port: MessagePort,
    init: BackupThreadInit,
    result: Promise<void>,
    private readonly remove: () => void,
  ) {
    this.flow = new Int32Array(init.flow);
    this.slots = init.slots;
    Atomics.store(this.flow, backupCredit, backupChunksAheadMax);
    this.planned = new Promise((resolve, reject) => {
      this.plannedResolve = resolve;
      this.plannedReject = reject;
    });
    port.on('message', (reply: BackupThreadReply) => this.take(reply));
    result.then(
      () => this.settle(undefined),
      (error: unknown) => this.settle(error instanceof Error ? error : new Error(String(error))),
    );
  }

  async next(): Promise<BackupChunk | undefined> {
    while (this.chunks.length === 0 && this.digest === undefined && this.failure === undefined)
      await new Promise<void>((resolve) => (this.waiting = resolve));
    const chunk = this.chunks.shift();
    if (chunk !== undefined) return chunk;
    if (this.failure !== undefined) throw this.failure;
    return undefined;
  }

  sha256(): Uint8Array {
    assert(this.digest !== undefined, 'the sha256 of a backup is known once all of it was read');
    return this.digest;
  }

  dispose(): void {
    Atomics.store(this.flow, backupCancelled, 1);
    Atomics.notify(this.flow, backupCredit);
    if (this.settled) this.remove();
  }

  private take(reply: BackupThreadReply): void {
    switch (reply.type) {
      case 'planned':
        this.bytes = reply.bytes;
        this.plannedResolve(this);
        break;
      case 'chunk': {
        const { framed } = reply;
        const bytes =
          framed instanceof Uint8Array ? framed : new Uint8Array(this.slots[framed.slot]!, 0, framed.length);
        this.chunks.push({
          framed: bytes,
          messages: reply.messages,
          databaseBytes: reply.databaseBytes,
          release: this.release,
        });
        break;
      }
      case 'written':
        this.digest = reply.sha256;
        this.port.close();
        break;
    }
    this.wake();
  }

  /**
   * The task ended. A failure ends the stream; after a success the port's last messages may still
   * be on their way (the port is not ordered with the task's result), and 'written' closes it.
   */
  private settle(error: Error | undefined): void {
    this.settled = true;
    this.remove();
    if (error !== undefined) {
      this.port.close();
      this.failure ??= error;
      this.plannedReject(error);
    }
    this.wake();
  }

  private wake(): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.();
  }
}
