/**
 * Reads etcd 3.4's own WAL directory (not tsetcd's msgpack WAL), for tools that replay an etcd
 * member's log. etcd names segments `%016x-%016x.wal` (sequence, first index) and frames each
 * walpb.Record {1 type, 2 crc, 3 data} behind an 8-byte little-endian length whose top byte, when
 * its high bit is set, holds the padding (low 3 bits) that aligns the next frame to 8 bytes. The
 * record types and CRC-32C chaining are those of src/wal/format.ts; entries are raftpb.Entry
 * {1 type, 2 term, 3 index, 4 data}. Reading from a snapshot keeps the entries after it, and a later
 * entry at an index replaces that one and all after it, as etcd's WAL ReadAll does in read mode:
 * a torn tail ends the log quietly.
 */
import { closeSync, openSync, readdirSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { crc32cUpdate } from '../lib/crc32c.js';
import { protoReaderOf } from '../lib/protobuf.js';
import { etcdWalRecordBytesMax } from '../lib/limits.js';
import { RecordType, type WalSnapshotMarker } from './format.js';

/** One raftpb.Entry of an etcd WAL; `type` is etcd's EntryType (0 normal, 1 conf change). */
export interface EtcdWalEntry {
  type: number;
  term: number;
  index: number;
  data: Buffer;
}

/** An etcd WAL that cannot be read; the message is etcd's words where etcd has them. */
export class EtcdWalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EtcdWalError';
  }
}

const walNamePattern = /^([0-9a-f]{16})-([0-9a-f]{16})\.wal$/;
const frameLengthBytes = 8;

interface Segment {
  name: string;
  sequence: bigint;
  firstIndex: bigint;
}

/** The segments a read from `snapshot` needs, as etcd's OpenForRead picks them. */
function segmentsFrom(walDir: string, snapshot: WalSnapshotMarker): Segment[] {
  const segments: Segment[] = [];
  for (const name of readdirSync(walDir).sort()) {
    const match = walNamePattern.exec(name);
    if (match !== null) segments.push({ name, sequence: BigInt(`0x${match[1]}`), firstIndex: BigInt(`0x${match[2]}`) });
  }
  let start = -1;
  for (let at = segments.length - 1; at >= 0; at--) {
    if (segments[at]!.firstIndex <= BigInt(snapshot.index)) {
      start = at;
      break;
    }
  }
  if (start < 0) throw new EtcdWalError('wal: file not found');
  const chosen = segments.slice(start);
  for (let at = 1; at < chosen.length; at++) {
    if (chosen[at]!.sequence !== chosen[at - 1]!.sequence + 1n) throw new EtcdWalError('wal: file not found');
  }
  return chosen;
}

/** Whether `walDir` holds segments whose first record is framed as etcd frames it. */
export function looksLikeEtcdWal(walDir: string): boolean {
  const names = readdirSync(walDir)
    .filter((name) => walNamePattern.test(name))
    .sort();
  if (names.length === 0) return false;
  const bytes = Buffer.alloc(frameLengthBytes + 2);
  const fd = openSync(join(walDir, names[0]!), 'r');
  try {
    if (readSync(fd, bytes, 0, bytes.length, 0) < bytes.length) return false;
  } finally {
    closeSync(fd);
  }
  // etcd's first record is a crc record: its protobuf starts with field 1 (type) = 4.
  return bytes[frameLengthBytes] === 0x08 && bytes[frameLengthBytes + 1] === RecordType.crc;
}

interface WalRecord {
  type: number;
  crc: number;
  data: Buffer;
}

function decodeRecord(bytes: Buffer): WalRecord {
  const reader = protoReaderOf(bytes);
  const record: WalRecord = { type: 0, crc: 0, data: Buffer.alloc(0) };
  while (!reader.done) {
    const key = reader.key();
    if (key === 0x08) record.type = reader.int64();
    else if (key === 0x10) record.crc = reader.int64() >>> 0;
    else if (key === 0x1a) record.data = reader.bytesField();
    else reader.skip(key);
  }
  return record;
}

function decodeEntry(bytes: Buffer): EtcdWalEntry {
  const reader = protoReaderOf(bytes);
  const entry: EtcdWalEntry = { type: 0, term: 0, index: 0, data: Buffer.alloc(0) };
  while (!reader.done) {
    const key = reader.key();
    if (key === 0x08) entry.type = reader.int32();
    else if (key === 0x10) entry.term = reader.int64();
    else if (key === 0x18) entry.index = reader.int64();
    else if (key === 0x22) entry.data = reader.bytesField();
    else reader.skip(key);
  }
  return entry;
}

