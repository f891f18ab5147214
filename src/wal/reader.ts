/**
 * Reads a WAL directory back into Raft state, as etcd's WAL ReadAll does: the metadata, the latest
 * hard state, the latest snapshot marker and the entries after it, where an entry written later
 * replaces the one at the same index and everything after it (a new leader truncated the tail).
 * Only a torn write in the last segment is tolerated: a damaged record followed by nothing but
 * zeros, or, since a disk may write back the pages of an unsynced write in any order, a record of
 * zero length or with a whole unwritten (all-zero) sector followed by data, as etcd takes them.
 * Any other damage throws a WalCorruptionError naming the file and byte offset.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { emptyHardState, type Entry, type HardState } from '../raft/types.js';
import { crc32cUpdate } from '../lib/crc32c.js';
import { walRecordBytesMax } from '../lib/limits.js';
import {
  alignFrame,
  crcBodyBytes,
  decodeCrc,
  decodeEntry,
  decodeHardState,
  decodeMetadata,
  decodeSnapshotMarker,
  frameHeaderBytes,
  isRecordType,
  RecordType,
  type WalMetadata,
  type WalSnapshotMarker,
} from './format.js';
import { listSegments, type SegmentFile } from './segment.js';
import { EntryArena } from './entry-arena.js';

/** Damage the WAL cannot explain as a torn write; carries where it was found. */
export class WalCorruptionError extends Error {
  constructor(
    readonly path: string,
    readonly offset: number,
    readonly reason: string,
  ) {
    super(`WAL corrupt: ${path} at byte offset ${offset}: ${reason}`);
    this.name = 'WalCorruptionError';
  }
}

/** What a WAL holds once replayed. */
export interface WalState {
  metadata: WalMetadata;
  hardState: HardState;
  /** The latest snapshot marker; index 0 means no snapshot. Entries start right after it. */
  snapshot: WalSnapshotMarker;
  entries: Entry[];
}

export interface TornTail {
  offset: number;
  reason: string;
}

export interface WalReadResult {
  state: WalState;
  segments: SegmentFile[];
  /** Where appending resumes in the last segment, and the crc chain's value there. */
  tailOffset: number;
  tailCrc: number;
  tailBytes: number;
  /** A torn record at the end of the last segment that the caller must zero out. */
  torn: TornTail | undefined;
  /** The buffers holding every entry's data (EntryArena), to move them to another thread whole. */
  entryBuffers: ArrayBuffer[];
}

interface ScanResult {
  endOffset: number;
  crc: number;
  torn: TornTail | undefined;
}

type RecordVisitor = (type: number, payload: Uint8Array, offset: number, crcBefore: number | undefined) => void;

const zeroChunk = new Uint8Array(64 * 1024);
/** The unit a disk writes whole: a torn write leaves whole sectors unwritten. */
const sectorBytes = 512;

/** True when bytes[start, end) are all zero. */
export function isZero(bytes: Uint8Array, start: number, end: number): boolean {
  for (let p = start; p < end; p += zeroChunk.length) {
    const n = Math.min(zeroChunk.length, end - p);
    if (Buffer.compare(bytes.subarray(p, p + n), zeroChunk.subarray(0, n)) !== 0) return false;
  }
  return true;
}

/** True when some sector-bounded piece of bytes[start, end) is all zero: a sector never written. */
function hasUnwrittenSector(bytes: Uint8Array, start: number, end: number): boolean {
  for (let piece = start; piece < end;) {
    const pieceEnd = Math.min(end, (Math.floor(piece / sectorBytes) + 1) * sectorBytes);
    if (isZero(bytes, piece, pieceEnd)) return true;
    piece = pieceEnd;
  }
  return false;
}

/** The crc a segment's first record is checked against: the value its crc record carries. */
function segmentSeed(path: string, bytes: Uint8Array, view: DataView, bodyBytes: number): number {
  const type = bytes[frameHeaderBytes];
  if (type !== RecordType.crc || bodyBytes !== crcBodyBytes) {
    throw new WalCorruptionError(
      path,
      0,
      `segment starts with a record of type ${type} and ${bodyBytes} body bytes, expected a crc record`,
    );
  }
  return view.getUint32(frameHeaderBytes + 1, true);
}

