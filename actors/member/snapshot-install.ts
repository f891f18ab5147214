/**
 * Putting a received snapshot database in place of the member's backend, and finishing that
 * after a crash. The backend is an LMDB environment directory (`snap/db`, holding data.mdb); a
 * received database (`snap/%016x.snap.db`) becomes the data.mdb of a fresh directory
 * `snap/db-%016x`, which the member opens and serves from at once; once the old environment is
 * closed, the old directory is deleted and the new one renamed to `snap/db`.
 *
 * Crash safety: the WAL records the snapshot before any of this starts, so at restart
 *   - a `snap/db-<index>` directory is a complete install (its data.mdb arrived by rename after an
 *     fsync) and replaces `snap/db`;
 *   - a `snap/<index>.snap.db` file at the WAL's snapshot index was received but not installed, and
 *     is installed then; one at any other index was never recorded and is deleted.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, unlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fsyncDirectory } from '../../src/wal/fs-sync.js';
import { snapDbFileName } from '../../src/snap/snap-file.js';
import { failpoint, failpointsOn } from '../shared/failpoints.js';

const installDirPattern = /^db-([0-9a-f]{16})$/;
const sendDirPattern = /^send-[0-9a-f]{16}$/;
/** Directories made by mkdtemp for Maintenance.Snapshot (backupDirPrefix plus six characters). */
const backupDirPattern = /^backup-[0-9A-Za-z]{6}$/;
/** The prefix of a directory where a backup for a client is made (see actors/member/backup.ts). */
export const backupDirPrefix = 'backup-';
const receivedDbPattern = /^([0-9a-f]{16})\.snap\.db(\.tmp)?$/;
/** The file LMDB keeps an environment's data in. */
const lmdbDataFile = 'data.mdb';

/** The directory a snapshot at `index` is installed into before it becomes the backend. */
export function installDir(backendPath: string, index: number): string {
  return join(dirname(backendPath), `${basename(backendPath)}-${index.toString(16).padStart(16, '0')}`);
}

/**
 * Moves the received database for `index` into its own environment directory and returns it; the
 * caller opens it as the new backend. Throws when no database was received for `index`.
 */
export function stageReceivedDb(snapDir: string, backendPath: string, index: number): string {
  if (failpointsOn) failpoint('snapshotBeforeInstall');
  const received = join(snapDir, snapDbFileName(index));
  if (!existsSync(received))
    throw new Error(`failed to find database snapshot file ${received} for the snapshot at index ${index}`);
  const target = installDir(backendPath, index);
  rmSync(target, { recursive: true, force: true });
  mkdirSync(target);
  renameSync(received, join(target, lmdbDataFile));
  fsyncDirectory(target);
  fsyncDirectory(snapDir);
  return target;
}

/** Where defragmentation writes the compacted copy before it takes the backend's place. */
export function defragStagingDir(backendPath: string): string {
  return `${backendPath}-defrag`;
}

/**
 * Once the old backend is closed: the staged database becomes `backendPath`'s. Its data file is
 * renamed over the old one, which is atomic, so a crash at any point leaves the old database or
 * the new one in place, never neither (removing the old directory first, then renaming the staged
 * one, left a window with none). A staged directory whose data file was already moved is removed.
 */
export function finishInstall(stagedDir: string, backendPath: string): void {
  const staged = join(stagedDir, lmdbDataFile);
  if (existsSync(staged)) {
    mkdirSync(backendPath, { recursive: true });
    renameSync(staged, join(backendPath, lmdbDataFile));
    fsyncDirectory(backendPath);
  }
  rmSync(stagedDir, { recursive: true, force: true });
  fsyncDirectory(dirname(backendPath));
}

/** True when recoverSnapshotInstall may replace the backend: a staged or received database is in `snapDir`. */
export function snapshotInstallPending(snapDir: string): boolean {
  return readdirSync(snapDir).some((name) => installDirPattern.test(name) || receivedDbPattern.test(name));
}

/**
 * At start, before the backend is opened: completes an install a crash interrupted, and deletes
 * received databases the WAL never recorded. Returns what it did, for the log; empty when nothing.
 */
export function recoverSnapshotInstall(snapDir: string, backendPath: string, walSnapshotIndex: number): string[] {
  const done: string[] = [];
  const names = readdirSync(snapDir);
  // Copies made to send to followers or clients are worthless after a restart, and so is a
  // defragmentation's copy: until its data file took the backend's place, the backend is whole.
  for (const name of names.filter((entry) => sendDirPattern.test(entry) || backupDirPattern.test(entry)))
    rmSync(join(snapDir, name), { recursive: true, force: true });
  rmSync(defragStagingDir(backendPath), { recursive: true, force: true });
  const staged = names.filter((name) => installDirPattern.test(name)).sort();
  const newest = staged.pop();
  for (const name of staged) rmSync(join(snapDir, name), { recursive: true, force: true });
  if (newest !== undefined) {
    finishInstall(join(snapDir, newest), backendPath);
    done.push(`finished installing ${newest}`);
  }
  for (const name of names) {
    const match = receivedDbPattern.exec(name);
    if (match === null) continue;
    const index = parseInt(match[1] as string, 16);
    if (match[2] === undefined && index === walSnapshotIndex) {
      finishInstall(stageReceivedDb(snapDir, backendPath, index), backendPath);
      done.push(`installed received database ${name}`);
    } else {
      unlinkSync(join(snapDir, name));
      done.push(`deleted unrecorded database ${name}`);
    }
  }
  return done;
}

/** Where the leader puts its copy of the database while sending it to `peerId`. */
export function sendDirFor(snapDir: string, peerId: bigint): string {
  return join(snapDir, `send-${peerId.toString(16).padStart(16, '0')}`);
}
