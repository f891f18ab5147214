/**
 * The write-ahead log: a synchronous writer over segment files, used inside the WAL thread and
 * directly by tests and the simulator. Appends only write; sync() makes everything written durable.
 * See format.ts for the bytes on disk.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { assert } from '../lib/assert.js';
import { walSegmentBytesDefault } from '../lib/limits.js';
import type { Entry, HardState } from '../raft/types.js';
import {
  encodeBatch,
  encodeCrc,
  encodeHardState,
  encodeMetadata,
  encodeSnapshotMarker,
  FrameBuilder,
  RecordType,
  sealFrames,
  type EncodedBatch,
  type WalMetadata,
  type WalSnapshotMarker,
} from './format.js';
import { readWal, type WalState } from './reader.js';
import { nodeWalFiles, type WalFiles } from './fs-sync.js';
import { listSegments, listTempSegments, segmentName, segmentTempSuffix, type SegmentFile } from './segment.js';

export interface WalOptions {
  /** Size segments are preallocated to; a segment is cut once writes reach it. */
  segmentBytes?: number;
  /** Where repairs (a truncated torn write) are reported; defaults to console.warn. */
  log?: (message: string) => void;
  /**
   * --max-wals: segment files kept even when a snapshot covers them (0 keeps all); undefined
   * deletes every segment a snapshot covers.
   */
  maxWals?: number;
  /** --unsafe-no-fsync: never fdatasync or fsync; a crash may lose what was acknowledged. */
  unsafeNoFsync?: boolean;
  /** The file calls the WAL makes; nodeWalFiles unless a power-loss test journals them. */
  files?: WalFiles;
}

/** Smallest segment size accepted, so a segment header always fits with room for records. */
export const walSegmentBytesMin = 4096;

interface TailSegment {
  fd: number;
  /** Where the next record goes. */
  offset: number;
  /** The crc chain's value after the last record written. */
  crc: number;
}

export class Wal {
  private segments: SegmentFile[];
  private tail: TailSegment | undefined;
  private lastIndex: number;
  private hardState: HardState | undefined;
  private snapshot: WalSnapshotMarker;
  private dirty = false;
  private syncs = 0;
  private written = 0;

  private readonly maxWals: number | undefined;
  private readonly fsyncs: Fsyncs;
  private readonly files: WalFiles;

  private constructor(
    readonly dir: string,
    readonly metadata: WalMetadata,
    private readonly segmentBytes: number,
    options: WalOptions,
    init: {
      segments: SegmentFile[];
      tail: TailSegment;
      lastIndex: number;
      hardState: HardState | undefined;
      snapshot: WalSnapshotMarker;
    },
  ) {
    this.segments = init.segments;
    this.tail = init.tail;
    this.lastIndex = init.lastIndex;
    this.hardState = init.hardState;
    this.snapshot = init.snapshot;
    this.maxWals = options.maxWals;
    this.fsyncs = fsyncsFor(options);
    this.files = options.files ?? nodeWalFiles;
  }

  /** True when `dir` holds WAL segments. */
  static exists(dir: string): boolean {
    return existsSync(dir) && listSegments(dir).length > 0;
  }

  /** Creates a new WAL in `dir` (made if missing), whose first segment holds `metadata`. */
  static create(dir: string, metadata: WalMetadata, options: WalOptions = {}): Wal {
    const segmentBytes = segmentBytesOption(options);
    mkdirSync(dir, { recursive: true });
    if (listSegments(dir).length > 0) throw new Error(`WAL ${dir} already exists`);
    const snapshot = { index: 0, term: 0 };
    const { segment, tail } = writeSegment(dir, options.files ?? nodeWalFiles, fsyncsFor(options), {
      seq: 0,
      firstIndex: 0,
      previousCrc: 0,
      metadata,
      snapshot,
      hardState: undefined,
      segmentBytes,
    });
    return new Wal(dir, metadata, segmentBytes, options, {
      segments: [segment],
      tail,
      lastIndex: 0,
      hardState: undefined,
      snapshot,
    });
  }

