/** The thread protocol between a member and its snapshot thread (backup.ts and backup-thread.ts), as plain types. */
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

/** The snapshot thread's messages: the file's length, its bytes in order, then its sha256 (or a failure). */
export type BackupThreadReply =
  | { type: 'planned'; bytes: number }
  | { type: 'chunk'; chunk: Uint8Array }
  | { type: 'written'; sha256: Uint8Array }
  | { type: 'failed'; message: string };
