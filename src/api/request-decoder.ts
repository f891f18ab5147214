/**
 * The KV requests decoded straight from protobuf bytes into domain objects. The generic path
 * (protobufjs through proto-loader) turns every int64 into a decimal string and every message into
 * a wire object, which codec.ts then converts again; for a Txn of a hundred puts that cost more
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
 */
import { errors } from './errors.js';
import { rangeRequestWith, type Compare, type DeleteRangeRequest, type PutRequest, type RangeRequest, type RequestOp, type TxnRequest } from './types.js';

const wireVarint = 0;
const wireFixed64 = 1;
const wireBytes = 2;
const wireFixed32 = 5;

/** Varints of up to 7 bytes (49 bits) are read as plain numbers; longer ones go through BigInt. */
const fastVarintBytesMax = 7;
const varintBytesMax = 10;

const emptyBytes = Buffer.alloc(0);

/** A cursor over one message's bytes, `[offset, end)` of `bytes`. */
class ProtoReader {
  offset: number;

  constructor(
    private readonly bytes: Buffer,
    offset: number,
    readonly end: number,
  ) {
    this.offset = offset;
  }

  get done(): boolean {
    return this.offset >= this.end;
  }

  private byte(): number {
    // grpc-go names a message cut short "unexpected EOF"; the transport passes it on.
    if (this.offset >= this.end) throw new Error('unexpected EOF');
    return this.bytes[this.offset++] as number;
  }

  /** A varint as a number: exact below 2^53, int64 semantics (a negative is ten bytes) beyond. */
  int64(): number {
    let result = 0;
    let scale = 1;
    const start = this.offset;
    for (let i = 0; i < fastVarintBytesMax; i++) {
      const b = this.byte();
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 0x80;
    }
    this.offset = start;
    return Number(this.bigInt64());
  }

  bigInt64(): bigint {
    let result = 0n;
    for (let i = 0; i < varintBytesMax; i++) {
      const b = this.byte();
      result |= BigInt(b & 0x7f) << BigInt(7 * i);
      if (b < 0x80) return BigInt.asIntN(64, result);
    }
    throw new Error('varint longer than 10 bytes');
  }

  /** An enum or int32: the varint's low 32 bits, signed, as protobuf reads them. */
  int32(): number {
    const start = this.offset;
    const value = this.int64();
    if (Number.isSafeInteger(value)) return value | 0;
    this.offset = start;
    return Number(BigInt.asIntN(32, this.bigInt64()));
  }

  bool(): boolean {
    return this.int64() !== 0;
  }

  /** A length-delimited field's extent; its bytes are `[start, this.offset)` afterwards. */
  lengthDelimited(): number {
    const length = this.int64();
    if (length < 0 || length > this.end - this.offset) throw new Error('unexpected EOF');
    const start = this.offset;
    this.offset += length;
    return start;
  }

  bytesField(): Buffer {
    const start = this.lengthDelimited();
    return start === this.offset ? emptyBytes : this.bytes.subarray(start, this.offset);
  }

  /** A reader over an embedded message; this one moves past it. */
  message(): ProtoReader {
    const start = this.lengthDelimited();
    return new ProtoReader(this.bytes, start, this.offset);
  }

  /** Reads a field key: field number times 8 plus wire type. */
  key(): number {
    const key = this.int64();
    if (key >>> 3 === 0) throw new Error(`proto: illegal tag 0 (wire type ${key & 7})`);
    return key;
  }

  skip(key: number): void {
    switch (key & 7) {
      case wireVarint:
        this.int64();
        return;
      case wireFixed64:
        this.advance(8);
        return;
      case wireBytes:
        this.lengthDelimited();
        return;
      case wireFixed32:
        this.advance(4);
        return;
      default:
        throw new Error(`proto: illegal wireType ${key & 7}`);
    }
  }

  private advance(bytes: number): void {
    if (bytes > this.end - this.offset) throw new Error('unexpected EOF');
    this.offset += bytes;
  }
}

/** Field keys (field number << 3 | wire type) as they appear on the wire. */
const key = (field: number, wireType: number): number => field * 8 + wireType;

function readerOf(bytes: Buffer): ProtoReader {
  return new ProtoReader(bytes, 0, bytes.length);
}

export function decodeRangeRequest(bytes: Buffer): RangeRequest {
  return rangeRequest(readerOf(bytes));
}

export function decodePutRequest(bytes: Buffer): PutRequest {
  return putRequest(readerOf(bytes));
}

export function decodeDeleteRangeRequest(bytes: Buffer): DeleteRangeRequest {
  return deleteRangeRequest(readerOf(bytes));
}

/** Decodes a TxnRequest; an op with no request set throws etcd's "key not found", as validation would. */
export function decodeTxnRequest(bytes: Buffer): TxnRequest {
  return txnRequest(readerOf(bytes));
}