/**
 * Walks the records of one segment, handing each verified body to `visit`. In the last segment a
 * torn write ends the scan: a bad record followed only by zeros, a bad record with an unwritten
 * sector, or a zero length, whatever follows (what follows was written after the last fsync that
 * finished, so it was never acknowledged). Anything else throws.
 */
export function scanSegment(path: string, bytes: Uint8Array, isLast: boolean, visit: RecordVisitor): ScanResult {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let crc: number | undefined;
  let offset = 0;
  const torn = (reason: string): ScanResult => {
    if (!isLast) throw new WalCorruptionError(path, offset, `${reason} in a segment that is not the last`);
    // A segment's header records are durable before it gets its name, so they cannot be torn.
    if (crc === undefined) throw new WalCorruptionError(path, offset, `${reason} in the segment's first record`);
    return { endOffset: offset, crc, torn: { offset, reason } };
  };
  const tornOrCorrupt = (reason: string, end: number, unwritten = false): ScanResult => {
    if (isZero(bytes, end, bytes.length)) return torn(reason);
    if (isLast && unwritten) return torn(`${reason}, with an unwritten sector, followed by data written out of order`);
    if (!isLast) throw new WalCorruptionError(path, offset, `${reason} in a segment that is not the last`);
    throw new WalCorruptionError(path, offset, `${reason}, followed by non-zero data`);
  };
  for (;;) {
    if (offset + frameHeaderBytes > bytes.length) {
      if (isZero(bytes, offset, bytes.length)) break;
      return tornOrCorrupt('truncated record header', bytes.length);
    }
    const bodyBytes = view.getUint32(offset, true);
    if (bodyBytes === 0) {
      if (isZero(bytes, offset, bytes.length)) break;
      if (!isLast) throw new WalCorruptionError(path, offset, 'zero record length followed by non-zero data');
      return torn('zero record length, followed by data written out of order');
    }
    if (bodyBytes > walRecordBytesMax)
      throw new WalCorruptionError(path, offset, `record length ${bodyBytes} exceeds ${walRecordBytesMax}`);
    const bodyStart = offset + frameHeaderBytes;
    const end = offset + alignFrame(frameHeaderBytes + bodyBytes);
    if (end > bytes.length)
      return tornOrCorrupt(
        `record of ${bodyBytes} body bytes runs past the end of the file (${bytes.length} bytes)`,
        bytes.length,
      );
    const seed = crc ?? segmentSeed(path, bytes, view, bodyBytes);
    const actual = crc32cUpdate(seed, bytes, bodyStart, bodyStart + bodyBytes);
    const stored = view.getUint32(offset + 4, true);
    if (actual !== stored) {
      const unwritten = hasUnwrittenSector(bytes, bodyStart, bodyStart + bodyBytes);
      return tornOrCorrupt(`crc mismatch: stored ${hex(stored)}, computed ${hex(actual)}`, end, unwritten);
    }
    if (!isZero(bytes, bodyStart + bodyBytes, end))
      throw new WalCorruptionError(path, offset, 'non-zero record padding');
    const type = bytes[bodyStart]!;
    if (!isRecordType(type)) throw new WalCorruptionError(path, offset, `unknown record type ${type}`);
    try {
      visit(type, bytes.subarray(bodyStart + 1, bodyStart + bodyBytes), offset, crc);
    } catch (error) {
      if (error instanceof WalCorruptionError) throw error;
      throw new WalCorruptionError(path, offset, (error as Error).message);
    }
    crc = actual;
    offset = end;
  }
  if (crc === undefined) throw new WalCorruptionError(path, 0, 'segment holds no records');
  return { endOffset: offset, crc, torn: undefined };
}

function hex(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}

/** Accumulates records across segments in write order. */
class Replay {
  metadata: WalMetadata | undefined;
  hardState: HardState = emptyHardState;
  snapshot: WalSnapshotMarker = { index: 0, term: 0 };
  /** Every entry record in write order, with where it was found for error messages. */
  readonly written: { entry: Entry; path: string; offset: number }[] = [];
  /** The crc chain's value at the end of the previous segment. */
  previousSegmentCrc: number | undefined;
  readonly arena = new EntryArena();
  private readonly copyEntryData = (data: Uint8Array): Uint8Array => this.arena.copy(data);