function decodeSnapshotMarker(bytes: Buffer): WalSnapshotMarker {
  const reader = protoReaderOf(bytes);
  const marker: WalSnapshotMarker = { index: 0, term: 0 };
  while (!reader.done) {
    const key = reader.key();
    if (key === 0x08) marker.index = reader.int64();
    else if (key === 0x10) marker.term = reader.int64();
    else reader.skip(key);
  }
  return marker;
}

/** Bytes read from a segment at a time: the preallocated zeros after its records are never read. */
const segmentChunkBytes = 1024 * 1024;

/** A segment read from its start on demand; what `view` returns stays valid (chunks are never reused). */
class SegmentBytes {
  private bytes = Buffer.alloc(0);
  /** The file offset of bytes[0]. */
  private start = 0;
  private ended = false;

  constructor(private readonly fd: number) {}

  /** The `length` bytes at file offset `at` (never before the last view's offset), or undefined past the end. */
  view(at: number, length: number): Buffer | undefined {
    while (at + length > this.start + this.bytes.length && !this.ended) this.readFrom(at, length);
    if (at + length > this.start + this.bytes.length) return undefined;
    return this.bytes.subarray(at - this.start, at - this.start + length);
  }

  private readFrom(at: number, length: number): void {
    const kept = this.bytes.subarray(Math.min(at - this.start, this.bytes.length));
    const chunk = Buffer.alloc(Math.max(segmentChunkBytes, length, kept.length * 2));
    kept.copy(chunk);
    const read = readSync(this.fd, chunk, kept.length, chunk.length - kept.length, at + kept.length);
    if (read === 0) this.ended = true;
    this.bytes = chunk.subarray(0, kept.length + read);
    this.start = at;
  }
}

/** Calls `visit` with each whole record of a segment; stops at the preallocated zeros or a torn tail. */
function scanSegment(path: string, visit: (record: WalRecord) => void): void {
  const fd = openSync(path, 'r');
  try {
    const segment = new SegmentBytes(fd);
    let offset = 0;
    for (;;) {
      const header = segment.view(offset, frameLengthBytes);
      if (header === undefined) return;
      const lengthField = header.readBigUInt64LE(0);
      if (lengthField === 0n) return;
      const recordBytes = Number(lengthField & 0x00ff_ffff_ffff_ffffn);
      const padBytes = lengthField >> 63n === 1n ? Number((lengthField >> 56n) & 7n) : 0;
      if (recordBytes >= etcdWalRecordBytesMax) throw new EtcdWalError('wal: max entry size limit exceeded');
      const body = segment.view(offset + frameLengthBytes, recordBytes + padBytes);
      if (body === undefined) return;
      let record: WalRecord;
      try {
        record = decodeRecord(body.subarray(0, recordBytes));
      } catch {
        return;
      }
      visit(record);
      offset += frameLengthBytes + recordBytes + padBytes;
    }
  } finally {
    closeSync(fd);
  }
}

/** The entries after `snapshot` in etcd's WAL at `walDir`, as etcd's OpenForRead then ReadAll give them. */
export function readEtcdWalEntries(walDir: string, snapshot: WalSnapshotMarker): EtcdWalEntry[] {
  const entries: EtcdWalEntry[] = [];
  let crc = 0;
  let matched = false;
  for (const segment of segmentsFrom(walDir, snapshot)) {
    scanSegment(join(walDir, segment.name), (record) => {
      if (record.type === RecordType.crc) {
        if (crc !== 0 && record.crc !== crc) throw new EtcdWalError('wal: crc mismatch');
        crc = record.crc;
        return;
      }
      crc = crc32cUpdate(crc, record.data);
      if (crc !== record.crc) throw new EtcdWalError('walpb: crc mismatch');
      if (record.type === RecordType.entry) {
        const entry = decodeEntry(record.data);
        if (entry.index <= snapshot.index) return;
        const position = entry.index - snapshot.index - 1;
        if (position > entries.length) throw new EtcdWalError('wal: slice bounds out of range');
        entries.length = position;
        entries.push(entry);
      } else if (record.type === RecordType.snapshot) {
        const marker = decodeSnapshotMarker(record.data);
        if (marker.index === snapshot.index) {
          if (marker.term !== snapshot.term) throw new EtcdWalError('wal: snapshot mismatch');
          matched = true;
        }
      } else if (record.type !== RecordType.metadata && record.type !== RecordType.state) {
        throw new EtcdWalError(`unexpected block type ${record.type}`);
      }
    });
  }
  if (!matched) throw new EtcdWalError('wal: snapshot not found');
  return entries;
}
