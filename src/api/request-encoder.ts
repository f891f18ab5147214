/**
 * KV requests encoded as protobuf, with etcd's field numbers (see request-decoder.ts, which reads
 * them back). Txn and delete proposals carry their request this way inside a Raft entry, as etcd's
 * InternalRaftRequest does (their bytes come from logBytes: they live in the Raft log); tsetcdctl
 * sends its Range, Put, DeleteRange, Compaction and Authenticate requests with the same field tables. Fields go
 * in number order and zero values are left out, so decoding gives back the same domain object.
 */
import { Writer } from '../lib/bytes-writer.js';
import { varintBytes } from '../lib/protobuf.js';
import { logBytes } from '../lib/scratch-bytes.js';
import type {
  AuthenticateRequest,
  Compare,
  CompactionRequest,
  DeleteRangeRequest,
  PutRequest,
  RangeRequest,
  RequestOp,
  TxnRequest,
} from './types.js';

/** One field of a message: its number and how to read its value, by kind. */
type Field<T> =
  | { readonly field: number; readonly bytes: (message: T) => Uint8Array }
  | { readonly field: number; readonly int: (message: T) => number }
  | { readonly field: number; readonly big: (message: T) => bigint }
  | { readonly field: number; readonly bool: (message: T) => boolean };

const rangeFields: readonly Field<RangeRequest>[] = [
  { field: 1, bytes: (r) => r.key },
  { field: 2, bytes: (r) => r.rangeEnd },
  { field: 3, int: (r) => r.limit },
  { field: 4, int: (r) => r.revision },
  { field: 5, int: (r) => r.sortOrder },
  { field: 6, int: (r) => r.sortTarget },
  { field: 7, bool: (r) => r.serializable },
  { field: 8, bool: (r) => r.keysOnly },
  { field: 9, bool: (r) => r.countOnly },
  { field: 10, int: (r) => r.minModRevision },
  { field: 11, int: (r) => r.maxModRevision },
  { field: 12, int: (r) => r.minCreateRevision },
  { field: 13, int: (r) => r.maxCreateRevision },
];

const putFields: readonly Field<PutRequest>[] = [
  { field: 1, bytes: (p) => p.key },
  { field: 2, bytes: (p) => p.value },
  { field: 3, big: (p) => p.lease },
  { field: 4, bool: (p) => p.prevKv },
  { field: 5, bool: (p) => p.ignoreValue },
  { field: 6, bool: (p) => p.ignoreLease },
];

const deleteRangeFields: readonly Field<DeleteRangeRequest>[] = [
  { field: 1, bytes: (d) => d.key },
  { field: 2, bytes: (d) => d.rangeEnd },
  { field: 3, bool: (d) => d.prevKv },
];

const compareFields: readonly Field<Compare>[] = [
  { field: 1, int: (c) => c.result },
  { field: 2, int: (c) => c.target },
  { field: 3, bytes: (c) => c.key },
  { field: 4, int: (c) => c.version },
  { field: 5, int: (c) => c.createRevision },
  { field: 6, int: (c) => c.modRevision },
  { field: 7, bytes: (c) => c.value },
  { field: 8, big: (c) => c.lease },
  { field: 64, bytes: (c) => c.rangeEnd },
];

function bigVarintBytes(value: bigint): number {
  let rest = BigInt.asUintN(64, value);
  let bytes = 1;
  while (rest >= 0x80n) {
    rest >>= 7n;
    bytes++;
  }
  return bytes;
}

/** A field key takes one byte up to field 15; range_end (64) takes two. */
const keyBytes = (field: number): number => (field < 16 ? 1 : 2);

function writeKey(writer: Writer, field: number, wireType: number): void {
  writer.varint(field * 8 + wireType);
}

/** Bytes of the fields that are set; zero values are left out. */
function fieldsSize<T>(fields: readonly Field<T>[], message: T): number {
  let size = 0;
  for (const f of fields) {
    if ('bytes' in f) {
      const value = f.bytes(message);
      if (value.length > 0) size += keyBytes(f.field) + varintBytes(value.length) + value.length;
    } else if ('int' in f) {
      const value = f.int(message);
      if (value !== 0) size += keyBytes(f.field) + varintBytes(value);
    } else if ('big' in f) {
      const value = f.big(message);
      if (value !== 0n) size += keyBytes(f.field) + bigVarintBytes(value);
    } else if (f.bool(message)) {
      size += keyBytes(f.field) + 1;
    }
  }
  return size;
}

function writeFields<T>(writer: Writer, fields: readonly Field<T>[], message: T): void {
  for (const f of fields) {
    if ('bytes' in f) {
      const value = f.bytes(message);
      if (value.length === 0) continue;
      writeKey(writer, f.field, 2);
      writer.varint(value.length);
      writer.raw(value);
    } else if ('int' in f) {
      const value = f.int(message);
      if (value === 0) continue;
      writeKey(writer, f.field, 0);
      if (value < 0) writer.varint64(BigInt(value));
      else writer.varint(value);
    } else if ('big' in f) {
      const value = f.big(message);
      if (value === 0n) continue;
      writeKey(writer, f.field, 0);
      writer.varint64(value);
    } else if (f.bool(message)) {
      writeKey(writer, f.field, 0);
      writer.byte(1);
    }
  }
}

