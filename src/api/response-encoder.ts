/**
 * The KV responses (Range, Put, DeleteRange, Txn) encoded straight from domain objects into
 * protobuf bytes, as gogoproto marshals them (fields in number order, zero values left out). The
 * generic path turns every int64 into a decimal string for protobufjs, which parses it back; for
 * a Range of a few keys that costs more than the read itself.
 *
 *   ResponseHeader      { uint64 cluster_id = 1; uint64 member_id = 2; int64 revision = 3; uint64 raft_term = 4; }
 *   RangeResponse       { ResponseHeader header = 1; repeated mvccpb.KeyValue kvs = 2; bool more = 3; int64 count = 4; }
 *   PutResponse         { ResponseHeader header = 1; mvccpb.KeyValue prev_kv = 2; }
 *   DeleteRangeResponse { ResponseHeader header = 1; int64 deleted = 2; repeated mvccpb.KeyValue prev_kvs = 3; }
 *   TxnResponse         { ResponseHeader header = 1; bool succeeded = 2; repeated ResponseOp responses = 3; }
 *   ResponseOp          { oneof { RangeResponse 1; PutResponse 2; DeleteRangeResponse 3; TxnResponse 4; } }
 *
 * The ops inside a txn carry a header with only a revision (the op's own, or the txn's); a
 * nested txn's header stays all zero, exactly as etcd 3.4 answers.
 */
import { encodeKeyValue } from './key-value-codec.js';
import { Writer } from '../lib/bytes-writer.js';
import { varintBytes } from '../lib/protobuf.js';
import type { DeleteRangeResult, PutResult, RangeResult, ResponseHeader, ResponseOp, TxnResult } from './types.js';

/** A response already encoded; serializers pass its bytes through as they are. */
export class EncodedResponse {
  constructor(readonly bytes: Uint8Array) {}
}

const tagHeader = 0x0a;
const tagClusterId = 0x08;
const tagMemberId = 0x10;
const tagRevision = 0x18;
const tagRaftTerm = 0x20;
const tagKvs = 0x12;
const tagMore = 0x18;
const tagCount = 0x20;
const tagPrevKv = 0x12;
const tagDeleted = 0x10;
const tagPrevKvs = 0x1a;
const tagSucceeded = 0x10;
const tagResponses = 0x1a;
const responseOpTags: Record<ResponseOp['type'], number> = { range: 0x0a, put: 0x12, deleteRange: 0x1a, txn: 0x22 };
const emptyBytes = new Uint8Array(0);

/** Room for a tag, a length varint and `bodyBytes`. */
function fieldBytes(bodyBytes: number): number {
  return 1 + varintBytes(bodyBytes) + bodyBytes;
}

const int64FieldBytesMax = 11;

/** The cluster and member ID fields, encoded once: a member answers every call with the same two. */
let identityCache: { clusterId: bigint; memberId: bigint; bytes: Uint8Array } | undefined;

function identityFields(clusterId: bigint, memberId: bigint): Uint8Array {
  // The headers of ops inside a txn have neither; they must not evict the member's own.
  if (clusterId === 0n && memberId === 0n) return emptyBytes;
  if (identityCache?.clusterId === clusterId && identityCache.memberId === memberId) return identityCache.bytes;
  const writer = new Writer(2 * int64FieldBytesMax);
  if (clusterId !== 0n) {
    writer.byte(tagClusterId);
    writer.varint64(clusterId);
  }
  if (memberId !== 0n) {
    writer.byte(tagMemberId);
    writer.varint64(memberId);
  }
  identityCache = { clusterId, memberId, bytes: writer.done() };
  return identityCache.bytes;
}

export function encodeResponseHeader(header: ResponseHeader): Uint8Array {
  const identityBytes = identityFields(header.clusterId, header.memberId).length;
  const revisionBytes = header.revision === 0 ? 0 : 1 + varintBytes(header.revision);
  const termBytes = header.raftTerm === 0 ? 0 : 1 + varintBytes(header.raftTerm);
  const writer = new Writer(identityBytes + revisionBytes + termBytes);
  writer.raw(identityFields(header.clusterId, header.memberId));
  if (header.revision !== 0) {
    writer.byte(tagRevision);
    writer.varint(header.revision);
  }
  if (header.raftTerm !== 0) {
    writer.byte(tagRaftTerm);
    writer.varint(header.raftTerm);
  }
  return writer.done();
}

