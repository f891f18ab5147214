/**
 * Power-loss tests only: with TSETCD_UNSAFE_POWERLOSS_JOURNAL=<dir> set, the WAL's file calls are
 * journaled in <dir>/wal.journal (append-only), so test/support/power-cut.ts can rebuild the WAL
 * directory as a disk could have left it after losing power: synced bytes kept, the rest dropped,
 * kept or torn. Unset (every default start), the WAL runs on nodeWalFiles and nothing here runs.
 *
 * A record is a 4-byte little-endian length, that many bytes of JSON (the call), a 4-byte length
 * and that many bytes of data (a write's bytes, a baseline's file contents). A call is journaled
 * after it returned, so one the process died in counts as not done: as if the disk never got it.
 * Files are named by inode number, which stays with a file across renames.
 */
import { closeSync, fstatSync, mkdirSync, openSync, readdirSync, readSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { nodeWalFiles, type WalFiles } from '../../src/wal/fs-sync.js';

/** The environment variable naming the journal directory; never set outside power-loss tests. */
export const powerLossJournalEnv = 'TSETCD_UNSAFE_POWERLOSS_JOURNAL';

/** The WAL's journal file in a journal directory. */
export const walJournalFile = 'wal.journal';

/** The journal directory when the test switch is on, else undefined. */
export function powerLossJournalDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const dir = env[powerLossJournalEnv];
  return dir === undefined || dir === '' ? undefined : dir;
}

/** One journaled call, as power-cut.ts reads it back. */
export type JournalRecord =
  | { op: 'baseline'; files: { name: string; ino: number; size: number; dataBytes: number }[] }
  | { op: 'create'; name: string; ino: number }
  | { op: 'write'; ino: number; position: number }
  | { op: 'truncate'; ino: number; size: number }
  | { op: 'fdatasync'; ino: number }
  | { op: 'rename'; from: string; to: string }
  | { op: 'unlink'; name: string }
  | { op: 'fsyncdir' };

/** A restore's journaled call (ctl/restore-files.ts defines them); journaled here in the same format. */
export interface RestoreJournalCall {
  op: string;
}

/** nodeWalFiles for the WAL in `walDir`, journaling every call to <journalDir>/wal.journal. */
export function journaledWalFiles(walDir: string, journalDir: string): WalFiles {
  mkdirSync(journalDir, { recursive: true });
  const journal = openSync(join(journalDir, walJournalFile), 'a');
  const inodes = new Map<number, number>();
  const record = (call: JournalRecord, data: Uint8Array = new Uint8Array(0)): void => {
    writeSync(journal, encodeRecord(call, data));
  };
  const nameIn = (path: string): string => {
    if (resolve(dirname(path)) !== resolve(walDir))
      throw new Error(`power-loss journal: ${path} is outside the WAL dir ${walDir}`);
    return basename(path);
  };
  const inode = (fd: number): number => {
    const ino = inodes.get(fd);
    if (ino === undefined) throw new Error(`power-loss journal: fd ${fd} was not opened through the journal`);
    return ino;
  };
  mkdirSync(walDir, { recursive: true });
  recordBaseline(walDir, record);
  return {
    create(path) {
      const fd = nodeWalFiles.create(path);
      const ino = fstatSync(fd).ino;
      inodes.set(fd, ino);
      record({ op: 'create', name: nameIn(path), ino });
      return fd;
    },
    openExisting(path) {
      const fd = nodeWalFiles.openExisting(path);
      inodes.set(fd, fstatSync(fd).ino);
      return fd;
    },
    write(fd, bytes, offset, length, position) {
      const written = nodeWalFiles.write(fd, bytes, offset, length, position);
      record({ op: 'write', ino: inode(fd), position }, bytes.subarray(offset, offset + written));
      return written;
    },
    truncate(fd, size) {
      nodeWalFiles.truncate(fd, size);
      record({ op: 'truncate', ino: inode(fd), size });
    },
    fdatasync(fd) {
      nodeWalFiles.fdatasync(fd);
      record({ op: 'fdatasync', ino: inode(fd) });
    },
    fsyncDirectory(dir) {
      nodeWalFiles.fsyncDirectory(dir);
      if (resolve(dir) === resolve(walDir)) record({ op: 'fsyncdir' });
    },
    rename(from, to) {
      nodeWalFiles.rename(from, to);
      record({ op: 'rename', from: nameIn(from), to: nameIn(to) });
    },
    unlink(path) {
      nodeWalFiles.unlink(path);
      record({ op: 'unlink', name: nameIn(path) });
    },
    close(fd) {
      nodeWalFiles.close(fd);
      inodes.delete(fd);
    },
  };
}

/**
 * Makes what the WAL dir holds at start durable (fdatasync of each file, then of the dir) and
 * journals it as the state a power cut starts from: a restart on the same journal begins anew.
 * A file's data is journaled up to its last non-zero byte (segments are preallocated with zeros).
 */
function recordBaseline(walDir: string, record: (call: JournalRecord, data: Uint8Array) => void): void {
  const files: { name: string; ino: number; size: number; dataBytes: number }[] = [];
  const contents: Buffer[] = [];
  for (const name of readdirSync(walDir).sort()) {
    const fd = openSync(join(walDir, name), 'r+');
    try {
      const stat = fstatSync(fd);
      if (!stat.isFile()) continue;
      const bytes = Buffer.alloc(stat.size);
      let read = 0;
      while (read < stat.size) {
        const got = readSync(fd, bytes, read, stat.size - read, read);
        if (got === 0) break;
        read += got;
      }
      nodeWalFiles.fdatasync(fd);
      let dataBytes = read;
      while (dataBytes > 0 && bytes[dataBytes - 1] === 0) dataBytes--;
      files.push({ name, ino: stat.ino, size: stat.size, dataBytes });
      contents.push(bytes.subarray(0, dataBytes));
    } finally {
      closeSync(fd);
    }
  }
  nodeWalFiles.fsyncDirectory(walDir);
  record({ op: 'baseline', files }, Buffer.concat(contents));
}

/** One journal record's bytes: length-prefixed JSON, then length-prefixed data. */
export function encodeRecord(call: JournalRecord | RestoreJournalCall, data: Uint8Array): Buffer {
  const json = Buffer.from(JSON.stringify(call));
  const out = Buffer.alloc(8 + json.length + data.length);
  out.writeUInt32LE(json.length, 0);
  json.copy(out, 4);
  out.writeUInt32LE(data.length, 4 + json.length);
  out.set(data, 8 + json.length);
  return out;
}

/**
 * Reads a journal back (the WAL's, or with Call a restore's); a record cut short at the end (the
 * process died writing it) is left out.
 */
export function decodeJournal<Call = JournalRecord>(bytes: Buffer): { call: Call; data: Buffer }[] {
  const records: { call: Call; data: Buffer }[] = [];
  let at = 0;
  while (at + 4 <= bytes.length) {
    const jsonBytes = bytes.readUInt32LE(at);
    if (at + 8 + jsonBytes > bytes.length) break;
    const dataBytes = bytes.readUInt32LE(at + 4 + jsonBytes);
    const end = at + 8 + jsonBytes + dataBytes;
    if (end > bytes.length) break;
    const call = JSON.parse(bytes.subarray(at + 4, at + 4 + jsonBytes).toString('utf8')) as Call;
    records.push({ call, data: bytes.subarray(at + 8 + jsonBytes, end) });
    at = end;
  }
  return records;
}