function messageSize(field: number, bodyBytes: number): number {
  return keyBytes(field) + varintBytes(bodyBytes) + bodyBytes;
}

/** RequestOp's oneof field number and the size of the request it holds. */
function opBody(op: RequestOp): { field: number; bytes: number } {
  switch (op.type) {
    case 'range':
      return { field: 1, bytes: fieldsSize(rangeFields, op.range) };
    case 'put':
      return { field: 2, bytes: fieldsSize(putFields, op.put) };
    case 'deleteRange':
      return { field: 3, bytes: fieldsSize(deleteRangeFields, op.deleteRange) };
    case 'txn':
      return { field: 4, bytes: txnSize(op.txn) };
  }
}

function opSize(op: RequestOp): number {
  const body = opBody(op);
  return messageSize(body.field, body.bytes);
}

/** Writes `op` as field `field` of its TxnRequest: the RequestOp's length, then the request it holds. */
function writeOp(writer: Writer, field: number, op: RequestOp): void {
  // One size pass per op: the RequestOp's length derives from its request's.
  const body = opBody(op);
  writeKey(writer, field, 2);
  writer.varint(messageSize(body.field, body.bytes));
  writeKey(writer, body.field, 2);
  writer.varint(body.bytes);
  if (op.type === 'range') writeFields(writer, rangeFields, op.range);
  else if (op.type === 'put') writeFields(writer, putFields, op.put);
  else if (op.type === 'deleteRange') writeFields(writer, deleteRangeFields, op.deleteRange);
  else writeTxn(writer, op.txn);
}

function txnSize(t: TxnRequest): number {
  let bytes = 0;
  for (const c of t.compare) bytes += messageSize(1, fieldsSize(compareFields, c));
  for (const op of t.success) bytes += messageSize(2, opSize(op));
  for (const op of t.failure) bytes += messageSize(3, opSize(op));
  return bytes;
}

function writeTxn(writer: Writer, t: TxnRequest): void {
  for (const c of t.compare) {
    writeKey(writer, 1, 2);
    writer.varint(fieldsSize(compareFields, c));
    writeFields(writer, compareFields, c);
  }
  for (const op of t.success) writeOp(writer, 2, op);
  for (const op of t.failure) writeOp(writer, 3, op);
}

/** DeleteRangeRequest's protobuf bytes after `prefixBytes` bytes left for the caller, from logBytes. */
export function encodeDeleteRangeRequest(request: DeleteRangeRequest, prefixBytes = 0): Uint8Array {
  const writer = new Writer(prefixBytes + fieldsSize(deleteRangeFields, request), logBytes);
  for (let i = 0; i < prefixBytes; i++) writer.byte(0);
  writeFields(writer, deleteRangeFields, request);
  return writer.done();
}

/** TxnRequest's protobuf bytes after `prefixBytes` bytes left for the caller, from logBytes. */
export function encodeTxnRequest(request: TxnRequest, prefixBytes = 0): Uint8Array {
  const size = txnSize(request);
  const writer = new Writer(prefixBytes + size, logBytes);
  for (let i = 0; i < prefixBytes; i++) writer.byte(0);
  writeTxn(writer, request);
  return writer.done();
}

/** A client's request: its bytes (scratch: sent, then dropped) after `prefixBytes` bytes left for the caller (gRPC's frame header). */
function encodeClientRequest<T>(fields: readonly Field<T>[], request: T, prefixBytes: number): Uint8Array {
  const writer = new Writer(prefixBytes + fieldsSize(fields, request));
  for (let i = 0; i < prefixBytes; i++) writer.byte(0);
  writeFields(writer, fields, request);
  return writer.done();
}

/** RangeRequest's protobuf bytes, as a client sends them. */
export function encodeRangeRequest(request: RangeRequest, prefixBytes = 0): Uint8Array {
  return encodeClientRequest(rangeFields, request, prefixBytes);
}

/** PutRequest's protobuf bytes, as a client sends them. */
export function encodePutRequest(request: PutRequest, prefixBytes = 0): Uint8Array {
  return encodeClientRequest(putFields, request, prefixBytes);
}

/** CompactionRequest { int64 revision = 1; bool physical = 2; } */
const compactionFields: readonly Field<CompactionRequest>[] = [
  { field: 1, int: (c) => c.revision },
  { field: 2, bool: (c) => c.physical },
];

/** CompactionRequest's protobuf bytes, as a client sends them. */
export function encodeCompactionRequest(request: CompactionRequest, prefixBytes = 0): Uint8Array {
  return encodeClientRequest(compactionFields, request, prefixBytes);
}

/** AuthenticateRequest { string name = 1; string password = 2; } */
const authenticateFields: readonly Field<AuthenticateRequest>[] = [
  { field: 1, bytes: (a) => Buffer.from(a.name) },
  { field: 2, bytes: (a) => Buffer.from(a.password) },
];

/** AuthenticateRequest's protobuf bytes, as a client sends them. */
export function encodeAuthenticateRequest(request: AuthenticateRequest, prefixBytes = 0): Uint8Array {
  return encodeClientRequest(authenticateFields, request, prefixBytes);
}