  record(path: string, type: number, payload: Uint8Array, offset: number, crcBefore: number | undefined): void {
    switch (type) {
      case RecordType.crc:
        return this.crcRecord(decodeCrc(payload), crcBefore);
      case RecordType.metadata:
        return this.metadataRecord(decodeMetadata(payload));
      case RecordType.state:
        this.hardState = decodeHardState(payload);
        return;
      case RecordType.snapshot:
        return this.snapshotRecord(decodeSnapshotMarker(payload));
      case RecordType.entry:
        this.written.push({ entry: decodeEntry(payload, this.copyEntryData), path, offset });
        return;
    }
    throw new Error(`unknown record type ${type}`);
  }

  private crcRecord(value: number, crcBefore: number | undefined): void {
    // At a segment's start the chain continues from the previous segment (unknown if it was released).
    const expected = crcBefore ?? this.previousSegmentCrc;
    if (expected !== undefined && value !== expected) {
      throw new Error(`crc chain broken: crc record holds ${hex(value)}, the chain is at ${hex(expected)}`);
    }
  }

  private metadataRecord(metadata: WalMetadata): void {
    const seen = this.metadata;
    if (seen !== undefined && (seen.memberId !== metadata.memberId || seen.clusterId !== metadata.clusterId)) {
      throw new Error(
        `metadata conflict: member ${metadata.memberId} cluster ${metadata.clusterId}, earlier member ${seen.memberId} cluster ${seen.clusterId}`,
      );
    }
    this.metadata = metadata;
  }

  private snapshotRecord(marker: WalSnapshotMarker): void {
    if (marker.index < this.snapshot.index) {
      throw new Error(`snapshot marker at index ${marker.index} follows one at ${this.snapshot.index}`);
    }
    this.snapshot = marker;
  }

  /** The entries after the snapshot, later writes replacing the tail from their index on. */
  entries(): Entry[] {
    const start = this.snapshot.index;
    const entries: Entry[] = [];
    for (const { entry, path, offset } of this.written) {
      if (entry.index <= start) continue;
      const position = entry.index - start - 1;
      if (position > entries.length) {
        throw new WalCorruptionError(
          path,
          offset,
          `entry ${entry.index} leaves a gap after index ${start + entries.length}`,
        );
      }
      entries.length = position;
      entries.push(entry);
    }
    return entries;
  }
}

/** Reads every segment in `dir`. Does not modify anything; a torn tail is reported, not repaired. */
export function readWal(dir: string): WalReadResult {
  const segments = listSegments(dir);
  if (segments.length === 0) throw new Error(`WAL ${dir}: no segment files`);
  const replay = new Replay();
  let last: ScanResult | undefined;
  let tailBytes = 0;
  // One buffer for every segment: records keep nothing of it (entry data goes to the arena).
  const reader = new SegmentReader();
  for (let i = 0; i < segments.length; i++) {
    const { path } = segments[i]!;
    const bytes = reader.read(path);
    const isLast = i === segments.length - 1;
    last = scanSegment(path, bytes, isLast, (type, payload, offset, crcBefore) =>
      replay.record(path, type, payload, offset, crcBefore),
    );
    replay.previousSegmentCrc = last.crc;
    tailBytes = bytes.length;
  }
  const metadata = replay.metadata;
  if (metadata === undefined) throw new WalCorruptionError(segments[0]!.path, 0, 'no metadata record');
  const state: WalState = {
    metadata,
    hardState: replay.hardState,
    snapshot: replay.snapshot,
    entries: replay.entries(),
  };
  return {
    state,
    segments,
    tailOffset: last!.endOffset,
    tailCrc: last!.crc,
    tailBytes,
    torn: last!.torn,
    entryBuffers: replay.arena.buffers,
  };
}

/** Reads whole segment files into one buffer, grown as needed; each read replaces the last. */
class SegmentReader {
  private buffer = new Uint8Array(0);

  read(path: string): Uint8Array {
    const fd = openSync(path, 'r');
    try {
      const size = fstatSync(fd).size;
      if (this.buffer.length < size) this.buffer = new Uint8Array(size);
      const bytes = this.buffer.subarray(0, size);
      let offset = 0;
      while (offset < size) {
        const read = readSync(fd, bytes, offset, size - offset, offset);
        if (read === 0) throw new Error(`WAL ${path}: file ended at ${offset} of ${size} bytes while being read`);
        offset += read;
      }
      return bytes;
    } finally {
      closeSync(fd);
    }
  }
}