function rangeRequest(reader: ProtoReader): RangeRequest {
  const request = rangeRequestWith({ key: emptyBytes, rangeEnd: emptyBytes });
  while (!reader.done) {
    const field = reader.key();
    switch (field) {
      case key(1, wireBytes): request.key = reader.bytesField(); break;
      case key(2, wireBytes): request.rangeEnd = reader.bytesField(); break;
      case key(3, wireVarint): request.limit = reader.int64(); break;
      case key(4, wireVarint): request.revision = reader.int64(); break;
      case key(5, wireVarint): request.sortOrder = reader.int32(); break;
      case key(6, wireVarint): request.sortTarget = reader.int32(); break;
      case key(7, wireVarint): request.serializable = reader.bool(); break;
      case key(8, wireVarint): request.keysOnly = reader.bool(); break;
      case key(9, wireVarint): request.countOnly = reader.bool(); break;
      case key(10, wireVarint): request.minModRevision = reader.int64(); break;
      case key(11, wireVarint): request.maxModRevision = reader.int64(); break;
      case key(12, wireVarint): request.minCreateRevision = reader.int64(); break;
      case key(13, wireVarint): request.maxCreateRevision = reader.int64(); break;
      default: reader.skip(field);
    }
  }
  return request;
}

function putRequest(reader: ProtoReader): PutRequest {
  const request: PutRequest = { key: emptyBytes, value: emptyBytes, lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false };
  while (!reader.done) {
    const field = reader.key();
    switch (field) {
      case key(1, wireBytes): request.key = reader.bytesField(); break;
      case key(2, wireBytes): request.value = reader.bytesField(); break;
      case key(3, wireVarint): request.lease = reader.bigInt64(); break;
      case key(4, wireVarint): request.prevKv = reader.bool(); break;
      case key(5, wireVarint): request.ignoreValue = reader.bool(); break;
      case key(6, wireVarint): request.ignoreLease = reader.bool(); break;
      default: reader.skip(field);
    }
  }
  return request;
}

function deleteRangeRequest(reader: ProtoReader): DeleteRangeRequest {
  const request: DeleteRangeRequest = { key: emptyBytes, rangeEnd: emptyBytes, prevKv: false };
  while (!reader.done) {
    const field = reader.key();
    switch (field) {
      case key(1, wireBytes): request.key = reader.bytesField(); break;
      case key(2, wireBytes): request.rangeEnd = reader.bytesField(); break;
      case key(3, wireVarint): request.prevKv = reader.bool(); break;
      default: reader.skip(field);
    }
  }
  return request;
}

function compare(reader: ProtoReader): Compare {
  const result: Compare = { result: 0, target: 0, key: emptyBytes, rangeEnd: emptyBytes, version: 0, createRevision: 0, modRevision: 0, value: emptyBytes, lease: 0n };
  while (!reader.done) {
    const field = reader.key();
    switch (field) {
      case key(1, wireVarint): result.result = reader.int32(); break;
      case key(2, wireVarint): result.target = reader.int32(); break;
      case key(3, wireBytes): result.key = reader.bytesField(); break;
      case key(4, wireVarint): result.version = reader.int64(); break;
      case key(5, wireVarint): result.createRevision = reader.int64(); break;
      case key(6, wireVarint): result.modRevision = reader.int64(); break;
      case key(7, wireBytes): result.value = reader.bytesField(); break;
      case key(8, wireVarint): result.lease = reader.bigInt64(); break;
      case key(64, wireBytes): result.rangeEnd = reader.bytesField(); break;
      default: reader.skip(field);
    }
  }
  return result;
}

function requestOp(reader: ProtoReader): RequestOp {
  let op: RequestOp | undefined;
  while (!reader.done) {
    const field = reader.key();
    switch (field) {
      case key(1, wireBytes): op = { type: 'range', range: rangeRequest(reader.message()) }; break;
      case key(2, wireBytes): op = { type: 'put', put: putRequest(reader.message()) }; break;
      case key(3, wireBytes): op = { type: 'deleteRange', deleteRange: deleteRangeRequest(reader.message()) }; break;
      case key(4, wireBytes): op = { type: 'txn', txn: txnRequest(reader.message()) }; break;
      default: reader.skip(field);
    }
  }
  // etcd rejects an op with no request during validation as "key not found"; so does codec.ts.
  if (op === undefined) throw errors.keyNotFound();
  return op;
}

function txnRequest(reader: ProtoReader): TxnRequest {
  const request: TxnRequest = { compare: [], success: [], failure: [] };
  while (!reader.done) {
    const field = reader.key();
    switch (field) {
      case key(1, wireBytes): request.compare.push(compare(reader.message())); break;
      case key(2, wireBytes): request.success.push(requestOp(reader.message())); break;
      case key(3, wireBytes): request.failure.push(requestOp(reader.message())); break;
      default: reader.skip(field);
    }
  }
  return request;
}
