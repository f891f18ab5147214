/**
 * Whether a running etcd holds its backend file. bbolt takes an exclusive flock(2) on member/snap/db
 * for as long as etcd runs, and etcdctl's migrate waits for it. Node cannot take a flock, but Linux
 * lists every held flock in /proc/locks by device and inode, which is enough to wait as etcdctl does.
 */
import { readFileSync, statSync } from 'node:fs';

/** The "MAJOR:MINOR:INODE" /proc/locks shows for a file (major and minor in hex), or undefined when it is missing. */
export function procLocksId(path: string): string | undefined {
  const stats = statSync(path, { bigint: true, throwIfNoEntry: false });
  if (stats === undefined) return undefined;
  const dev = stats.dev;
  // glibc's major()/minor() over the dev_t stat returns.
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}:${stats.ino}`;
}

/** Whether /proc/locks shows a flock held (not merely waited for) on the file with that id. */
export function flockHeld(locksText: string, id: string): boolean {
  return locksText.split('\n').some((line) => {
    const fields = line.trim().split(/\s+/);
    // "1: FLOCK ADVISORY WRITE pid id start end"; a waiter's line has "->" after the number.
    return fields[1] === 'FLOCK' && fields[5] === id;
  });
}

/** Whether some process holds a flock on `path` now; false where /proc/locks cannot be read. */
export function isFlocked(path: string): boolean {
  const id = procLocksId(path);
  if (id === undefined) return false;
  let text: string;
  try {
    text = readFileSync('/proc/locks', 'utf8');
  } catch {
    return false;
  }
  return flockHeld(text, id);
}

/**
 * Resolves once nobody holds a flock on `path`, polling as bbolt does (every 50 ms); after a second
 * of waiting it calls `onSlow` once, where etcdctl says it is waiting for etcd.
 */
export async function waitForFlockRelease(path: string, onSlow: () => void): Promise<void> {
  const pollMs = 50;
  const slowAfterPolls = 1000 / pollMs;
  for (let polls = 0; isFlocked(path); polls += 1) {
    if (polls === slowAfterPolls) onSlow();
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}
