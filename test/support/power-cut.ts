/**
 * A power cut, after the fact: rebuilds a member's WAL directory and backend from the journal a
 * member keeps under TSETCD_UNSAFE_POWERLOSS_JOURNAL (actors/wal/power-loss-journal.ts), as a disk
 * could have left them when power went, so the member can be restarted on what remains.
 *
 * The WAL. Every byte a file's fdatasync covered is there. Each write and truncate after a file's
 * last fdatasync is, chosen by a seeded PRNG, dropped, kept, or (writes) torn: a prefix of it
 * survives, or a subset of its 512-byte sectors. Creations, renames and deletions after the WAL
 * directory's last fsync are lost from some point on (a journaling file system commits its
 * metadata in order): a segment renamed into place may be gone again, a deleted one back.
 *
 * The backend. LMDB writes with its own native code, so its writes cannot be journaled; tsetcd
 * opens it with noSync and flushes it only in LmdbBackend.sync(), which under the journal leaves a
 * copy of the database as synced (backend-<n>.mdb). After a cut the backend is the last such copy,
 * or no database at all when nothing was synced. That is what a power loss leaves when none of the
 * writes LMDB made after its last flush reached the disk: later commits are lost whole, as if the
 * pages never left the cache. A disk that wrote some of those pages and not others can leave more
 * (LMDB with noSync promises no integrity then); this model does not produce that case.
 */
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeJournal, walJournalFile, type JournalRecord } from '../../actors/wal/power-loss-journal.js';
import { Prng } from '../../src/lib/prng.js';

/** Sectors a disk writes whole: a torn write keeps some of them. */
export const sectorBytes = 512;

export interface PowerCutOptions {
  /** The member's TSETCD_UNSAFE_POWERLOSS_JOURNAL directory. */
  journalDir: string;
  walDir: string;
  /** The backend's directory (holding data.mdb). */
  backendPath: string;
  seed: number;
  /** 'random': the seed decides each unsynced change; 'drop-unsynced': every unsynced change is lost. */
  mode: 'random' | 'drop-unsynced';
}

/** What a cut did, for the test's diagnostics. */
export interface PowerCutReport {
  writesUnsynced: number;
  writesDropped: number;
  writesTorn: number;
  writesKept: number;
  bytesUnsynced: number;
  /** Bytes of unsynced writes that did not survive: dropped writes whole, the lost parts of torn ones. */
  bytesLost: number;
  truncatesUnsynced: number;
  truncatesLost: number;
  directoryChangesUnsynced: number;
  directoryChangesLost: number;
  /** The durable backend copy put back, or undefined when none was synced (no database). */
  backendCopy: string | undefined;
  walFiles: string[];
  /**
   * Per WAL file, where its synced data ends: damage the WAL reports at or past this offset is in
   * bytes that were never synced, so a refusal to start there loses nothing acknowledged.
   */
  syncedDataBytes: Map<string, number>;
}

/** A file's bytes: `size` long, zeros past bytes.length. */
class FileImage {
  size = 0;
  bytes = Buffer.alloc(0);

  clone(): FileImage {
    const copy = new FileImage();
    copy.size = this.size;
    copy.bytes = Buffer.from(this.bytes);
    return copy;
  }

  write(position: number, data: Uint8Array): void {
    const end = position + data.length;
    if (this.bytes.length < end) {
      const grown = Buffer.alloc(Math.max(end, this.bytes.length * 2));
      this.bytes.copy(grown);
      this.bytes = grown;
    }
    this.bytes.set(data, position);
    this.size = Math.max(this.size, end);
  }

  truncate(size: number): void {
    if (size < this.bytes.length) this.bytes.fill(0, size);
    this.size = size;
  }

  /** Where the last non-zero byte ends. */
  dataBytes(): number {
    let end = Math.min(this.size, this.bytes.length);
    while (end > 0 && this.bytes[end - 1] === 0) end--;
    return end;
  }
}

type FileChange = { op: 'write'; position: number; data: Buffer } | { op: 'truncate'; size: number };
type DirectoryChange =
  | { op: 'create'; name: string; ino: number }
  | { op: 'rename'; from: string; to: string }
  | { op: 'unlink'; name: string };

interface FileState {
  durable: FileImage;
  unsynced: FileChange[];
}

/** The WAL directory as the journal describes it: durable state and the changes since. */
class JournalModel {
  files = new Map<number, FileState>();
  durableNames = new Map<string, number>();
  unsyncedNames: DirectoryChange[] = [];

  apply(call: JournalRecord, data: Buffer): void {
    switch (call.op) {
      case 'baseline':
        this.files.clear();
        this.durableNames.clear();
        this.unsyncedNames = [];
        for (const file of call.files) {
          const image = new FileImage();
          image.truncate(file.size);
          if (file.dataBytes > 0) image.write(0, data.subarray(0, file.dataBytes));
          data = data.subarray(file.dataBytes);
          this.files.set(file.ino, { durable: image, unsynced: [] });
          this.durableNames.set(file.name, file.ino);
        }
        return;
      case 'create':
        this.files.set(call.ino, { durable: new FileImage(), unsynced: [] });
        this.unsyncedNames.push(call);
        return;
      case 'write':
        this.file(call.ino).unsynced.push({ op: 'write', position: call.position, data });
        return;
      case 'truncate':
        this.file(call.ino).unsynced.push({ op: 'truncate', size: call.size });
        return;
      case 'fdatasync': {
        const file = this.file(call.ino);
        for (const change of file.unsynced) applyChange(file.durable, change);
        file.unsynced = [];
        return;
      }
      case 'rename':
      case 'unlink':
        this.unsyncedNames.push(call);
        return;
      case 'fsyncdir':
        for (const change of this.unsyncedNames) applyDirectoryChange(this.durableNames, change);
        this.unsyncedNames = [];
        return;
      default: {
        const never: never = call;
        throw new Error(`unknown journal record ${JSON.stringify(never)}`);
      }
    }
  }

