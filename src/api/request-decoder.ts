/**
 * The KV requests decoded straight from protobuf bytes into domain objects. The generic path
 * (protobufjs through proto-loader) turns every int64 into a decimal string and every message into
 * a wire object, which proto-wire.ts then converts again; for a Txn of a hundred puts that cost more
 * than applying it. This decoder gives the same domain objects as that path does (a test holds
 * the two side by side): proto3 rules, the last value of a repeated scalar field wins, unknown
 * fields are skipped, bytes fields are Buffer views into the request. Like etcd's gogoproto code,
 * and unlike protobufjs, it refuses a field number of 0; it also refuses the deprecated group wire
 * types, which no etcd client sends.
 *
 * Field numbers are etcd's (etcdserverpb/rpc.proto):
 *   RangeRequest       key 1, range_end 2, limit 3, revision 4, sort_order 5, sort_target 6,
 *                      serializable 7, keys_only 8, count_only 9, min_mod_revision 10,
 *                      max_mod_revision 11, min_create_revision 12, max_create_revision 13
 *   PutRequest         key 1, value 2, lease 3, prev_kv 4, ignore_value 5, ignore_lease 6
 *   DeleteRangeRequest key 1, range_end 2, prev_kv 3
 *   Compare            result 1, target 2, key 3, oneof { version 4, create_revision 5,
 *                      mod_revision 6, value 7, lease 8 }, range_end 64
 *   RequestOp          oneof { request_range 1, request_put 2, request_delete_range 3, request_txn 4 }
 *   TxnRequest         compare 1, success 2, failure 3 (all repeated)
 *   SnapshotRequest    no fields (Maintenance.Snapshot)
 */
import { errors } from './errors.js';
import {
  emptyBytes,
  fieldKey as key,
  protoReaderOf,
  wireBytes,
  wireVarint,
  type ProtoReader,
} from '../lib/protobuf.js';
import { txnNestingDepthMax } from '../lib/limits.js';
import {
  rangeRequestWith,
  type Compare,
  type DeleteRangeRequest,
  type PutRequest,
  type RangeRequest,
  type RequestOp,
  type TxnRequest,
} from './types.js';

export function decodeRangeRequest(bytes: Buffer): RangeRequest {
  return rangeRequest(protoReaderOf(bytes));
}

export function decodePutRequest(bytes: Buffer): PutRequest {
  return putRequest(protoReaderOf(bytes));
}

export function decodeDeleteRangeRequest(bytes: Buffer): DeleteRangeRequest {
  return deleteRangeRequest(protoReaderOf(bytes));
}

/** Decodes a TxnRequest; an op with no request set throws etcd's "key not found", as validation would. */
export function decodeTxnRequest(bytes: Buffer): TxnRequest {
  return txnRequest(protoReaderOf(bytes), 0);
}

/**
 * Reads a Maintenance SnapshotRequest, which has no fields: whatever fields it carries are skipped,
 * and malformed bytes throw as in the other decoders. With it a save needs no proto-loader codec,
 * whose first use reads and parses every .proto file on the member's event loop.
 */
export function decodeSnapshotRequest(bytes: Buffer): Record<string, never> {
  const reader = protoReaderOf(bytes);
  while (!reader.done) reader.skip(reader.key());
  return {};
}

/** The error for a txn nested deeper than txnNestingDepthMax, in protobuf-go's words for its own limit. */
export const txnNestingText = `proto: exceeded maximum recursion depth (txns nested over ${txnNestingDepthMax} deep)`;

function rangeRequest(reader: ProtoReader): RangeRequest {
  const request = rangeRequestWith({ key: emptyBytes, rangeEnd: emptyBytes });
  while (!reader.done) {
    const field = reader.key();
    switch (field) {
      case key(1, wireBytes):
        request.key = reader.bytesField();
        break;
      case key(2, wireBytes):
        request.rangeEnd = reader.bytesField();
        break;
      case key(3, wireVarint):
        request.limit = reader.int64();
        break;
      case key(4, wireVarint):
        request.revision = reader.int64();
        break;
      case key(5, wireVarint):
        request.sortOrder = reader.int32();
        break;
      case key(6, wireVarint):
        request.sortTarget = reader.int32();
        break;
      case key(7, wireVarint):
        request.serializable = reader.bool();
        break;
      case key(8, wireVarint):
        request.keysOnly = reader.bool();
        break;
      case key(9, wireVarint):
        request.countOnly = reader.bool();
        break;
      case key(10, wireVarint):
        request.minModRevision = reader.int64();
        break;
      case key(11, wireVarint):
        request.maxModRevision = reader.int64();
        break;
      case key(12, wireVarint):
        request.minCreateRevision = reader.int64();
        break;
      case key(13, wireVarint):
        request.maxCreateRevision = reader.int64();
        break;
      default:
        reader.skip(field);
    }
  }
  return request;
}

