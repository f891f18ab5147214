/** Durability helpers shared by the WAL and the snapshot files, and the file calls the WAL makes. */
import {
  closeSync,
  fdatasyncSync,
  fsyncSync,
  ftruncateSync,
  openSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';

/** Makes renames, creations and deletions in `dir` durable. */
export function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Every call by which the WAL changes its files. The WAL runs on nodeWalFiles; a power-loss test
 * gives it one that also journals each call (actors/wal/power-loss-journal.ts).
 */
export interface WalFiles {
  /** Opens `path` for reading and writing, created empty (or emptied). */
  create(path: string): number;
  /** Opens the existing file `path` for reading and writing. */
  openExisting(path: string): number;
  /** Writes bytes[offset, offset + length) at `position`; returns how many were written. */
  write(fd: number, bytes: Uint8Array, offset: number, length: number, position: number): number;
  truncate(fd: number, size: number): void;
  fdatasync(fd: number): void;
  fsyncDirectory(dir: string): void;
  rename(from: string, to: string): void;
  unlink(path: string): void;
  close(fd: number): void;
}

/** The WAL's file calls straight to node:fs. */
export const nodeWalFiles: WalFiles = {
  create: (path) => openSync(path, 'w+'),
  openExisting: (path) => openSync(path, 'r+'),
  write: (fd, bytes, offset, length, position) => writeSync(fd, bytes, offset, length, position),
  truncate: (fd, size) => ftruncateSync(fd, size),
  fdatasync: (fd) => fdatasyncSync(fd),
  fsyncDirectory,
  rename: (from, to) => renameSync(from, to),
  unlink: (path) => unlinkSync(path),
  close: (fd) => closeSync(fd),
};
