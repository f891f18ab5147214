/** Durability helpers shared by the WAL and the snapshot files. */
import { closeSync, fsyncSync, openSync } from 'node:fs';

/** Makes renames, creations and deletions in `dir` durable. */
export function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
