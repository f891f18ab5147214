/**
 * The file calls by which `snapshot restore` makes its data dir durable and puts it in place: the
 * directories it creates, the fsyncs of the backend's files and of the directories, the rename of
 * <data-dir>.part to the data dir and the removal of a leftover one. LMDB writes the backend's
 * files with its own native code, so their bytes are not among these calls; what an fsync here
 * made durable is.
 *
 * Power-loss tests only: with TSETCD_UNSAFE_POWERLOSS_JOURNAL=<dir> set, every call is journaled in
 * <dir>/restore.journal (the WAL journal's record format) and each fsync of a file leaves a copy of
 * the file as synced beside it, so test/support/power-cut.ts can rebuild the data dir as a disk
 * could have left it after losing power at any point of the restore. Paths are journaled absolute.
 */
import {
  closeSync,
  copyFileSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { encodeRecord, powerLossJournalDir } from '../actors/wal/power-loss-journal.js';
import { fsyncDirectory } from '../src/wal/fs-sync.js';

/** The restore's journal file in a journal directory. */
export const restoreJournalFile = 'restore.journal';

/** One journaled call of a restore, as power-cut.ts reads it back. */
export type RestoreJournalRecord =
  | { op: 'mkdir'; path: string }
  /** The file's bytes as this fsync made them durable are in the journal directory as `copy`. */
  | { op: 'fsync'; path: string; copy: string }
  /** `names`: the directory's entries then, so the journal knows the files LMDB created on its own. */
  | { op: 'fsyncdir'; path: string; names: string[] }
  | { op: 'rename'; from: string; to: string }
  | { op: 'remove'; path: string };

export interface RestoreFiles {
  /** Creates `dir` and any missing parents. */
  mkdirs(dir: string): void;
  /** Makes a file's bytes durable. */
  fsyncFile(path: string): void;
  /** Makes renames, creations and deletions in `dir` durable. */
  fsyncDirectory(dir: string): void;
  rename(from: string, to: string): void;
  /** Removes `path` and all under it, if it exists. */
  remove(path: string): void;
}

/** The restore's file calls straight to node:fs. */
export const nodeRestoreFiles: RestoreFiles = {
  mkdirs: (dir) => void mkdirSync(dir, { recursive: true }),
  fsyncFile(path) {
    const fd = openSync(path, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  },
  fsyncDirectory,
  rename: (from, to) => renameSync(from, to),
  remove: (path) => rmSync(path, { recursive: true, force: true }),
};

/** nodeRestoreFiles, journaling every call in <journalDir>/restore.journal. */
export function journaledRestoreFiles(journalDir: string): RestoreFiles {
  mkdirSync(journalDir, { recursive: true });
  const journal = openSync(join(journalDir, restoreJournalFile), 'a');
  let copies = 0;
  const record = (call: RestoreJournalRecord): void => void writeSync(journal, encodeRecord(call, new Uint8Array(0)));
  return {
    mkdirs(dir) {
      const missing: string[] = [];
      for (let at = resolve(dir); !existsSync(at); at = dirname(at)) missing.unshift(at);
      for (const path of missing) {
        mkdirSync(path);
        record({ op: 'mkdir', path });
      }
    },
    fsyncFile(path) {
      // The copy is read before the fsync returns, so it holds what the fsync made durable, never less.
      const copy = `restore-${String(++copies).padStart(6, '0')}.file`;
      copyFileSync(path, join(journalDir, copy));
      nodeRestoreFiles.fsyncFile(path);
      record({ op: 'fsync', path: resolve(path), copy });
    },
    fsyncDirectory(dir) {
      nodeRestoreFiles.fsyncDirectory(dir);
      record({ op: 'fsyncdir', path: resolve(dir), names: readdirSync(dir).sort() });
    },
    rename(from, to) {
      nodeRestoreFiles.rename(from, to);
      record({ op: 'rename', from: resolve(from), to: resolve(to) });
    },
    remove(path) {
      if (!existsSync(path)) return;
      nodeRestoreFiles.remove(path);
      record({ op: 'remove', path: resolve(path) });
    },
  };
}

/** The restore's file calls: journaled under the power-loss test switch, else nodeRestoreFiles. */
export function restoreFiles(): RestoreFiles {
  const journalDir = powerLossJournalDir();
  return journalDir === undefined ? nodeRestoreFiles : journaledRestoreFiles(journalDir);
}
