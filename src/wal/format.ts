/**
 * The write-ahead log's on-disk format.
 *
 * A WAL directory holds segment files named `%016x-%016x.wal`: the segment's sequence number and
 * the Raft index of the first entry expected in it (last index at the time of the cut, plus one),
 * as etcd names them. Each segment is preallocated (ftruncate to the segment size), so the bytes
 * after the last record are zeros. A segment is a run of records:
 *
 *   offset 0   u32 LE   bodyBytes: length of the body (type byte + payload), at least 1;
 *                       a zero here marks the end of the data (preallocated space follows)
 *   offset 4   u32 LE   crc: CRC-32C of the body, continued from the previous record's crc, so one
 *                       lost or reordered record breaks every checksum after it (etcd's chaining)
 *   offset 8   u8       type: 1 metadata, 2 entry, 3 hard state, 4 crc, 5 snapshot (etcd's numbers)
 *   offset 9   payload  bodyBytes - 1 bytes
 *   then zero padding to the next multiple of 8, so every header is 8-byte aligned and never
 *   straddles a disk sector.
 *
 * Payloads are msgpack arrays: entry [term, index, entryType, data], hard state [term, vote, commit],
 * snapshot [index, term], metadata [memberId, clusterId] (ids as msgpack int64, decoded as bigint).
 * The crc record's payload is the raw u32 LE crc of the previous segment's last record (0 in the
 * first segment); its own checksum is seeded with that value. Every segment starts with a crc
 * record, then metadata, the latest snapshot marker and the latest hard state, so a segment is
 * readable after the segments before it are released.
 */
import { Packr } from 'msgpackr';
import { assert } from '../lib/assert.js';
import { crc32cUpdate } from '../lib/crc32c.js';
import { walRecordBytesMax } from '../lib/limits.js';
import type { Entry, EntryType, HardState } from '../raft/types.js';

export const RecordType = {
  metadata: 1,
  entry: 2,
  state: 3,
  crc: 4,
  snapshot: 5,
} as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

/** Bytes before the body: bodyBytes and crc. */
export const frameHeaderBytes = 8;
/** Records start on multiples of this. */
export const frameAlignBytes = 8;
/** The crc record's body: type byte plus a u32. */
export const crcBodyBytes = 5;

/** The cluster identity stored at the head of every segment. */
export interface WalMetadata {
  memberId: bigint;
  clusterId: bigint;
}

/** A snapshot the log has been compacted behind: entries at or below `index` are not replayed. */
export interface WalSnapshotMarker {
  index: number;
  term: number;
}

/**
 * Framed records ready to be written, with crc fields still zero (sealFrames fills them in when the
 * writer knows the running checksum). `frames` owns its whole ArrayBuffer so it can be transferred.
 */
export interface EncodedBatch {
  frames: Uint8Array;
  /** Index of the first and last entry in the batch, or undefined without entries. */
  firstIndex: number | undefined;
  lastIndex: number | undefined;
  hardState: HardState | undefined;
  snapshot: WalSnapshotMarker | undefined;
}

// useRecords off keeps plain arrays; int64AsType makes every 64-bit integer a bigint; copyBuffers gives
// each decoded byte string its own memory so entries do not pin a whole segment buffer.
const packr = new Packr({ useRecords: false, int64AsType: 'bigint', copyBuffers: true, mapsAsObjects: true });
/** Decodes without copying byte fields: they come back as views into the record. */
const viewPackr = new Packr({ useRecords: false, int64AsType: 'bigint', copyBuffers: false, mapsAsObjects: true });

/** Rounds `bytes` up to the record alignment. */
export function alignFrame(bytes: number): number {
  return Math.ceil(bytes / frameAlignBytes) * frameAlignBytes;
}

/** Total bytes a record with this payload size takes on disk. */
export function frameBytes(payloadBytes: number): number {
  return alignFrame(frameHeaderBytes + 1 + payloadBytes);
}

export function isRecordType(type: number): type is RecordType {
  return type >= RecordType.metadata && type <= RecordType.snapshot;
}

/** Accumulates records and lays them out as frames in one exactly-sized buffer. */
export class FrameBuilder {
  private readonly types: RecordType[] = [];
  private readonly payloads: Uint8Array[] = [];
  private totalBytes = 0;

  add(type: RecordType, payload: Uint8Array): this {
    assert(
      payload.length + 1 <= walRecordBytesMax,
      () => `WAL record body ${payload.length + 1} bytes exceeds ${walRecordBytesMax}`,
    );
    this.types.push(type);
    this.payloads.push(payload);
    this.totalBytes += frameBytes(payload.length);
    return this;
  }

  finish(): Uint8Array {
    const frames = new Uint8Array(this.totalBytes);
    const view = new DataView(frames.buffer);
    let offset = 0;
    for (let i = 0; i < this.payloads.length; i++) {
      const payload = this.payloads[i]!;
      view.setUint32(offset, payload.length + 1, true);
      frames[offset + frameHeaderBytes] = this.types[i]!;
      frames.set(payload, offset + frameHeaderBytes + 1);
      offset += frameBytes(payload.length);
    }
    return frames;
  }
}

/**
 * Fills in the chained crc of every frame in `frames`, starting from `previousCrc`, and returns the
 * crc of the last one. Checks the framing as it goes: the frames come from another thread.
 */
