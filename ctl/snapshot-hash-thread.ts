/**
 * The sha256 of a snapshot file's database bytes, computed on its own thread while the restore
 * reads the same file: it reads the first `length` bytes of `path` in chunks and posts the digest.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

/** What the restore hands the thread. */
export interface HashThreadInput {
  path: string;
  length: number;
}

const hashChunkBytes = 4 * 1024 * 1024;

function hashFile({ path, length }: HashThreadInput): Buffer {
  const hash = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buffer = Buffer.allocUnsafeSlow(Math.min(hashChunkBytes, Math.max(length, 1)));
    for (let offset = 0; offset < length;) {
      const read = readSync(fd, buffer, 0, Math.min(buffer.length, length - offset), offset);
      if (read === 0) throw new Error(`unexpected EOF: ${path} ends at byte ${offset}, before byte ${length}`);
      hash.update(buffer.subarray(0, read));
      offset += read;
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest();
}

parentPort?.postMessage(hashFile(workerData as HashThreadInput));