  /**
   * Opens the WAL in `dir`, repairing a torn write at its end, and returns what it holds;
   * `entryBuffers` are the buffers the entries' data lives in (see EntryArena).
   */
  static open(dir: string, options: WalOptions = {}): { wal: Wal; state: WalState; entryBuffers: ArrayBuffer[] } {
    const segmentBytes = segmentBytesOption(options);
    const files = options.files ?? nodeWalFiles;
    for (const path of listTempSegments(dir)) files.unlink(path);
    const read = readWal(dir);
    const tailFile = read.segments[read.segments.length - 1]!;
    const fd = files.openExisting(tailFile.path);
    try {
      if (read.torn !== undefined) {
        const zeroed = read.tailBytes - read.torn.offset;
        (options.log ?? console.warn)(
          `WAL ${tailFile.path}: torn write at byte offset ${read.torn.offset} (${read.torn.reason}); zeroed ${zeroed} bytes`,
        );
      }
      // Zeroes a torn record and restores preallocation if a crash left the file short.
      if (read.torn !== undefined) files.truncate(fd, read.tailOffset);
      if (read.torn !== undefined || read.tailBytes < segmentBytes)
        files.truncate(fd, Math.max(read.tailBytes, segmentBytes));
      fsyncsFor(options).file(fd);
    } catch (error) {
      files.close(fd);
      throw error;
    }
    const { state } = read;
    const lastIndex = state.entries.length > 0 ? state.entries[state.entries.length - 1]!.index : state.snapshot.index;
    const hardState =
      state.hardState.term === 0 && state.hardState.commit === 0 && state.hardState.vote === 0n
        ? undefined
        : state.hardState;
    const tail = { fd, offset: read.tailOffset, crc: read.tailCrc };
    const wal = new Wal(dir, state.metadata, segmentBytes, options, {
      segments: read.segments,
      tail,
      lastIndex,
      hardState,
      snapshot: state.snapshot,
    });
    return { wal, state, entryBuffers: read.entryBuffers };
  }

  /** Writes entries (contiguous; the first may overwrite an uncommitted tail) and the hard state. */
  append(entries: readonly Entry[], hardState?: HardState): void {
    if (entries.length === 0 && hardState === undefined) return;
    this.appendBatch(encodeBatch(entries, hardState));
  }

  /** Records that the log is compacted behind a snapshot at (index, term). */
  saveSnapshot(index: number, term: number): void {
    this.appendBatch(encodeBatch([], undefined, { index, term }));
  }

  /** Writes records framed by encodeBatch (possibly on another thread), cutting a segment when full. */
  appendBatch(batch: EncodedBatch): void {
    const tail = this.openTail();
    this.checkBatch(batch);
    tail.crc = sealFrames(batch.frames, tail.crc);
    writeAll(this.files, tail.fd, batch.frames, tail.offset);
    tail.offset += batch.frames.length;
    this.written += batch.frames.length;
    this.dirty = true;
    if (batch.snapshot !== undefined) {
      this.snapshot = batch.snapshot;
      this.lastIndex = Math.max(this.lastIndex, batch.snapshot.index);
    }
    if (batch.lastIndex !== undefined) this.lastIndex = batch.lastIndex;
    if (batch.hardState !== undefined) this.hardState = batch.hardState;
    if (tail.offset >= this.segmentBytes) this.cut();
  }

  private checkBatch(batch: EncodedBatch): void {
    const snapshotIndex = batch.snapshot?.index ?? this.snapshot.index;
    assert(
      snapshotIndex >= this.snapshot.index,
      () => `snapshot marker ${snapshotIndex} is behind ${this.snapshot.index}`,
    );
    if (batch.firstIndex === undefined) return;
    assert(
      batch.firstIndex > snapshotIndex,
      () => `entry ${batch.firstIndex} is at or below the snapshot at ${snapshotIndex}`,
    );
    const lastIndex = Math.max(this.lastIndex, snapshotIndex);
    assert(
      batch.firstIndex <= lastIndex + 1,
      () => `entry ${batch.firstIndex} leaves a gap after the last index ${lastIndex}`,
    );
  }

  /** Makes every write so far durable. */
  sync(): void {
    const tail = this.openTail();
    if (!this.dirty) return;
    this.dirty = false;
    // etcd's WAL with --unsafe-no-fsync returns before its fdatasync (and its fsync metrics).
    if (this.fsyncs.unsafe) return;
    this.fsyncs.file(tail.fd);
    this.syncs++;
  }

  /** Bytes of records written since this WAL was opened (a new segment's header records included). */
  get writtenBytes(): number {
    return this.written;
  }

  /** How many fdatasyncs sync() has issued. */
  get syncCount(): number {
    return this.syncs;
  }

  /**
   * Deletes the segments holding only entries at or below `index`, which must not be past the
   * latest snapshot marker, oldest first while more than --max-wals segment files remain (etcd's
   * purge of unlocked WAL files). A segment's entries all precede the next segment's first index.
   */
  releaseTo(index: number): void {
    this.openTail();
    assert(index <= this.snapshot.index, () => `release to ${index} is past the snapshot at ${this.snapshot.index}`);
    if (this.maxWals === 0) return;
    let released = 0;
    while (released + 1 < this.segments.length && this.segments[released + 1]!.firstIndex <= index + 1) released++;
    if (this.maxWals !== undefined) released = Math.min(released, Math.max(0, this.segments.length - this.maxWals));
    if (released === 0) return;
    for (const segment of this.segments.slice(0, released)) this.files.unlink(segment.path);
    this.fsyncs.directory(this.dir);
    this.segments = this.segments.slice(released);
  }