function putRequest(reader: ProtoReader): PutRequest {
  const request: PutRequest = {
    key: emptyBytes,
    value: emptyBytes,
    lease: 0n,
    prevKv: false,
    ignoreValue: false,
    ignoreLease: false,
  };
  while (!reader.done) {
    const field = reader.key();
    switch (field) {
      case key(1, wireBytes):
        request.key = reader.bytesField();
        break;
      case key(2, wireBytes):
        request.value = reader.bytesField();
        break;
      case key(3, wireVarint):
        request.lease = reader.bigInt64();
        break;
      case key(4, wireVarint):
        request.prevKv = reader.bool();
        break;
      case key(5, wireVarint):
        request.ignoreValue = reader.bool();
        break;
      case key(6, wireVarint):
        request.ignoreLease = reader.bool();
        break;
      default:
        reader.skip(field);
    }
  }
  return request;
}

function deleteRangeRequest(reader: ProtoReader): DeleteRangeRequest {
  const request: DeleteRangeRequest = { key: emptyBytes, rangeEnd: emptyBytes, prevKv: false };
  while (!reader.done) {
    const field = reader.key();
    switch (field) {
      case key(1, wireBytes):
        request.key = reader.bytesField();
        break;
      case key(2, wireBytes):
        request.rangeEnd = reader.bytesField();
        break;
      case key(3, wireVarint):
        request.prevKv = reader.bool();
        break;
      default:
        reader.skip(field);
    }
  }
  return request;
}

function compare(reader: ProtoReader): Compare {
  const result: Compare = {
    result: 0,
    target: 0,
    key: emptyBytes,
    rangeEnd: emptyBytes,
    version: 0,
    createRevision: 0,
    modRevision: 0,
    value: emptyBytes,
    lease: 0n,
  };
  while (!reader.done) {
    const field = reader.key();
    switch (field) {
      case key(1, wireVarint):
        result.result = reader.int32();
        break;
      case key(2, wireVarint):
        result.target = reader.int32();
        break;
      case key(3, wireBytes):
        result.key = reader.bytesField();
        break;
      case key(4, wireVarint):
        result.version = reader.int64();
        break;
      case key(5, wireVarint):
        result.createRevision = reader.int64();
        break;
      case key(6, wireVarint):
        result.modRevision = reader.int64();
        break;
      case key(7, wireBytes):
        result.value = reader.bytesField();
        break;
      case key(8, wireVarint):
        result.lease = reader.bigInt64();
        break;
      case key(64, wireBytes):
        result.rangeEnd = reader.bytesField();
        break;
      default:
        reader.skip(field);
    }
  }
  return result;
}

function requestOp(reader: ProtoReader, depth: number): RequestOp {
  let op: RequestOp | undefined;
  while (!reader.done) {
    const field = reader.key();
    switch (field) {
      case key(1, wireBytes):
        op = { type: 'range', range: rangeRequest(reader.message()) };
        break;
      case key(2, wireBytes):
        op = { type: 'put', put: putRequest(reader.message()) };
        break;
      case key(3, wireBytes):
        op = { type: 'deleteRange', deleteRange: deleteRangeRequest(reader.message()) };
        break;
      case key(4, wireBytes):
        op = { type: 'txn', txn: txnRequest(reader.message(), depth + 1) };
        break;
      default:
        reader.skip(field);
    }
  }
  // etcd rejects an op with no request during validation as "key not found"; so does proto-wire.ts.
  if (op === undefined) throw errors.keyNotFound();
  return op;
}

/** `depth` counts the txns this one is nested in; the bound is checked once per txn, not per byte. */
function txnRequest(reader: ProtoReader, depth: number): TxnRequest {
  if (depth > txnNestingDepthMax) throw new Error(txnNestingText);
  const request: TxnRequest = { compare: [], success: [], failure: [] };
  while (!reader.done) {
    const field = reader.key();
    switch (field) {
      case key(1, wireBytes):
        request.compare.push(compare(reader.message()));
        break;
      case key(2, wireBytes):
        request.success.push(requestOp(reader.message(), depth));
        break;
      case key(3, wireBytes):
        request.failure.push(requestOp(reader.message(), depth));
        break;
      default:
        reader.skip(field);
    }
  }
  return request;
}
