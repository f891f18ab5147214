/**
 * Backups for Maintenance.Snapshot, in etcd's own format: the backend is copied at one point
 * (LMDB's consistent copy of everything committed, after a flush), and a snapshot thread turns
 * the copy into an etcd 3.4 bbolt database file, off the member's event loop, while writes go on.
 * The client service streams the file and hashes it as it goes, as etcd does.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { LmdbBackend } from '../../src/mvcc/lmdb-backend.js';
import type { SnapshotMembership } from '../../src/snap/snap-file.js';
import { etcdClusterVersion } from '../../src/api/version.js';
import type { Logger } from '../shared/logger.js';
import { backupDirPrefix } from './snapshot-install.js';

/** What the snapshot thread is given: the backend copy to read, where to write, and what the backend does not hold. */
export interface BackupThreadInit {
  copyDir: string;
  outputPath: string;
  membership: SnapshotMembership;
  clusterVersion: string;
  alarms: { memberId: bigint; alarm: number }[];
}

/** The snapshot thread's one message. */
export type BackupThreadReply = { type: 'written'; bytes: number } | { type: 'failed'; message: string };

/** A written backup; dispose() deletes it. */
export interface BackupFile {
  path: string;
  bytes: number;
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

const backupThreadUrl = new URL('./backup-thread.js', import.meta.url);

/** Copies the backend and has the snapshot thread write it as an etcd database file. */
export async function writeBackup(parts: BackupParts): Promise<BackupFile> {
  const dir = mkdtempSync(join(parts.snapDir, backupDirPrefix));
  const dispose = (): void => rmSync(dir, { recursive: true, force: true });
  try {
    const copyDir = join(dir, 'copy');
    await parts.backend().copyTo(copyDir);
    const init: BackupThreadInit = {
      copyDir,
      outputPath: join(dir, 'db'),
      membership: parts.membership(),
      clusterVersion: etcdClusterVersion,
      alarms: parts.alarms(),
    };
    const bytes = await runBackupThread(init);
    rmSync(copyDir, { recursive: true, force: true });
    return { path: init.outputPath, bytes, dispose };
  } catch (error) {
    dispose();
    throw error;
  }
}

function runBackupThread(init: BackupThreadInit): Promise<number> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(backupThreadUrl, { workerData: init });
    let reply: BackupThreadReply | undefined;
    worker.once('message', (message: BackupThreadReply) => (reply = message));
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (reply?.type === 'written') resolve(reply.bytes);
      else reject(new Error(reply?.message ?? `the snapshot thread exited with code ${code}`));
    });
  });
}