export function sealFrames(frames: Uint8Array, previousCrc: number): number {
  const view = new DataView(frames.buffer, frames.byteOffset, frames.byteLength);
  let crc = previousCrc;
  let offset = 0;
  while (offset < frames.length) {
    assert(
      offset + frameHeaderBytes < frames.length,
      () => `frame header at ${offset} runs past ${frames.length} bytes`,
    );
    const bodyBytes = view.getUint32(offset, true);
    const bodyStart = offset + frameHeaderBytes;
    assert(
      bodyBytes >= 1 && bodyStart + bodyBytes <= frames.length,
      () => `frame at ${offset} has body of ${bodyBytes} bytes`,
    );
    assert(isRecordType(frames[bodyStart]!), () => `frame at ${offset} has unknown type ${frames[bodyStart]}`);
    crc = crc32cUpdate(crc, frames, bodyStart, bodyStart + bodyBytes);
    view.setUint32(offset + 4, crc, true);
    offset += alignFrame(frameHeaderBytes + bodyBytes);
  }
  assert(offset === frames.length, () => `frames end at ${offset}, buffer holds ${frames.length}`);
  return crc;
}

export function encodeEntry(entry: Entry): Uint8Array {
  return packr.pack([entry.term, entry.index, entry.type, entry.data]);
}

export function encodeHardState(state: HardState): Uint8Array {
  return packr.pack([state.term, BigInt(state.vote), state.commit]);
}

export function encodeSnapshotMarker(marker: WalSnapshotMarker): Uint8Array {
  return packr.pack([marker.index, marker.term]);
}

export function encodeMetadata(metadata: WalMetadata): Uint8Array {
  return packr.pack([BigInt(metadata.memberId), BigInt(metadata.clusterId)]);
}

export function encodeCrc(previousCrc: number): Uint8Array {
  const payload = new Uint8Array(crcBodyBytes - 1);
  new DataView(payload.buffer).setUint32(0, previousCrc, true);
  return payload;
}

/** Frames entries (in order, contiguous) followed by the hard state, as etcd's WAL Save does. */
export function encodeBatch(
  entries: readonly Entry[],
  hardState?: HardState,
  snapshot?: WalSnapshotMarker,
): EncodedBatch {
  const builder = new FrameBuilder();
  if (snapshot !== undefined) builder.add(RecordType.snapshot, encodeSnapshotMarker(snapshot));
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!;
    if (i > 0)
      assert(
        entry.index === entries[i - 1]!.index + 1,
        () => `entries not contiguous: ${entries[i - 1]!.index} then ${entry.index}`,
      );
    builder.add(RecordType.entry, encodeEntry(entry));
  }
  if (hardState !== undefined) builder.add(RecordType.state, encodeHardState(hardState));
  return {
    frames: builder.finish(),
    firstIndex: entries[0]?.index,
    lastIndex: entries[entries.length - 1]?.index,
    hardState: hardState === undefined ? undefined : { ...hardState },
    snapshot: snapshot === undefined ? undefined : { ...snapshot },
  };
}

function decodeArray(payload: Uint8Array, what: string, length: number, unpacker: Packr = packr): unknown[] {
  const value: unknown = unpacker.unpack(payload);
  if (!Array.isArray(value) || value.length !== length) {
    throw new Error(`${what} record is not an array of ${length}: ${describe(value)}`);
  }
  return value;
}

function describe(value: unknown): string {
  return typeof value === 'bigint' ? `${value}n` : (JSON.stringify(value) ?? String(value));
}

function toIndex(value: unknown, what: string): number {
  const n = typeof value === 'bigint' ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)
    throw new Error(`${what} is not a non-negative integer: ${describe(value)}`);
  return n;
}

function toId(value: unknown, what: string): bigint {
  if (typeof value === 'bigint' && value >= 0n) return value;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return BigInt(value);
  throw new Error(`${what} is not a uint64: ${describe(value)}`);
}

function toBytes(value: unknown, what: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new Error(`${what} is not bytes: ${describe(value)}`);
  // A plain Uint8Array view (no copy) so entries compare equal to what was appended.
  return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
}

/**
 * Decodes an entry record. Its data is a copy of its own, or what `copy` makes of a view into
 * `payload` (a reader that gathers entries into a few large buffers).
 */
export function decodeEntry(payload: Uint8Array, copy?: (data: Uint8Array) => Uint8Array): Entry {
  const [term, index, type, data] = decodeArray(payload, 'entry', 4, copy === undefined ? packr : viewPackr);
  const entryType = toIndex(type, 'entry type');
  if (entryType > 2) throw new Error(`entry type ${entryType} is unknown`);
  const bytes = toBytes(data, 'entry data');
  return {
    term: toIndex(term, 'entry term'),
    index: toIndex(index, 'entry index'),
    type: entryType as EntryType,
    data: copy === undefined ? bytes : copy(bytes),
  };
}

export function decodeHardState(payload: Uint8Array): HardState {
  const [term, vote, commit] = decodeArray(payload, 'hard state', 3);
  return {
    term: toIndex(term, 'hard state term'),
    vote: toId(vote, 'hard state vote'),
    commit: toIndex(commit, 'hard state commit'),
  };
}

export function decodeSnapshotMarker(payload: Uint8Array): WalSnapshotMarker {
  const [index, term] = decodeArray(payload, 'snapshot', 2);
  return { index: toIndex(index, 'snapshot index'), term: toIndex(term, 'snapshot term') };
}

export function decodeMetadata(payload: Uint8Array): WalMetadata {
  const [memberId, clusterId] = decodeArray(payload, 'metadata', 2);
  return { memberId: toId(memberId, 'member id'), clusterId: toId(clusterId, 'cluster id') };
}

export function decodeCrc(payload: Uint8Array): number {
  if (payload.length !== crcBodyBytes - 1)
    throw new Error(`crc record payload is ${payload.length} bytes, expected ${crcBodyBytes - 1}`);
  return new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(0, true);
}