  /** The segment files currently in use, oldest first. */
  segmentPaths(): string[] {
    return this.segments.map((segment) => segment.path);
  }

  /** Syncs and closes the tail segment; the Wal cannot be used afterwards. */
  close(): void {
    if (this.tail === undefined) return;
    this.sync();
    this.files.close(this.tail.fd);
    this.tail = undefined;
  }

  private openTail(): TailSegment {
    assert(this.tail !== undefined, () => `WAL ${this.dir} is closed`);
    return this.tail;
  }

  /** Seals the full tail segment at its data end and starts the next one, as etcd's cut does. */
  private cut(): void {
    const tail = this.openTail();
    this.files.truncate(tail.fd, tail.offset);
    // This fdatasync makes the appends written so far durable, like sync()'s, and counts as one
    // (etcd's cut syncs through the same path as a save and observes it in its fsync metrics).
    this.fsyncs.file(tail.fd);
    if (!this.fsyncs.unsafe) this.syncs++;
    this.files.close(tail.fd);
    this.tail = undefined;
    this.dirty = false;
    const previous = this.segments[this.segments.length - 1]!;
    const { segment, tail: next } = writeSegment(this.dir, this.files, this.fsyncs, {
      seq: previous.seq + 1,
      firstIndex: this.lastIndex + 1,
      previousCrc: tail.crc,
      metadata: this.metadata,
      snapshot: this.snapshot,
      hardState: this.hardState,
      segmentBytes: this.segmentBytes,
    });
    this.segments.push(segment);
    this.tail = next;
    this.written += next.offset;
  }
}

/** The WAL's syncs of files and directories; with --unsafe-no-fsync both do nothing. */
interface Fsyncs {
  unsafe: boolean;
  file(fd: number): void;
  directory(dir: string): void;
}

function fsyncsFor(options: WalOptions): Fsyncs {
  if (options.unsafeNoFsync === true) return { unsafe: true, file: () => undefined, directory: () => undefined };
  const files = options.files ?? nodeWalFiles;
  return { unsafe: false, file: (fd) => files.fdatasync(fd), directory: (dir) => files.fsyncDirectory(dir) };
}

function segmentBytesOption(options: WalOptions): number {
  const segmentBytes = options.segmentBytes ?? walSegmentBytesDefault;
  assert(
    Number.isSafeInteger(segmentBytes) && segmentBytes >= walSegmentBytesMin,
    () => `segmentBytes must be an integer >= ${walSegmentBytesMin}, got ${segmentBytes}`,
  );
  return segmentBytes;
}

function writeAll(files: WalFiles, fd: number, bytes: Uint8Array, position: number): void {
  let written = 0;
  // A write may write less than asked; each call makes progress or throws, so this ends.
  while (written < bytes.length) written += files.write(fd, bytes, written, bytes.length - written, position + written);
}

interface SegmentHeader {
  seq: number;
  firstIndex: number;
  previousCrc: number;
  metadata: WalMetadata;
  snapshot: WalSnapshotMarker;
  hardState: HardState | undefined;
  segmentBytes: number;
}

/**
 * Writes a new segment's header records under a temporary name, makes them durable and renames the
 * file into place, so a named segment always starts with a complete header.
 */
function writeSegment(
  dir: string,
  files: WalFiles,
  fsyncs: Fsyncs,
  header: SegmentHeader,
): { segment: SegmentFile; tail: TailSegment } {
  const builder = new FrameBuilder()
    .add(RecordType.crc, encodeCrc(header.previousCrc))
    .add(RecordType.metadata, encodeMetadata(header.metadata))
    .add(RecordType.snapshot, encodeSnapshotMarker(header.snapshot));
  if (header.hardState !== undefined) builder.add(RecordType.state, encodeHardState(header.hardState));
  const frames = builder.finish();
  const crc = sealFrames(frames, header.previousCrc);
  const path = join(dir, segmentName(header.seq, header.firstIndex));
  const tempPath = path + segmentTempSuffix;
  const fd = files.create(tempPath);
  try {
    files.truncate(fd, header.segmentBytes);
    writeAll(files, fd, frames, 0);
    fsyncs.file(fd);
    files.rename(tempPath, path);
    fsyncs.directory(dir);
  } catch (error) {
    files.close(fd);
    throw error;
  }
  return {
    segment: { seq: header.seq, firstIndex: header.firstIndex, path },
    tail: { fd, offset: frames.length, crc },
  };
}
