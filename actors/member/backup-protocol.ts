/** The thread protocol between a member and its snapshot thread (backup.ts and backup-thread.ts), as plain types. */
import type { MessagePort } from 'node:worker_threads';
import type { SnapshotMembership } from '../../src/snap/snap-file.js';

/** What the snapshot thread is given: the backend copy to read, what the backend does not hold, and the flow control. */
export interface BackupThreadInit {
  copyDir: string;
  membership: SnapshotMembership;
  clusterVersion: string;
  alarms: { memberId: bigint; alarm: number }[];
  /** An Int32Array over it: [backupCredit] chunks the thread may still send, [backupCancelled] 1 when the stream went away. */
  flow: SharedArrayBuffer;
}

export const backupCredit = 0;
export const backupCancelled = 1;

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
  | { type: 'chunk'; framed: Uint8Array; messages: number; databaseBytes: number }
  | { type: 'written'; sha256: Uint8Array };
