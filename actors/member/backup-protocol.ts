/** The thread protocol between a member and its snapshot thread (backup.ts and backup-thread.ts), as plain types. */
import type { MessagePort } from 'node:worker_threads';
import type { SnapshotMembership } from '../../src/snap/snap-file.js';

/** A backend copy for the snapshot thread to read, with what the backend does not hold. */
export interface BackupContents {
  copyDir: string;
  /** The members, removed IDs and cluster version (the cluster bucket's clusterVersion). */
  membership: SnapshotMembership;
  alarms: { memberId: bigint; alarm: number }[];
}

/** What the snapshot thread is given for a backup: the copy and the flow control. */
export interface BackupThreadInit extends BackupContents {
  /**
   * An Int32Array over it: [backupCredit] chunks the thread may still send (one comes back as each
   * sent chunk has been written to the client's socket), [backupCancelled] 1 when the stream went away.
   */
  flow: SharedArrayBuffer;
  /**
   * backupChunksAheadMax buffers the chunks are built in, in turn: a chunk's buffer is reused once
   * its credit came back. The member's event loop then sends views of these and allocates nothing
   * per chunk (transferring a new buffer per chunk made the member thread collect its heap, large
   * with the key index, again and again during a save). A chunk larger than a slot is transferred.
   */
  slots: SharedArrayBuffer[];
}

/** Where a chunk's framed bytes are: the first `length` bytes of a slot, or a buffer of their own. */
export type BackupChunkBytes = { slot: number; length: number } | Uint8Array;

export const backupCredit = 0;
export const backupCancelled = 1;

/** One hash task (the thread's hashBackend): etcd's backend Hash of the copy is the task's result. */
export type HashTask = BackupContents;

/** The snapshot thread's export that runs a HashTask. */
export const hashTaskName = 'hashBackend';

/** One backup task: what to build, and the port its messages go out on. The task fails with what went wrong. */
export interface BackupTask {
  init: BackupThreadInit;
  port: MessagePort;
}

/**
 * The snapshot thread's messages on the task's port: the file's length, its bytes in order (as
 * Maintenance.Snapshot responses framed for gRPC, `databaseBytes` of the file in `messages`
 * responses), then its sha256.
 */
export type BackupThreadReply =
  | { type: 'planned'; bytes: number }
  | { type: 'chunk'; framed: BackupChunkBytes; messages: number; databaseBytes: number }
  | { type: 'written'; sha256: Uint8Array };
