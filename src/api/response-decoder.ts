/**
 * The KV responses (Range, Put, DeleteRange, Compact) and AuthenticateResponse decoded from protobuf bytes
 * into domain objects, as a client reads what response-encoder.ts (or etcd) wrote: proto3 rules,
 * unknown fields skipped, key-values as views into the response's bytes. A header the message
 * leaves out stays undefined, so a client can tell it from an all-zero one.
 *
 *   ResponseHeader        { uint64 cluster_id = 1; uint64 member_id = 2; int64 revision = 3; uint64 raft_term = 4; }
 *   RangeResponse         { ResponseHeader header = 1; repeated mvccpb.KeyValue kvs = 2; bool more = 3; int64 count = 4; }
 *   PutResponse           { ResponseHeader header = 1; mvccpb.KeyValue prev_kv = 2; }
 *   DeleteRangeResponse   { ResponseHeader header = 1; int64 deleted = 2; repeated mvccpb.KeyValue prev_kvs = 3; }
 *   AuthenticateResponse  { ResponseHeader header = 1; string token = 2; }
 *   CompactionResponse    { ResponseHeader header = 1; }
 */
import { decodeKeyValue } from './key-value-codec.js';
import { fieldKey as key, protoReaderOf, wireBytes, wireVarint, type ProtoReader } from '../lib/protobuf.js';
import type { DeleteRangeResult, KeyValue, PutResult, RangeResult, ResponseHeader } from './types.js';

/** A decoded response: its header (undefined when absent) and its body. */
export interface Decoded<T> {
  header: ResponseHeader | undefined;
  result: T;
}

function responseHeader(reader: ProtoReader): ResponseHeader {
  const header: ResponseHeader = { clusterId: 0n, memberId: 0n, revision: 0, raftTerm: 0 };
  while (!reader.done) {
    const field = reader.key();
    switch (field) {
      case key(1, wireVarint):
        header.clusterId = reader.bigUint64();
        break;
      case key(2, wireVarint):
        header.memberId = reader.bigUint64();
        break;
      case key(3, wireVarint):
        header.revision = reader.int64();
        break;
      case key(4, wireVarint):
        header.raftTerm = reader.int64();
        break;
      default:
        reader.skip(field);
    }
  }
  return header;
}

/** A KeyValue field: a view into the response's bytes. */
function keyValue(reader: ProtoReader): KeyValue {
  return decodeKeyValue(reader.bytesField(), true);
}

/**
 * Reads a response: field 1 is its header; `bodyField` reads the fields of the body it knows and
 * says whether it did; the rest are skipped, as proto3 skips unknown fields.
 */
function decodeResponse<T>(
  bytes: Uint8Array,
  result: T,
  bodyField: (field: number, reader: ProtoReader, result: T) => boolean,
): Decoded<T> {
  const reader = protoReaderOf(bytes);
  const decoded: Decoded<T> = { header: undefined, result };
  while (!reader.done) {
    const field = reader.key();
    if (field === key(1, wireBytes)) decoded.header = responseHeader(reader.message());
    else if (!bodyField(field, reader, result)) reader.skip(field);
  }
  return decoded;
}

export function decodeRangeResponse(bytes: Uint8Array): Decoded<RangeResult> {
  return decodeResponse<RangeResult>(bytes, { kvs: [], more: false, count: 0 }, (field, reader, result) => {
    switch (field) {
      case key(2, wireBytes):
        result.kvs.push(keyValue(reader));
        return true;
      case key(3, wireVarint):
        result.more = reader.bool();
        return true;
      case key(4, wireVarint):
        result.count = reader.int64();
        return true;
      default:
        return false;
    }
  });
}

export function decodePutResponse(bytes: Uint8Array): Decoded<PutResult> {
  return decodeResponse<PutResult>(bytes, {}, (field, reader, result) => {
    if (field !== key(2, wireBytes)) return false;
    result.prevKv = keyValue(reader);
    return true;
  });
}

export function decodeDeleteRangeResponse(bytes: Uint8Array): Decoded<DeleteRangeResult> {
  return decodeResponse<DeleteRangeResult>(bytes, { deleted: 0, prevKvs: [] }, (field, reader, result) => {
    switch (field) {
      case key(2, wireVarint):
        result.deleted = reader.int64();
        return true;
      case key(3, wireBytes):
        result.prevKvs.push(keyValue(reader));
        return true;
      default:
        return false;
    }
  });
}

/** CompactionResponse: only its header. */
export function decodeCompactionResponse(bytes: Uint8Array): Decoded<Record<string, never>> {
  return decodeResponse<Record<string, never>>(bytes, {}, () => false);
}

/** AuthenticateResponse: the token to send as `token` metadata on every later call. */
export function decodeAuthenticateResponse(bytes: Uint8Array): Decoded<{ token: string }> {
  return decodeResponse<{ token: string }>(bytes, { token: '' }, (field, reader, result) => {
    if (field !== key(2, wireBytes)) return false;
    result.token = reader.bytesField().toString('utf8');
    return true;
  });
}
