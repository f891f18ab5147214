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
 *
 * A restore. `tsetcdctl snapshot restore` journals its directory changes and fsyncs under the same
 * switch (ctl/restore-files.ts); restorePowerCut rebuilds its data dir as a cut at any point of it
 * could have left it, with the same rules for directory changes and LMDB's unsynced files.
 */
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { decodeJournal, walJournalFile, type JournalRecord } from '../../actors/wal/power-loss-journal.js';
import { Prng } from '../../src/lib/prng.js';
import { restoreJournalFile, type RestoreJournalRecord } from '../../ctl/restore-files.js';

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

/** A cut of a `snapshot restore`, from the journal ctl/restore-files.ts keeps under the test switch. */
export interface RestoreCutOptions {
  journalDir: string;
  seed: number;
  mode: PowerCutOptions['mode'];
  /** Power goes after this many of the journal's calls (a cut during the restore); all of them when undefined. */
  callsDone?: number;
}

/** What a restore cut did, for the test's diagnostics and checks. */
export interface RestoreCutReport {
  calls: number;
  callsDone: number;
  directoryChangesUnsynced: number;
  directoryChangesLost: number;
  /** Files put back, by path: the journal's copy of what their last fsync made durable, or 'empty' (never synced). */
  files: Map<string, string>;
}

interface RestoreNode {
  kind: 'dir' | 'file';
  /** A directory's entries as its last fsync left them, and as the restore saw them. */
  durable: Map<string, number>;
  live: Map<string, number>;
  /** A file's copy in the journal directory, as its last fsync made it durable. */
  copy?: string;
}

/**
 * The directories and files a restore made, as its journal describes them. Directories it did not
 * create (the data dir's parent and above) are roots, whose other entries the model leaves alone;
 * a leftover <data-dir>.part the restore removed is not put back by a cut that loses the removal.
 */
class RestoreModel {
  nodes = new Map<number, RestoreNode>();
  roots = new Map<string, number>();
  /** Per root, the names the restore created, renamed or removed in it. */
  touched = new Map<number, Set<string>>();
  unsynced: { dir: number; change: DirectoryChange }[] = [];
  private nextIno = 1;

  apply(call: RestoreJournalRecord): void {
    switch (call.op) {
      case 'mkdir':
        this.create(call.path, 'dir');
        return;
      case 'fsync': {
        const ino = this.entryOf(call.path) ?? this.create(call.path, 'file');
        this.node(ino).copy = call.copy;
        return;
      }
      case 'fsyncdir': {
        const dir = this.lookup(call.path);
        // Files LMDB created itself show up here first, created (not synced) before this fsync;
        // in a directory the restore did not make, what it did not make is not the model's.
        if (!this.isRoot(dir))
          for (const name of call.names) if (!this.node(dir).live.has(name)) this.create(join(call.path, name), 'file');
        for (const pending of this.unsynced.filter((change) => change.dir === dir))
          applyDirectoryChange(this.node(dir).durable, pending.change);
        this.unsynced = this.unsynced.filter((change) => change.dir !== dir);
        return;
      }
      case 'rename': {
        const dir = this.lookup(dirname(call.from));
        if (dir !== this.lookup(dirname(call.to)))
          throw new Error(`restore journal: a rename across directories, ${call.from} to ${call.to}`);
        const ino = this.node(dir).live.get(basename(call.from));
        if (ino === undefined) throw new Error(`restore journal: ${call.from} renamed but never made`);
        this.node(dir).live.delete(basename(call.from));
        this.node(dir).live.set(basename(call.to), ino);
        this.change(dir, { op: 'rename', from: basename(call.from), to: basename(call.to) });
        return;
      }
      case 'remove': {
        const dir = this.lookup(dirname(call.path));
        this.node(dir).live.delete(basename(call.path));
        this.change(dir, { op: 'unlink', name: basename(call.path) });
        return;
      }
      default: {
        const never: never = call;
        throw new Error(`unknown restore journal record ${JSON.stringify(never)}`);
      }
    }
  }

  node(ino: number): RestoreNode {
    const node = this.nodes.get(ino);
    if (node === undefined) throw new Error(`restore journal: no node ${ino}`);
    return node;
  }

  /** The directory or file at `path`: one the restore made, else a root that was there before. */
  lookup(path: string): number {
    const found = this.entryOf(path);
    if (found !== undefined) return found;
    let root = this.roots.get(path);
    if (root === undefined) {
      root = this.newNode('dir');
      this.roots.set(path, root);
    }
    return root;
  }

  private entryOf(path: string): number | undefined {
    if (dirname(path) === path) return undefined;
    return this.node(this.lookup(dirname(path))).live.get(basename(path));
  }

  private create(path: string, kind: RestoreNode['kind']): number {
    const dir = this.lookup(dirname(path));
    const ino = this.newNode(kind);
    this.node(dir).live.set(basename(path), ino);
    this.change(dir, { op: 'create', name: basename(path), ino });
    return ino;
  }

  private change(dir: number, change: DirectoryChange): void {
    this.unsynced.push({ dir, change });
    if (!this.isRoot(dir)) return;
    const names = this.touched.get(dir) ?? new Set<string>();
    for (const name of change.op === 'rename' ? [change.from, change.to] : [change.name]) names.add(name);
    this.touched.set(dir, names);
  }

  private isRoot(ino: number): boolean {
    return [...this.roots.values()].includes(ino);
  }

  private newNode(kind: RestoreNode['kind']): number {
    const ino = this.nextIno++;
    this.nodes.set(ino, { kind, durable: new Map(), live: new Map() });
    return ino;
  }
}

/**
 * Rebuilds what a restore made as a power cut after `callsDone` of its calls could have left it:
 * directory changes after their directory's last fsync lost from some point on (all of them in
 * 'drop-unsynced'), each file as its last fsync made it, or empty when it was never synced (LMDB
 * wrote it without syncing: the disk may hold its name and none of its data).
 */
export function restorePowerCut(options: RestoreCutOptions): RestoreCutReport {
  const calls = decodeJournal<RestoreJournalRecord>(readFileSync(join(options.journalDir, restoreJournalFile)));
  const callsDone = options.callsDone ?? calls.length;
  const model = new RestoreModel();
  for (const { call } of calls.slice(0, callsDone)) model.apply(call);
  const prng = new Prng(options.seed);
  const kept = options.mode === 'drop-unsynced' ? 0 : prng.nextInt(model.unsynced.length + 1);
  for (const { dir, change } of model.unsynced.slice(0, kept)) applyDirectoryChange(model.node(dir).durable, change);
  const report: RestoreCutReport = {
    calls: calls.length,
    callsDone,
    directoryChangesUnsynced: model.unsynced.length,
    directoryChangesLost: model.unsynced.length - kept,
    files: new Map(),
  };
  const build = (ino: number, path: string): void => {
    const node = model.node(ino);
    if (node.kind === 'file') {
      if (node.copy === undefined) writeFileSync(path, '');
      else copyFileSync(join(options.journalDir, node.copy), path);
      report.files.set(path, node.copy ?? 'empty');
      return;
    }
    mkdirSync(path);
    for (const [name, child] of node.durable) build(child, join(path, name));
  };
  for (const [rootPath, root] of model.roots) {
    for (const name of model.touched.get(root) ?? []) rmSync(join(rootPath, name), { recursive: true, force: true });
    for (const [name, ino] of model.node(root).durable) build(ino, join(rootPath, name));
  }
  return report;
}
