/**
 * Maintenance.Snapshot's responses encoded by hand and framed for gRPC, so the snapshot thread
 * lays out the bytes that go on the wire and the member's event loop only hands them to the
 * socket (the generic path encoded each 32 KiB response through protobufjs there, copying it
 * twice and allocating as it went).
 *
 *   SnapshotResponse { ResponseHeader header = 1; uint64 remaining_bytes = 2; bytes blob = 3; }
 *
 * As etcd marshals it: no header, a zero remaining_bytes and an empty blob left out.
 */
import { Writer } from '../lib/bytes-writer.js';
import { grpcFramePrefixBytes, writeFramePrefix } from '../http2/frames.js';
import { varintBytes, varintBytesMax } from '../lib/protobuf.js';

const tagRemainingBytes = 0x10;
const tagBlob = 0x1a;

/** The protobuf bytes of one response carrying `blobBytes` with `remainingBytes` to follow. */
function responseBytes(remainingBytes: number, blobBytes: number): number {
  const remaining = remainingBytes === 0 ? 0 : 1 + varintBytes(remainingBytes);
  const blob = blobBytes === 0 ? 0 : 1 + varintBytes(blobBytes) + blobBytes;
  return remaining + blob;
}

/** The most bytes framedSnapshotResponses lays `blobBytes` out in, whatever the remaining count. */
export function framedSnapshotResponsesBytesMax(blobBytes: number, pieceBytes: number): number {
  const messages = Math.max(1, Math.ceil(blobBytes / pieceBytes));
  const fieldsMax = 1 + varintBytesMax + 1 + varintBytes(pieceBytes);
  return blobBytes + messages * (grpcFramePrefixBytes + fieldsMax);
}

/** Responses, each framed for gRPC, that carry database bytes in pieces of at most pieceBytes. */
export interface FramedSnapshotResponses {
  /** The framed responses end to end. */
  bytes: Uint8Array;
  /** How many responses `bytes` holds. */
  messages: number;
}

/**
 * `blob` as responses of at most `pieceBytes` each, framed for gRPC, when `remainingAfter` bytes
 * of the database follow it: each response's remaining_bytes counts what follows its piece. The
 * bytes go into `allocate(size)`, a fresh buffer unless the caller has one.
 */
export function framedSnapshotResponses(
  blob: Uint8Array,
  remainingAfter: number,
  pieceBytes: number,
  allocate: (size: number) => Uint8Array = (size) => new Uint8Array(size),
): FramedSnapshotResponses {
  const messages = Math.max(1, Math.ceil(blob.length / pieceBytes));
  let total = 0;
  for (let piece = 0; piece < messages; piece++) {
    const start = piece * pieceBytes;
    const end = Math.min(blob.length, start + pieceBytes);
    total += grpcFramePrefixBytes + responseBytes(remainingAfter + blob.length - end, end - start);
  }
  const bytes = allocate(total);
  let at = 0;
  for (let piece = 0; piece < messages; piece++) {
    const start = piece * pieceBytes;
    const end = Math.min(blob.length, start + pieceBytes);
    const remainingBytes = remainingAfter + blob.length - end;
    const size = responseBytes(remainingBytes, end - start);
    at = writeFramePrefix(bytes, at, size);
    const writer = new Writer(size, () => bytes.subarray(at, at + size));
    if (remainingBytes !== 0) {
      writer.byte(tagRemainingBytes);
      writer.varint(remainingBytes);
    }
    if (end > start) {
      writer.byte(tagBlob);
      writer.varint(end - start);
      writer.raw(blob.subarray(start, end));
    }
    at += size;
  }
  return { bytes, messages };
}