export function encodeRangeResponse(header: ResponseHeader, result: RangeResult): Uint8Array {
  const headerBytes = encodeResponseHeader(header);
  const kvs = result.kvs.map(encodeKeyValue);
  const countBytes = result.count === 0 ? 0 : 1 + varintBytes(result.count);
  const size =
    fieldBytes(headerBytes.length) +
    kvs.reduce((sum, kv) => sum + fieldBytes(kv.length), 0) +
    (result.more ? 2 : 0) +
    countBytes;
  const writer = new Writer(size);
  writer.message(tagHeader, headerBytes);
  for (const kv of kvs) writer.message(tagKvs, kv);
  if (result.more) {
    writer.byte(tagMore);
    writer.byte(1);
  }
  if (result.count !== 0) {
    writer.byte(tagCount);
    writer.varint(result.count);
  }
  return writer.done();
}

export function encodePutResponse(header: ResponseHeader, result: PutResult): Uint8Array {
  const headerBytes = encodeResponseHeader(header);
  const prevKv = result.prevKv === undefined ? undefined : encodeKeyValue(result.prevKv);
  const writer = new Writer(fieldBytes(headerBytes.length) + (prevKv === undefined ? 0 : fieldBytes(prevKv.length)));
  writer.message(tagHeader, headerBytes);
  if (prevKv !== undefined) writer.message(tagPrevKv, prevKv);
  return writer.done();
}

export function encodeDeleteRangeResponse(header: ResponseHeader, result: DeleteRangeResult): Uint8Array {
  const headerBytes = encodeResponseHeader(header);
  const prevKvs = result.prevKvs.map(encodeKeyValue);
  const deletedBytes = result.deleted === 0 ? 0 : 1 + varintBytes(result.deleted);
  const writer = new Writer(
    fieldBytes(headerBytes.length) + deletedBytes + prevKvs.reduce((sum, kv) => sum + fieldBytes(kv.length), 0),
  );
  writer.message(tagHeader, headerBytes);
  if (result.deleted !== 0) {
    writer.byte(tagDeleted);
    writer.varint(result.deleted);
  }
  for (const kv of prevKvs) writer.message(tagPrevKvs, kv);
  return writer.done();
}

export function encodeTxnResponse(header: ResponseHeader, result: TxnResult): Uint8Array {
  return encodeTxnResult(header, result, header.revision);
}

function revisionOnlyHeader(revision: number): ResponseHeader {
  return { clusterId: 0n, memberId: 0n, revision, raftTerm: 0 };
}

function encodeResponseOp(op: ResponseOp, txnRevision: number): Uint8Array {
  switch (op.type) {
    case 'range':
      return encodeRangeResponse(revisionOnlyHeader(op.range.revision ?? txnRevision), op.range);
    case 'put':
      return encodePutResponse(revisionOnlyHeader(op.put.revision ?? txnRevision), op.put);
    case 'deleteRange':
      return encodeDeleteRangeResponse(revisionOnlyHeader(op.deleteRange.revision ?? txnRevision), op.deleteRange);
    case 'txn':
      return encodeTxnResult(revisionOnlyHeader(0), op.txn, txnRevision);
  }
}

function encodeTxnResult(header: ResponseHeader, result: TxnResult, txnRevision: number): Uint8Array {
  const headerBytes = encodeResponseHeader(header);
  const ops = result.responses.map((op) => encodeResponseOp(op, txnRevision));
  // Each ResponseOp is a message holding one field, the op's response.
  const size =
    fieldBytes(headerBytes.length) +
    (result.succeeded ? 2 : 0) +
    ops.reduce((sum, op) => sum + fieldBytes(fieldBytes(op.length)), 0);
  const writer = new Writer(size);
  writer.message(tagHeader, headerBytes);
  if (result.succeeded) {
    writer.byte(tagSucceeded);
    writer.byte(1);
  }
  result.responses.forEach((op, i) => {
    const body = ops[i] as Uint8Array;
    writer.byte(tagResponses);
    writer.varint(fieldBytes(body.length));
    writer.message(responseOpTags[op.type], body);
  });
  return writer.done();
}
