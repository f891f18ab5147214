/**
 * The v2 requests an etcd 3.4 member logs: etcdserverpb.Request {1 ID, 2 Method, 3 Path, 4 Val,
 * 5 Dir, 6 PrevValue, 7 PrevIndex, 8 PrevExist (nullable), 9 Expiration, 12 Recursive, 15 Time,
 * 17 Refresh (nullable), ...}, logged bare, or inside an InternalRaftRequest as its field 2. An
 * entry whose bytes read as an InternalRaftRequest is one (its v2 field, when set, is the request);
 * otherwise the bytes are a bare Request, as etcd decides.
 */
import { protoReaderOf, type ProtoReader } from '../lib/protobuf.js';

/** A decoded etcdserverpb.Request (the fields replay uses). */
export interface V2Request {
  method: string;
  path: string;
  value: string;
  dir: boolean;
  prevValue: string;
  prevIndex: number;
  prevExist: boolean | undefined;
  expirationNs: bigint;
  recursive: boolean;
  timeNs: bigint;
  refresh: boolean;
}

const wireTypes = { varint: 0, fixed64: 1, bytes: 2, fixed32: 5 } as const;

/** Request's field numbers and their wire types; any other wire type on them is malformed. */
const requestFieldWire: Record<number, number> = {
  1: wireTypes.varint,
  2: wireTypes.bytes,
  3: wireTypes.bytes,
  4: wireTypes.bytes,
  5: wireTypes.varint,
  6: wireTypes.bytes,
  7: wireTypes.varint,
  8: wireTypes.varint,
  9: wireTypes.varint,
  10: wireTypes.varint,
  11: wireTypes.varint,
  12: wireTypes.varint,
  13: wireTypes.varint,
  14: wireTypes.varint,
  15: wireTypes.varint,
  16: wireTypes.varint,
  17: wireTypes.varint,
};

/** Throws unless `key`'s wire type can be skipped by a protobuf decoder (start and end group cannot). */
function checkWireType(key: number): void {
  const wire = key & 7;
  if (wire === 3 || wire === 4 || wire > 5) throw new Error(`proto: illegal wireType ${wire}`);
}

function decodeRequest(reader: ProtoReader): V2Request {
  const request: V2Request = {
    method: '',
    path: '',
    value: '',
    dir: false,
    prevValue: '',
    prevIndex: 0,
    prevExist: undefined,
    expirationNs: 0n,
    recursive: false,
    timeNs: 0n,
    refresh: false,
  };
  while (!reader.done) {
    const key = reader.key();
    checkWireType(key);
    const field = key >>> 3;
    const expectedWire = requestFieldWire[field];
    if (expectedWire !== undefined && expectedWire !== (key & 7))
      throw new Error(`proto: wrong wireType = ${key & 7} for field ${field}`);
    switch (field) {
      case 2:
        request.method = reader.bytesField().toString();
        break;
      case 3:
        request.path = reader.bytesField().toString();
        break;
      case 4:
        request.value = reader.bytesField().toString();
        break;
      case 5:
        request.dir = reader.bool();
        break;
      case 6:
        request.prevValue = reader.bytesField().toString();
        break;
      case 7:
        request.prevIndex = reader.int64();
        break;
      case 8:
        request.prevExist = reader.bool();
        break;
      case 9:
        request.expirationNs = reader.bigInt64();
        break;
      case 12:
        request.recursive = reader.bool();
        break;
      case 15:
        request.timeNs = reader.bigInt64();
        break;
      case 17:
        request.refresh = reader.bool();
        break;
      default:
        reader.skip(key);
    }
  }
  return request;
}

/**
 * The v2 request a normal entry's data carries, or undefined for one that carries none (a v3
 * request, or the empty entry a new leader appends). Throws when the bytes are neither form.
 */
export function decodeV2EntryData(data: Buffer): V2Request | undefined {
  let v2: V2Request | undefined;
  try {
    const reader = protoReaderOf(data);
    while (!reader.done) {
      const key = reader.key();
      checkWireType(key);
      if (key === 0x12) v2 = decodeRequest(reader.message());
      else reader.skip(key);
    }
    return v2;
  } catch {
    return decodeRequest(protoReaderOf(data));
  }
}