  private file(ino: number): FileState {
    const file = this.files.get(ino);
    if (file === undefined) throw new Error(`journal names inode ${ino}, which it never created`);
    return file;
  }
}

function applyChange(image: FileImage, change: FileChange): void {
  if (change.op === 'write') image.write(change.position, change.data);
  else image.truncate(change.size);
}

function applyDirectoryChange(names: Map<string, number>, change: DirectoryChange): void {
  if (change.op === 'create') {
    names.set(change.name, change.ino);
  } else if (change.op === 'unlink') {
    names.delete(change.name);
  } else {
    const ino = names.get(change.from);
    if (ino === undefined) return; // its creation was lost: the rename finds nothing
    names.delete(change.from);
    names.set(change.to, ino);
  }
}

/** Rebuilds the WAL directory and the backend as a power cut could have left them (see the file comment). */
export function powerCut(options: PowerCutOptions): PowerCutReport {
  const model = new JournalModel();
  for (const { call, data } of decodeJournal(readFileSync(join(options.journalDir, walJournalFile)))) {
    model.apply(call, data);
  }
  const prng = new Prng(options.seed);
  const report: PowerCutReport = {
    writesUnsynced: 0,
    writesDropped: 0,
    writesTorn: 0,
    writesKept: 0,
    bytesUnsynced: 0,
    bytesLost: 0,
    truncatesUnsynced: 0,
    truncatesLost: 0,
    directoryChangesUnsynced: model.unsyncedNames.length,
    directoryChangesLost: 0,
    backendCopy: undefined,
    walFiles: [],
    syncedDataBytes: new Map(),
  };
  const keptChanges = options.mode === 'drop-unsynced' ? 0 : prng.nextInt(model.unsyncedNames.length + 1);
  report.directoryChangesLost = model.unsyncedNames.length - keptChanges;
  const names = new Map(model.durableNames);
  for (const change of model.unsyncedNames.slice(0, keptChanges)) applyDirectoryChange(names, change);

  rmSync(options.walDir, { recursive: true, force: true });
  mkdirSync(options.walDir, { recursive: true });
  for (const [name, ino] of [...names].sort(([a], [b]) => a.localeCompare(b))) {
    const file = model.files.get(ino);
    if (file === undefined) throw new Error(`journal names inode ${ino} for ${name}, which it never created`);
    const image = file.durable.clone();
    for (const change of file.unsynced) cutChange(image, change, options.mode, prng, report);
    const path = join(options.walDir, name);
    writeFileSync(path, image.bytes.subarray(0, Math.min(image.size, image.bytes.length)));
    truncateSync(path, image.size);
    report.walFiles.push(name);
    report.syncedDataBytes.set(name, file.durable.dataBytes());
  }
  report.backendCopy = restoreBackend(options.journalDir, options.backendPath);
  return report;
}

/** Applies one unsynced change to `image` whole, in part or not at all, as the mode and PRNG say. */
function cutChange(
  image: FileImage,
  change: FileChange,
  mode: PowerCutOptions['mode'],
  prng: Prng,
  report: PowerCutReport,
): void {
  if (change.op === 'truncate') {
    report.truncatesUnsynced++;
    if (mode === 'random' && prng.chance(0.5)) image.truncate(change.size);
    else report.truncatesLost++;
    return;
  }
  const { position, data } = change;
  report.writesUnsynced++;
  report.bytesUnsynced += data.length;
  const fate = mode === 'drop-unsynced' ? 0 : prng.nextInt(3);
  if (fate === 0) {
    report.writesDropped++;
    report.bytesLost += data.length;
  } else if (fate === 1) {
    report.writesKept++;
    image.write(position, data);
  } else {
    report.writesTorn++;
    report.bytesLost += data.length - tear(image, position, data, prng);
  }
}

/** Writes part of `data`: a prefix, or some of its sectors; returns the bytes written. */
function tear(image: FileImage, position: number, data: Buffer, prng: Prng): number {
  if (data.length <= 1) return 0;
  if (prng.chance(0.5)) {
    const kept = prng.nextInt(data.length);
    image.write(position, data.subarray(0, kept));
    return kept;
  }
  let kept = 0;
  for (let start = 0; start < data.length;) {
    const sectorEnd = (Math.floor((position + start) / sectorBytes) + 1) * sectorBytes - position;
    const end = Math.min(sectorEnd, data.length);
    if (prng.chance(0.5)) {
      image.write(position + start, data.subarray(start, end));
      kept += end - start;
    }
    start = end;
  }
  return kept;
}

/** Puts the last durable backend copy in place, or removes the database when there is none. */
function restoreBackend(journalDir: string, backendPath: string): string | undefined {
  const copies = readdirSync(journalDir)
    .filter((name) => /^backend-\d+\.mdb$/.test(name))
    .sort();
  const last = copies[copies.length - 1];
  rmSync(join(backendPath, 'data.mdb'), { force: true });
  rmSync(join(backendPath, 'lock.mdb'), { force: true });
  if (last === undefined) return undefined;
  mkdirSync(backendPath, { recursive: true });
  copyFileSync(join(journalDir, last), join(backendPath, 'data.mdb'));
  return last;
}
